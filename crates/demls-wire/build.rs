//! Compiles `proto/demls/v1/*.proto` with protox (a pure-Rust protobuf compiler), so building
//! needs no system `protoc`, and generates prost types into `OUT_DIR`.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // The proto sources live at the workspace root (BRIEF §2); a packaged crate carries a copy.
    let root = [manifest.join("../../proto"), manifest.join("proto")]
        .into_iter()
        .find(|p| p.join("demls/v1/voting.proto").exists())
        .expect("proto/demls/v1/voting.proto not found");
    let files = [
        root.join("demls/v1/voting.proto"),
        root.join("demls/v1/conversation.proto"),
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let descriptors = protox::compile(&files, [&root]).expect("proto sources compile");
    prost_build::Config::new()
        .compile_fds(descriptors)
        .expect("prost code generation");
}
