//! Embeds the web page's files (`web/` at the repository root, without its tests and
//! node_modules) into the binary, so `udaconnect` serves the page with nothing beside it, and
//! compiles the gRPC services in `proto/` with a Rust protobuf compiler (no `protoc` needed to
//! build), keeping their descriptors for the reflection service.

use std::fs;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.')
            || name == "node_modules"
            || name == "tests"
            || name.starts_with("package")
        {
            continue;
        }
        if path.is_dir() {
            collect(&path, root, out);
        } else {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
}

const PROTOS: &[&str] = &[
    "location_service.proto",
    "udaconnect/location/v1/location.proto",
];

fn compile_protos() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    println!("cargo:rerun-if-changed={}", root.display());
    for p in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    let fds = protox::compile(PROTOS, [&root]).expect("proto files compile");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    fs::write(
        out.join("udaconnect_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )
    .expect("write the descriptor set");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)
        .expect("generate the gRPC code");
}

fn main() {
    compile_protos();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut code = String::from("/// The web page's files: (path under web/, contents).\npub static WEB_ASSETS: &[(&str, &[u8])] = &[\n");
    for f in &files {
        let rel = f.to_string_lossy().replace('\\', "/");
        println!("cargo:rerun-if-changed={}", root.join(f).display());
        code.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            root.join(f)
                .canonicalize()
                .unwrap_or(root.join(f))
                .display()
                .to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("web_assets.rs");
    fs::write(out, code).expect("write web_assets.rs");
}
