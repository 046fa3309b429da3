//! `mm-stress`: many clients of the memory server on every CPU at once,
//! each for many rounds, checking what the server promises:
//!
//! - every page it hands out reads as zeros (a frame freed by one task and
//!   reused by another carries nothing over);
//! - a page only ever shows its own task's pattern: each word names the
//!   task, round and place it was written for, so a frame handed to two
//!   owners, or reused before a stale translation was flushed, shows up as
//!   another task's pattern;
//! - a region shared with a partner (read-only or read-write) shows the
//!   owner's pattern there, and a marker the partner writes through a
//!   read-write share shows up in the owner's pages;
//! - each first touch of a lazily reserved page reads zeros and costs the
//!   task exactly one fault served (`Stats.faults`);
//! - at the end each task holds nothing but its heap, the counts the tasks
//!   report add up with the server's per-CPU counters, and the books are
//!   back where they started: zero leaked frames.
//!
//! The helpers form a ring: helper `i` shares into helper `i + 1` (its share
//! token and notice endpoint are at `mm_util::TOKEN` and `TO_PARTNER`) and
//! verifies what helper `i - 1` shares into it on a second thread (`INBOX`).

use crate::child::{Child, Role};
use crate::mm_util::{self, DONE, INBOX, Kind, Rng, SHARED, TO_PARTNER, TOKEN, tell};
use crate::msg::STOP;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use user::abi::cap::{Handle, Rights};
use user::abi::handles::PARENT;
use user::abi::ipc::Message;
use user::abi::mem::MapFlags;
use user::mm::{self, PAGE_WORDS, Pages, SharedPages};
use user::{check, check_eq, check_ok, println, sys, test, thread};

/// Helper tasks.
const CLIENTS: usize = 8;
/// Rounds each helper runs.
const ROUNDS: u64 = 300;
/// Most pages one allocation asks for.
const MAX_ALLOC: u64 = 24;
/// Most pages one reservation asks for.
const MAX_LAZY: u64 = 16;
/// Regions a helper keeps across rounds (freed oldest first, after a last
/// check that they still hold their pattern).
const LIVE: usize = 3;

/// Shares this helper's predecessor checked (read by `client` after the
/// inbox thread ended).
static CHECKED: AtomicU64 = AtomicU64::new(0);

/// What a helper reports at the end (the words of its DONE message).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    rounds: u64,
    /// Pages allocated plus lazy pages touched.
    pages: u64,
    /// Lazy pages touched (each one fault).
    faults: u64,
    /// Regions it shared whose check came back clean.
    shares: u64,
    /// Shares of its predecessor it checked.
    checked: u64,
    /// Allocations plus reservations it asked for.
    requests: u64,
}

impl Counts {
    fn words(&self) -> [u64; 6] {
        [self.rounds, self.pages, self.faults, self.shares, self.checked, self.requests]
    }

    fn from_words(w: &[u64; 6]) -> Self {
        Counts { rounds: w[0], pages: w[1], faults: w[2], shares: w[3], checked: w[4], requests: w[5] }
    }
}

