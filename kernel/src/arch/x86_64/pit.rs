//! The legacy PIT (8254), used once at boot as a known clock to measure the
//! time-stamp counter's frequency.
//!
//! The measurement reads the PIT's counter rather than waiting for it to
//! expire: each reading is bracketed by two TSC reads and retried until the
//! bracket is tight, so a vCPU descheduled at the wrong moment (likely when
//! vCPUs outnumber host cores) costs a retry instead of skewing the result.

use super::cpu::rdtsc;
use super::io::{inb, outb};

const PIT_HZ: u64 = 1_193_182;
const CHANNEL2_DATA: u16 = 0x42;
const COMMAND: u16 = 0x43;
const GATE_PORT: u16 = 0x61;

/// Reads channel 2's current count.
fn read_count() -> u16 {
    // SAFETY: latching and reading channel 2 (ports 0x43, 0x42), which only
    // this calibration uses.
    unsafe {
        outb(COMMAND, 0b1000_0000); // latch channel 2
        let lo = inb(CHANNEL2_DATA) as u16;
        let hi = inb(CHANNEL2_DATA) as u16;
        hi << 8 | lo
    }
}

/// One (TSC, PIT count) pair taken as close together as the machine allows.
fn sample() -> (u64, u16) {
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..16 {
        let t0 = rdtsc();
        let c = read_count();
        let t1 = rdtsc();
        if t1 - t0 < best.0 {
            best = (t1 - t0, t0 + (t1 - t0) / 2, c);
        }
    }
    (best.1, best.2)
}

/// Measures how many TSC ticks pass per microsecond, over about 40 ms.
pub fn tsc_per_micro() -> u64 {
    // SAFETY: gate channel 2 on (speaker off) and start it counting down
    // from 0xffff in mode 0; nothing else uses channel 2.
    unsafe {
        let gate = inb(GATE_PORT);
        outb(GATE_PORT, (gate & !0x02) & !0x01);
        outb(COMMAND, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0
        outb(CHANNEL2_DATA, 0xff);
        outb(CHANNEL2_DATA, 0xff);
        outb(GATE_PORT, (gate & !0x02) | 0x01);
    }
    let (t0, c0) = sample();
    let (mut t1, mut c1) = (t0, c0);
    // ~40 ms of PIT ticks; the counter runs for 55 ms before wrapping.
    while c0.wrapping_sub(c1) < 48_000 {
        (t1, c1) = sample();
    }
    let ticks = c0.wrapping_sub(c1) as u64;
    // SAFETY: gate off again.
    unsafe { outb(GATE_PORT, inb(GATE_PORT) & !0x03) };
    ((t1 - t0) * PIT_HZ / ticks / 1_000_000).max(1)
}
