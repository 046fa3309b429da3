//! What `init` and its `demo` workers agree on: the start argument, the
//! extra capability slots, and the messages they exchange.
//!
//! Workers come in pairs: the even one (the *sharer*) shares regions into
//! its odd partner (the *checker*), which checks them and writes into the
//! read-write ones; they talk over an endpoint of their own.

use abi::cap::Handle;

/// The pair's endpoint (the sharer calls, the checker receives).
pub const PEER: Handle = Handle::new(9, 0);
/// The sharer's share token for its partner (a GRANT-only copy of the
/// partner's memory capability).
pub const PEER_MEMORY: Handle = Handle::new(10, 0);

/// Label of a worker's greeting to init: `[number, cpu]`.
pub const HELLO: u32 = 1;
/// Label of a worker's final report to init: [`Report`] words.
pub const REPORT: u32 = 2;
/// Label of a sharer's request to its checker: `[address there, pages,
/// seed, writable]`.
pub const CHECK: u32 = 3;
/// Label of a sharer telling its checker it is done.
pub const DONE: u32 = 4;

/// What a worker does besides its own rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Shares regions into its partner.
    Sharer,
    /// Checks what its partner shares.
    Checker,
}

/// The start argument of worker `number`: its part, and whether it is the
/// greedy one (a small quota it runs into on purpose).
pub const fn arg(number: u64, greedy: bool) -> u64 {
    number | (greedy as u64) << 32
}

/// Decodes a start argument: (number, part, greedy).
pub const fn decode(arg: u64) -> (u64, Part, bool) {
    let number = arg & 0xffff_ffff;
    let part = if number.is_multiple_of(2) { Part::Sharer } else { Part::Checker };
    (number, part, arg >> 32 & 1 == 1)
}

/// A worker's account of its run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Regions allocated.
    pub allocs: u64,
    /// Pages those held.
    pub pages: u64,
    /// Pages faulted in lazily.
    pub faults: u64,
    /// Regions shared into its partner and checked there (sharer), or
    /// checked here (checker).
    pub shares: u64,
    /// Requests refused for quota.
    pub refusals: u64,
    /// Most pages it held at once.
    pub peak: u64,
}

impl Report {
    /// As message words.
    pub const fn words(&self) -> [u64; 6] {
        [self.allocs, self.pages, self.faults, self.shares, self.refusals, self.peak]
    }

    /// From message words.
    pub const fn from_words(w: [u64; 6]) -> Report {
        Report { allocs: w[0], pages: w[1], faults: w[2], shares: w[3], refusals: w[4], peak: w[5] }
    }
}