/// The helper role (`idx`: its place in the ring).
pub fn client(idx: u16) -> i64 {
    let tag = idx as u64 + 1;
    let cpu = sys::cpu_info().0;
    let inbox = match thread::spawn_on(cpu, move || inbox(tag)) {
        Ok(t) => t,
        Err(e) => return 100 + e.code() as i64,
    };
    let mut rng = Rng::new(tag);
    let mut c = Counts::default();
    let mut live: Vec<(Pages, u64)> = Vec::with_capacity(LIVE + 1);
    for round in 0..ROUNDS {
        if let Some(p) = alloc_round(tag, round, &mut rng, &mut c) {
            live.push((p, round));
        }
        if live.len() > LIVE {
            let (p, r) = live.remove(0);
            mm_util::verify(p.words(), Kind::Alloc, tag, r, "a kept region before its free");
            check_ok!(p.free(), "task {tag}: free a kept region");
        }
        if rng.below(3) != 0 {
            lazy_round(tag, round, &mut rng, &mut c);
        }
        c.rounds += 1;
    }
    for (p, r) in live.drain(..) {
        mm_util::verify(p.words(), Kind::Alloc, tag, r, "a kept region at the end");
        check_ok!(p.free(), "task {tag}: free a kept region at the end");
    }
    // The partner's inbox thread ends with this.
    check_ok!(tell(TO_PARTNER, STOP, &[]), "task {tag}: stop the partner's inbox");
    inbox.join();
    c.checked = CHECKED.load(Ordering::Relaxed);
    mm_util::holds_only_heap("a stress task");
    let faults = mm::stats().map_or(0, |s| s.faults);
    check_eq!(faults, c.faults, "task {tag}: faults the server served for it = lazy pages it touched");
    let done = Message::new(DONE, &c.words());
    check_ok!(sys::call_ep(PARENT, &done), "task {tag}: report");
    i64::from(test::failures() != 0)
}

/// One round's allocation: fresh pages read zero, take the pattern, and
/// sometimes go to the partner. Returns the region to keep.
fn alloc_round(tag: u64, round: u64, rng: &mut Rng, c: &mut Counts) -> Option<Pages> {
    let n = 1 + rng.below(MAX_ALLOC);
    c.requests += 1;
    let p = check_ok!(Pages::alloc(n, MapFlags::WRITE), "task {tag} round {round}: allocate {n} pages")?;
    check!(mm_util::in_alloc_window(p.addr()), "task {tag}: allocation at {:#x} in the allocation window", p.addr());
    mm_util::zeros(p.words(), tag, "freshly allocated pages");
    mm_util::fill(p.words(), Kind::Alloc, tag, round);
    mm_util::verify(p.words(), Kind::Alloc, tag, round, "pages just filled");
    c.pages += n;
    if rng.below(2) == 0 {
        share(&p, tag, round, rng.below(2) == 0, c);
    }
    Some(p)
}

/// Shares `p` with the partner and has it check the pattern; through a
/// read-write share it writes a marker into word 1 of each page, which
/// must show here.
fn share(p: &Pages, tag: u64, round: u64, writable: bool, c: &mut Counts) {
    let Some(at) = check_ok!(p.share(writable, TOKEN), "task {tag} round {round}: share (writable: {writable})") else {
        return;
    };
    check!(mm_util::in_share_window(at), "task {tag}: share lands at {at:#x}, in the share window");
    let notice = [at, p.pages(), writable as u64, tag, round];
    let Some(answer) = check_ok!(tell(TO_PARTNER, SHARED, &notice), "task {tag}: tell the partner") else { return };
    let [wrong, pages, partner, ..] = answer.words;
    check_eq!((wrong, pages), (0, p.pages()), "task {tag} round {round}: the partner's check (wrong words, pages)");
    if writable {
        let words = p.words();
        let mut seen = 0;
        for page in 0..p.pages() as usize {
            let w = &words[page * PAGE_WORDS + 1];
            let marker = mm_util::pattern(Kind::Marker, partner, round, page as u64, 1);
            seen += (w.load(Ordering::Relaxed) == marker) as u64;
            // Back to the pattern, for the later checks.
            w.store(mm_util::pattern(Kind::Alloc, tag, round, page as u64, 1), Ordering::Relaxed);
        }
        check_eq!(seen, p.pages(), "task {tag} round {round}: markers of task {partner} seen through the share");
        check!(partner != tag, "the partner is another task ({partner})");
    }
    c.shares += (wrong == 0) as u64;
}

