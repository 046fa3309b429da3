//! What the memory-server scenarios (`mm_*`) share: a small PRNG, the word
//! patterns tasks write into their pages (each names the task, the round
//! and the word's place, so a page showing another task's data is told
//! apart from a page showing garbage), checks over a page's words, and the
//! well-known capability slots their helper tasks are given.
//!
//! Slots (9..15 are free in every task; these scenarios use three):
//! - [`TOKEN`] (9): a GRANT-only copy of another client's `MEMORY`
//!   capability, the share token naming the task to share into;
//! - [`TO_PARTNER`] (10): SEND on the endpoint that task receives share
//!   notices on;
//! - [`INBOX`] (11): RECEIVE on the helper's own notice endpoint.

use core::sync::atomic::{AtomicU64, Ordering};
use user::abi::cap::Handle;
use user::abi::ipc::Message;
use user::abi::mm::{ALLOC_BASE, ALLOC_END, SHARE_BASE, SHARE_END};
use user::mm::{self, PAGE_WORDS};
use user::{check, heap, sys};

/// Share token of the task this helper shares into (GRANT only).
pub const TOKEN: Handle = Handle::new(9, 0);
/// SEND on the partner's notice endpoint.
pub const TO_PARTNER: Handle = Handle::new(10, 0);
/// RECEIVE on this helper's notice endpoint.
pub const INBOX: Handle = Handle::new(11, 0);

/// Labels between the scenarios and their helpers: a helper is ready, is
/// done (its counts in the words), reports progress, tells its partner of
/// a share; the parent says go.
pub const READY: u32 = 0x3000;
pub const DONE: u32 = 0x3001;
pub const PROGRESS: u32 = 0x3002;
pub const SHARED: u32 = 0x3003;
pub const GO: u32 = 0x3004;

pub use user::rand::Rng;

/// What a word was written for: allocated or lazily backed pages, or a
/// sharing partner's marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Kind {
    Alloc = 0xa5,
    Lazy = 0xb5,
    Marker = 0xc5,
}

/// The word `word` of page `page` gets from task `tag` in `round`:
/// kind (8 bits) | tag (16) | round (16) | page (15) | word (9).
pub fn pattern(kind: Kind, tag: u64, round: u64, page: u64, word: u64) -> u64 {
    (kind as u64) << 56 | (tag & 0xffff) << 40 | (round & 0xffff) << 24 | (page & 0x7fff) << 9 | (word & 0x1ff)
}

/// The task tag a patterned word carries, if it is one.
pub fn tag_of(w: u64) -> Option<u64> {
    matches!(w >> 56, 0xa5 | 0xb5 | 0xc5).then_some((w >> 40) & 0xffff)
}

/// Writes the pattern of (`kind`, `tag`, `round`) into every word.
pub fn fill(words: &[AtomicU64], kind: Kind, tag: u64, round: u64) {
    for (i, w) in words.iter().enumerate() {
        let (page, word) = (i / PAGE_WORDS, i % PAGE_WORDS);
        w.store(pattern(kind, tag, round, page as u64, word as u64), Ordering::Relaxed);
    }
}

/// Checks that every word holds the pattern of (`kind`, `tag`, `round`);
/// reports the first wrong word (and whose pattern it shows) as a failed
/// check. Returns the number of wrong words.
pub fn verify(words: &[AtomicU64], kind: Kind, tag: u64, round: u64, what: &str) -> u64 {
    let mut wrong = 0;
    for (i, w) in words.iter().enumerate() {
        let want = pattern(kind, tag, round, (i / PAGE_WORDS) as u64, (i % PAGE_WORDS) as u64);
        let got = w.load(Ordering::Relaxed);
        if got != want {
            if wrong == 0 {
                report_wrong(what, i, got, want, tag);
            }
            wrong += 1;
        }
    }
    check!(wrong == 0, "{what}: task {tag} round {round}: {wrong} of {} words wrong", words.len());
    wrong
}

fn report_wrong(what: &str, i: usize, got: u64, want: u64, tag: u64) {
    let whose = match tag_of(got) {
        Some(t) if t != tag => "ANOTHER TASK's pattern",
        Some(_) => "this task's pattern, wrong round or place",
        None => "no pattern",
    };
    check!(
        false,
        "{what}: page {} word {}: got {got:#018x} ({whose}, task {:?}), expected {want:#018x}",
        i / PAGE_WORDS,
        i % PAGE_WORDS,
        tag_of(got)
    );
}

