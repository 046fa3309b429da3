//! `caps`: rights only shrink, for every kind of object this task can get
//! (copies to each subset work and show exactly those rights; asking for
//! any right not held fails; passing a capability on needs GRANT); each
//! call needs its right; revocation removes every descendant in every
//! task; stale handles are recognised.

use crate::cap_server::Remote;
use crate::child::{Child, Role};
use crate::msg::label;
use user::abi::cap::{Handle, Kind, Rights};
use user::abi::handles::{MACHINE, MODULES, PARENT, PHYS_FIRST, SELF_SPACE, SELF_TASK, SELF_THREAD};
use user::abi::ipc::Message;
use user::abi::mem::MapFlags;
use user::thread;
use user::{Error, check, check_eq, check_err, check_ok, println, sys};

/// Every subset of `r`.
fn subsets(r: Rights) -> impl Iterator<Item = Rights> {
    let bits = r.bits();
    // Enumerate the sub-masks of `bits` (including 0 and `bits`).
    let mut next = Some(bits);
    core::iter::from_fn(move || {
        let cur = next?;
        next = if cur == 0 { None } else { Some((cur - 1) & bits) };
        Some(Rights::from_bits_truncate(cur))
    })
}

pub fn run() {
    let Some(sink) = check_ok!(sys::endpoint_create(), "an endpoint nobody receives on") else { return };
    // A task may only look at its own address space (its mappings are the
    // memory server's business); a child's, as its creator gets it, has
    // every right, so that is where the address-space rights are tried.
    check_eq!(sys::cap_info(SELF_SPACE).map(|i| i.1), Ok(Rights::READ | Rights::GRANT), "our own address space: READ and GRANT only");
    check_err!(sys::cap_copy(SELF_SPACE, Rights::MAP), Error::InsufficientRights, "gain MAP on our own address space");
    check_err!(sys::mem_unmap(SELF_SPACE, 0x7000_0000_0000, 1), Error::InsufficientRights, "change our own mappings");
    let Some(child) = check_ok!(Child::create(Role::Hold, 0), "a child task (never started)") else { return };
    let space = child.space;
    let mut kinds = 0;
    let mut copies = 0;
    let sources: [(&str, Handle, Kind); 6] = [
        ("thread", SELF_THREAD, Kind::Thread),
        ("task", SELF_TASK, Kind::Task),
        ("address space", space, Kind::AddressSpace),
        ("modules", MODULES, Kind::Modules),
        ("machine", MACHINE, Kind::Machine),
        ("endpoint", sink, Kind::Endpoint),
    ];
    for (what, h, kind) in sources {
        if h == MACHINE && sys::cap_info(MACHINE).is_err() {
            println!("no machine capability given: its part is skipped");
            continue;
        }
        copies += only_shrink(what, h, kind, sink);
        kinds += 1;
    }
    // A reply capability: receive a call from a thread of ours.
    if let Some(q) = check_ok!(sys::endpoint_create(), "endpoint for a call") {
        if let Some(caller) = check_ok!(
            thread::spawn(move || {
                check_eq!(sys::call_ep(q, &label(5)).map(|m| m.words[0]), Ok(55), "the call is answered once");
            }),
            "start a caller"
        ) {
            if let Some(r) = check_ok!(sys::recv(q), "receive the call") {
                copies += only_shrink("reply", r.reply, Kind::Reply, sink);
                kinds += 1;
                let weak = sys::cap_copy(r.reply, Rights::GRANT).unwrap_or_default();
                check_err!(
                    sys::reply(weak, &Message::new(1, &[1])),
                    Error::InsufficientRights,
                    "answer with a reply capability lacking SEND"
                );
                let copy = sys::cap_copy(r.reply, Rights::SEND).unwrap_or_default();
                check_ok!(sys::reply(r.reply, &Message::new(1, &[55])), "answer the call");
                check_err!(
                    sys::reply(copy, &Message::new(1, &[66])),
                    Error::PeerDied,
                    "answer the same call through a copy"
                );
                let _ = sys::cap_delete(weak);
            }
            caller.join();
        }
        // Deleting an unanswered reply capability releases the caller.
        if let Some(caller) = check_ok!(
            thread::spawn(move || {
                check_err!(sys::call_ep(q, &label(6)), Error::PeerDied, "a call whose reply capability was deleted");
            }),
            "start a caller"
        ) {
            if let Some(r) = check_ok!(sys::recv(q), "receive the call") {
                check_ok!(sys::cap_delete(r.reply), "delete the reply capability");
            }
            caller.join();
        }
        let _ = sys::cap_delete(q);
    }
    println!(
        "rights only shrink: {kinds} kinds, {copies} copies checked (physical memory: no capability to test with)"
    );
    each_call_needs_its_right(sink, space);
    check_ok!(sys::task_set_pager(child.task, sink), "make an endpoint the child's pager");
    check_ok!(sys::task_set_pager(child.task, Handle::NONE), "handle 0 as the pager: no pager");
    check_err!(sys::task_set_pager(child.task, SELF_THREAD), Error::WrongKind, "a thread as the pager");
    let _ = sys::task_kill(child.task, 0);
    revoke_across_tasks();
    stale_handles();
    give_rules();
    let _ = sys::cap_delete(sink);
}

