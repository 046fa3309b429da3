//! `cargo xtask`: builds the kernel, loader and user programs, boots them in
//! QEMU, runs the test scenarios and the benchmarks.
fn main() {}
