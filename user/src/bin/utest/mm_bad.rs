//! `mm-bad`: every kind of malformed request to the memory server gets its
//! documented error and changes nothing, and the server keeps serving.
//!
//! Each bad request is sent raw (label, words, capability) from this task,
//! which is a client; before and after it the test reads this task's
//! account and the server's books, which must not move. The kinds:
//! unknown labels (and the kernel's own labels, called or sent), kernel,
//! non-canonical, unaligned, wrapping and out-of-window addresses, zero and
//! huge page counts, unknown flag bits, writable+executable, LARGE or
//! CONTIGUOUS where refused, ranges running past their region or spanning
//! two, parts of a shared region, misaligned parts of a large one,
//! never-allocated and double frees, shares
//! with no token, with a capability that is no share token (another
//! endpoint, an address space, the unbadged registering capability, this
//! task's own), with a token lacking GRANT and with a dead client's token,
//! shares of untouched lazy pages, read-write shares of read-only pages,
//! and registrations from a client or with a bad address space.
//!
//! The parts of regions that may be freed are freed: the middle, head and
//! tail of allocated, lazily backed, contiguous and large regions, each
//! time with the rest still mapped with its contents and the account
//! following.
//!
//! Then tasks that break the rules of their own memory die with the
//! page-fault diagnostic (exit code -15): writing a lazily reserved
//! read-only page (after reading it, and before), or touching a region
//! after freeing it (an address in no region).

use crate::child::{Child, Role, SURVIVED};
use crate::mm_util::{self, Kind};
use core::sync::atomic::{AtomicU64, Ordering};
use user::abi::cap::{Handle, Rights};
use user::abi::handles::{MEMORY, MEMORY_CONTROL, SELF_SPACE};
use user::abi::ipc::{Message, kernel_label};
use user::abi::mem::MapFlags;
use user::abi::mm::{ALLOC_END, MAX_REQUEST_PAGES, Request, reply_status};
use user::mm::{self, Pages};
use user::{Error, check, check_eq, check_ok, println, sys};


/// A request as raw words: what a malicious client can send.
fn raw(label: u32, words: &[u64], cap: Handle) -> Result<[u64; 6], Error> {
    let reply = sys::call_ep(MEMORY, &Message::new(label, words).with_cap(cap))?;
    reply_status(reply.info.label)?;
    if reply.info.has_cap {
        let _ = sys::cap_delete(reply.cap);
    }
    Ok(reply.words)
}

/// What must not change: this task's account and the server's books.
fn snapshot() -> (u64, u64, u64, u64, u64) {
    let s = mm::stats().unwrap_or_default();
    let b = mm::books().unwrap_or_default();
    (s.held, s.faults, b.owned, b.free + b.server, b.clients)
}

/// Bad requests made.
static MADE: AtomicU64 = AtomicU64::new(0);

/// Sends one bad request and checks its error and that nothing changed.
#[track_caller]
fn bad(what: &str, label: u32, words: &[u64], cap: Handle, want: Error) {
    MADE.fetch_add(1, Ordering::Relaxed);
    let before = snapshot();
    let got = raw(label, words, cap);
    let after = snapshot();
    check_eq!(got.err(), Some(want), "{what}");
    check_eq!(after, before, "{what}: (held, faults, owned, free + server, clients) unchanged");
}

const ALLOC: u32 = Request::Alloc as u32;
const FREE: u32 = Request::Free as u32;
const PROTECT: u32 = Request::Protect as u32;
const RESERVE: u32 = Request::Reserve as u32;
const SHARE: u32 = Request::Share as u32;
const REGISTER: u32 = Request::RegisterClient as u32;
const RW: u64 = MapFlags::WRITE.bits();
const RX: u64 = MapFlags::EXEC.bits();
const WX: u64 = RW | RX;
const LARGE: u64 = MapFlags::LARGE.bits();
const CONTIG: u64 = MapFlags::CONTIGUOUS.bits();
const ZERO: u64 = MapFlags::ZERO.bits();
const NONE: Handle = Handle::NONE;
const PAGE: u64 = 4096;
/// An address in the allocation window the server never hands out here
/// (it allocates from the bottom; this task's heap is there).
const NEVER: u64 = ALLOC_END - 64 * PAGE;

