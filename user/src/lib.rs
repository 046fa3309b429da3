//! The user-space runtime: program entry, safe syscall wrappers over
//! [`abi`], `print!`/`println!` to the kernel log, the memory server's
//! client calls ([`mm`]) and a heap they grow so that `alloc` collections
//! work, a lock whose waiters yield ([`lock`]), a panic handler that reports and exits, threads
//! ([`thread`]), a small check-and-report harness for test programs
//! ([`test`]) and the table of test scenarios ([`scenario`]).
//!
//! Programs live in `src/bin/`; each is a `#![no_std] #![no_main]` binary
//! that names its entry function with [`main!`]:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! user::main!(main);
//! fn main(arg: u64) -> i64 { user::println!("hello"); 0 }
//! ```

#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

#[allow(unsafe_code)]
pub mod heap;
#[allow(unsafe_code)]
pub mod lock;
#[allow(unsafe_code)]
mod raw;
mod rt;

pub mod demo;
pub mod hw;
pub mod mm;
pub mod print;
pub mod rand;
pub mod scenario;
pub mod sys;
pub mod test;
pub mod thread;

pub use abi;
pub use abi::Error;

/// Declares the program's entry function: `fn(arg: u64) -> i64`, where
/// `arg` is what the starter passed and the result is the exit code.
#[macro_export]
macro_rules! main {
    ($f:path) => {
        /// The program entry (found by the runtime under this name).
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub fn __user_main(arg: u64) -> i64 {
            let f: fn(u64) -> i64 = $f;
            f(arg)
        }
    };
}