/// Copies `src` (a `kind` capability with all the rights that mean
/// something for its kind) to every subset of its rights, and from each
/// copy to every smaller subset; asks for every right not held; passes
/// copies on with and without GRANT. Returns how many copies it made.
fn only_shrink(what: &str, src: Handle, kind: Kind, sink: Handle) -> u64 {
    let all = kind.meaningful_rights();
    if !check_eq!(sys::cap_info(src), Ok((kind, all, 0)), "{what}: the source capability") {
        return 0;
    }
    let mut copies = 0;
    for r in subsets(all) {
        let Some(c) = check_ok!(sys::cap_copy(src, r), "{what}: copy with {r:?}") else { continue };
        copies += 1;
        check_eq!(sys::cap_info(c), Ok((kind, r, 0)), "{what}: rights of a copy with {r:?}");
        for r2 in subsets(r) {
            if let Some(c2) = check_ok!(sys::cap_copy(c, r2), "{what}: copy {r:?} to {r2:?}") {
                copies += 1;
                check_eq!(sys::cap_info(c2), Ok((kind, r2, 0)), "{what}: rights of a copy of a copy, {r:?} to {r2:?}");
                check_ok!(sys::cap_delete(c2), "{what}: delete a copy");
            }
        }
        for bit in Rights::all().iter() {
            if !r.contains(bit) {
                check_err!(
                    sys::cap_copy(c, r | bit),
                    Error::InsufficientRights,
                    "{what}: copy {r:?} asking for {bit:?} too"
                );
            }
        }
        check_err!(
            sys::cap_copy(c, Rights::all()),
            Error::InsufficientRights,
            "{what}: copy {r:?} asking for every right"
        );
        let unknown =
            sys::raw_syscall(user::abi::syscall::Sys::CapCopy as u64, [c.raw(), r.bits() | 1 << 8, 0, 0, 0, 0])[0];
        check_eq!(unknown, Error::InvalidArgument.code(), "{what}: copy {r:?} with an unknown rights bit");
        if r.contains(Rights::GRANT) {
            if let Some(g) = check_ok!(sys::cap_give(SELF_TASK, c, r, 0), "{what}: give a copy with {r:?}") {
                check_eq!(sys::cap_info(g), Ok((kind, r, 0)), "{what}: rights of a given copy");
                if r != all {
                    check_err!(
                        sys::cap_give(SELF_TASK, c, all, 0),
                        Error::InsufficientRights,
                        "{what}: give {r:?} as more rights"
                    );
                }
                let _ = sys::cap_delete(g);
            }
        } else {
            check_err!(
                sys::cap_give(SELF_TASK, c, r, 0),
                Error::InsufficientRights,
                "{what}: give a copy without GRANT ({r:?})"
            );
            check_err!(
                sys::send(sink, &label(1).with_cap(c)),
                Error::InsufficientRights,
                "{what}: send a copy without GRANT ({r:?})"
            );
        }
        check_ok!(sys::cap_delete(c), "{what}: delete the copy");
    }
    copies
}