fn labels() {
    for label in [0, 10, 15, 17, 0x3000, 0xfffe_ffff, u32::MAX] {
        bad("an unknown label", label, &[1, RW], NONE, Error::InvalidArgument);
    }
    // The kernel's own labels: the kernel refuses them from a task (a
    // forged exit notice or fault would make the server forget a client
    // or map for it).
    for (label, name) in [(kernel_label::TASK_EXIT, "exit notice"), (kernel_label::FAULT, "fault")] {
        bad(&alloc::format!("the kernel's {name} label, called"), label, &[1, 0], NONE, Error::InvalidArgument);
        MADE.fetch_add(1, Ordering::Relaxed);
        let before = snapshot();
        let sent = sys::send(MEMORY, &Message::new(label, &[1, 0]));
        check_eq!(sent, Err(Error::InvalidArgument), "the kernel's {name} label, sent");
        check_eq!(snapshot(), before, "the kernel's {name} label, sent: nothing changed");
    }
}

fn counts_and_flags() {
    for (label, name) in [(ALLOC, "alloc"), (RESERVE, "reserve")] {
        bad(name, label, &[0, RW], NONE, Error::InvalidArgument);
        bad(name, label, &[MAX_REQUEST_PAGES + 1, RW], NONE, Error::OutOfRange);
        bad(name, label, &[u64::MAX, RW], NONE, Error::OutOfRange);
        bad(name, label, &[1, WX], NONE, Error::WriteExecute);
        bad(name, label, &[1, 1 << 5], NONE, Error::InvalidArgument);
        bad(name, label, &[1, 1 << 63], NONE, Error::InvalidArgument);
    }
    bad("alloc of 513 large pages (1 GiB is the most)", ALLOC, &[513, RW | LARGE], NONE, Error::OutOfRange);
    bad("alloc of u64::MAX / 2 large pages (overflows)", ALLOC, &[u64::MAX / 2, RW | LARGE], NONE, Error::OutOfRange);
    bad("reserve with LARGE", RESERVE, &[1, RW | LARGE], NONE, Error::InvalidArgument);
    bad("reserve with CONTIGUOUS", RESERVE, &[1, RW | CONTIG], NONE, Error::InvalidArgument);
    // Within the size limit but beyond this task's quota.
    let quota = mm::stats().map_or(0, |s| s.quota);
    if quota < MAX_REQUEST_PAGES {
        bad("alloc beyond the quota", ALLOC, &[quota + 1, RW], NONE, Error::QuotaExceeded);
        bad("reserve beyond the quota", RESERVE, &[quota + 1, RW], NONE, Error::QuotaExceeded);
    }
}

/// Addresses and ranges: every request that names one.
fn addresses(a: &Pages, b: &Pages) {
    let cases: [(&str, u64, u64, Error); 10] = [
        ("a kernel address", 0xffff_8000_0000_0000, 1, Error::BadAddress),
        ("a range that wraps past the top", 0xffff_ffff_ffff_c000, 8, Error::BadAddress),
        ("a non-canonical address", 0x0000_8000_0000_0000, 1, Error::BadAddress),
        ("an address below the window", 0x40_0000, 1, Error::BadAddress),
        ("address 0", 0, 1, Error::BadAddress),
        ("a range crossing the window's end", ALLOC_END - PAGE, 2, Error::BadAddress),
        ("an unaligned address", a.addr() + 8, 1, Error::Misaligned),
        ("zero pages", a.addr(), 0, Error::InvalidArgument),
        ("more pages than a request may name", a.addr(), MAX_REQUEST_PAGES + 1, Error::OutOfRange),
        ("a huge page count", a.addr(), u64::MAX / PAGE + 2, Error::OutOfRange),
    ];
    for (what, addr, pages, want) in cases {
        bad(&alloc::format!("free of {what}"), FREE, &[addr, pages], NONE, want);
        bad(&alloc::format!("protect of {what}"), PROTECT, &[addr, pages, 0], NONE, want);
        bad(&alloc::format!("share of {what}"), SHARE, &[addr, pages, 0], MEMORY, want);
    }
    let (at, n) = (a.addr(), a.pages());
    bad("free of a never-allocated range", FREE, &[NEVER, 1], NONE, Error::NotFound);
    bad("free of a range running past its region", FREE, &[at + PAGE, n], NONE, Error::NotFound);
    bad("free of a range spanning two regions", FREE, &[at, n + b.pages()], NONE, Error::NotFound);
    bad("free of more than the region", FREE, &[at, n + 1], NONE, Error::NotFound);
    bad("protect of a range running past its region", PROTECT, &[at + PAGE, n, 0], NONE, Error::NotFound);
    bad("protect of a never-allocated range", PROTECT, &[NEVER, 1, 0], NONE, Error::NotFound);
    bad("protect to writable+executable", PROTECT, &[at, n, WX], NONE, Error::WriteExecute);
    bad("protect with an unknown flag", PROTECT, &[at, n, 1 << 7], NONE, Error::InvalidArgument);
    for (flag, name) in [(LARGE, "LARGE"), (CONTIG, "CONTIGUOUS"), (ZERO, "ZERO")] {
        bad(&alloc::format!("protect with {name}"), PROTECT, &[at, n, RW | flag], NONE, Error::InvalidArgument);
    }
}

