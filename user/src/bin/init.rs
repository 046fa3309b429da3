//! The first user program. The kernel starts it with the boot modules,
//! machine control and the memory server's registering capability; it
//! starts everything else (each task served and paged by the memory
//! server) and powers the machine off at the end, reporting success only
//! if everything it ran succeeded.
//!
//! What it runs comes from the kernel command line:
//!
//! - `run=<scenario>`: one scenario of the `utest` program (see
//!   `user::scenario`), e.g. `run=ipc-local` or `run=bench`;
//! - `run=all-user`: every scenario but `bench`, one after another;
//! - `bench=<filter>` without `run=`: the `bench` scenario (which reads the
//!   filter itself);
//! - nothing: the demo, `demo` workers pinned across the CPUs that talk
//!   to init over IPC and use memory from the memory server, then a table
//!   of what the server did.
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
use user::demo;
use user::abi::ipc::Message;
use user::scenario::{ALL_USER, Scenario};
use user::{Error, println, sys};

user::main!(main);

/// The test program's boot module.
const UTEST: &str = "utest";
/// The demo's boot module.
const DEMO: &str = "demo";

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
/// each demo worker (but the greedy one).
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

/// Demo workers per CPU.
const WORKERS_PER_CPU: u64 = 2;
/// The greedy worker's quota, in pages.
const GREEDY_QUOTA: u64 = 96;

/// A started demo worker.
struct Worker {
    task: sys::Spawned,
    cpu: u64,
    memory: Handle,
    report: Option<demo::Report>,
}

/// The demo: workers pinned across the CPUs say hello to init over IPC,
/// then allocate, touch, share, fault in and free memory served by the
/// memory server (see `demo.rs`); init answers them, waits for them all,
/// and shows what the memory server did.
fn demo() -> Result<(), String> {
    let (cpu, cpus) = sys::cpu_info();
    let workers = cpus * WORKERS_PER_CPU;
    println!("demo: init runs on cpu {cpu}; starting {workers} workers over {cpus} cpus, served by the memory server");
    let fail = |what: &str, e: Error| alloc::format!("demo: {what}: {e}");
    let books = user::mm::books().map_err(|e| fail("no memory server", e))?;
    let ep = sys::endpoint_create().map_err(|e| fail("endpoint", e))?;
    let index = sys::module_find(MODULES, DEMO).map_err(|e| fail("no demo module", e))?;
    let mut all = Vec::new();
    for n in 0..workers {
        let greedy = n == workers - 1;
        let t = sys::task_spawn(MODULES, index, demo::arg(n, greedy)).map_err(|e| fail("spawn", e))?;
        let quota = if greedy { GREEDY_QUOTA } else { books.total * DEMO_SHARE.0 / DEMO_SHARE.1 };
        let (_, memory) = user::mm::serve_task(t.task, t.space, quota).map_err(|e| fail("serve", e))?;
        // Each worker's capability carries its number + 1 as the badge.
        let badged = sys::cap_mint(ep, n + 1, Rights::SEND | Rights::GRANT).map_err(|e| fail("mint", e))?;
        sys::cap_give(t.task, badged, Rights::SEND, PARENT.index()).map_err(|e| fail("give", e))?;
        let _ = sys::cap_delete(badged);
        let on = n % cpus;
        sys::thread_set_affinity(t.thread, Some(on)).map_err(|e| fail("pin", e))?;
        all.push(Worker { task: t, cpu: on, memory, report: None });
    }
    // Pairs: the sharer calls its checker over their own endpoint and
    // shares into it with a GRANT-only copy of its memory capability.
    for pair in all.chunks(2) {
        let [sharer, checker] = pair else { continue };
        let peer = sys::endpoint_create().map_err(|e| fail("pair endpoint", e))?;
        sys::cap_give(sharer.task.task, peer, Rights::SEND, demo::PEER.index()).map_err(|e| fail("give", e))?;
        sys::cap_give(checker.task.task, peer, Rights::RECEIVE, demo::PEER.index()).map_err(|e| fail("give", e))?;
        sys::cap_give(sharer.task.task, checker.memory, Rights::GRANT, demo::PEER_MEMORY.index())
            .map_err(|e| fail("give", e))?;
        let _ = sys::cap_delete(peer);
    }
    for w in &all {
        sys::thread_start(w.task.thread).map_err(|e| fail("start", e))?;
    }
    let mut ok = true;
    for _ in 0..2 * workers {
        let r = sys::recv(ep).map_err(|e| fail("receive", e))?;
        let n = r.badge.wrapping_sub(1);
        let Some(w) = all.get_mut(n as usize) else { continue };
        match r.msg.info.label {
            demo::HELLO => {
                let [number, on_cpu, ..] = r.msg.words;
                println!("demo: worker {n} says hello from cpu {on_cpu}");
                ok &= number == n && on_cpu == w.cpu;
                let _ = sys::reply(r.reply, &Message::new(demo::HELLO, &[n * n]));
            }
            demo::REPORT => {
                w.report = Some(demo::Report::from_words(r.msg.words));
                let _ = sys::reply(r.reply, &Message::new(0, &[]));
            }
            other => println!("demo: worker {n} sent an unknown message {other}"),
        }
    }
    for (n, w) in all.iter().enumerate() {
        let code = sys::task_wait(w.task.task);
        ok &= code == Ok(0) && w.report.is_some();
        if code != Ok(0) {
            println!("demo: worker {n} ended with {code:?}");
        }
        let t = &w.task;
        let _ = (sys::cap_delete(t.task), sys::cap_delete(t.thread), sys::cap_delete(t.space), sys::cap_delete(w.memory));
    }
    let _ = sys::cap_delete(ep);
    ok &= show_memory_table(&all, cpus);
    if ok {
        println!("demo: {workers} workers on {cpus} cpus answered, and all their memory came back");
        Ok(())
    } else {
        Err(String::from("demo: a worker failed, ran on the wrong cpu, or memory went missing"))
    }
}

