//! The first user program. The kernel starts it with the boot modules and
//! machine control; it starts everything else and powers the machine off
//! at the end, reporting success only if everything it ran succeeded.
//!
//! What it runs comes from the kernel command line:
//!
//! - `run=<scenario>`: one scenario of the `utest` program (see
//!   `user::scenario`), e.g. `run=ipc-local` or `run=bench`;
//! - `run=all-user`: every scenario but `bench`, one after another;
//! - `bench=<filter>` without `run=`: the `bench` scenario (which reads the
//!   filter itself);
//! - nothing: the demo, a `demo` task on every CPU talking to init over
//!   IPC.
//!
//! Each scenario ends with `init: <name> passed` or `init: <name> FAILED
//! (exit code N)`; the last line before powering off is `init: all tests
//! passed` or `init: FAILED: <what>`.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use user::abi::cap::{Handle, Kind, Rights};
use user::abi::handles::{MACHINE, MEMORY_CONTROL, MODULES, PARENT};
use user::abi::ipc::Message;
use user::scenario::{ALL_USER, Scenario};
use user::{Error, println, sys};

user::main!(main);

/// The test program's boot module.
const UTEST: &str = "utest";
/// The demo's boot module.
const DEMO: &str = "demo";
/// Label of a demo worker's greeting.
const HELLO: u32 = 1;

fn main(_arg: u64) -> i64 {
    let mut buf = [0u8; 1024];
    let cmdline = match sys::kernel_cmdline(MACHINE, &mut buf) {
        Ok(n) => core::str::from_utf8(&buf[..n.min(buf.len())]).unwrap_or(""),
        Err(e) => {
            println!("cannot read the kernel command line: {e}");
            ""
        }
    };
    let option = |name: &str| cmdline.split_ascii_whitespace().find_map(|w| w.strip_prefix(name));
    // `bench=` (the kernel ran its own benchmarks first) runs ours.
    let run = option("run=").or(option("bench=").map(|_| Scenario::Bench.name()));
    let failed: Vec<String> = match run {
        None => demo().err().into_iter().collect(),
        Some(ALL_USER) => {
            Scenario::ALL.iter().filter(|s| s.in_all_user()).filter_map(|&s| run_scenario(s).err()).collect()
        }
        Some(name) => match Scenario::from_name(name) {
            Some(s) => run_scenario(s).err().into_iter().collect(),
            None => {
                let known: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                println!("unknown scenario `{name}`; known: {}, {ALL_USER}", known.join(", "));
                alloc::vec![alloc::format!("unknown scenario `{name}`")]
            }
        },
    };
    if failed.is_empty() {
        println!("all tests passed");
    } else {
        println!("FAILED: {}", failed.join(", "));
    }
    let _ = sys::power_off(MACHINE, failed.is_empty());
    1
}

/// Kernel frames in use (page tables, stacks, heap, task images).
fn kernel_frames() -> i64 {
    sys::machine_stats(MACHINE).map_or(0, |s| s[2] as i64)
}

/// Starts `utest` with the scenario, waits for it and reports.
fn run_scenario(s: Scenario) -> Result<(), String> {
    let name = s.name();
    let start = sys::time().0;
    let frames = kernel_frames();
    let code = start_utest(s).and_then(|task| {
        let code = sys::task_wait(task);
        let _ = sys::cap_delete(task);
        code
    });
    let ms = (sys::time().0 - start) / 1000;
    let delta = kernel_frames() - frames;
    match code {
        Ok(0) => {
            println!("{name} passed in {ms} ms (kernel frames in use: {delta:+})");
            Ok(())
        }
        Ok(code) => {
            println!("{name} FAILED (exit code {code})");
            Err(String::from(name))
        }
        Err(e) => {
            println!("{name} FAILED (cannot run it: {e})");
            Err(String::from(name))
        }
    }
}

/// Quotas, as shares of the memory server's pages: the test program and
/// each demo worker.
const UTEST_SHARE: (u64, u64) = (3, 4);
const DEMO_SHARE: (u64, u64) = (1, 16);

