//! Helper tasks: utest starts copies of itself from the boot modules with
//! a role instead of a scenario number (servers to kill, tasks that fault,
//! a partner for benchmarks, ...), giving them an endpoint in their
//! `PARENT` slot. [`Child`] starts one and cleans up its handles. When
//! utest holds the memory control, the memory server serves its helpers
//! too (their heaps grow; their pages are theirs). The memory-server
//! scenarios give their helpers more well-known slots (9..=11: a share
//! token and notice endpoints, see `mm_util`).

use user::abi::cap::{Handle, Rights};
use user::abi::handles::{MEMORY_CONTROL, MODULES, PARENT};
use user::sys::{self, Result};

/// The boot module this program is loaded from.
const PROGRAM: &str = "utest";
/// Marks an argument as a role (bits 32..64), not a scenario number.
const ROLE_TAG: u64 = 0x524f_4c45 << 32;

/// What a helper task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Role {
    /// Answers calls on PARENT; on request, takes a call and never answers.
    Echo = 1,
    /// Holds PARENT (able to receive) and never receives.
    Hold = 2,
    /// Calls PARENT once and waits for the answer.
    Caller = 3,
    /// Receives capabilities over PARENT and reports on them.
    CapServer = 4,
    /// Reads address 0.
    FaultNull = 5,
    /// Executes a data page.
    FaultExecData = 6,
    /// Writes its read-only data.
    FaultWriteRodata = 7,
    /// Writes its own code.
    FaultWriteText = 8,
    /// Executes an undefined instruction.
    FaultInvalidOpcode = 9,
    /// Executes a privileged instruction.
    FaultPrivileged = 10,
    /// Computes in chunks, reporting progress over PARENT.
    Compute = 11,
    /// Yields in a loop (context-switch partner).
    Yielder = 12,
    /// Answers calls on PARENT as fast as it can (benchmark partner).
    BenchEcho = 13,
    /// Returns its parameter from main at once.
    Exit = 14,
    /// Ends its first thread with ThreadExit; a second thread ends last.
    ExitThreads = 15,
    /// Kills its own task with its parameter as the code.
    KillSelf = 16,
    /// A memory-server stress client (parameter: its place in the ring).
    MmStress = 17,
    /// Loops on memory-server requests until killed.
    MmVictim = 18,
    /// Memory-server rounds while others are killed, until told to stop.
    MmSurvivor = 19,
    /// Allocates beyond its quota until told to stop.
    MmGreedy = 20,
    /// Memory-server rounds while a greedy client hammers.
    MmSteady = 21,
    /// Breaks its memory's rules in the way its parameter says.
    MmFault = 22,
    /// Page requests in batches, for the throughput benchmark.
    MmThroughput = 23,
}

impl Role {
    const ALL: [Role; 23] = [
        Self::Echo,
        Self::Hold,
        Self::Caller,
        Self::CapServer,
        Self::FaultNull,
        Self::FaultExecData,
        Self::FaultWriteRodata,
        Self::FaultWriteText,
        Self::FaultInvalidOpcode,
        Self::FaultPrivileged,
        Self::Compute,
        Self::Yielder,
        Self::BenchEcho,
        Self::Exit,
        Self::ExitThreads,
        Self::KillSelf,
        Self::MmStress,
        Self::MmVictim,
        Self::MmSurvivor,
        Self::MmGreedy,
        Self::MmSteady,
        Self::MmFault,
        Self::MmThroughput,
    ];

    /// The start argument for this role with parameter `param`.
    pub const fn arg(self, param: u16) -> u64 {
        ROLE_TAG | (self as u64) << 16 | param as u64
    }

    /// The role and parameter in a start argument, if it names one.
    pub fn decode(arg: u64) -> Option<(Role, u16)> {
        if arg & 0xffff_ffff_0000_0000 != ROLE_TAG {
            return None;
        }
        let role = Self::ALL.iter().copied().find(|r| *r as u64 == (arg >> 16) & 0xffff)?;
        Some((role, arg as u16))
    }
}

