//! Port I/O and the QEMU debug-exit device.

use x86_64::instructions::port::Port;

/// Reads a byte from an I/O port.
///
/// # Safety
/// The port must belong to a device the caller drives, and reading it must
/// not disturb another driver's state.
pub unsafe fn inb(port: u16) -> u8 {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u8>::new(port).read() }
}

/// Writes a byte to an I/O port.
///
/// # Safety
/// As for [`inb`], for writes.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u8>::new(port).write(value) }
}

/// I/O port of QEMU's `isa-debug-exit` device (`-device
/// isa-debug-exit,iobase=0xf4,iosize=0x04`); writing `v` ends QEMU with
/// status `(v << 1) | 1`.
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// How the kernel ends a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything asked of the kernel succeeded (QEMU exits 33).
    Success = 0x10,
    /// A test failed, the kernel panicked or hit a fatal exception (QEMU
    /// exits 35).
    Failure = 0x11,
}

/// Ends the run: on QEMU through the debug-exit device; on a machine without
/// it, by halting this CPU.
pub fn exit(code: ExitCode) -> ! {
    // SAFETY: port 0xf4 is QEMU's debug-exit device when present, and unused
    // on the PC platform otherwise; a 32-bit write there has no other effect.
    unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(code as u32) };
    super::cpu::halt_forever()
}
