//! `mm-quota`: a client with a small quota allocates until refused and
//! keeps hammering the server with requests beyond its quota, while
//! clients on the other CPUs do their rounds. Checks, by counts only:
//!
//! - the greedy client gets exactly its quota and then `QuotaExceeded`
//!   (never another error), and a page it frees lets it allocate one
//!   again, and only one;
//! - every other client completes its rounds while the greedy one hammers
//!   (the greedy one is told to stop only after they all finished), and
//!   between two consecutive rounds of any of them the greedy one made at
//!   most [`BOUND`] refused attempts: a server that served the greedy one
//!   at the others' expense would let it make many more;
//! - the server's per-CPU refusal counters went up by exactly the
//!   refusals the greedy client saw;
//! - at the end every page came back.

use crate::child::{Child, Role};
use crate::mm_util::{self, DONE, Kind, PROGRESS, Rng, tell};
use crate::msg::STOP;
use alloc::vec::Vec;
use user::abi::cap::{Handle, Rights};
use user::abi::handles::PARENT;
use user::abi::ipc::Message;
use user::abi::mem::MapFlags;
use user::mm::{self, Pages};
use user::{Error, check, check_eq, check_ok, println, sys, test};

/// The greedy client's quota, in pages.
const GREEDY_QUOTA: u64 = 48;
/// Refused attempts between two progress reports of the greedy client.
const REPORT_EVERY: u64 = 16;
/// Other clients, and the rounds each must complete.
const STEADY: usize = 3;
const STEADY_ROUNDS: u64 = 25;
/// Most refused attempts of the greedy client between two rounds of a
/// steady one. A round is a dozen requests and a few dozen page checks; the
/// greedy one's attempts are refused at once, on its own CPU.
const BOUND: u64 = 5_000;

/// Allocates single pages into `kept` until refused; returns the refusal.
fn fill_up(kept: &mut Vec<Pages>) -> Result<(), Error> {
    loop {
        match Pages::alloc(1, MapFlags::WRITE) {
            Ok(p) => kept.push(p),
            Err(e) => return Err(e),
        }
    }
}

/// The greedy role: allocates until refused, then keeps asking, reporting
/// its refusals every [`REPORT_EVERY`], until told to stop.
pub fn greedy(_: u16) -> i64 {
    let mut rng = Rng::new(0x9eed);
    let mut kept: Vec<Pages> = Vec::with_capacity(GREEDY_QUOTA as usize + 8);
    let mut refusals = 0u64;
    let quota = mm::stats().map_or(0, |s| s.quota);
    check_eq!(quota, GREEDY_QUOTA, "the greedy client's quota");
    // Random sizes first, then single pages to fill it exactly.
    loop {
        match Pages::alloc(1 + rng.below(6), MapFlags::WRITE) {
            Ok(p) => kept.push(p),
            Err(e) => {
                check_eq!(e, Error::QuotaExceeded, "the greedy client's first refusal");
                refusals += 1;
                break;
            }
        }
    }
    check_eq!(fill_up(&mut kept), Err(Error::QuotaExceeded), "filling the quota page by page ends in a refusal");
    refusals += 1;
    let held = mm::stats().map_or(0, |s| s.held);
    check_eq!(held, quota, "pages held when refused (its quota)");
    let mut stop = false;
    while !stop {
        for _ in 0..REPORT_EVERY {
            let r = Pages::alloc(1 + rng.below(4), MapFlags::WRITE).map(|p| kept.push(p));
            check_eq!(r, Err(Error::QuotaExceeded), "an allocation beyond the quota");
            refusals += 1;
        }
        match tell(PARENT, PROGRESS, &[refusals]) {
            Ok(m) => stop = m.info.label == STOP,
            Err(e) => return 100 + e.code() as i64,
        }
    }
    // Freeing a region makes room for exactly that much again.
    let smallest = (0..kept.len()).min_by_key(|&i| kept[i].pages()).map(|i| kept.swap_remove(i));
    if let Some(p) = check_ok!(smallest.ok_or(Error::NotFound), "a region to free") {
        let n = p.pages();
        check_ok!(p.free(), "free a region of {n} pages");
        let again = check_ok!(Pages::alloc(n, MapFlags::WRITE), "allocate {n} pages after freeing as many");
        kept.extend(again);
        check_eq!(Pages::alloc(1, MapFlags::WRITE).err(), Some(Error::QuotaExceeded), "and not one more");
        refusals += 1;
    }
    let held = mm::stats().map_or(0, |s| s.held);
    check_eq!(held, quota, "pages held at the end (its quota)");
    for p in kept.drain(..) {
        check_ok!(p.free(), "free a greedy region");
    }
    mm_util::holds_only_heap("the greedy client");
    let _ = tell(PARENT, DONE, &[refusals, held]);
    i64::from(test::failures() != 0)
}

