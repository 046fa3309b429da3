//! Syscall numbers and the register convention.
//!
//! A syscall is the `syscall` instruction with the number in `rax` and up
//! to six arguments in `rdi, rsi, rdx, r10, r8, r9` (the System V order,
//! with `r10` standing in for `rcx`, which the instruction overwrites).
//! On return `rax` is 0 or an [`Error`](crate::Error) code, and results are
//! in `rdi, rsi, rdx, ...` as each call documents. `rcx` and `r11` are
//! clobbered; every other register is preserved unless it carries a result.
//!
//! IPC calls carry their message in registers: `rsi` holds the
//! [`MsgInfo`](crate::ipc::MsgInfo), the six payload words travel in
//! `rdx, r10, r8, r9, r12, r13`, and a capability to transfer in `r14`. A
//! receive returns the badge in `rdi`, the info in `rsi`, the payload in the
//! same six registers, a received capability in `r14` and a reply
//! capability in `r15`. `docs/abi.md` documents each call's rights and
//! errors.

use crate::error::Error;

macro_rules! syscalls {
    ($($(#[$doc:meta])* $name:ident = $num:literal,)*) => {
        /// A syscall number.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u64)]
        pub enum Sys {
            $($(#[$doc])* $name = $num,)*
        }

        impl Sys {
            /// Every syscall.
            pub const ALL: &'static [Sys] = &[$(Sys::$name),*];

            /// Decodes `rax`; unknown numbers are [`Error::InvalidSyscall`].
            pub fn from_raw(raw: u64) -> Result<Self, Error> {
                match raw {
                    $($num => Ok(Sys::$name),)*
                    _ => Err(Error::InvalidSyscall),
                }
            }

            /// The syscall's name, for logs.
            pub const fn name(self) -> &'static str {
                match self { $(Sys::$name => stringify!($name),)* }
            }
        }
    };
}

syscalls! {
    /// Does nothing: the baseline of the benchmarks.
    Null = 0,
    /// `(ptr, len)`: writes the text to the kernel log (at most 1024 bytes).
    DebugPrint = 1,
    /// Gives up the CPU to another ready thread.
    Yield = 2,
    /// `(micros)`: sleeps at least that long.
    Sleep = 3,
    /// `(code)`: ends the calling task. Does not return.
    TaskExit = 4,
    /// Ends the calling thread (the task ends with its last thread).
    ThreadExit = 5,
    /// → `rdi` microseconds since boot, `rsi` TSC ticks per microsecond.
    Time = 6,
    /// → `rdi` the current CPU's index, `rsi` the number of online CPUs.
    CpuInfo = 7,
    /// `(src, rights)` → `rdi` a new handle to the same object with
    /// `rights` (a subset of the source's), derived from it for revocation.
    CapCopy = 10,
    /// `(endpoint, badge, rights)` → `rdi` a badged copy of an unbadged
    /// endpoint capability.
    CapMint = 11,
    /// `(handle)`: deletes the capability.
    CapDelete = 12,
    /// `(handle)`: deletes every capability derived from this one, in every
    /// task. → `rdi` how many.
    CapRevoke = 13,
    /// `(handle)` → `rdi` kind, `rsi` rights, `rdx` badge, `r10` the
    /// object's identity (endpoint, task and thread ids; 0 otherwise).
    CapInfo = 14,
    /// `(task, src, rights, slot)`: copies a capability (which must carry
    /// GRANT) into another task's table, at `slot` or (0) any free slot.
    /// → `rdi` the handle in the target task.
    CapGive = 15,
    /// → `rdi` a new endpoint (SEND, RECEIVE, GRANT).
    EndpointCreate = 20,
    /// `(endpoint, info, payload...)`: sends, waiting for a receiver.
    Send = 21,
    /// `(endpoint)`: waits for a message.
    Recv = 22,
    /// `(endpoint, info, payload...)`: sends and waits for the reply.
    Call = 23,
    /// `(reply, info, payload...)`: answers a call (consumes the reply
    /// capability).
    Reply = 24,
    /// `(endpoint, info, payload..., reply in r15)`: replies, then
    /// receives on the endpoint, in one call.
    ReplyRecv = 25,
    /// `(modules, index, arg)`: creates a task from a boot module's ELF
    /// image, with one thread (not started, `rdi = arg` at its entry).
    /// → `rdi` task, `rsi` thread, `rdx` address space handles.
    TaskSpawn = 30,
    /// `(task, code)`: ends a task.
    TaskKill = 31,
    /// `(task)`: waits until the task ends. → `rdi` its exit code.
    TaskWait = 32,
    /// `(task, entry, stack_top, arg)`: creates a thread (not started).
    /// → `rdi` the thread handle.
    ThreadCreate = 33,
    /// `(thread)`: makes a created thread runnable.
    ThreadStart = 34,
    /// `(thread, cpu)`: pins the thread to a CPU (`u64::MAX`: any CPU).
    ThreadSetAffinity = 35,
    /// `(task, endpoint)`: the endpoint receives the task's faults and its
    /// exit notice (the pager).
    TaskSetPager = 36,
    /// `(modules, index, buf, len)`: copies the module's path into `buf`.
    /// → `rdi` the path length, `rsi` the module size in bytes.
    ModuleInfo = 37,
    /// `(space, phys, first_page, va, pages, flags)`: maps pages of a
    /// physical-memory capability into an address space.
    MemMap = 40,
    /// `(space, va, pages)`: unmaps (TLB shootdown included). → `rdi`
    /// pages that were mapped.
    MemUnmap = 41,
    /// `(space, va, pages, flags)`: changes protection.
    MemProtect = 42,
    /// `(phys)` → `rdi` base physical address, `rsi` pages.
    PhysInfo = 43,
    /// `(space, va)` → `rdi` physical address, `rsi` map flags.
    MemTranslate = 44,
    /// `(machine)` → `rdi` pages of RAM the kernel manages, `rsi` of them
    /// free, `rdx` used by the kernel itself (page tables, stacks, heap,
    /// task images), `r10` handed to the memory server.
    MachineStats = 50,
    /// `(machine, success)`: powers the machine off, reporting success (1)
    /// or failure (0) to the host.
    MachinePowerOff = 51,
    /// `(machine, buf, len)`: copies the kernel command line into `buf`.
    /// → `rdi` its full length.
    MachineCmdline = 52,
}

/// `ThreadSetAffinity` value meaning "any CPU".
pub const ANY_CPU: u64 = u64::MAX;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_unknown_ones_are_refused() {
        for &s in Sys::ALL {
            assert_eq!(Sys::from_raw(s as u64), Ok(s));
        }
        for raw in [8, 9, 16, 26, 29, 38, 45, 53, 1000, u64::MAX] {
            assert_eq!(Sys::from_raw(raw), Err(Error::InvalidSyscall), "{raw}");
        }
        assert_eq!(Sys::Call.name(), "Call");
    }
}
