//! Benchmarks of the memory server, part of the `bench` scenario (same
//! summary lines, same `bench=` filtering):
//!
//! - `page_request_1`, `page_request_64`: allocate N zeroed pages through
//!   the server, write a word in each, free them (cycles per round trip of
//!   the three);
//! - `lazy_fault`: the first touch of one lazily reserved page (the fault,
//!   the IPC to the server, its mapping, the resumption), cycles per page;
//! - `page_throughput_{1cpu,2cpus,4cpus}`: N separate client tasks pinned
//!   to N CPUs each allocate a page, touch it and free it in a loop for a
//!   fixed count; one sample is a batch: requests done by all of them per
//!   10^9 cycles of wall time (unit `requests/Gcycle`: higher is better,
//!   so the 2-CPU / 1-CPU ratio is the scaling);
//! - `protect_1page_3cpus`, `protect_64pages_3cpus`: a protection change
//!   through the server of a region while threads of this task spin on
//!   the three other CPUs, so its shootdown must reach all three.
//!
//! Under `cargo xtask bench` (`bench=` on the command line) they take
//! enough samples for stable medians; in the `bench` test scenario
//! (`run=bench`) only a few, to show they run and are correct.

use crate::bench::{measure, report_in};
use crate::child::{Child, Role};
use crate::mm_util::{DONE, GO, READY, tell};
use crate::msg::STOP;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use user::abi::cap::{Handle, Rights};
use user::abi::handles::PARENT;
use user::abi::ipc::Message;
use user::abi::mem::MapFlags;
use user::hw::rdtsc;
use user::mm::{self, PAGE_WORDS, Pages};
use user::{check, check_eq, check_ok, println, sys, thread};

/// Every measurement here, by name.
pub const NAMES: [&str; 8] = [
    "page_request_1",
    "page_request_64",
    "lazy_fault",
    "page_throughput_1cpu",
    "page_throughput_2cpus",
    "page_throughput_4cpus",
    "protect_1page_3cpus",
    "protect_64pages_3cpus",
];

/// Sample counts: (full run under `cargo xtask bench`, quick test run).
struct Sizes {
    request_1: usize,
    request_64: usize,
    lazy: usize,
    batches: usize,
    per_batch: u64,
    protect: usize,
    warmup: usize,
}

const FULL: Sizes =
    Sizes { request_1: 2_000, request_64: 300, lazy: 2_048, batches: 9, per_batch: 300, protect: 400, warmup: 50 };
const QUICK: Sizes =
    Sizes { request_1: 40, request_64: 10, lazy: 128, batches: 3, per_batch: 20, protect: 20, warmup: 5 };

/// Runs the measurements `wanted` selects; `full`: the sample counts of a
/// real benchmark run.
pub fn run(wanted: &dyn Fn(&str) -> bool, full: bool) {
    if mm::stats().is_err() {
        println!("the memory server does not serve this task: no memory-server benchmarks");
        return;
    }
    let z = if full { &FULL } else { &QUICK };
    let (_, cpus) = sys::cpu_info();
    let here = if cpus > 1 { 1 } else { 0 };
    if wanted(NAMES[0]) {
        on_cpu(here, move || page_request(NAMES[0], 1, z.request_1, z.warmup));
    }
    if wanted(NAMES[1]) {
        on_cpu(here, move || page_request(NAMES[1], 64, z.request_64, z.warmup));
    }
    if wanted(NAMES[2]) {
        on_cpu(here, move || lazy_fault(NAMES[2], z.lazy));
    }
    for (name, n) in [(NAMES[3], 1), (NAMES[4], 2), (NAMES[5], 4)] {
        if wanted(name) {
            if n <= cpus {
                throughput(name, n, z.batches, z.per_batch);
            } else {
                println!("{name}: needs {n} cpus, the machine has {cpus}");
            }
        }
    }
    for (name, pages) in [(NAMES[6], 1), (NAMES[7], 64)] {
        if wanted(name) {
            if cpus >= 4 {
                protect(name, pages, z.protect, z.warmup);
            } else {
                println!("{name}: needs 4 cpus, the machine has {cpus}");
            }
        }
    }
}

/// Runs `f` on a thread pinned to `cpu` and waits for it.
fn on_cpu(cpu: u64, f: impl FnOnce() + Send + 'static) {
    if let Some(t) = check_ok!(thread::spawn_on(cpu, f), "start a measuring thread on cpu {cpu}") {
        t.join();
    }
}

/// Allocate `pages` pages, write a word in each, free them.
fn page_request(name: &str, pages: u64, n: usize, warmup: usize) {
    let mut wrong = 0u64;
    let mut s = measure(n, warmup, || match Pages::alloc(pages, MapFlags::WRITE) {
        Ok(p) => {
            let words = p.words();
            for page in 0..pages as usize {
                let w = &words[page * PAGE_WORDS];
                wrong += (w.load(Ordering::Relaxed) != 0) as u64;
                w.store(page as u64 + 1, Ordering::Relaxed);
            }
            wrong += p.free().is_err() as u64;
        }
        Err(_) => wrong += 1,
    });
    check_eq!(wrong, 0, "{name}: failed requests and non-zero fresh pages");
    report_in(name, "cycles", &mut s);
}

/// The first touch of each page of 64-page reservations.
fn lazy_fault(name: &str, n: usize) {
    const PAGES: usize = 64;
    let mut samples = Vec::with_capacity(n);
    let mut wrong = 0u64;
    while samples.len() < n {
        let Some(p) = check_ok!(Pages::reserve(PAGES as u64, MapFlags::WRITE), "{name}: reserve") else { return };
        let words = p.words();
        for page in 0..PAGES {
            let w = &words[page * PAGE_WORDS];
            let t0 = rdtsc();
            let v = w.load(Ordering::Relaxed);
            let t1 = rdtsc();
            wrong += (v != 0) as u64;
            samples.push(t1 - t0);
        }
        check_ok!(p.free(), "{name}: free");
    }
    check_eq!(wrong, 0, "{name}: lazily backed pages not zero on first touch");
    samples.truncate(n);
    report_in(name, "cycles", &mut samples);
}

