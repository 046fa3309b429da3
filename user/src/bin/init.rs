//! The first user program: started by the kernel with the boot modules and
//! machine control, it starts everything else.
#![no_std]
#![no_main]

use user::abi::handles;
use user::{println, sys};

user::main!(main);

fn main(_arg: u64) -> i64 {
    let (cpu, cpus) = sys::cpu_info();
    println!("running on cpu {cpu} of {cpus}");
    let _ = sys::power_off(handles::MACHINE, true);
    0
}
