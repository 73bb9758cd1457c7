//! Compiles the trace format `proto/demls/sim/v1/trace.proto` with protox (no system
//! `protoc`). All `.proto` sources live in the workspace's `proto/` (BRIEF §2).

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = [manifest.join("proto"), manifest.join("../../proto")]
        .into_iter()
        .find(|p| p.join("demls/sim/v1/trace.proto").exists())
        .expect("proto/demls/sim/v1/trace.proto not found");
    let files = [root.join("demls/sim/v1/trace.proto")];
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let descriptors = protox::compile(&files, [&root]).expect("proto sources compile");
    prost_build::Config::new()
        .compile_fds(descriptors)
        .expect("prost code generation");
}
