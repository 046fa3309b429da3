//! The user-space test scenarios, by name and number: `init` reads
//! `run=<name>` from the kernel command line and starts the `utest`
//! program with the scenario's number as its argument. Both sides use this
//! one table, so they cannot disagree.
//!
//! `bench=<filter>` (what `cargo xtask bench` boots with) also makes init
//! run the `bench` scenario, which reads the filter from the command line
//! and runs the measurements whose names start with one of its
//! comma-separated parts (`all`: every one).

use abi::cap::{Kind, Rights};

/// A scenario of the `utest` program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Scenario {
    /// Call/reply between two threads pinned to one CPU.
    IpcLocal = 1,
    /// Call/reply between two threads on different CPUs.
    IpcCross = 2,
    /// Capabilities carried in messages.
    IpcCap = 3,
    /// Badged endpoint capabilities identify their senders.
    IpcBadges = 4,
    /// Many clients on every CPU calling one server.
    IpcMany = 5,
    /// Callers are released with `PeerDied` when their server dies.
    IpcPeerDied = 6,
    /// Rights only shrink; revocation; stale handles.
    Caps = 7,
    /// Every syscall with invalid arguments.
    BadInput = 8,
    /// Faulting tasks die; the others carry on.
    Faults = 9,
    /// Progress, pinning and sleeping.
    Sched = 10,
    /// Each thread keeps its own SSE and x87 state.
    Fpu = 11,
    /// Cycle counts of the basic operations (not a test).
    Bench = 12,
    /// Tasks ending in every way give back all their kernel memory.
    Leaks = 13,
    /// Memory-server clients on every CPU: zeroed pages, no mix-ups,
    /// shares, lazy faults, nothing leaked.
    MmStress = 14,
    /// Memory-server clients killed mid-request give everything back.
    MmKill = 15,
    /// Malformed memory-server requests get their errors.
    MmBad = 16,
    /// A client at its quota does not starve the others.
    MmQuota = 17,
}

impl Scenario {
    /// Every scenario, in the order `run=all-user` runs them.
    pub const ALL: [Scenario; 17] = [
        Self::IpcLocal,
        Self::IpcCross,
        Self::IpcCap,
        Self::IpcBadges,
        Self::IpcMany,
        Self::IpcPeerDied,
        Self::Caps,
        Self::BadInput,
        Self::Faults,
        Self::Sched,
        Self::Fpu,
        Self::Leaks,
        Self::MmStress,
        Self::MmKill,
        Self::MmBad,
        Self::MmQuota,
        Self::Bench,
    ];

    /// The name used in `run=<name>` and in log lines.
    pub const fn name(self) -> &'static str {
        match self {
            Self::IpcLocal => "ipc-local",
            Self::IpcCross => "ipc-cross",
            Self::IpcCap => "ipc-cap",
            Self::IpcBadges => "ipc-badges",
            Self::IpcMany => "ipc-many",
            Self::IpcPeerDied => "ipc-peer-died",
            Self::Caps => "caps",
            Self::BadInput => "bad-input",
            Self::Faults => "faults",
            Self::Sched => "sched",
            Self::Fpu => "fpu",
            Self::Leaks => "leaks",
            Self::MmStress => "mm-stress",
            Self::MmKill => "mm-kill",
            Self::MmBad => "mm-bad",
            Self::MmQuota => "mm-quota",
            Self::Bench => "bench",
        }
    }

    /// The argument `utest` is started with.
    pub const fn number(self) -> u64 {
        self as u64
    }

    /// The scenario called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// The scenario numbered `n`.
    pub fn from_number(n: u64) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.number() == n)
    }

    /// Whether `run=all-user` includes it (everything but the benchmark,
    /// whose timings decide nothing).
    pub const fn in_all_user(self) -> bool {
        !matches!(self, Self::Bench)
    }

    /// The rights of the copy of init's machine capability the scenario
    /// gets, if any: all of them to test them (rights, bad arguments), READ
    /// to read the kernel's frame counts or command line.
    pub const fn machine_rights(self) -> Option<Rights> {
        match self {
            Self::Caps | Self::BadInput => Some(Kind::Machine.meaningful_rights()),
            Self::Leaks | Self::Bench => Some(Rights::READ),
            _ => None,
        }
    }
}

/// `run=` value that runs every scenario [`Scenario::in_all_user`] selects.
pub const ALL_USER: &str = "all-user";