/// Every call checks the right it needs: each capability below lacks
/// exactly that right and is refused; with only that right it works.
fn each_call_needs_its_right(sink: Handle, space: Handle) {
    let copy = |h: Handle, r: Rights| sys::cap_copy(h, r).unwrap_or_default();
    let no = Error::InsufficientRights;
    // Endpoints.
    let ep = copy(sink, Rights::RECEIVE | Rights::GRANT);
    check_err!(sys::send(ep, &label(1)), no, "send without SEND");
    check_err!(sys::call_ep(ep, &label(1)), no, "call without SEND");
    let ep2 = copy(sink, Rights::SEND | Rights::GRANT);
    check_err!(sys::recv(ep2), no, "receive without RECEIVE");
    check_err!(sys::reply_recv(ep2, Handle::NONE, &label(1)), no, "reply-and-receive without RECEIVE");
    // Tasks.
    let task = copy(SELF_TASK, Rights::GRANT);
    check_err!(sys::task_wait(task), no, "wait for a task without CONTROL");
    check_err!(sys::task_kill(task, 1), no, "kill a task without CONTROL");
    check_err!(sys::thread_create(task, 0x40_0000, 0x7000_0000, 0), no, "create a thread without CONTROL");
    check_err!(sys::cap_give(task, sink, Rights::SEND, 0), no, "give to a task without CONTROL");
    check_err!(sys::task_set_pager(task, sink), no, "set a pager without CONTROL");
    // Threads.
    let th = copy(SELF_THREAD, Rights::GRANT);
    check_err!(sys::thread_set_affinity(th, None), no, "pin a thread without CONTROL");
    check_err!(sys::thread_start(th), no, "start a thread without CONTROL");
    let th_ok = copy(SELF_THREAD, Rights::CONTROL);
    check_ok!(sys::thread_set_affinity(th_ok, None), "pin a thread with CONTROL only");
    check_err!(sys::thread_start(th_ok), Error::Busy, "start a running thread (CONTROL only)");
    // Address spaces.
    let code = code_page();
    let read_only = copy(space, Rights::READ);
    check_err!(sys::mem_unmap(read_only, 0x7000_0000_0000, 1), no, "unmap without MAP");
    check_err!(sys::mem_protect(read_only, code, 1, MapFlags::EXEC), no, "protect without MAP");
    check_err!(sys::mem_map(read_only, sink, 0, 0x7000_0000_0000, 1, MapFlags::empty()), no, "map without MAP");
    check_eq!(
        sys::mem_translate(read_only, code).map(|t| t.1),
        Ok(MapFlags::EXEC),
        "translate the child's code (the same program) with READ only"
    );
    let map_only = copy(space, Rights::MAP);
    check_err!(sys::mem_translate(map_only, code), no, "translate without READ");
    check_eq!(sys::mem_unmap(map_only, 0x7000_0000_0000, 1), Ok(0), "unmap nothing with MAP only");
    // Modules.
    let mut buf = [0u8; 64];
    let modules_read = copy(MODULES, Rights::READ);
    let modules_control = copy(MODULES, Rights::CONTROL);
    check_err!(sys::module_info(modules_control, 0, &mut buf), no, "module info without READ");
    check_ok!(sys::module_info(modules_read, 0, &mut buf), "module info with READ only");
    check_err!(sys::task_spawn(modules_read, 0, 0), no, "spawn without CONTROL");
    let mut handles = [ep, ep2, task, th, th_ok, read_only, map_only, modules_read, modules_control].to_vec();
    // The machine.
    if sys::cap_info(MACHINE).is_ok() {
        let read = copy(MACHINE, Rights::READ);
        let control = copy(MACHINE, Rights::CONTROL);
        check_err!(sys::power_off(read, true), no, "power off without CONTROL");
        check_err!(sys::machine_stats(control), no, "machine statistics without READ");
        check_err!(sys::kernel_cmdline(control, &mut buf), no, "command line without READ");
        check_ok!(sys::machine_stats(read), "machine statistics with READ only");
        check_ok!(sys::kernel_cmdline(read, &mut buf), "command line with READ only");
        handles.extend([read, control]);
    }
    for h in handles {
        check_ok!(sys::cap_delete(h), "delete a copy");
    }
}