/// Has the memory server serve the task `t` (not started yet) with a quota
/// of `share` of its pages; a task it does not serve lives on its static
/// heap alone.
fn serve(t: &sys::Spawned, (num, den): (u64, u64)) {
    let served = user::mm::books().and_then(|b| user::mm::serve_task(t.task, t.space, b.total * num / den));
    match served {
        Ok((_, memory)) => {
            let _ = sys::cap_delete(memory);
        }
        Err(e) => println!("the memory server does not serve the new task: {e}"),
    }
}

/// Starts `utest` for `s` with a copy of the modules (to start helper
/// tasks) and, if the scenario needs it, of machine control. Returns the
/// task.
fn start_utest(s: Scenario) -> Result<Handle, Error> {
    let index = sys::module_find(MODULES, UTEST)?;
    let t = sys::task_spawn(MODULES, index, s.number())?;
    serve(&t, UTEST_SHARE);
    // The modules (to start helpers) and the memory control (to have the
    // memory server serve them).
    let mut gifts = alloc::vec![(MODULES, Kind::Modules.meaningful_rights())];
    if sys::cap_info(MEMORY_CONTROL).is_ok() {
        gifts.push((MEMORY_CONTROL, Rights::SEND | Rights::GRANT));
    }
    if let Some(rights) = s.machine_rights() {
        gifts.push((MACHINE, rights));
    }
    let given = gifts.iter().try_for_each(|&(h, rights)| sys::cap_give(t.task, h, rights, h.index()).map(|_| ()));
    let started = given.and_then(|()| sys::thread_start(t.thread));
    let _ = (sys::cap_delete(t.thread), sys::cap_delete(t.space));
    match started {
        Ok(()) => Ok(t.task),
        Err(e) => {
            let _ = sys::task_kill(t.task, -1);
            let _ = sys::cap_delete(t.task);
            Err(e)
        }
    }
}

/// The demo: a worker task pinned to each CPU says hello over IPC; init
/// answers each and waits for them all.
fn demo() -> Result<(), String> {
    let (cpu, cpus) = sys::cpu_info();
    println!("demo: init runs on cpu {cpu}; starting a worker on each of the {cpus} cpus");
    let fail = |what: &str, e: Error| alloc::format!("demo: {what}: {e}");
    let ep = sys::endpoint_create().map_err(|e| fail("endpoint", e))?;
    let index = sys::module_find(MODULES, DEMO).map_err(|e| fail("no demo module", e))?;
    let mut tasks = Vec::new();
    for c in 0..cpus {
        let t = sys::task_spawn(MODULES, index, c).map_err(|e| fail("spawn", e))?;
        serve(&t, DEMO_SHARE);
        // Each worker's capability carries its number as the badge.
        let badged = sys::cap_mint(ep, c + 1, Rights::SEND | Rights::GRANT).map_err(|e| fail("mint", e))?;
        sys::cap_give(t.task, badged, Rights::SEND, PARENT.index()).map_err(|e| fail("give", e))?;
        let _ = sys::cap_delete(badged);
        sys::thread_set_affinity(t.thread, Some(c)).map_err(|e| fail("pin", e))?;
        sys::thread_start(t.thread).map_err(|e| fail("start", e))?;
        tasks.push(t);
    }
    let mut ok = true;
    for _ in 0..cpus {
        let r = sys::recv(ep).map_err(|e| fail("receive", e))?;
        let worker = r.badge.wrapping_sub(1);
        let [number, on_cpu, ..] = r.msg.words;
        println!("demo: worker {worker} says hello from cpu {on_cpu}");
        ok &= r.msg.info.label == HELLO && number == worker && on_cpu == worker;
        let _ = sys::reply(r.reply, &Message::new(HELLO, &[worker * worker]));
    }
    for (c, t) in tasks.iter().enumerate() {
        let code = sys::task_wait(t.task);
        ok &= code == Ok(0);
        if code != Ok(0) {
            println!("demo: worker {c} ended with {code:?}");
        }
        let _ = (sys::cap_delete(t.task), sys::cap_delete(t.thread), sys::cap_delete(t.space));
    }
    let _ = sys::cap_delete(ep);
    if ok {
        println!("demo: {cpus} workers on {cpus} cpus answered");
        Ok(())
    } else {
        Err(String::from("demo: a worker ran on the wrong cpu or failed"))
    }
}
