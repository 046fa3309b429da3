//! `mm-kill`: clients of the memory server killed at random points while
//! they loop on requests (allocate, touch, share, reserve and fault in,
//! free), from two threads on two CPUs, so kills land in the middle of
//! requests, faults and shootdowns. Checks that:
//!
//! - each victim ends with the kill's code, and the server forgets it
//!   (its exit notice handled: the client count comes back);
//! - every page the victims held comes back (books balanced, pages owned
//!   by clients and free pages back to their starting values), including
//!   regions they had shared into the survivors;
//! - survivors on the other CPUs keep being served throughout: each does
//!   its rounds (fresh pages zero, patterns intact) and is told to finish
//!   only after every kill, so all kills happen while they run.
//!
//! Victims share read-only into a survivor (its token at `mm_util::TOKEN`);
//! the survivors never look there, but the server must take those pages
//! out of them when the victim dies.

use crate::child::{Child, Role};
use crate::mm_util::{self, DONE, Kind, PROGRESS, Rng, TOKEN, tell};
use crate::msg::STOP;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use user::abi::cap::{Handle, Rights};
use user::abi::handles::PARENT;
use user::abi::ipc::Message;
use user::abi::mem::MapFlags;
use user::mm::{PAGE_WORDS, Pages};
use user::{check, check_eq, check_ok, println, sys, test, thread};

/// Victims killed in all, and alive at once.
const VICTIMS: usize = 24;
const AT_ONCE: usize = 4;
/// Survivors (one per CPU but the first, at most).
const SURVIVORS: usize = 3;
/// Rounds each survivor does at least.
const SURVIVOR_ROUNDS: u64 = 30;
/// The exit code victims are killed with.
const KILLED: i64 = 77;
/// Regions a victim keeps (so it dies holding some).
const KEEP: usize = 4;
/// Badges of the report endpoint: survivors `1..`, victims `VICTIM_BADGE..`.
const VICTIM_BADGE: u64 = 100;

/// The victim role: loops on requests until killed (never returns).
pub fn victim(idx: u16) -> i64 {
    let tag = VICTIM_BADGE + idx as u64;
    let (cpu, cpus) = sys::cpu_info();
    // A second thread faults lazily backed pages in meanwhile.
    let lazy = thread::spawn_on((cpu + 1) % cpus, move || lazy_loop(tag));
    if lazy.is_err() {
        return 3;
    }
    let mut rng = Rng::new(tag);
    let mut kept: Vec<(Pages, u64)> = Vec::with_capacity(KEEP + 1);
    for i in 0.. {
        let n = 1 + rng.below(16);
        if let Ok(p) = Pages::alloc(n, MapFlags::WRITE) {
            mm_util::zeros(p.words(), tag, "a victim's fresh pages");
            mm_util::fill(p.words(), Kind::Alloc, tag, i);
            if rng.below(2) == 0 {
                // The survivor may have finished: any answer will do.
                let _ = p.share(false, TOKEN);
            }
            kept.push((p, i));
        }
        if kept.len() > KEEP {
            let (p, r) = kept.remove(rng.below(KEEP as u64) as usize);
            mm_util::verify(p.words(), Kind::Alloc, tag, r, "a victim's kept region");
            let _ = p.free();
        }
        if i % 4 == 0 {
            let _ = tell(PARENT, PROGRESS, &[i]);
        }
    }
    unreachable!()
}

/// A victim's second thread: reserves, touches a random subset, keeps a
/// reservation or two.
fn lazy_loop(tag: u64) {
    let mut rng = Rng::new(tag ^ 0x1a27);
    let mut kept: Vec<Pages> = Vec::with_capacity(3);
    for round in 0.. {
        let n = 1 + rng.below(16);
        if let Ok(p) = Pages::reserve(n, MapFlags::WRITE) {
            let words = p.words();
            for _ in 0..1 + rng.below(n) {
                let page = rng.below(n) as usize;
                let w = &words[page * PAGE_WORDS..(page + 1) * PAGE_WORDS];
                let first = w[0].load(Ordering::Relaxed);
                check!(first == 0 || mm_util::tag_of(first) == Some(tag), "a victim's lazy page shows {first:#x}");
                w[0].store(mm_util::pattern(Kind::Lazy, tag, round, page as u64, 0), Ordering::Relaxed);
            }
            kept.push(p);
        }
        if kept.len() > 2 {
            let _ = kept.remove(0).free();
        }
    }
}