/// The throughput role: tells PARENT it is ready; for each GO, does the
/// given count of allocate/touch/free and reports its first and last TSC
/// reading and its failures; ends at STOP.
pub fn throughput_client(_: u16) -> i64 {
    let mut reply = tell(PARENT, READY, &[]);
    loop {
        let count = match reply {
            Ok(m) if m.info.label == GO => m.words[0],
            Ok(_) => return 0,
            Err(e) => return 100 + e.code() as i64,
        };
        let mut failed = 0;
        let t0 = rdtsc();
        for i in 0..count {
            match Pages::alloc(1, MapFlags::WRITE) {
                Ok(p) => {
                    p.words()[0].store(i, Ordering::Relaxed);
                    failed += p.free().is_err() as u64;
                }
                Err(_) => failed += 1,
            }
        }
        let t1 = rdtsc();
        reply = tell(PARENT, DONE, &[t0, t1, failed]);
    }
}

/// `clients` throughput tasks on CPUs `0..clients`, `batches` batches of
/// `count` requests each.
fn throughput(name: &str, clients: u64, batches: usize, count: u64) {
    let Some(ep) = check_ok!(sys::endpoint_create(), "{name}: endpoint") else { return };
    let mut tasks = Vec::new();
    for cpu in 0..clients {
        let started = Child::create(Role::MmThroughput, 0).and_then(|c| {
            c.give(ep, Rights::SEND, PARENT)?;
            sys::thread_set_affinity(c.thread, Some(cpu))?;
            sys::thread_start(c.thread)?;
            Ok(c)
        });
        tasks.extend(check_ok!(started, "{name}: start a client on cpu {cpu}"));
    }
    let mut waiting: Vec<Handle> = Vec::new();
    for _ in 0..tasks.len() {
        match sys::recv(ep) {
            Ok(r) if r.msg.info.label == READY => waiting.push(r.reply),
            other => {
                check!(false, "{name}: a client's ready message: {other:?}");
            }
        }
    }
    let mut samples = Vec::with_capacity(batches);
    let mut failed = 0;
    for batch in 0..=batches {
        let last = batch == batches;
        let go = if last { Message::new(STOP, &[]) } else { Message::new(GO, &[count]) };
        for reply in waiting.drain(..) {
            let _ = sys::reply(reply, &go);
        }
        if last {
            break;
        }
        let (mut first, mut end) = (u64::MAX, 0);
        for _ in 0..tasks.len() {
            let Some(r) = check_ok!(sys::recv(ep), "{name}: a client's result") else { break };
            let [t0, t1, f, ..] = r.msg.words;
            (first, end) = (first.min(t0), end.max(t1));
            failed += f;
            waiting.push(r.reply);
        }
        let requests = count * tasks.len() as u64;
        samples.push(requests * 1_000_000_000 / (end - first).max(1));
    }
    for (i, t) in tasks.iter().enumerate() {
        check_eq!(t.wait(), Ok(0), "{name}: client {i}'s exit code");
    }
    check_eq!(failed, 0, "{name}: failed requests");
    let _ = sys::cap_delete(ep);
    report_in(name, "requests/Gcycle", &mut samples);
}

/// Protection changes of a `pages`-page region through the server, from
/// cpu 0, while threads of this task spin on cpus 1..4 reading it.
fn protect(name: &'static str, pages: u64, n: usize, warmup: usize) {
    let Some(region) = check_ok!(Pages::alloc(pages, MapFlags::WRITE), "{name}: allocate") else { return };
    let (addr, len) = (region.addr(), region.pages());
    let stop = Arc::new(AtomicBool::new(false));
    let spinning = Arc::new(AtomicU64::new(0));
    let region = Arc::new(region);
    let mut spinners = Vec::new();
    for cpu in 1..4 {
        let (stop, spinning, region) = (stop.clone(), spinning.clone(), region.clone());
        let t = thread::spawn_on(cpu, move || {
            spinning.fetch_add(1, Ordering::Relaxed);
            let words = region.words();
            let mut sum = 0u64;
            while !stop.load(Ordering::Relaxed) {
                sum = sum.wrapping_add(words[0].load(Ordering::Relaxed));
                core::hint::spin_loop();
            }
            core::hint::black_box(sum);
        });
        spinners.extend(check_ok!(t, "{name}: start a spinning thread on cpu {cpu}"));
    }
    let failed = Arc::new(AtomicU64::new(0));
    let (s2, f2) = (spinning.clone(), failed.clone());
    on_cpu(0, move || {
        while s2.load(Ordering::Relaxed) < 3 {
            sys::yield_now();
        }
        let mut writable = false;
        let mut s = measure(n, warmup, || {
            let flags = if writable { MapFlags::WRITE } else { MapFlags::empty() };
            if mm::protect(addr, len, flags).is_err() {
                f2.fetch_add(1, Ordering::Relaxed);
            }
            writable = !writable;
        });
        report_in(name, "cycles", &mut s);
    });
    stop.store(true, Ordering::Relaxed);
    for t in spinners {
        t.join();
    }
    check_eq!(failed.load(Ordering::Relaxed), 0, "{name}: failed protection changes");
    match Arc::try_unwrap(region) {
        Ok(r) => {
            check_ok!(r.free(), "{name}: free");
        }
        Err(_) => {
            check!(false, "{name}: the region is still shared by a thread");
        }
    }
}