/// The inbox thread: checks each region the predecessor shares in, marks
/// read-write ones, and drops every third share itself (the others go when
/// their owner frees them). Ends at STOP.
fn inbox(tag: u64) {
    let Some(mut r) = check_ok!(sys::recv(INBOX), "task {tag}: first notice") else { return };
    loop {
        if r.msg.info.label == STOP {
            let _ = sys::reply(r.reply, &Message::new(0, &[]));
            return;
        }
        let [at, pages, writable, owner, round, _] = r.msg.words;
        let answer = match SharedPages::accept(at, pages) {
            Ok(shared) => {
                let words = shared.words();
                let wrong = mm_util::verify(words, Kind::Alloc, owner, round, "a region shared in");
                if writable != 0 {
                    for page in 0..pages as usize {
                        let marker = mm_util::pattern(Kind::Marker, tag, round, page as u64, 1);
                        words[page * PAGE_WORDS + 1].store(marker, Ordering::Relaxed);
                    }
                }
                CHECKED.fetch_add(1, Ordering::Relaxed);
                if round % 3 == 0 {
                    drop(shared);
                } else {
                    // Left mapped: the owner's free takes it away.
                    core::mem::forget(shared);
                }
                Message::new(0, &[wrong, pages, tag])
            }
            Err(e) => {
                check!(false, "task {tag}: a share of {pages} pages at {at:#x} is not mapped here: {e:?}");
                Message::new(1, &[u64::MAX, 0, tag])
            }
        };
        r = match sys::reply_recv(INBOX, r.reply, &answer) {
            Ok(next) => next,
            Err(e) => {
                check!(false, "task {tag}: inbox reply_recv failed with {e:?}");
                return;
            }
        };
    }
}

/// One round's lazy reservation: a random subset of its pages touched in
/// random order; each first read is zero and costs exactly one fault.
fn lazy_round(tag: u64, round: u64, rng: &mut Rng, c: &mut Counts) {
    let n = 1 + rng.below(MAX_LAZY);
    c.requests += 1;
    let Some(p) = check_ok!(Pages::reserve(n, MapFlags::WRITE), "task {tag} round {round}: reserve {n} pages") else {
        return;
    };
    let touch = 1 + rng.below(n) as usize;
    let mut order: Vec<u16> = (0..n as u16).collect();
    rng.shuffle(&mut order);
    let before = mm::stats().map(|s| s.faults).unwrap_or(0);
    let words = p.words();
    for &page in &order[..touch] {
        let page = page as usize;
        let w = &words[page * PAGE_WORDS..(page + 1) * PAGE_WORDS];
        mm_util::zeros(w, tag, "a lazily backed page on first touch");
        for (i, x) in w.iter().enumerate() {
            x.store(mm_util::pattern(Kind::Lazy, tag, round, page as u64, i as u64), Ordering::Relaxed);
        }
    }
    let after = mm::stats().map(|s| s.faults).unwrap_or(0);
    check_eq!(after - before, touch as u64, "task {tag} round {round}: faults served for {touch} of {n} pages touched");
    for &page in &order[..touch] {
        let page = page as usize;
        for (i, x) in words[page * PAGE_WORDS..(page + 1) * PAGE_WORDS].iter().enumerate() {
            let want = mm_util::pattern(Kind::Lazy, tag, round, page as u64, i as u64);
            if x.load(Ordering::Relaxed) != want {
                mm_util::verify(
                    &words[page * PAGE_WORDS..(page + 1) * PAGE_WORDS],
                    Kind::Lazy,
                    tag,
                    round,
                    "a lazy page",
                );
                break;
            }
        }
    }
    c.faults += touch as u64;
    c.pages += touch as u64;
    check_ok!(p.free(), "task {tag} round {round}: free the reservation");
}