/// The survivor role: rounds of allocate/check/free and reserve/touch/free,
/// reporting each round, until told to finish; then checks it holds
/// nothing but its heap and reports its rounds.
pub fn survivor(idx: u16) -> i64 {
    let tag = idx as u64 + 1;
    let mut rng = Rng::new(tag * 31);
    let mut rounds = 0;
    loop {
        let n = 1 + rng.below(24);
        if let Some(p) = check_ok!(Pages::alloc(n, MapFlags::WRITE), "survivor {tag}: allocate {n} pages") {
            mm_util::zeros(p.words(), tag, "a survivor's fresh pages");
            mm_util::fill(p.words(), Kind::Alloc, tag, rounds);
            mm_util::verify(p.words(), Kind::Alloc, tag, rounds, "a survivor's pages");
            check_ok!(p.free(), "survivor {tag}: free");
        }
        let n = 1 + rng.below(8);
        if let Some(p) = check_ok!(Pages::reserve(n, MapFlags::WRITE), "survivor {tag}: reserve {n} pages") {
            mm_util::zeros(p.words(), tag, "a survivor's lazy pages");
            mm_util::fill(p.words(), Kind::Lazy, tag, rounds);
            mm_util::verify(p.words(), Kind::Lazy, tag, rounds, "a survivor's lazy pages");
            check_ok!(p.free(), "survivor {tag}: free the reservation");
        }
        rounds += 1;
        match tell(PARENT, PROGRESS, &[rounds]) {
            Ok(m) if m.info.label == STOP => break,
            Ok(_) => {}
            Err(e) => return 100 + e.code() as i64,
        }
    }
    mm_util::holds_only_heap("a survivor");
    let _ = tell(PARENT, DONE, &[rounds]);
    i64::from(test::failures() != 0)
}

/// What the report thread keeps.
struct Board {
    /// Progress reports of each victim.
    victims: [AtomicU64; VICTIMS],
    /// Rounds of each survivor.
    survivors: [AtomicU64; SURVIVORS],
    /// Every victim is dead: survivors may finish.
    kills_done: AtomicBool,
}

/// Answers the helpers' reports until every survivor reported DONE.
fn reports(ep: Handle, board: &Board, survivors: usize) {
    let mut done = 0;
    while done < survivors {
        let Ok(r) = sys::recv(ep) else {
            check!(false, "receive a report");
            return;
        };
        let mut answer = Message::new(0, &[]);
        if r.badge >= VICTIM_BADGE {
            if let Some(v) = board.victims.get((r.badge - VICTIM_BADGE) as usize) {
                v.fetch_add(1, Ordering::Relaxed);
            }
        } else if let Some(s) = board.survivors.get((r.badge as usize).wrapping_sub(1)) {
            if r.msg.info.label == DONE {
                done += 1;
            } else {
                s.store(r.msg.words[0], Ordering::Relaxed);
                if board.kills_done.load(Ordering::Relaxed) && r.msg.words[0] >= SURVIVOR_ROUNDS {
                    answer = Message::new(STOP, &[]);
                }
            }
        }
        // A victim may have been killed meanwhile.
        let _ = sys::reply(r.reply, &answer);
    }
}

/// Starts victim `idx`, pinned to a CPU, sharing into survivor token `token`.
fn start_victim(idx: usize, report: Handle, token: Handle, cpus: u64) -> Option<Child> {
    let c = check_ok!(Child::create(Role::MmVictim, idx as u16), "create victim {idx}")?;
    let ok = sys::cap_mint(report, VICTIM_BADGE + idx as u64, Rights::SEND | Rights::GRANT)
        .and_then(|b| c.give(b, Rights::SEND, PARENT).and_then(|_| sys::cap_delete(b)))
        .and_then(|()| c.give(token, Rights::GRANT, TOKEN))
        .and_then(|_| sys::thread_set_affinity(c.thread, Some(idx as u64 % cpus)))
        .and_then(|()| sys::thread_start(c.thread));
    check_ok!(ok, "start victim {idx}")?;
    Some(c)
}

