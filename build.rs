//! Generates the v1alpha1 CSIDriverProvider server and client without `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/v1alpha1/service.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