/// The steady role: rounds of allocate/check/free and reserve/touch/free,
/// each reported.
pub fn steady(idx: u16) -> i64 {
    let tag = idx as u64 + 1;
    let mut rng = Rng::new(tag * 77);
    for round in 0..STEADY_ROUNDS {
        let n = 1 + rng.below(16);
        if let Some(p) = check_ok!(Pages::alloc(n, MapFlags::WRITE), "steady {tag}: allocate {n} pages") {
            mm_util::zeros(p.words(), tag, "a steady client's fresh pages");
            mm_util::fill(p.words(), Kind::Alloc, tag, round);
            mm_util::verify(p.words(), Kind::Alloc, tag, round, "a steady client's pages");
            check_ok!(p.free(), "steady {tag}: free");
        }
        if let Some(p) = check_ok!(Pages::reserve(n, MapFlags::WRITE), "steady {tag}: reserve {n} pages") {
            mm_util::zeros(p.words(), tag, "a steady client's lazy pages");
            mm_util::fill(p.words(), Kind::Lazy, tag, round);
            check_ok!(p.free(), "steady {tag}: free the reservation");
        }
        if let Err(e) = tell(PARENT, PROGRESS, &[round + 1]) {
            return 100 + e.code() as i64;
        }
    }
    mm_util::holds_only_heap("a steady client");
    let _ = tell(PARENT, DONE, &[STEADY_ROUNDS]);
    i64::from(test::failures() != 0)
}

fn refusals_now(cpus: u64) -> u64 {
    (0..cpus).map(|c| mm::cpu_stats(c).map_or(0, |s| s.refusals)).sum()
}

fn start(role: Role, idx: usize, report: Handle, badge: u64, cpu: u64, quota: u64) -> Option<Child> {
    let c = check_ok!(Child::create_with_quota(role, idx as u16, quota), "create {role:?} {idx}")?;
    let ok = sys::cap_mint(report, badge, Rights::SEND | Rights::GRANT)
        .and_then(|b| c.give(b, Rights::SEND, PARENT).and_then(|_| sys::cap_delete(b)))
        .and_then(|_| sys::thread_set_affinity(c.thread, Some(cpu)))
        .and_then(|()| sys::thread_start(c.thread));
    check_ok!(ok, "start {role:?} {idx} on cpu {cpu}")?;
    Some(c)
}

pub fn run() {
    let (_, cpus) = sys::cpu_info();
    if !check!(cpus >= 2, "mm-quota needs two CPUs, the machine has {cpus}") {
        return;
    }
    let Some(balance) = mm_util::balance("before") else {
        check!(false, "mm-quota needs the memory server");
        return;
    };
    let refused0 = refusals_now(cpus);
    let Some(report) = check_ok!(sys::endpoint_create(), "report endpoint") else { return };
    let Some(greedy) = start(Role::MmGreedy, 0, report, 100, 0, GREEDY_QUOTA) else { return };
    let mut steady: Vec<Child> = Vec::new();
    let steady_n = STEADY.min(cpus as usize - 1);
    // Greedy refusals at each steady client's last report, and the most
    // between two of its reports.
    let mut last = [0u64; STEADY];
    let mut worst = [0u64; STEADY];
    let mut rounds = [0u64; STEADY];
    let (mut greedy_refusals, mut at_first_round, mut done, mut greedy_done) = (0, None, 0, None);
    while greedy_done.is_none() {
        let Some(r) = check_ok!(sys::recv(report), "a report") else { break };
        let mut answer = Message::new(0, &[]);
        if r.badge == 100 {
            if r.msg.info.label == DONE {
                greedy_done = Some(r.msg.words);
            } else {
                greedy_refusals = r.msg.words[0];
                if steady.is_empty() {
                    // It is refused and hammering: start the others.
                    for (i, at) in last.iter_mut().enumerate().take(steady_n) {
                        steady.extend(start(Role::MmSteady, i, report, i as u64 + 1, 1 + i as u64, 4096));
                        *at = greedy_refusals;
                    }
                }
                if done == steady_n {
                    answer = Message::new(STOP, &[]);
                }
            }
        } else {
            let i = (r.badge as usize - 1).min(STEADY - 1);
            if r.msg.info.label == DONE {
                done += 1;
            } else {
                at_first_round.get_or_insert(greedy_refusals);
                rounds[i] = r.msg.words[0];
                worst[i] = worst[i].max(greedy_refusals - last[i]);
                last[i] = greedy_refusals;
            }
        }
        let _ = sys::reply(r.reply, &answer);
    }
    check_eq!(greedy.wait(), Ok(0), "the greedy client's exit code");
    for (i, c) in steady.iter().enumerate() {
        check_eq!(c.wait(), Ok(0), "steady client {i}: exit code");
        check_eq!(rounds[i], STEADY_ROUNDS, "steady client {i}: rounds done while the greedy one hammered");
        check!(
            worst[i] <= BOUND,
            "steady client {i}: at most {BOUND} greedy refusals between two of its rounds (got {})",
            worst[i]
        );
    }
    check_eq!(done, steady_n, "steady clients that finished");
    let [refusals, held, ..] = greedy_done.unwrap_or_default();
    let during = greedy_refusals - at_first_round.unwrap_or(greedy_refusals);
    check!(during > 0, "the greedy client was refused while the others ran ({during} times)");
    check_eq!(held, GREEDY_QUOTA, "the greedy client held its quota at the end");
    check_eq!(
        refusals_now(cpus) - refused0,
        refusals,
        "quota refusals the server counted = refusals the greedy client saw"
    );
    drop(steady);
    drop(greedy);
    let _ = sys::cap_delete(report);
    mm_util::check_returned(&balance, "mm-quota");
    println!(
        "a greedy client (quota {GREEDY_QUOTA} pages) was refused {refusals} times, {during} of them while {steady_n} others did {STEADY_ROUNDS} rounds each (at most {} refusals between two rounds)",
        worst.iter().max().unwrap_or(&0)
    );
}
