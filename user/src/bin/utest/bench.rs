//! `bench`: cycle counts (TSC) of the basic operations, seen from user
//! space, as one summary line each (the format `cargo xtask bench` reads):
//!
//! ```text
//! bench: {"name":"null_syscall","unit":"cycles","samples":N,"min":..,"p10":..,"median":..,"p90":..,"max":..}
//! ```
//!
//! - `null_syscall`: one `Null` syscall;
//! - `ipc_roundtrip_same_cpu`: a call and its reply between two threads of
//!   this task pinned to one CPU;
//! - `ipc_roundtrip_same_cpu_2tasks`: the same with the server in another
//!   task (address-space switches included);
//! - `ipc_roundtrip_cross_cpu`: a call and its reply between threads on
//!   two CPUs;
//! - `context_switch_yield_2tasks`: one switch between threads of two
//!   tasks on one CPU that take turns with `Yield` (half a round).
//! - the memory server's (page requests, lazy faults, throughput as CPUs
//!   are added, protection changes with shootdowns): see `mm_bench`.
//!
//! With `bench=<filter>` on the kernel command line (read through the
//! machine capability init gives this scenario), only the measurements
//! whose names start with one of the filter's comma-separated parts run
//! (`all`: every one). Results are correct (every answer is checked) but
//! timings decide nothing here.

use crate::child::{Child, Role};
use crate::msg::{STOP, label};
use alloc::string::String;
use alloc::vec::Vec;
use user::abi::cap::{Handle, Rights};
use user::abi::handles::{MACHINE, PARENT};
use user::abi::ipc::Message;
use user::hw::rdtsc;
use user::thread;
use user::{check, check_eq, check_ok, println, sys};

/// Samples thrown away before measuring (caches, first-touch effects).
const WARMUP: usize = 100;

/// Prints the summary line of `samples`, in cycles.
fn report(name: &str, samples: &mut [u64]) {
    report_in(name, "cycles", samples);
}

/// Prints the summary line of `samples`, in `unit`.
pub fn report_in(name: &str, unit: &str, samples: &mut [u64]) {
    if samples.is_empty() {
        check!(false, "{name}: no samples");
        return;
    }
    samples.sort_unstable();
    let at = |q: usize| samples[(samples.len() - 1) * q / 100];
    println!(
        "bench: {{\"name\":\"{name}\",\"unit\":\"{unit}\",\"samples\":{},\"min\":{},\"p10\":{},\"median\":{},\"p90\":{},\"max\":{}}}",
        samples.len(),
        samples[0],
        at(10),
        at(50),
        at(90),
        samples[samples.len() - 1]
    );
}

/// Times `f` `n` times after `warmup` untimed calls, one sample per call.
pub fn measure(n: usize, warmup: usize, mut f: impl FnMut()) -> Vec<u64> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + warmup {
        let t0 = rdtsc();
        f();
        let t1 = rdtsc();
        if i >= warmup {
            samples.push(t1 - t0);
        }
    }
    samples
}

/// Every measurement, by name.
const NAMES: [&str; 5] = [
    "null_syscall",
    "ipc_roundtrip_same_cpu",
    "ipc_roundtrip_same_cpu_2tasks",
    "ipc_roundtrip_cross_cpu",
    "context_switch_yield_2tasks",
];

/// The `bench=` filter on the kernel command line, as parts (none: run
/// everything), and whether there was one (a real benchmark run, not the
/// `run=bench` test).
fn filter() -> (Vec<String>, bool) {
    let mut buf = [0u8; 1024];
    let Ok(n) = sys::kernel_cmdline(MACHINE, &mut buf) else { return (Vec::new(), false) };
    let text = core::str::from_utf8(&buf[..n.min(buf.len())]).unwrap_or("");
    let Some(value) = text.split_ascii_whitespace().find_map(|w| w.strip_prefix("bench=")) else {
        return (Vec::new(), false);
    };
    (value.split(',').filter(|p| !p.is_empty() && *p != "all").map(String::from).collect(), true)
}

