//! A demo worker. Init starts several, pinned across the CPUs, each served
//! by the memory server (see `user::demo` for what they agree on). A
//! worker says hello to init from its CPU, then for a number of rounds
//! allocates pages, checks they arrive zeroed, fills and checks them,
//! sometimes write-protects them, shares some with its partner (which
//! checks them on its own CPU and writes into the read-write ones), and
//! touches lazily reserved pages in random order; it frees everything,
//! reports its counts to init and ends. The greedy worker then also runs
//! into its quota on purpose. Any wrong word ends the worker with code 1.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::Relaxed;
use user::abi::handles::PARENT;
use user::abi::ipc::Message;
use user::abi::mem::{MapFlags, PAGE_SIZE};
use user::demo::{self, CHECK, DONE, HELLO, PEER, PEER_MEMORY, Part, REPORT, Report};
use user::rand::Rng;
use user::mm::{self, PAGE_WORDS, Pages, SharedPages};
use user::{Error, println, sys, thread};

user::main!(main);

/// Shares the checker thread found wrong, and checked.
static SHARE_ERRORS: AtomicU64 = AtomicU64::new(0);
static SHARES_CHECKED: AtomicU64 = AtomicU64::new(0);

/// Rounds of work per worker.
const ROUNDS: u64 = 24;
/// Most pages one allocation asks for.
const MAX_PAGES: u64 = 32;
/// Pages of a lazy reservation, and how many of them get touched.
const LAZY_PAGES: u64 = 16;
const LAZY_TOUCHED: u64 = 8;

/// The word at `index` of page `page` of a region filled with `seed`.
fn pattern(seed: u64, page: u64, index: usize) -> u64 {
    seed ^ page << 16 ^ index as u64
}

/// The marker a checker writes at word 1 of each page of a read-write
/// share.
fn marker(seed: u64, page: u64) -> u64 {
    !pattern(seed, page, 1)
}

/// Counts the words of `words` that differ from what `want` says.
fn wrong(words: &[core::sync::atomic::AtomicU64], want: impl Fn(u64, usize) -> u64) -> usize {
    words.iter().enumerate().filter(|&(i, w)| w.load(Relaxed) != want((i / PAGE_WORDS) as u64, i % PAGE_WORDS)).count()
}

struct Worker {
    number: u64,
    part: Part,
    rng: Rng,
    report: Report,
    errors: u64,
}

impl Worker {
    fn error(&mut self, what: core::fmt::Arguments<'_>) {
        self.errors += 1;
        println!("worker {}: ERROR: {what}", self.number);
    }

    fn note_held(&mut self) {
        if let Ok(s) = mm::stats() {
            self.report.peak = self.report.peak.max(s.held);
        }
    }

    /// One round: allocate, check, fill, maybe protect and share, free.
    fn round(&mut self, round: u64) {
        let n = self.rng.range(1, MAX_PAGES);
        let pages = match Pages::alloc(n, MapFlags::WRITE) {
            Ok(p) => p,
            Err(Error::QuotaExceeded) => {
                self.report.refusals += 1;
                return;
            }
            Err(e) => return self.error(format_args!("allocating {n} pages: {e}")),
        };
        self.report.allocs += 1;
        self.report.pages += n;
        self.note_held();
        let words = pages.words();
        let dirty = wrong(words, |_, _| 0);
        if dirty != 0 {
            self.error(format_args!("{dirty} words of {n} fresh pages were not zero"));
        }
        let seed = self.number << 48 | round << 32;
        words.iter().enumerate().for_each(|(i, w)| w.store(pattern(seed, (i / PAGE_WORDS) as u64, i % PAGE_WORDS), Relaxed));
        if round.is_multiple_of(3) {
            // Read-only for a while: reading still works.
            let ro = pages.protect(MapFlags::empty()).and_then(|()| pages.protect(MapFlags::WRITE));
            if let Err(e) = ro {
                self.error(format_args!("protecting {n} pages: {e}"));
            }
        }
        let bad = wrong(words, |p, i| pattern(seed, p, i));
        if bad != 0 {
            self.error(format_args!("{bad} words of {n} pages lost their pattern"));
        }
        if self.part == Part::Sharer && round.is_multiple_of(2) {
            self.share(&pages, seed, round.is_multiple_of(4));
        }
        if let Err(e) = pages.free() {
            self.error(format_args!("freeing {n} pages: {e}"));
        }
    }

    /// Shares `pages` into the partner, which checks them (and marks the
    /// read-write ones).
    fn share(&mut self, pages: &Pages, seed: u64, writable: bool) {
        let n = pages.pages();
        let at = match pages.share(writable, PEER_MEMORY) {
            Ok(at) => at,
            Err(e) => return self.error(format_args!("sharing {n} pages: {e}")),
        };
        let asked = Message::new(CHECK, &[at, n, seed, writable as u64]);
        match sys::call_ep(PEER, &asked) {
            Ok(m) if m.words[0] == n => self.report.shares += 1,
            Ok(m) => self.error(format_args!("the partner found {} of {n} shared pages right", m.words[0])),
            Err(e) => self.error(format_args!("asking the partner to check: {e}")),
        }
        if writable {
            let unmarked = (0..n).filter(|&p| pages.words()[p as usize * PAGE_WORDS + 1].load(Relaxed) != marker(seed, p)).count();
            if unmarked != 0 {
                self.error(format_args!("{unmarked} of {n} pages shared read-write lack the partner's mark"));
            }
        }
    }