/// Shares: tokens and regions.
fn shares(a: &Pages, partner: &Child, dead_token: Handle) {
    let (at, n) = (a.addr(), a.pages());
    let Some((_, token)) = partner.memory else { return };
    bad("share with no token", SHARE, &[at, n, 0], NONE, Error::InvalidArgument);
    bad("share with an unknown flag", SHARE, &[at, n, RX], token, Error::InvalidArgument);
    if let Some(ep) = check_ok!(sys::endpoint_create(), "an endpoint that is no token") {
        bad("share with another endpoint as the token", SHARE, &[at, n, 0], ep, Error::InvalidArgument);
        let _ = sys::cap_delete(ep);
    }
    bad("share with an address space as the token", SHARE, &[at, n, 0], SELF_SPACE, Error::InvalidArgument);
    bad("share with the unbadged capability as the token", SHARE, &[at, n, 0], MEMORY_CONTROL, Error::InvalidArgument);
    bad("share with this task's own token", SHARE, &[at, n, 0], MEMORY, Error::InvalidArgument);
    if let Some(no_grant) = check_ok!(sys::cap_copy(token, Rights::SEND), "a token without GRANT") {
        bad("share with a token lacking GRANT", SHARE, &[at, n, 0], no_grant, Error::InsufficientRights);
        let _ = sys::cap_delete(no_grant);
    }
    // The server revoked it: the kernel refuses to send it (its slot is
    // empty, or holds something newer).
    MADE.fetch_add(1, Ordering::Relaxed);
    let before = snapshot();
    let got = raw(SHARE, &[at, n, 0], dead_token).err();
    check!(
        matches!(got, Some(Error::InvalidHandle | Error::StaleHandle)),
        "share with a dead client's token: got {got:?}, expected InvalidHandle or StaleHandle"
    );
    check_eq!(snapshot(), before, "share with a dead client's token: nothing changed");
    bad("share of part of a region", SHARE, &[at, n - 1, 0], token, Error::InvalidArgument);
    bad("share of a never-allocated range", SHARE, &[NEVER, 1, 0], token, Error::NotFound);
}

/// Regions of particular kinds: lazy ones untouched or partly touched,
/// read-only ones.
fn special_regions(partner: &Child) {
    let Some((_, token)) = partner.memory else { return };
    if let Some(lazy) = check_ok!(Pages::reserve(3, MapFlags::WRITE), "reserve 3 lazy pages") {
        let (at, n) = (lazy.addr(), lazy.pages());
        bad("share of an untouched lazy region", SHARE, &[at, n, 0], token, Error::NotMapped);
        bad("protect of part of a lazy region", PROTECT, &[at, 1, 0], NONE, Error::InvalidArgument);
        lazy.words()[PAGE as usize / 8].store(7, Ordering::Relaxed);
        bad("share of a partly touched lazy region", SHARE, &[at, n, 0], token, Error::NotMapped);
        check_ok!(lazy.free(), "free the lazy region");
    }
    if let Some(ro) = check_ok!(Pages::alloc(2, MapFlags::empty()), "allocate 2 read-only pages") {
        bad("a read-write share of read-only pages", SHARE, &[ro.addr(), 2, RW], token, Error::InsufficientRights);
        check_ok!(ro.share(false, token), "a read-only share of them");
        bad("free of part of a shared region", FREE, &[ro.addr(), 1], NONE, Error::Busy);
        check_ok!(ro.free(), "free them (and the share)");
    }
}

/// A word that names its page: what a page must still hold after a
/// neighbouring part of its region was freed.
fn page_mark(page: u64) -> u64 {
    mm_util::pattern(Kind::Marker, 0, 0, page, 0)
}

