//! `fpu`: every thread keeps its own SSE registers, MXCSR and x87 control
//! word. Two threads pinned to one CPU switch back and forth many times
//! (yields, sleeps), a third moves between CPUs, and each checks after
//! every switch that its registers hold what it put there; a new thread
//! starts with clean registers.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use user::hw::{mxcsr_read, mxcsr_write, sse_read, sse_write, x87_control_read, x87_control_write};
use user::thread::Builder;
use user::{check, check_eq, check_ok, println, sys};

/// MXCSR after reset: every exception masked, round to nearest.
const MXCSR_DEFAULT: u32 = 0x1f80;
/// x87 control word after FNINIT.
const FCW_DEFAULT: u16 = 0x037f;
const ROUNDS: u64 = 300;

/// The register contents thread `seed` keeps in round `round`.
fn pattern(seed: u64, round: u64) -> [u64; 32] {
    let mut v = [0u64; 32];
    for (i, w) in v.iter_mut().enumerate() {
        *w = (seed << 56) ^ (round << 24) ^ (i as u64).wrapping_mul(0x0101_0101_0101_0101) ^ 0xa5a5_0000_0000_5a5a;
    }
    v
}

/// The control registers thread `seed` keeps: rounding mode and masks
/// differ per thread.
fn controls(seed: u64) -> (u32, u16) {
    let rounding = (seed as u32 % 4) << 13;
    let masks = 0x1f80 & !((seed as u32 % 3) << 7);
    (rounding | masks, 0x0300 | ((seed as u16 % 4) << 10) | 0x3f)
}

/// Switches `ROUNDS` times, checking the registers after each switch.
/// Returns the rounds whose registers were wrong.
fn keep_registers(seed: u64, sleep_every: u64) -> u64 {
    let mut bad = 0;
    let (mxcsr, fcw) = controls(seed);
    mxcsr_write(mxcsr);
    x87_control_write(fcw);
    let mut got = [0u64; 32];
    for round in 0..ROUNDS {
        let want = pattern(seed, round);
        sse_write(&want);
        if round % sleep_every == sleep_every - 1 {
            let _ = sys::sleep(1_000);
        } else {
            sys::yield_now();
        }
        sse_read(&mut got);
        let ok = check_eq!(got, want, "thread {seed}: SSE registers after switch {round}")
            & check_eq!(mxcsr_read(), mxcsr, "thread {seed}: MXCSR after switch {round}")
            & check_eq!(x87_control_read(), fcw, "thread {seed}: x87 control word after switch {round}");
        if !ok {
            bad += 1;
            if bad > 3 {
                break;
            }
        }
    }
    bad
}

pub fn run() {
    let (cpu, cpus) = sys::cpu_info();
    // A new thread's registers are the initial state, whatever ran before.
    sse_write(&pattern(0xee, 0));
    mxcsr_write(controls(3).0);
    let fresh = Builder::new().cpu(cpu).spawn(|| {
        let mut got = [1u64; 32];
        sse_read(&mut got);
        check_eq!(got, [0u64; 32], "a new thread's SSE registers");
        check_eq!(mxcsr_read(), MXCSR_DEFAULT, "a new thread's MXCSR");
        check_eq!(x87_control_read(), FCW_DEFAULT, "a new thread's x87 control word");
    });
    if let Some(f) = check_ok!(fresh, "start a new thread") {
        f.join();
    }

    let bad = Arc::new(AtomicU64::new(0));
    let shared = if cpus > 1 { 1 } else { 0 };
    let mut threads = Vec::new();
    // Seeds 1 and 2 share a CPU; 3 is free to move and sleeps more often.
    for (seed, affinity, sleep_every) in [(1, Some(shared), 50), (2, Some(shared), 70), (3, None, 5)] {
        let bad = bad.clone();
        threads.push(Builder::new().affinity(affinity).spawn(move || {
            bad.fetch_add(keep_registers(seed, sleep_every), Ordering::Relaxed);
        }));
    }
    for t in threads.into_iter().flat_map(|t| check_ok!(t, "start a thread")) {
        t.join();
    }
    // Ours survived the others too.
    let mut got = [0u64; 32];
    sse_read(&mut got);
    check_eq!(got, pattern(0xee, 0), "the main thread's SSE registers after the others ran");
    check_eq!(mxcsr_read(), controls(3).0, "the main thread's MXCSR after the others ran");
    mxcsr_write(MXCSR_DEFAULT);
    let n = bad.load(Ordering::Relaxed);
    check!(n == 0, "rounds with wrong registers: {n}");
    println!(
        "3 threads x {ROUNDS} switches (two sharing cpu {shared}, one moving) kept xmm0-15, MXCSR and the x87 control word"
    );
}
