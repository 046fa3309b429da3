//! `sched`: with three busy threads per CPU all of them make progress and
//! every CPU takes part; threads pinned to a CPU stay there (through
//! yields, sleeps and preemption, while idle CPUs look for work to steal),
//! and move when re-pinned; a 50 ms sleep lasts at least 50 ms and not
//! much more.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use user::abi::handles::SELF_THREAD;
use user::thread::{self, Builder};
use user::{check, check_eq, check_ok, println, sys};

/// Timer period (sleeps end on a tick).
const TICK_US: u64 = 10_000;
/// Slack allowed on top of two ticks for a sleeper to be scheduled under
/// software emulation, where virtual CPUs share the host's cores.
const SLACK_US: u64 = 30_000;

pub fn run() {
    let (_, cpus) = sys::cpu_info();
    let stop = Arc::new(AtomicBool::new(false));
    let n = 3 * cpus;
    let counters: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    // Bit c: the thread was seen on CPU c.
    let cpus_seen: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let mut busy = Vec::new();
    for i in 0..n as usize {
        let (stop, counters, seen) = (stop.clone(), counters.clone(), cpus_seen.clone());
        busy.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let c = counters[i].fetch_add(1, Ordering::Relaxed);
                if c % 4096 == 0 {
                    seen[i].fetch_or(1 << sys::cpu_info().0, Ordering::Relaxed);
                }
            }
        }));
    }
    let busy: Vec<_> = busy.into_iter().flat_map(|b| check_ok!(b, "start a busy thread")).collect();
    let snapshot = || counters.iter().map(|c| c.load(Ordering::Relaxed)).collect::<Vec<_>>();
    let mut last = snapshot();
    for round in 0..3 {
        let _ = sys::sleep(150_000);
        let now = snapshot();
        let stuck = (0..n as usize).filter(|&i| now[i] == last[i]).count();
        check_eq!(stuck, 0, "busy threads that made no progress in round {round} (of {n})");
        last = now;
    }
    // Pinned threads keep their CPU while the busy ones compete and move.
    pinned(cpus);
    stop.store(true, Ordering::Relaxed);
    for b in busy {
        b.join();
    }
    let all = snapshot();
    let union = cpus_seen.iter().fold(0, |u, s| u | s.load(Ordering::Relaxed));
    check_eq!(union, (1u64 << cpus) - 1, "CPUs the busy threads ran on");
    println!(
        "{n} busy threads on {cpus} cpus all progressed: fewest {} and most {} iterations",
        all.iter().min().unwrap_or(&0),
        all.iter().max().unwrap_or(&0)
    );
    repin(cpus);
    sleeps();
}

/// One thread pinned to each CPU checks, many times over, that it runs
/// there: after yields, sleeps and stretches of work that get preempted.
fn pinned(cpus: u64) {
    const CHECKS: u64 = 30;
    let wrong = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for cpu in 0..cpus {
        let wrong = wrong.clone();
        threads.push(thread::spawn_on(cpu, move || {
            for i in 0..CHECKS {
                match i % 3 {
                    0 => sys::yield_now(),
                    1 => {
                        let _ = sys::sleep(1_000);
                    }
                    _ => {
                        let t0 = sys::time().0;
                        while sys::time().0 - t0 < 2_000 {}
                    }
                }
                let (now, _) = sys::cpu_info();
                if !check_eq!(now, cpu, "a thread pinned to cpu {cpu}: where it runs after step {i}") {
                    wrong.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in threads.into_iter().flat_map(|t| check_ok!(t, "start a pinned thread")) {
        t.join();
    }
    println!(
        "{cpus} pinned threads checked their cpu {CHECKS} times each under load: {} misplaced",
        wrong.load(Ordering::Relaxed)
    );
}

/// A thread pinned to one CPU, alone there, is re-pinned to another
/// while it runs (yielding): it gets there and stays.
fn repin(cpus: u64) {
    if cpus < 2 {
        return;
    }
    // Keep this thread off the worker's cpu, so nothing else runs there.
    check_ok!(sys::thread_set_affinity(SELF_THREAD, Some(0)), "pin the main thread to cpu 0");
    let _ = sys::sleep(1_000);
    check_eq!(sys::cpu_info().0, 0, "the main thread moved to cpu 0");
    let from = 1;
    let target = Arc::new(AtomicU64::new(from));
    let arrived = Arc::new(AtomicBool::new(false));
    let (t, a) = (target.clone(), arrived.clone());
    let worker = Builder::new().cpu(from).spawn(move || {
        let mut stayed = 0;
        let t0 = sys::time().0;
        while stayed < 20 && sys::time().0 - t0 < 5_000_000 {
            let want = t.load(Ordering::SeqCst);
            let (now, _) = sys::cpu_info();
            if now == want {
                if want != from {
                    a.store(true, Ordering::SeqCst);
                    stayed += 1;
                }
            } else if a.load(Ordering::SeqCst) {
                check!(false, "a re-pinned thread left its new cpu {want} for {now}");
            }
            sys::yield_now();
        }
        check_eq!(stayed, 20, "checks on the new cpu");
    });
    let Some(worker) = check_ok!(worker, "start a pinned thread") else { return };
    let _ = sys::sleep(20_000);
    let to = if cpus > 2 { 2 } else { 0 };
    target.store(to, Ordering::SeqCst);
    check_ok!(sys::thread_set_affinity(worker.handle(), Some(to)), "re-pin the thread to cpu {to}");
    worker.join();
    check!(arrived.load(Ordering::SeqCst), "the re-pinned thread reached cpu {to}");
    check_ok!(sys::thread_set_affinity(SELF_THREAD, None), "unpin the main thread");
}

/// Sleeps of 50 ms on a quiet machine, measured with the kernel's clock
/// and the TSC.
fn sleeps() {
    const SLEEP_US: u64 = 50_000;
    let (_, tsc_per_us) = sys::time();
    let mut measured = Vec::new();
    for _ in 0..5 {
        let (t0, c0) = (sys::time().0, user::hw::rdtsc());
        check_ok!(sys::sleep(SLEEP_US), "sleep 50 ms");
        let (t1, c1) = (sys::time().0, user::hw::rdtsc());
        let us = t1 - t0;
        let tsc_us = (c1 - c0) / tsc_per_us.max(1);
        check!(us >= SLEEP_US, "a 50 ms sleep lasted {us} us: too short");
        check!(us <= SLEEP_US + 2 * TICK_US + SLACK_US, "a 50 ms sleep lasted {us} us: too long");
        check!(
            tsc_us + 1_000 >= us && tsc_us <= us + 1_000,
            "the TSC ({tsc_us} us) agrees with the kernel clock ({us} us)"
        );
        measured.push(us);
    }
    let t0 = sys::time().0;
    check_ok!(sys::sleep(0), "sleep 0");
    let zero = sys::time().0 - t0;
    check!(zero <= 2 * TICK_US + SLACK_US, "sleep(0) took {zero} us");
    println!("50 ms sleeps took {measured:?} us; sleep(0) took {zero} us");
}
