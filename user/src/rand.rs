//! A small pseudo-random generator for tests, benchmarks and the demo (the
//! kernel's, from `kernel-core`, so there is one): reproducible from a
//! seed. Not for anything secret.

pub use kernel_core::rng::Rng;
