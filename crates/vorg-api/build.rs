//! Rebuilds this crate when the console's built assets change, so the binary embeds the
//! current console (and a binary built without them says how to build them).
fn main() {
    println!("cargo:rerun-if-changed=../../console/dist");
    println!("cargo:rerun-if-changed=../../console/dist/index.html");
}
