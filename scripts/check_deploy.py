#!/usr/bin/env python3
"""Static checks of the deployment files, run by scripts/check-deploy inside its venv.

Nothing here can pull or run an image, so the files are checked as text:
- kustomize: every kustomization in KUSTOMIZATIONS is rendered with kustomize (the one built
  into kubectl, from PyPI), warnings count as failures;
- every rendered object is validated against the Kubernetes JSON schemas (kubernetes-validate,
  strict: unknown fields fail) for each version in KUBE_VERSIONS; Strimzi's custom resources,
  which it has no schemas for, against deploy/schemas/strimzi-v1beta2.yaml (jsonschema);
- the objects are checked against each other and against the contract: references resolve,
  Services select pods and ports that exist, probes, limits and security settings are there, the
  original's NodePorts point at the right roles, Kafka topics fit the brokers and consumers;
- compose.yaml: the Compose specification's schema (check-jsonschema), then its references;
- Dockerfile: hadolint, failing on every finding, style included.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
from jsonschema.exceptions import best_match
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's bin: kubectl, hadolint, check-jsonschema

KUSTOMIZATIONS = ["deploy/base", "deploy/overlays/dev"]
# The oldest and the newest Kubernetes the manifests are checked against.
KUBE_VERSIONS = ["1.30.0", "1.37.0"]
NAMESPACE = "udaconnect"
STRIMZI_GROUP = "kafka.strimzi.io"
STRIMZI_SCHEMA = ROOT / "deploy/schemas/strimzi-v1beta2.yaml"
CLUSTER_SCOPED = {"Namespace"}

# role -> the port its --listen address uses in the manifests
ROLES = {
    "person-api": 30002,
    "location-api": 8080,
    "location-consumer": 8080,
    "connection-api": 30003,
    "mailer": 8080,
    "web": 30000,
    "tracker-mqtt": 8080,
}
# The original's NodePorts (contract: deployment names), and the role behind each.
NODE_PORTS = {30000: "web", 30001: "web", 30002: "person-api", 30003: "connection-api",
              30004: "location-api"}
# Ports compose.yaml publishes on 127.0.0.1, and the service behind each.
COMPOSE_PORTS = {30000: "web", 30001: "web", 30002: "person-api", 30003: "connection-api",
                 5005: "location-api"}


class Checker:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.section_failures = 0

    def section(self, title: str) -> None:
        self.section_failures = 0
        print(f"==> {title}", flush=True)

    def fail(self, where: str, message: str) -> None:
        self.failures.append(f"{where}: {message}")
        self.section_failures += 1
        print(f"  FAIL {where}: {message}", flush=True)

    def ok(self, message: str) -> None:
        if self.section_failures == 0:
            print(f"  ok   {message}", flush=True)


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True)


def kname(obj: dict) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def labels_match(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --- kustomize -------------------------------------------------------------------------------

def render(c: Checker, kdir: str) -> list[dict] | None:
    result = run([str(BIN / "kubectl"), "kustomize", kdir])
    if result.returncode != 0:
        c.fail(kdir, "kustomize could not render it:\n" + result.stderr.strip())
        return None
    if result.stderr.strip():
        c.fail(kdir, "kustomize warned (fix the kustomization):\n" + result.stderr.strip())
    try:
        docs = [d for d in yaml.safe_load_all(result.stdout) if d is not None]
    except yaml.YAMLError as e:
        c.fail(kdir, f"rendered YAML does not parse: {e}")
        return None
    for d in docs:
        if not isinstance(d, dict) or "kind" not in d or "apiVersion" not in d:
            c.fail(kdir, f"not a Kubernetes object: {str(d)[:80]}")
            return None
    return docs


def schema_checks(c: Checker, where: str, objs: list[dict], strimzi: dict) -> None:
    for obj in objs:
        name = f"{where} {kname(obj)}"
        if obj["apiVersion"].split("/")[0] == STRIMZI_GROUP:
            if obj["kind"] not in strimzi["$defs"]:
                c.fail(name, f"no schema for {obj['kind']} in {STRIMZI_SCHEMA.relative_to(ROOT)}")
                continue
            schema = dict(strimzi, **{"$ref": f"#/$defs/{obj['kind']}"})
            validator = jsonschema.Draft202012Validator(schema)
            for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
                if err.context:  # anyOf/oneOf: name the alternative that came closest
                    err = best_match(err.context)
                path = ".".join(str(p) for p in err.absolute_path) or "(top)"
                c.fail(name, f"Strimzi schema: {path}: {err.message}")
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError as e:
                c.fail(name, e.message)
                break
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.absolute_path) or "(top)"
                c.fail(name, f"Kubernetes {e.version} schema: {path}: {e.message}")
                break


def pod_spec(obj: dict) -> dict | None:
    if obj["kind"] in ("Deployment", "StatefulSet"):
        return obj.get("spec", {}).get("template", {}).get("spec", {})
    return None


def consistency_checks(c: Checker, where: str, objs: list[dict]) -> None:
    by_kind: dict[str, dict[str, dict]] = {}
    for obj in objs:
        meta = obj.get("metadata", {})
        name = f"{where} {kname(obj)}"
        if meta.get("name") in by_kind.setdefault(obj["kind"], {}):
            c.fail(name, "defined twice")
        by_kind[obj["kind"]][meta.get("name")] = obj
        if obj["kind"] not in CLUSTER_SCOPED and meta.get("namespace") != NAMESPACE:
            c.fail(name, f"namespace is {meta.get('namespace')!r}, not {NAMESPACE!r}")
        labels = meta.get("labels", {})
        if labels.get("app.kubernetes.io/part-of") != "udaconnect":
            c.fail(name, "label app.kubernetes.io/part-of=udaconnect missing")
        if "app.kubernetes.io/name" not in labels:
            c.fail(name, "label app.kubernetes.io/name missing")

    configmaps = by_kind.get("ConfigMap", {})
    secrets = by_kind.get("Secret", {})
    services = by_kind.get("Service", {})
    workloads = {**by_kind.get("Deployment", {}), **by_kind.get("StatefulSet", {})}

    def config_keys(kind: str, name: str) -> set[str] | None:
        src = configmaps if kind == "ConfigMap" else secrets
        if name not in src:
            return None
        obj = src[name]
        return set(obj.get("data", {})) | set(obj.get("stringData", {}))

    # Workloads: references, probes, limits, security.
    for wname, w in workloads.items():
        name = f"{where} {kname(w)}"
        spec = w["spec"]
        tmpl_labels = spec["template"].get("metadata", {}).get("labels", {})
        if not labels_match(spec["selector"].get("matchLabels", {}), tmpl_labels):
            c.fail(name, "selector.matchLabels does not match the pod template's labels")
        pod = pod_spec(w)
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            c.fail(name, "pod securityContext.runAsNonRoot is not true")
        if psc.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
            c.fail(name, "pod securityContext.seccompProfile is not RuntimeDefault")
        volumes = {v["name"] for v in pod.get("volumes", [])}
        volumes |= {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        for ctr in pod.get("containers", []):
            cname = f"{name} container {ctr['name']}"
            image = ctr.get("image", "")
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if not tag or tag == "latest":
                c.fail(cname, f"image {image!r} has no pinned tag")
            ports = {p.get("name"): p["containerPort"] for p in ctr.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                p = ctr.get(probe)
                if p is None:
                    if probe != "startupProbe":
                        c.fail(cname, f"no {probe}")
                    continue
                port = p.get("httpGet", {}).get("port")
                if isinstance(port, str) and port not in ports:
                    c.fail(cname, f"{probe} uses port {port!r}, which the container does not name")
            res = ctr.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(kind, {}):
                        c.fail(cname, f"resources.{kind}.{r} missing")
            sc = ctr.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                c.fail(cname, "securityContext.allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                c.fail(cname, "securityContext.readOnlyRootFilesystem is not true")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                c.fail(cname, "securityContext.capabilities.drop lacks ALL")
            for m in ctr.get("volumeMounts", []):
                if m["name"] not in volumes:
                    c.fail(cname, f"mounts volume {m['name']!r}, which the pod does not define")
            for ref in ctr.get("envFrom", []):
                for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if key in ref and config_keys(kind, ref[key]["name"]) is None:
                        c.fail(cname, f"envFrom names {kind} {ref[key]['name']!r}, not defined")
            for env in ctr.get("env", []):
                vf = env.get("valueFrom", {})
                for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    if key in vf:
                        keys = config_keys(kind, vf[key]["name"])
                        if keys is None or vf[key]["key"] not in keys:
                            c.fail(cname, f"env {env['name']} reads {kind} "
                                          f"{vf[key]['name']}/{vf[key]['key']}, not defined")

    # The roles: one Deployment each, running that role, probes on /ready and /health.
    for role, port in ROLES.items():
        d = by_kind.get("Deployment", {}).get(role)
        if d is None:
            c.fail(where, f"no Deployment for the role {role}")
            continue
        ctr = pod_spec(d)["containers"][0]
        name = f"{where} {kname(d)}"
        args = ctr.get("args", [])
        if not args or args[0] != role:
            c.fail(name, f"args should start with the role {role!r}, got {args}")
        if f"0.0.0.0:{port}" not in args:
            c.fail(name, f"args should listen on 0.0.0.0:{port}")
        ports = {p.get("name"): p["containerPort"] for p in ctr.get("ports", [])}
        if ports.get("http") != port:
            c.fail(name, f"container port 'http' should be {port}")
        for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/health")):
            got = ctr.get(probe, {}).get("httpGet", {}).get("path")
            if got != path:
                c.fail(name, f"{probe} should GET {path}, not {got}")

    # Services: select pods, target ports those pods have; the original's NodePorts.
    node_ports: dict[int, str] = {}
    for sname, s in services.items():
        name = f"{where} {kname(s)}"
        selected = [w for w in workloads.values()
                    if labels_match(s["spec"].get("selector", {}),
                                    w["spec"]["template"].get("metadata", {}).get("labels", {}))]
        if not selected:
            c.fail(name, "its selector matches no Deployment or StatefulSet")
            continue
        for p in s["spec"].get("ports", []):
            target = p.get("targetPort", p["port"])
            for w in selected:
                cports = [cp for ctr in pod_spec(w)["containers"] for cp in ctr.get("ports", [])]
                if not any(cp.get("name") == target or cp["containerPort"] == target
                           for cp in cports):
                    c.fail(name, f"targetPort {target!r} is not a port of {kname(w)}")
            if "nodePort" in p:
                if p["nodePort"] in node_ports:
                    c.fail(name, f"nodePort {p['nodePort']} also used by {node_ports[p['nodePort']]}")
                node_ports[p["nodePort"]] = sname
                role = NODE_PORTS.get(p["nodePort"])
                if role and not any(w["metadata"]["name"] == role for w in selected):
                    c.fail(name, f"nodePort {p['nodePort']} must reach {role}")
    for port, role in NODE_PORTS.items():
        if port not in node_ports:
            c.fail(where, f"no Service has the original's nodePort {port} ({role})")

    def service_port(host: str, port: int, role: str | None = None) -> bool:
        s = services.get(host)
        if s is None or not any(p["port"] == port for p in s["spec"].get("ports", [])):
            return False
        target = workloads.get(role) if role else None
        return target is None or labels_match(
            s["spec"].get("selector", {}), target["spec"]["template"]["metadata"]["labels"])

    # Configuration: the database and the role URLs reach Services that exist.
    db = configmaps.get("db-env", {}).get("data", {})
    for key in ("DB_USERNAME", "DB_NAME", "DB_HOST", "DB_PORT"):
        if key not in db:
            c.fail(f"{where} ConfigMap/db-env", f"{key} missing")
    if db.get("DB_NAME") != "geoconnections":
        c.fail(f"{where} ConfigMap/db-env", "DB_NAME must be geoconnections")
    if "DB_HOST" in db and not service_port(db["DB_HOST"], int(db.get("DB_PORT", 0))):
        c.fail(f"{where} ConfigMap/db-env", f"no Service {db['DB_HOST']}:{db.get('DB_PORT')}")
    if config_keys("Secret", "db-secret") != {"DB_PASSWORD"}:
        c.fail(f"{where} Secret/db-secret", "must hold DB_PASSWORD and nothing else")
    app = configmaps.get("udaconnect-config", {}).get("data", {})
    for key, role in (("UDACONNECT_PERSON_API", "person-api"),
                      ("UDACONNECT_LOCATION_API", "location-api"),
                      ("UDACONNECT_CONNECTION_API", "connection-api")):
        url = urlparse(app.get(key, ""))
        if url.scheme != "http" or not service_port(url.hostname or "", url.port or 80, role):
            c.fail(f"{where} ConfigMap/udaconnect-config",
                   f"{key}={app.get(key)!r} reaches no Service port of {role}")

    # Kafka: the log URL reaches the cluster's bootstrap; topics fit brokers and consumers.
    kafkas = by_kind.get("Kafka", {})
    log = urlparse(app.get("UDACONNECT_LOG", ""))
    bootstrap = {f"{k}-kafka-bootstrap:{l['port']}"
                 for k, obj in kafkas.items()
                 for l in obj["spec"]["kafka"]["listeners"] if not l["tls"]}
    if log.scheme != "kafka" or any(h not in bootstrap for h in log.netloc.split(",")):
        c.fail(f"{where} ConfigMap/udaconnect-config",
               f"UDACONNECT_LOG={app.get('UDACONNECT_LOG')!r} is not one of {sorted(bootstrap)}")
    brokers: dict[str, int] = {k: 0 for k in kafkas}
    controllers: dict[str, int] = {k: 0 for k in kafkas}
    for pname, pool in by_kind.get("KafkaNodePool", {}).items():
        cluster = pool["metadata"]["labels"].get("strimzi.io/cluster")
        if cluster not in kafkas:
            c.fail(f"{where} {kname(pool)}", f"names Kafka {cluster!r}, not defined")
            continue
        if "broker" in pool["spec"]["roles"]:
            brokers[cluster] += pool["spec"]["replicas"]
        if "controller" in pool["spec"]["roles"]:
            controllers[cluster] += pool["spec"]["replicas"]
    for k in kafkas:
        if brokers[k] < 1 or controllers[k] < 1:
            c.fail(f"{where} Kafka/{k}", "needs node pools with at least one broker and one controller")
        if controllers[k] % 2 == 0:
            c.fail(f"{where} Kafka/{k}", f"{controllers[k]} controllers: a quorum wants an odd number")
    topics = {t["spec"].get("topicName", n): t for n, t in by_kind.get("KafkaTopic", {}).items()}
    for tname in ("location", "location.dlq"):
        if tname not in topics:
            c.fail(where, f"no KafkaTopic {tname}")
    for tname, t in topics.items():
        name = f"{where} {kname(t)}"
        cluster = t["metadata"]["labels"].get("strimzi.io/cluster")
        if cluster not in kafkas:
            c.fail(name, f"names Kafka {cluster!r}, not defined")
            continue
        replicas = t["spec"].get("replicas", 1)
        isr = int(t["spec"].get("config", {}).get("min.insync.replicas", 1))
        if replicas > brokers[cluster]:
            c.fail(name, f"{replicas} replicas but the cluster has {brokers[cluster]} brokers")
        if isr > replicas or (replicas > 1 and isr >= replicas):
            c.fail(name, f"min.insync.replicas {isr} with {replicas} replicas: "
                         "writes would stop when one broker is down")
    consumer = by_kind.get("Deployment", {}).get("location-consumer")
    if consumer and "location" in topics:
        partitions = topics["location"]["spec"].get("partitions", 1)
        if consumer["spec"].get("replicas", 1) > partitions:
            c.fail(f"{where} {kname(consumer)}",
                   f"{consumer['spec']['replicas']} replicas but `location` has {partitions} "
                   "partitions: the extra consumers would stand idle")


# --- compose -----------------------------------------------------------------------------------

def compose_checks(c: Checker) -> None:
    result = run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                  "compose.yaml"])
    if result.returncode != 0:
        c.fail("compose.yaml", "Compose specification schema:\n" + (result.stdout + result.stderr).strip())
        return
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc.get("services", {})
    volumes = set((doc.get("volumes") or {}).keys())
    networks = set((doc.get("networks") or {}).keys()) | {"default"}
    for sname, s in services.items():
        where = f"compose.yaml service {sname}"
        if "image" not in s and "build" not in s:
            c.fail(where, "neither image nor build")
        image = s.get("image", "")
        if "build" not in s and (":" not in image or image.endswith(":latest")):
            c.fail(where, f"image {image!r} has no pinned tag")
        deps = s.get("depends_on", {})
        deps = {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps
        for dep, spec in deps.items():
            if dep not in services:
                c.fail(where, f"depends on {dep!r}, which is not a service")
                continue
            cond = spec.get("condition", "service_started")
            if cond == "service_healthy" and "healthcheck" not in services[dep]:
                c.fail(where, f"waits for {dep} to be healthy, but {dep} has no healthcheck")
            if cond == "service_completed_successfully" and services[dep].get("restart", "no") != "no":
                c.fail(where, f"waits for {dep} to complete, but {dep} restarts")
        for v in s.get("volumes", []):
            source = v.get("source") if isinstance(v, dict) else v.split(":")[0]
            if source and not source.startswith((".", "/", "~")) and source not in volumes:
                c.fail(where, f"uses volume {source!r}, not defined under volumes:")
        for n in (s.get("networks") or []):
            if n not in networks:
                c.fail(where, f"uses network {n!r}, not defined under networks:")
        for p in s.get("ports", []):
            spec = str(p.get("host_ip", "")) + ":" if isinstance(p, dict) else str(p)
            if not spec.startswith("127.0.0.1:"):
                c.fail(where, f"port {p} is not published on 127.0.0.1 only")
    published: dict[int, str] = {}
    for sname, s in services.items():
        for p in s.get("ports", []):
            if isinstance(p, str):
                published[int(p.split(":")[1])] = sname
            else:
                published[int(p["published"])] = sname
    for port, svc in COMPOSE_PORTS.items():
        if published.get(port) != svc:
            c.fail("compose.yaml", f"port {port} should be published by {svc}")
    for role in ROLES:
        s = services.get(role)
        if s is None:
            c.fail("compose.yaml", f"no service for the role {role}")
            continue
        if (s.get("command") or [None])[0] != role:
            c.fail(f"compose.yaml service {role}", f"command should start with {role!r}")
        if "healthcheck" not in s:
            c.fail(f"compose.yaml service {role}", "no healthcheck")


# --- Dockerfile --------------------------------------------------------------------------------

def dockerfile_checks(c: Checker) -> None:
    result = run([str(BIN / "hadolint"), "--no-color", "--failure-threshold", "style",
                  "Dockerfile"])
    if result.returncode != 0:
        c.fail("Dockerfile", "hadolint:\n" + (result.stdout + result.stderr).strip())
    ignore = (ROOT / ".dockerignore").read_text().split() if (ROOT / ".dockerignore").exists() else []
    for needed in ("target", ".git"):
        if needed not in ignore:
            c.fail(".dockerignore", f"{needed} should be left out of the build context")


def main() -> int:
    c = Checker()
    strimzi = yaml.safe_load(STRIMZI_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(strimzi)
    for kdir in KUSTOMIZATIONS:
        c.section(f"kustomize {kdir}")
        objs = render(c, kdir)
        if objs is None:
            continue
        c.ok(f"rendered {len(objs)} objects")
        c.section(f"{kdir}: schemas (Kubernetes {', '.join(KUBE_VERSIONS)} strict; Strimzi subset)")
        schema_checks(c, kdir, objs, strimzi)
        c.ok(f"{len(objs)} objects valid")
        c.section(f"{kdir}: references, probes, security, ports, topics")
        try:
            consistency_checks(c, kdir, objs)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            # Only a malformed object gets here, and the schema step has named it already.
            c.fail(kdir, f"could not cross-check the objects ({type(e).__name__}: {e})")
        c.ok("consistent")
    c.section("compose.yaml")
    try:
        compose_checks(c)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        c.fail("compose.yaml", f"could not cross-check it ({type(e).__name__}: {e})")
    c.ok("valid against the Compose specification; references resolve")
    c.section("Dockerfile (hadolint)")
    dockerfile_checks(c)
    c.ok("no findings")
    sys.stdout.flush()
    if c.failures:
        print(f"\ncheck-deploy: {len(c.failures)} problem(s) in the deployment files", file=sys.stderr)
        return 1
    print("\ncheck-deploy: the deployment files are valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