/// Capabilities derived from one endpoint land in another task (given,
/// given from a copy, minted and given, sent in a message); revoking an
/// intermediate copy removes only what came from it, revoking the original
/// removes everything, there and here.
fn revoke_across_tasks() {
    let (Some(a), Some(o)) =
        (check_ok!(sys::endpoint_create(), "endpoint A"), check_ok!(sys::endpoint_create(), "endpoint O"))
    else {
        return;
    };
    let Some(child) =
        check_ok!(Child::start(Role::CapServer, 0, Some((a, Rights::RECEIVE)), None), "start the capability server")
    else {
        return;
    };
    let there = Remote { ep: a };
    let c1 = sys::cap_copy(o, Rights::SEND | Rights::GRANT).unwrap_or_default();
    let mint = sys::cap_mint(o, 9, Rights::SEND | Rights::GRANT).unwrap_or_default();
    let g1 = check_ok!(sys::cap_give(child.task, o, Rights::SEND, 0), "give O").unwrap_or_default();
    let g2 = check_ok!(sys::cap_give(child.task, c1, Rights::SEND | Rights::GRANT, 0), "give a copy of O")
        .unwrap_or_default();
    let g3 = check_ok!(sys::cap_give(child.task, mint, Rights::SEND, 0), "give a badged copy of O").unwrap_or_default();
    let t1 = there.check(c1, 0, false).map_or(0, |r| r.handle);
    let expect = [
        ("given O", g1.raw(), Rights::SEND, 0),
        ("given copy", g2.raw(), Rights::SEND | Rights::GRANT, 0),
        ("given badged copy", g3.raw(), Rights::SEND, 9),
        ("sent copy", t1, Rights::SEND | Rights::GRANT, 0),
    ];
    for (what, h, r, b) in expect {
        check_eq!(there.info(h), Ok((Kind::Endpoint, r, b)), "{what} in the other task");
    }
    check_eq!(sys::cap_revoke(c1), Ok(2), "revoke the copy: its two descendants over there");
    for (what, h, _, _) in [expect[1], expect[3]] {
        check_err!(there.info(h), Error::StaleHandle, "{what} after revoking the copy");
    }
    for (what, h, r, b) in [expect[0], expect[2]] {
        check_eq!(there.info(h), Ok((Kind::Endpoint, r, b)), "{what} survives revoking the copy");
    }
    // A chain through a deleted link is still reached.
    let x = sys::cap_copy(o, Rights::SEND | Rights::GRANT).unwrap_or_default();
    let y = sys::cap_copy(x, Rights::SEND).unwrap_or_default();
    check_ok!(sys::cap_delete(x), "delete the middle of a chain");
    check_eq!(sys::cap_revoke(o), Ok(5), "revoke O: the copy, the badged copy, two given ones and the end of a chain");
    for (what, h, _, _) in [expect[0], expect[2]] {
        check_err!(there.info(h), Error::StaleHandle, "{what} after revoking O");
    }
    for (what, h) in [("copy", c1), ("badged copy", mint), ("end of a chain", y)] {
        check_err!(sys::cap_info(h), Error::StaleHandle, "{what} here after revoking O");
    }
    check_eq!(sys::cap_info(o), Ok((Kind::Endpoint, Rights::SEND | Rights::RECEIVE | Rights::GRANT, 0)), "O survives");
    check_eq!(sys::cap_revoke(o), Ok(0), "revoke again: nothing left");
    check_ok!(there.stop(), "stop the capability server");
    check_eq!(child.wait(), Ok(0), "the capability server's exit code");
    let _ = (sys::cap_delete(a), sys::cap_delete(o));
    println!("revocation reached copies in another task, through deleted links too");
}