/// Checks that every word reads as zero (a fresh page). Returns the
/// number of non-zero words.
pub fn zeros(words: &[AtomicU64], tag: u64, what: &str) -> u64 {
    let mut wrong = 0;
    for (i, w) in words.iter().enumerate() {
        let got = w.load(Ordering::Relaxed);
        if got != 0 {
            if wrong == 0 {
                report_wrong(what, i, got, 0, tag);
            }
            wrong += 1;
        }
    }
    check!(wrong == 0, "{what}: task {tag}: {wrong} of {} words of fresh pages not zero", words.len());
    wrong
}

/// Pages of this task's heap beyond its static arena (they stay charged to
/// it until it ends).
pub fn heap_pages() -> u64 {
    heap::grown_bytes() / 4096
}

/// Checks that this task holds nothing but its heap now; returns what the
/// server says it holds.
pub fn holds_only_heap(what: &str) -> u64 {
    let held = mm::stats().map(|s| s.held).unwrap_or(u64::MAX);
    check!(held == heap_pages(), "{what}: pages held at the end: got {held}, expected {} (its heap)", heap_pages());
    held
}

/// Whether `addr` lies in the window shares land in.
pub fn in_share_window(addr: u64) -> bool {
    (SHARE_BASE..SHARE_END).contains(&addr)
}

/// Whether `addr` lies in the window allocations land in.
pub fn in_alloc_window(addr: u64) -> bool {
    (ALLOC_BASE..ALLOC_END).contains(&addr)
}

/// The server's books with this task's own pages taken out (its heap grows
/// while a scenario runs; everything else must come back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Balance {
    /// Pages free, the server's own and this task's (it holds no lazy
    /// reservation here): constant while no other client holds any.
    pub free_and_server: u64,
    /// Pages owned by clients other than this task.
    pub owned_by_others: u64,
    /// Clients registered.
    pub clients: u64,
}

/// Reads the [`Balance`] (and checks the books add up).
pub fn balance(what: &str) -> Option<Balance> {
    let b = mm::books().ok()?;
    let mine = mm::stats().ok()?.held;
    check!(
        b.balanced(),
        "{what}: books add up: free {} + owned {} + server {} = {} of {}",
        b.free,
        b.owned,
        b.server,
        b.free + b.owned + b.server,
        b.total
    );
    Some(Balance {
        free_and_server: b.free + b.server + mine,
        owned_by_others: b.owned.saturating_sub(mine),
        clients: b.clients,
    })
}

/// Waits (yielding, a bounded number of times) until the server has
/// `clients` clients registered, i.e. has handled the exit notices of the
/// helpers that ended. Returns how many it has.
pub fn await_clients(clients: u64) -> u64 {
    let mut now = u64::MAX;
    for _ in 0..200_000 {
        now = mm::books().map(|b| b.clients).unwrap_or(u64::MAX);
        if now == clients {
            break;
        }
        sys::yield_now();
    }
    now
}

/// After the helpers ended: every frame they held came back, and the books
/// are as at `start`.
pub fn check_returned(start: &Balance, what: &str) {
    let now_clients = await_clients(start.clients);
    check!(
        now_clients == start.clients,
        "{what}: clients registered: got {now_clients}, expected {} as at the start",
        start.clients
    );
    let Some(end) = balance(what) else {
        check!(false, "{what}: read the books at the end");
        return;
    };
    check!(
        end.owned_by_others == start.owned_by_others,
        "{what}: pages owned by other clients: got {}, expected {} as at the start",
        end.owned_by_others,
        start.owned_by_others
    );
    check!(
        end.free_and_server == start.free_and_server,
        "{what}: free + server + own pages: got {}, expected {} as at the start ({} leaked)",
        end.free_and_server,
        start.free_and_server,
        start.free_and_server as i64 - end.free_and_server as i64
    );
}

/// Calls `ep` with `label` and `words`; the answer's label (or the error).
pub fn tell(ep: Handle, label: u32, words: &[u64]) -> Result<Message, user::Error> {
    sys::call_ep(ep, &Message::new(label, words))
}