    /// Reserves pages and touches some in random order: each reads zero
    /// and costs exactly one fault.
    fn lazy(&mut self, round: u64) {
        let region = match Pages::reserve(LAZY_PAGES, MapFlags::WRITE) {
            Ok(r) => r,
            Err(Error::QuotaExceeded) => {
                self.report.refusals += 1;
                return;
            }
            Err(e) => return self.error(format_args!("reserving {LAZY_PAGES} pages: {e}")),
        };
        let before = mm::stats().map(|s| s.faults).unwrap_or(0);
        let mut order: Vec<u64> = (0..LAZY_PAGES).collect();
        self.rng.shuffle(&mut order);
        let words = region.words();
        for &p in &order[..LAZY_TOUCHED as usize] {
            let w = &words[p as usize * PAGE_WORDS..][..PAGE_WORDS];
            if w[7].load(Relaxed) != 0 {
                self.error(format_args!("a lazily backed page read non-zero"));
            }
            w[7].store(round << 8 | p, Relaxed);
        }
        let faults = mm::stats().map(|s| s.faults).unwrap_or(0) - before;
        if faults != LAZY_TOUCHED {
            self.error(format_args!("touching {LAZY_TOUCHED} reserved pages took {faults} faults"));
        }
        self.report.faults += faults;
        self.note_held();
    }

    /// Allocates until the quota refuses, then frees one region and
    /// allocates again.
    fn run_into_quota(&mut self) {
        let mut held = Vec::new();
        let mut refused = 0;
        while refused < 3 && held.len() < 1024 {
            match Pages::alloc(8, MapFlags::WRITE) {
                Ok(p) => held.push(p),
                Err(Error::QuotaExceeded) => refused += 1,
                Err(e) => return self.error(format_args!("allocating up to the quota: {e}")),
            }
        }
        self.report.refusals += refused;
        self.note_held();
        println!("worker {}: the quota refused {refused} requests after {} pages", self.number, held.len() * 8);
        held.pop();
        match Pages::alloc(8, MapFlags::WRITE) {
            Ok(p) => held.push(p),
            Err(e) => self.error(format_args!("allocating after freeing under the quota: {e}")),
        }
    }
}

/// The checker's side: checks what the partner shares until it is done.
fn check_shares(number: u64) -> u64 {
    let mut errors = 0;
    let mut reply = user::abi::cap::Handle::NONE;
    let mut answer = Message::new(0, &[]);
    loop {
        let r = match sys::reply_recv(PEER, reply, &answer) {
            Ok(r) => r,
            Err(e) => {
                println!("worker {number}: ERROR: receiving from the partner: {e}");
                return errors + 1;
            }
        };
        reply = r.reply;
        let [at, n, seed, writable, ..] = r.msg.words;
        if r.msg.info.label == DONE {
            let _ = sys::reply(reply, &Message::new(0, &[]));
            return errors;
        }
        let good = match SharedPages::accept(at, n) {
            Ok(shared) => {
                let words = shared.words();
                let good = (0..n).filter(|&p| wrong(&words[p as usize * PAGE_WORDS..][..PAGE_WORDS], |_, i| pattern(seed, p, i)) == 0).count();
                if writable == 1 {
                    (0..n).for_each(|p| words[p as usize * PAGE_WORDS + 1].store(marker(seed, p), Relaxed));
                }
                good as u64
                // (Dropping `shared` takes the pages out of this task.)
            }
            Err(e) => {
                println!("worker {number}: ERROR: the shared pages at {at:#x} are not here: {e}");
                0
            }
        };
        errors += (good != n) as u64;
        SHARES_CHECKED.fetch_add(1, Relaxed);
        answer = Message::new(0, &[good]);
    }
}

fn main(arg: u64) -> i64 {
    let (number, part, greedy) = demo::decode(arg);
    let (cpu, cpus) = sys::cpu_info();
    match sys::call_ep(PARENT, &Message::new(HELLO, &[number, cpu])) {
        Ok(m) if m.words[0] == number * number => {}
        other => {
            println!("worker {number}: init did not answer the greeting right: {other:?}");
            return 1;
        }
    }
    let checker = match part {
        Part::Checker => match thread::spawn_on(cpu, move || SHARE_ERRORS.store(check_shares(number), Relaxed)) {
            Ok(t) => Some(t),
            Err(e) => {
                println!("worker {number}: cannot start the checker thread: {e}");
                return 1;
            }
        },
        Part::Sharer => None,
    };
    let mut w = Worker { number, part, rng: Rng::new(number + 1), report: Report::default(), errors: 0 };
    for round in 0..ROUNDS {
        w.round(round);
        if round % 4 == 1 {
            w.lazy(round);
        }
    }
    if greedy {
        w.run_into_quota();
    }
    match part {
        Part::Sharer => {
            if let Err(e) = sys::call_ep(PEER, &Message::new(DONE, &[])) {
                w.error(format_args!("telling the partner we are done: {e}"));
            }
        }
        Part::Checker => {
            checker.into_iter().for_each(|t| t.join());
            w.errors += SHARE_ERRORS.load(Relaxed);
            w.report.shares = SHARES_CHECKED.load(Relaxed);
        }
    }
    // Everything freed: only the heap's pages stay (a heap never shrinks).
    let heap = user::heap::grown_bytes() / PAGE_SIZE;
    if let Ok(s) = mm::stats()
        && s.held != heap
    {
        w.error(format_args!("{} pages still held after freeing everything but the heap's {heap}", s.held));
    }
    let r = w.report;
    println!(
        "worker {number} on cpu {cpu} of {cpus}: {ROUNDS} rounds, {} regions, {} pages, {} lazy faults, {} shares, {} refusals",
        r.allocs, r.pages, r.faults, r.shares, r.refusals
    );
    if let Err(e) = sys::call_ep(PARENT, &Message::new(REPORT, &r.words())) {
        w.error(format_args!("reporting to init: {e}"));
    }
    (w.errors != 0) as i64
}