/// Prints what the memory server did, per CPU and per worker, and its
/// books; → whether every page is accounted for and none is in use.
fn show_memory_table(all: &[Worker], cpus: u64) -> bool {
    println!("demo: memory server, requests handled on each cpu (a request is served on its caller's cpu):");
    println!("demo:   cpu  messages  alloc   free protect reserve  share  other  faults refused  cached");
    let mut sum = [0u64; 10];
    for c in 0..cpus {
        let (Ok(s), Ok(k)) = (user::mm::cpu_stats(c), user::mm::kind_stats(c)) else { continue };
        let row = [s.requests, k.alloc, k.free, k.protect, k.reserve, k.share, k.other, s.faults, s.refusals, s.cached];
        row.iter().zip(sum.iter_mut()).for_each(|(v, t)| *t += v);
        println!("demo: {}", table_row(&alloc::format!("{c}"), &row));
    }
    println!("demo: {}", table_row("all", &sum));
    println!("demo: workers:");
    println!("demo:   worker cpu regions  pages lazy-faults shares refused peak-pages");
    for (n, w) in all.iter().enumerate() {
        if let Some(r) = w.report {
            println!(
                "demo:   {n:>6} {:>3} {:>7} {:>6} {:>11} {:>6} {:>7} {:>10}",
                w.cpu, r.allocs, r.pages, r.faults, r.shares, r.refusals, r.peak
            );
        }
    }
    match user::mm::books() {
        Ok(b) => {
            println!(
                "demo: pages: {} in all = {} free + {} in use by clients + {} the server's own ({}); {} clients left",
                b.total,
                b.free,
                b.owned,
                b.server,
                if b.balanced() { "balanced" } else { "NOT BALANCED" },
                b.clients
            );
            b.balanced() && b.owned == 0
        }
        Err(e) => {
            println!("demo: cannot read the memory server's books: {e}");
            false
        }
    }
}

/// One line of the per-CPU table.
fn table_row(first: &str, v: &[u64; 10]) -> String {
    alloc::format!(
        "  {first:>3} {:>9} {:>6} {:>6} {:>7} {:>7} {:>6} {:>6} {:>7} {:>7} {:>7}",
        v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]
    )
}