pub fn run() {
    let (_, cpus) = sys::cpu_info();
    let Some(start) = mm_util::balance("before") else {
        check!(false, "mm-kill needs the memory server");
        return;
    };
    let Some(report) = check_ok!(sys::endpoint_create(), "report endpoint") else { return };
    let board = Arc::new(Board {
        victims: core::array::from_fn(|_| AtomicU64::new(0)),
        survivors: core::array::from_fn(|_| AtomicU64::new(0)),
        kills_done: AtomicBool::new(false),
    });
    let survivors_n = SURVIVORS.min(cpus.max(2) as usize - 1);
    let b = board.clone();
    let Some(reporter) = check_ok!(thread::spawn(move || reports(report, &b, survivors_n)), "report thread")
    else {
        return;
    };
    let mut survivors = Vec::new();
    for i in 0..survivors_n {
        let Some(c) = check_ok!(Child::create(Role::MmSurvivor, i as u16), "create survivor {i}") else { return };
        let ok = sys::cap_mint(report, i as u64 + 1, Rights::SEND | Rights::GRANT)
            .and_then(|b| c.give(b, Rights::SEND, PARENT).and_then(|_| sys::cap_delete(b)))
            .and_then(|_| sys::thread_set_affinity(c.thread, Some(1 + i as u64 % (cpus - 1).max(1))))
            .and_then(|()| sys::thread_start(c.thread));
        check_ok!(ok, "start survivor {i}");
        survivors.push(c);
    }
    let token = |i: usize| survivors[i % survivors.len()].memory.map_or(Handle::NONE, |m| m.1);
    let mut rng = Rng::new(0x6b11);
    let mut live: Vec<(Child, usize, u64)> = Vec::new();
    let mut started = 0;
    let mut rounds_during = [0u64; SURVIVORS];
    for (i, r) in rounds_during.iter_mut().enumerate().take(survivors_n) {
        *r = board.survivors[i].load(Ordering::Relaxed);
    }
    for killed in 0..VICTIMS {
        while live.len() < AT_ONCE && started < VICTIMS {
            if let Some(c) = start_victim(started, report, token(started), cpus) {
                live.push((c, started, 1 + rng.below(4)));
            }
            started += 1;
        }
        if live.is_empty() {
            break;
        }
        let (child, idx, threshold) = live.swap_remove(rng.below(live.len() as u64) as usize);
        // Until it has reported `threshold` times, then a random while more.
        let mut tries = 0u64;
        while board.victims[idx].load(Ordering::Relaxed) < threshold && tries < 1_000_000 {
            sys::yield_now();
            tries += 1;
        }
        for _ in 0..rng.below(64) {
            sys::yield_now();
        }
        check_ok!(sys::task_kill(child.task, KILLED), "kill victim {idx} (kill {killed})");
        check_eq!(child.wait(), Ok(KILLED), "victim {idx}: exit code");
        check!(
            board.victims[idx].load(Ordering::Relaxed) >= threshold,
            "victim {idx} made {threshold} reports before its kill"
        );
    }
    for (i, r) in rounds_during.iter_mut().enumerate().take(survivors_n) {
        *r = board.survivors[i].load(Ordering::Relaxed) - *r;
    }
    board.kills_done.store(true, Ordering::Relaxed);
    reporter.join();
    for (i, c) in survivors.iter().enumerate() {
        check_eq!(c.wait(), Ok(0), "survivor {i}: exit code");
        let rounds = board.survivors[i].load(Ordering::Relaxed);
        check!(rounds >= SURVIVOR_ROUNDS, "survivor {i} did {rounds} rounds, at least {SURVIVOR_ROUNDS}");
        check!(rounds_during[i] > 0, "survivor {i} was served while the victims died ({} rounds)", rounds_during[i]);
    }
    drop(survivors);
    let _ = sys::cap_delete(report);
    mm_util::check_returned(&start, "mm-kill");
    println!(
        "{VICTIMS} clients killed mid-request ({AT_ONCE} at once); {survivors_n} survivors were served meanwhile ({rounds_during:?} rounds during the kills); every page came back"
    );
}
