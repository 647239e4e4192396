// The version the service reports is chosen at build time: `HELLO_VERSION=2 cargo build`
// (the Makefile derives it from TAG). Rebuild whenever it changes.
fn main() {
    println!("cargo:rerun-if-env-changed=HELLO_VERSION");
    println!("cargo:rerun-if-changed=build.rs");
}