/// Handles outlive their capabilities only as stale handles.
fn stale_handles() {
    let Some(e) = check_ok!(sys::endpoint_create(), "create an endpoint") else { return };
    let Some(old) = check_ok!(sys::cap_copy(e, Rights::SEND), "copy it") else { return };
    check_ok!(sys::cap_delete(old), "delete the copy");
    check_err!(sys::cap_info(old), Error::StaleHandle, "info on a deleted capability");
    check_err!(sys::cap_delete(old), Error::StaleHandle, "delete it twice");
    check_err!(sys::cap_copy(old, Rights::SEND), Error::StaleHandle, "copy a deleted capability");
    check_err!(sys::cap_revoke(old), Error::StaleHandle, "revoke a deleted capability");
    check_err!(sys::send(old, &label(1)), Error::StaleHandle, "send on a deleted capability");
    let Some(new) = check_ok!(sys::cap_copy(e, Rights::SEND | Rights::GRANT), "copy again") else { return };
    if new.index() == old.index() {
        check!(new.generation() != old.generation(), "a reused slot has a new generation");
        check_err!(sys::cap_info(old), Error::StaleHandle, "the old handle to the reused slot");
        check_eq!(
            sys::cap_info(new),
            Ok((Kind::Endpoint, Rights::SEND | Rights::GRANT, 0)),
            "the new handle to the reused slot"
        );
    } else {
        println!("note: the slot was not reused (old {old:?}, new {new:?})");
    }
    let newer = Handle::new(new.index(), new.generation().wrapping_add(1));
    check_err!(sys::cap_info(newer), Error::InvalidHandle, "an occupied slot with a generation it never had");
    if new.generation() > 0 {
        let older = Handle::new(new.index(), new.generation() - 1);
        check_err!(sys::cap_info(older), Error::StaleHandle, "an occupied slot with an older generation");
    }
    check_err!(sys::cap_info(Handle::NONE), Error::InvalidHandle, "handle 0");
    check_err!(sys::cap_info(Handle::new(4000, 0)), Error::InvalidHandle, "a slot never used");
    check_err!(sys::cap_info(Handle::new(u16::MAX, 0)), Error::InvalidHandle, "the last slot");
    check_err!(sys::cap_info(Handle::new(PHYS_FIRST - 1, 0)), Error::InvalidHandle, "an empty well-known slot");
    let _ = (sys::cap_delete(new), sys::cap_delete(e));
}

/// Where `cap_give` may put a capability.
fn give_rules() {
    let Some(ep) = check_ok!(sys::endpoint_create(), "create an endpoint") else { return };
    let Some(child) = check_ok!(Child::start(Role::Hold, 0, None, None), "start a task to give to") else { return };
    check_err!(
        sys::cap_give(child.task, ep, Rights::SEND, SELF_TASK.index()),
        Error::SlotOccupied,
        "give into an occupied slot"
    );
    check_err!(
        sys::cap_give(child.task, ep, Rights::SEND, 64),
        Error::InvalidArgument,
        "give into a dynamic slot by number"
    );
    check_err!(sys::cap_give(child.task, ep, Rights::SEND, u16::MAX), Error::InvalidArgument, "give into slot 65535");
    let at = sys::cap_give(child.task, ep, Rights::SEND, PARENT.index());
    check_eq!(at, Ok(PARENT), "give into the free PARENT slot");
    check_err!(
        sys::cap_give(child.task, ep, Rights::SEND, PARENT.index()),
        Error::SlotOccupied,
        "give into PARENT twice"
    );
    let any = sys::cap_give(child.task, ep, Rights::SEND, 0);
    check!(any.is_ok_and(|h| h.index() >= 64), "give into any slot: a dynamic one ({any:?})");
    check_ok!(sys::task_kill(child.task, 0), "end the task");
    check_eq!(child.wait(), Ok(0), "its exit code");
    check_err!(sys::cap_give(child.task, ep, Rights::SEND, 0), Error::PeerDied, "give to a task that ended");
    let _ = sys::cap_delete(ep);
}

/// The page holding this function (mapped executable, not writable).
fn code_page() -> u64 {
    (code_page as fn() -> u64) as usize as u64 & !0xfff
}