/// Marks the first word of each page in `pages` of `p`.
fn mark(p: &Pages, pages: core::ops::Range<u64>) {
    for page in pages {
        p.words()[(page * PAGE / 8) as usize].store(page_mark(page), Ordering::Relaxed);
    }
}

/// Checks the marks of `pages` of `p`.
fn marked(p: &Pages, pages: &[u64], what: &str) {
    for &page in pages {
        let got = p.words()[(page * PAGE / 8) as usize].load(Ordering::Relaxed);
        check_eq!(got, page_mark(page), "{what}: page {page} keeps its contents");
    }
}

fn held() -> u64 {
    mm::stats().map_or(0, |s| s.held)
}

/// Frees the middle, then the head, then the tail of region `p` (8 pages,
/// or `unit`-page steps of a large region), checking what stays.
fn free_in_parts(p: Pages, unit: u64, what: &str) {
    let (at, n) = (p.addr(), p.pages());
    let before = held();
    let page = |i: u64| at + i * unit * PAGE;
    check_ok!(mm::free_pages(page(2), 3 * unit), "{what}: free its middle");
    check_eq!(held(), before - 3 * unit, "{what}: the middle is no longer charged");
    // The freed frames go to the next allocation, zeroed and filled: had
    // the server let go of a frame still mapped in the rest of the
    // region, a mark there would be lost.
    if let Some(next) = check_ok!(Pages::alloc(3 * unit, MapFlags::WRITE), "{what}: allocate again") {
        next.words().iter().for_each(|w| w.store(u64::MAX, Ordering::Relaxed));
        check_ok!(next.free(), "{what}: free that again");
    }
    marked(&p, &[0, unit, 5 * unit, 7 * unit], what);
    bad(&alloc::format!("{what}: the freed middle again"), FREE, &[page(2), 3 * unit], NONE, Error::NotFound);
    check_ok!(mm::free_pages(at, 2 * unit), "{what}: free its head");
    marked(&p, &[5 * unit, 7 * unit], what);
    check_ok!(mm::free_pages(page(5), 3 * unit), "{what}: free its tail");
    check_eq!(held(), before - n, "{what}: nothing left charged");
    // Every part went back through the server.
    core::mem::forget(p);
}

/// Parts of regions freed on their own.
fn partial_frees() {
    if let Some(p) = check_ok!(Pages::alloc(8, MapFlags::WRITE), "allocate 8 pages to free in parts") {
        mark(&p, 0..8);
        free_in_parts(p, 1, "an allocated region");
    }
    if let Some(p) = check_ok!(Pages::reserve(8, MapFlags::WRITE), "reserve 8 lazy pages to free in parts") {
        // Pages on both sides of each cut are touched; the others stay lazy.
        mark(&p, 0..2);
        mark(&p, 5..8);
        free_in_parts(p, 1, "a lazily backed region");
    }
    match Pages::alloc(8, MapFlags::WRITE | MapFlags::CONTIGUOUS) {
        Ok(p) => {
            mark(&p, 0..8);
            free_in_parts(p, 1, "a contiguous region");
        }
        Err(e) => println!("partial frees: no 8 contiguous pages ({e:?}); that case skipped"),
    }
    match Pages::alloc(8, MapFlags::WRITE | MapFlags::LARGE) {
        Ok(p) => {
            bad("free of part of a 2 MiB page", FREE, &[p.addr() + PAGE, 1], NONE, Error::Misaligned);
            for large in 0..8 {
                mark(&p, large * 512..large * 512 + 1);
            }
            free_in_parts(p, 512, "a large region");
        }
        Err(e) => println!("partial frees: no 8 free 2 MiB pages ({e:?}); that case skipped"),
    }
    println!("partial frees: the middle, head and tail of regions freed apart, the rest intact");
}

fn registration() {
    bad("registration from a client", REGISTER, &[16], SELF_SPACE, Error::InsufficientRights);
    let control = |what: &str, words: &[u64], cap: Handle, want: Error| {
        MADE.fetch_add(1, Ordering::Relaxed);
        let before = snapshot();
        let got = sys::call_ep(MEMORY_CONTROL, &Message::new(REGISTER, words).with_cap(cap)).map(|r| r.info.label);
        check_eq!(got.map(|l| reply_status(l).err()), Ok(Some(want)), "{what}");
        check_eq!(snapshot(), before, "{what}: nothing changed");
    };
    control("registration with quota 0", &[0], SELF_SPACE, Error::InvalidArgument);
    control("registration without an address space", &[16], NONE, Error::InvalidArgument);
    control("registration of an address space without MAP", &[16], SELF_SPACE, Error::InsufficientRights);
    if let Some(ep) = check_ok!(sys::endpoint_create(), "an endpoint") {
        control("registration of an endpoint as the address space", &[16], ep, Error::WrongKind);
        let _ = sys::cap_delete(ep);
    }
}