/// The scenario: starts the ring, collects the reports, checks the sums
/// and the books.
pub fn run() {
    let (_, cpus) = sys::cpu_info();
    let Some(start) = mm_util::balance("before") else {
        check!(false, "mm-stress needs the memory server (books and stats)");
        return;
    };
    let faults0: u64 = (0..cpus).map(|c| mm::cpu_stats(c).map_or(0, |s| s.faults)).sum();
    let Some(report) = check_ok!(sys::endpoint_create(), "report endpoint") else { return };
    let inboxes: Vec<Handle> = (0..CLIENTS).filter_map(|_| sys::endpoint_create().ok()).collect();
    check_eq!(inboxes.len(), CLIENTS, "inbox endpoints created");
    let mut children = Vec::new();
    for i in 0..CLIENTS.min(inboxes.len()) {
        let Some(c) = check_ok!(Child::create(Role::MmStress, i as u16), "create helper {i}") else { return };
        if !check!(c.memory.is_some(), "the memory server serves helper {i}") {
            return;
        }
        children.push(c);
    }
    for (i, c) in children.iter().enumerate() {
        let next = (i + 1) % children.len();
        let token = children[next].memory.map_or(Handle::NONE, |m| m.1);
        let badged = sys::cap_mint(report, i as u64 + 1, Rights::SEND | Rights::GRANT);
        check_ok!(badged.and_then(|b| c.give(b, Rights::SEND, PARENT)), "helper {i}: its report endpoint");
        let _ = badged.map(sys::cap_delete);
        check_ok!(c.give(token, Rights::GRANT, TOKEN), "helper {i}: the token of helper {next}");
        check_ok!(c.give(inboxes[next], Rights::SEND, TO_PARTNER), "helper {i}: helper {next}'s inbox");
        check_ok!(c.give(inboxes[i], Rights::RECEIVE, INBOX), "helper {i}: its inbox");
        check_ok!(
            sys::thread_set_affinity(c.thread, Some(i as u64 % cpus)),
            "helper {i}: pin to cpu {}",
            i as u64 % cpus
        );
    }
    for (i, c) in children.iter().enumerate() {
        check_ok!(sys::thread_start(c.thread), "start helper {i}");
    }
    let mut total = Counts::default();
    let mut reported = [false; CLIENTS];
    for _ in 0..children.len() {
        let Some(r) = check_ok!(sys::recv(report), "a helper's report") else { break };
        let idx = (r.badge as usize).wrapping_sub(1);
        let c = Counts::from_words(&r.msg.words);
        check_eq!(r.msg.info.label, DONE, "helper {idx}: report label");
        check!(idx < CLIENTS && !reported[idx], "helper {idx} reports once");
        reported[idx.min(CLIENTS - 1)] = true;
        check_eq!(c.rounds, ROUNDS, "helper {idx}: rounds done");
        check!(c.pages >= c.rounds, "helper {idx}: pages moved ({}) at least one per round", c.pages);
        total.rounds += c.rounds;
        total.pages += c.pages;
        total.faults += c.faults;
        total.shares += c.shares;
        total.checked += c.checked;
        total.requests += c.requests;
        let _ = sys::reply(r.reply, &Message::new(0, &[]));
    }
    for (i, c) in children.iter().enumerate() {
        check_eq!(c.wait(), Ok(0), "helper {i}: exit code");
    }
    drop(children);
    for ep in inboxes.into_iter().chain([report]) {
        let _ = sys::cap_delete(ep);
    }
    check_eq!(total.rounds, ROUNDS * CLIENTS as u64, "rounds done by all helpers");
    check_eq!(total.shares, total.checked, "shares made = shares checked by the partners");
    check!(
        total.shares > 0 && total.faults > 0,
        "something was shared ({}) and faulted in ({})",
        total.shares,
        total.faults
    );
    let faults1: u64 = (0..cpus).map(|c| mm::cpu_stats(c).map_or(0, |s| s.faults)).sum();
    check_eq!(
        faults1 - faults0,
        total.faults,
        "faults the server counted on its {cpus} cpus = pages the helpers touched"
    );
    mm_util::check_returned(&start, "mm-stress");
    println!(
        "{CLIENTS} clients on {cpus} cpus: {} rounds, {} pages moved in {} requests, {} faults served, {} shares verified; no leak",
        total.rounds, total.pages, total.requests, total.faults, total.shares
    );
}
