"use strict";
const el = (tag, props = {}, ...kids) => { const e = document.createElement(tag); Object.assign(e, props); for (const k of kids) e.append(k); return e; };
const ref = (s) => s && s.$ref ? s.$ref.split("/").pop() : (s && s.type === "array" && s.items ? ref(s.items) + "[]" : (s && s.type) || "");
fetch("/openapi.json").then(r => r.json()).then(spec => {
  document.getElementById("lead").textContent = spec.info.description;
  const root = document.getElementById("ops");
  const byTag = {};
  for (const [path, item] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(item)) {
    (byTag[(op.tags || ["other"])[0]] ||= []).push({ path, method, op });
  }
  for (const [tag, ops] of Object.entries(byTag)) {
    const sec = el("section", {}, el("h2", { textContent: tag }));
    for (const { path, method, op } of ops) {
      const d = el("details", { className: "op" }, el("summary", {}, el("span", { className: "m", textContent: method.toUpperCase() }), path + " — " + (op.summary || "")));
      if (op.description) d.append(el("p", { textContent: op.description }));
      if (op.parameters && op.parameters.length) {
        const t = el("table", {}, el("tr", {}, el("th", { textContent: "parameter" }), el("th", { textContent: "in" }), el("th", { textContent: "type" }), el("th", { textContent: "description" })));
        for (const p of op.parameters) t.append(el("tr", {}, el("td", {}, el("code", { textContent: p.name + (p.required ? " *" : "") })), el("td", { textContent: p.in }), el("td", { textContent: ref(p.schema) }), el("td", { textContent: p.description || "" })));
        d.append(t);
      }
      const rb = op.requestBody && op.requestBody.content && Object.values(op.requestBody.content)[0];
      if (rb) d.append(el("p", {}, "Body: ", el("code", { textContent: ref(rb.schema) })));
      const rt = el("table", {}, el("tr", {}, el("th", { textContent: "status" }), el("th", { textContent: "meaning" }), el("th", { textContent: "body" })));
      for (const [code, r] of Object.entries(op.responses || {})) {
        const c = r.content && Object.values(r.content)[0];
        rt.append(el("tr", {}, el("td", { textContent: code }), el("td", { textContent: r.description || "" }), el("td", {}, el("code", { textContent: c ? ref(c.schema) : "" }))));
      }
      d.append(rt);
      sec.append(d);
    }
    root.append(sec);
  }
  const schemas = el("section", {}, el("h2", { textContent: "schemas" }));
  for (const [name, s] of Object.entries(spec.components.schemas)) schemas.append(el("h3", { textContent: name }), el("pre", { textContent: JSON.stringify(s, null, 2) }));
  root.append(schemas);
}).catch(e => { document.getElementById("lead").textContent = "Could not load /openapi.json: " + e; });
