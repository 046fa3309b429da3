//! The legacy PIT (8254), used once at boot as a known clock to measure the
//! time-stamp counter's frequency.

use super::io::{inb, outb};

const PIT_HZ: u64 = 1_193_182;
const CHANNEL2_DATA: u16 = 0x42;
const COMMAND: u16 = 0x43;
const GATE_PORT: u16 = 0x61;

/// Busy-waits `micros` microseconds (at most 50 ms) on PIT channel 2.
pub fn wait_micros(micros: u64) {
    let count = (PIT_HZ * micros.min(50_000) / 1_000_000).max(1) as u16;
    // SAFETY: ports 0x42, 0x43 and 0x61 drive PIT channel 2 and its gate,
    // which nothing else in the kernel uses; the speaker output stays off.
    unsafe {
        let gate = inb(GATE_PORT);
        outb(GATE_PORT, (gate & !0x02) & !0x01); // gate low: stop the count
        outb(COMMAND, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
        outb(CHANNEL2_DATA, count as u8);
        outb(CHANNEL2_DATA, (count >> 8) as u8);
        outb(GATE_PORT, (gate & !0x02) | 0x01); // gate high: count down
        while inb(GATE_PORT) & 0x20 == 0 {
            super::cpu::pause();
        }
        outb(GATE_PORT, gate & !0x03);
    }
}