/// Runs the role; the result is the task's exit code.
pub fn run(role: Role, param: u16) -> i64 {
    match role {
        Role::Echo => crate::peer::echo(),
        Role::Hold => crate::peer::hold(),
        Role::Caller => crate::peer::caller(),
        Role::CapServer => crate::cap_server::server(),
        Role::FaultNull
        | Role::FaultExecData
        | Role::FaultWriteRodata
        | Role::FaultWriteText
        | Role::FaultInvalidOpcode
        | Role::FaultPrivileged => crate::faults::fault(role),
        Role::Compute => crate::faults::compute(param),
        Role::Yielder => crate::bench::yielder(),
        Role::BenchEcho => crate::bench::echo(),
        Role::Exit => param as i64,
        Role::ExitThreads => crate::leaks::exit_threads(),
        Role::KillSelf => crate::leaks::kill_self(param),
        Role::MmStress => crate::mm_stress::client(param),
        Role::MmVictim => crate::mm_kill::victim(param),
        Role::MmSurvivor => crate::mm_kill::survivor(param),
        Role::MmGreedy => crate::mm_quota::greedy(param),
        Role::MmSteady => crate::mm_quota::steady(param),
        Role::MmFault => crate::mm_bad::fault(param),
        Role::MmThroughput => crate::mm_bench::throughput_client(param),
    }
}

/// A helper task (created, started when asked). Dropping it deletes the
/// handles (the task itself lives on until it ends).
pub struct Child {
    /// The task (all rights).
    pub task: Handle,
    /// Its first thread.
    pub thread: Handle,
    /// Its address space (all rights).
    pub space: Handle,
    /// Its memory-server badge and a copy of its `MEMORY` capability (a
    /// share token for it), if the server serves it.
    pub memory: Option<(u64, Handle)>,
}

/// Pages of memory-server quota a helper gets by default.
pub const CHILD_QUOTA: u64 = 4096;

/// Exit code of a helper that should have died of a fault but whose
/// access was, wrongly, allowed.
pub const SURVIVED: i64 = 0x5afe;

impl Child {
    /// Creates a helper task with `role` (not started yet).
    pub fn create(role: Role, param: u16) -> Result<Child> {
        Self::create_with_quota(role, param, CHILD_QUOTA)
    }

    /// Creates a helper task with `role` and a memory quota of `quota`
    /// pages (not started yet).
    pub fn create_with_quota(role: Role, param: u16, quota: u64) -> Result<Child> {
        let index = sys::module_find(MODULES, PROGRAM)?;
        let s = sys::task_spawn(MODULES, index, role.arg(param))?;
        let mut child = Child { task: s.task, thread: s.thread, space: s.space, memory: None };
        if sys::cap_info(MEMORY_CONTROL).is_ok() {
            match user::mm::serve_task(s.task, s.space, quota) {
                Ok(m) => child.memory = Some(m),
                Err(e) => {
                    let _ = sys::task_kill(child.task, -1);
                    return Err(e); // (dropping `child` deletes its handles)
                }
            }
        }
        Ok(child)
    }

    /// Creates and starts a helper with `parent` (given with `rights`) in
    /// its PARENT slot, pinned to `cpu` if given.
    pub fn start(role: Role, param: u16, parent: Option<(Handle, Rights)>, cpu: Option<u64>) -> Result<Child> {
        let c = Self::create(role, param)?;
        if let Some((ep, rights)) = parent {
            c.give(ep, rights, PARENT)?;
        }
        if cpu.is_some() {
            sys::thread_set_affinity(c.thread, cpu)?;
        }
        sys::thread_start(c.thread)?;
        Ok(c)
    }

    /// Copies `cap` with `rights` into the child at well-known `slot`.
    pub fn give(&self, cap: Handle, rights: Rights, slot: Handle) -> Result<Handle> {
        sys::cap_give(self.task, cap, rights, slot.index())
    }

    /// Waits for the task to end; returns its exit code.
    pub fn wait(&self) -> Result<i64> {
        sys::task_wait(self.task)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        for h in [self.task, self.thread, self.space] {
            let _ = sys::cap_delete(h);
        }
        if let Some((_, memory)) = self.memory {
            let _ = sys::cap_delete(memory);
        }
    }
}
