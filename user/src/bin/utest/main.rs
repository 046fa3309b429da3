//! `utest`: the user-space tests of the kernel. `init` starts it with a
//! scenario number (`user::scenario`); it runs that scenario, prints one
//! summary line and exits with 0 when every check passed, 1 otherwise.
//! The same program also serves as the helper tasks some scenarios start
//! (servers that get killed, tasks that fault, ...): see `child`.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

mod bad_args;
mod bad_input;
mod bench;
mod cap_server;
mod caps;
mod child;
mod faults;
mod fpu;
mod ipc;
mod ipc_cap;
mod leaks;
mod mm_bad;
mod mm_bench;
mod mm_kill;
mod mm_quota;
mod mm_stress;
mod mm_util;
mod msg;
mod peer;
mod sched;

use user::scenario::Scenario;
use user::{println, sys, test};

user::main!(main);

fn main(arg: u64) -> i64 {
    if let Some((role, param)) = child::Role::decode(arg) {
        return child::run(role, param);
    }
    let Some(scenario) = Scenario::from_number(arg) else {
        println!("unknown scenario number {arg}");
        return 2;
    };
    let name = scenario.name();
    let (cpu, cpus) = sys::cpu_info();
    println!("{name}: starting on cpu {cpu} of {cpus}");
    let start = sys::time().0;
    match scenario {
        Scenario::IpcLocal => ipc::local(),
        Scenario::IpcCross => ipc::cross(),
        Scenario::IpcCap => ipc_cap::run(),
        Scenario::IpcBadges => ipc::badges(),
        Scenario::IpcMany => ipc::many(),
        Scenario::IpcPeerDied => peer::run(),
        Scenario::Caps => caps::run(),
        Scenario::BadInput => bad_input::run(),
        Scenario::Faults => faults::run(),
        Scenario::Sched => sched::run(),
        Scenario::Fpu => fpu::run(),
        Scenario::Leaks => leaks::run(),
        Scenario::MmStress => mm_stress::run(),
        Scenario::MmKill => mm_kill::run(),
        Scenario::MmBad => mm_bad::run(),
        Scenario::MmQuota => mm_quota::run(),
        Scenario::Bench => bench::run(),
    }
    let ms = (sys::time().0 - start) / 1000;
    let (checks, failed) = test::summary();
    if failed == 0 {
        println!("{name}: ok, {checks} checks passed in {ms} ms");
        0
    } else {
        println!("{name}: FAILED {failed} of {checks} checks ({ms} ms)");
        1
    }
}
