//! A demo worker: init starts one on each CPU (pinned there, with its
//! number as the argument and a badged endpoint capability in `PARENT`).
//! It says hello with the CPU it runs on and prints init's answer.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use user::abi::handles::PARENT;
use user::abi::ipc::Message;
use user::{println, sys};

user::main!(main);

fn main(number: u64) -> i64 {
    let (cpu, cpus) = sys::cpu_info();
    println!("worker {number} running on cpu {cpu} of {cpus}");
    match sys::call_ep(PARENT, &Message::new(1, &[number, cpu])) {
        Ok(m) if m.words[0] == number * number => {
            println!("worker {number} on cpu {cpu}: init answered {}", m.words[0]);
            0
        }
        Ok(m) => {
            println!("worker {number}: unexpected answer {:?}", m.words);
            1
        }
        Err(e) => {
            println!("worker {number}: call failed: {e}");
            1
        }
    }
}