pub fn run() {
    let (parts, full) = filter();
    let wanted = |name: &str| parts.is_empty() || parts.iter().any(|p| name.starts_with(p.as_str()));
    if !NAMES.iter().chain(crate::mm_bench::NAMES.iter()).any(|n| wanted(n)) {
        println!("no user-space benchmark matches {parts:?} (these are {NAMES:?} and {:?})", crate::mm_bench::NAMES);
        return;
    }
    let (cpu, cpus) = sys::cpu_info();
    if wanted(NAMES[0]) {
        let mut s = measure(20_000, WARMUP, || {
            let _ = sys::null();
        });
        report(NAMES[0], &mut s);
    }
    let here = if cpus > 1 { 1 } else { cpu };
    if wanted(NAMES[1]) {
        roundtrip(NAMES[1], here, here, 5_000);
    }
    if wanted(NAMES[2]) {
        roundtrip_2tasks(NAMES[2], here, 5_000);
    }
    if wanted(NAMES[3]) {
        if cpus > 1 {
            let other = if cpus > 2 { 2 } else { 0 };
            roundtrip(NAMES[3], other, here, 1_000);
        } else {
            println!("one cpu: no cross-cpu round trip");
        }
    }
    if wanted(NAMES[4]) {
        context_switch(NAMES[4], here, 5_000);
    }
    crate::mm_bench::run(&wanted, full);
}

/// Serves `ep` until STOP, answering each call with its first word + 1.
fn echo_loop(ep: Handle) {
    let Ok(mut r) = sys::recv(ep) else { return };
    while r.msg.info.label != STOP {
        let ans = Message::new(1, &[r.msg.words[0] + 1]);
        match sys::reply_recv(ep, r.reply, &ans) {
            Ok(next) => r = next,
            Err(_) => return,
        }
    }
    let _ = sys::reply(r.reply, &label(STOP));
}

/// Calls `ep` `n` times (after a warm-up), checking every answer.
fn time_calls(ep: Handle, n: usize) -> Vec<u64> {
    let mut k = 0u64;
    let mut wrong = 0;
    let s = measure(n, WARMUP, || {
        let m = Message::new(1, &[k]);
        if sys::call_ep(ep, &m).map(|a| a.words[0]) != Ok(k + 1) {
            wrong += 1;
        }
        k += 1;
    });
    check_eq!(wrong, 0, "wrong answers among {k} calls");
    s
}

/// Call/reply round trips between a server thread on `server_cpu` and a
/// client thread on `client_cpu`.
fn roundtrip(name: &'static str, server_cpu: u64, client_cpu: u64, n: usize) {
    let Some(ep) = check_ok!(sys::endpoint_create(), "{name}: endpoint") else { return };
    let server = thread::spawn_on(server_cpu, move || echo_loop(ep));
    let client = thread::spawn_on(client_cpu, move || {
        let mut s = time_calls(ep, n);
        report(name, &mut s);
        let _ = sys::call_ep(ep, &label(STOP));
    });
    for t in [server, client].into_iter().flat_map(|t| check_ok!(t, "{name}: start a thread")) {
        t.join();
    }
    let _ = sys::cap_delete(ep);
}

/// Round trips to a server in another task on the same CPU.
fn roundtrip_2tasks(name: &'static str, cpu: u64, n: usize) {
    let Some(ep) = check_ok!(sys::endpoint_create(), "{name}: endpoint") else { return };
    let Some(child) =
        check_ok!(Child::start(Role::BenchEcho, 0, Some((ep, Rights::RECEIVE)), Some(cpu)), "{name}: start the server")
    else {
        return;
    };
    let client = thread::spawn_on(cpu, move || {
        let mut s = time_calls(ep, n);
        report(name, &mut s);
        let _ = sys::call_ep(ep, &label(STOP));
    });
    if let Some(c) = check_ok!(client, "{name}: start the client") {
        c.join();
    }
    check_eq!(child.wait(), Ok(0), "{name}: the server's exit code");
    let _ = sys::cap_delete(ep);
}

/// A thread here and a task pinned to the same CPU take turns with
/// `Yield`; a round is two switches.
fn context_switch(name: &'static str, cpu: u64, n: usize) {
    let Some(partner) = check_ok!(Child::start(Role::Yielder, 0, None, Some(cpu)), "start the yielding task") else {
        return;
    };
    let t = thread::spawn_on(cpu, move || {
        let mut s = measure(n, WARMUP, sys::yield_now);
        for x in s.iter_mut() {
            *x /= 2;
        }
        report(name, &mut s);
    });
    if let Some(t) = check_ok!(t, "start the measuring thread") {
        t.join();
    }
    check_ok!(sys::task_kill(partner.task, 0), "stop the yielding task");
    check_eq!(partner.wait(), Ok(0), "the yielding task's exit code");
}

/// Yielder role: yields forever (until killed).
pub fn yielder() -> i64 {
    loop {
        sys::yield_now();
    }
}

/// Benchmark echo role: answers calls on PARENT until STOP.
pub fn echo() -> i64 {
    echo_loop(PARENT);
    0
}
