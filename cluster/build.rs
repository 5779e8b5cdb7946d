//! Compiles cluster/proto/cluster.proto with protox (pure Rust), so a build needs no
//! system `protoc`: CI machines have only a Rust toolchain.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/cluster.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        // Payloads (records, keys, layouts) stay `Bytes`: no copy on decode.
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
