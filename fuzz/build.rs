//! The gRPC messages of `proto/`, generated with the same Rust protobuf compiler the server
//! uses, so the targets decode exactly what the server's calls decode.

use std::path::Path;

const PROTOS: &[&str] = &[
    "location_service.proto",
    "udaconnect/location/v1/location.proto",
];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let fds = protox::compile(PROTOS, [&root]).expect("proto files compile");
    prost_build::compile_fds(fds).expect("generate the messages");
}