/// A token whose client has died (and been forgotten by the server).
fn dead_token() -> Handle {
    let Some(c) = check_ok!(Child::create(Role::Exit, 0), "create a client to die") else { return NONE };
    let clients = mm::books().map_or(0, |b| b.clients);
    let token = c.memory.map_or(NONE, |m| m.1);
    check_ok!(sys::thread_start(c.thread), "start it");
    check_eq!(c.wait(), Ok(0), "its exit code");
    let now = mm_util::await_clients(clients - 1);
    check_eq!(now, clients - 1, "the server forgot the dead client");
    token
}

/// The helper that breaks its own memory's rules (`how`); returns only if
/// the access was allowed.
pub fn fault(how: u16) -> i64 {
    match how {
        0 | 1 => {
            let Ok(p) = Pages::reserve(1, MapFlags::empty()) else { return 2 };
            if how == 0 {
                let v = p.words()[0].load(Ordering::Relaxed);
                if v != 0 {
                    println!("a fresh read-only lazy page reads {v:#x}");
                    return 3;
                }
            }
            p.words()[0].store(1, Ordering::Relaxed);
            println!("wrote a read-only lazy page without a fault");
        }
        2 => {
            let Ok(p) = Pages::alloc(2, MapFlags::WRITE) else { return 2 };
            mm_util::fill(p.words(), Kind::Alloc, 9, 0);
            if mm::free_pages(p.addr(), p.pages()).is_err() {
                return 4;
            }
            let v = p.words()[PAGE as usize / 8].load(Ordering::Relaxed);
            println!("read {v:#x} in a freed region without a fault");
        }
        _ => return 2,
    }
    SURVIVED
}

pub fn run() {
    if !check!(
        mm::stats().is_ok() && sys::cap_info(MEMORY_CONTROL).is_ok(),
        "mm-bad needs the memory server and its control"
    ) {
        return;
    }
    let start = mm_util::balance("before");
    // A client that never runs: a share target whose memory nobody touches.
    let Some(partner) = check_ok!(Child::create(Role::Exit, 0), "create a share partner (never started)") else {
        return;
    };
    let dead = dead_token();
    let a = check_ok!(Pages::alloc(4, MapFlags::WRITE), "allocate region a (4 pages)");
    let b = check_ok!(Pages::alloc(2, MapFlags::WRITE), "allocate region b (2 pages)");
    let (Some(a), Some(b)) = (a, b) else { return };
    labels();
    counts_and_flags();
    addresses(&a, &b);
    shares(&a, &partner, dead);
    special_regions(&partner);
    registration();
    partial_frees();
    let made = MADE.load(Ordering::Relaxed);
    // Still serving, and the regions are still intact and whole.
    mm_util::fill(a.words(), Kind::Alloc, 1, 1);
    check_ok!(a.share(true, partner.memory.map_or(NONE, |m| m.1)), "a good share after the bad requests");
    let (at, n) = (a.addr(), a.pages());
    check_ok!(a.free(), "free region a");
    bad("a double free", FREE, &[at, n], NONE, Error::NotFound);
    check_ok!(b.free(), "free region b");
    check_ok!(sys::task_kill(partner.task, 0), "end the partner");
    check_eq!(partner.wait(), Ok(0), "the partner's exit code");
    drop(partner);
    println!("{made} bad requests: each refused with its documented error, nothing changed, the server serves on");
    faulting();
    if let Some(start) = start {
        mm_util::check_returned(&start, "mm-bad");
    }
}

/// Helpers that break their memory's rules die with the page-fault code.
fn faulting() {
    let ways: [(u16, &str); 3] = [
        (0, "writes a read-only lazy page it read"),
        (1, "writes a read-only lazy page first"),
        (2, "touches a region it freed"),
    ];
    for (how, what) in ways {
        let Some(c) = check_ok!(Child::create(Role::MmFault, how), "create the helper that {what}") else { continue };
        check_ok!(sys::thread_start(c.thread), "start the helper that {what}");
        check_eq!(c.wait(), Ok(-15), "exit code of the helper that {what}");
        println!("the helper that {what} died with the page-fault code");
    }
}
