//! Generates Rust types (prost) and gRPC services (tonic) from the `.proto` files under `proto/`.
//!
//! No system `protoc` is needed: when `PROTOC` is unset the vendored binary from
//! `protoc-bin-vendored` is used.

fn main() {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc is available");
        // SAFETY-free: build scripts are single threaded; setting the variable before prost-build
        // reads it is the documented way to point it at a protoc binary.
        unsafe_set_protoc(&protoc);
    }
    println!("cargo:rerun-if-changed=proto");
    let out_dir = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let descriptors = out_dir.join("descriptors.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptors)
        // Every service decodes through `SliceCodec` (src/codec.rs).
        .codec_path("crate::SliceCodec")
        .compile_protos(
            &[
                "proto/perftools/profiles/profile.proto",
                "proto/parca/profilestore/v1alpha1/profilestore.proto",
                "proto/parca/metastore/v1alpha1/metastore.proto",
                "proto/parca/query/v1alpha1/query.proto",
                "proto/parca/debuginfo/v1alpha1/debuginfo.proto",
                "proto/push/v1/push.proto",
                "proto/querier/v1/querier.proto",
                "proto/settings/v1/setting.proto",
                "proto/opentelemetry/proto/collector/profiles/v1development/profiles_service.proto",
            ],
            &["proto"],
        )
        .expect("compile the .proto files");
    // serde for the OTLP messages (OTLP/HTTP's JSON encoding) and Pyroscope's query API
    // (Connect's JSON): proto3 JSON, camelCase or original field names, 64-bit integers as
    // strings or numbers, enums as names or numbers.
    let bytes = std::fs::read(&descriptors).expect("read the descriptor set");
    pbjson_build::Builder::new()
        .register_descriptors(&bytes)
        .expect("register the descriptors")
        .build(&[
            ".opentelemetry",
            ".querier",
            ".types",
            ".settings",
            ".google.v1",
        ])
        .expect("generate serde for the OTLP and Pyroscope messages");
}

#[allow(unsafe_code)]
fn unsafe_set_protoc(path: &std::path::Path) {
    // `set_var` is unsafe in edition 2024 because other threads may read the environment; a
    // build script has no other threads at this point.
    unsafe { std::env::set_var("PROTOC", path) };
}
