//! `ipc-cap`: capabilities carried in messages arrive in the receiving
//! task's table with the kind, rights and badge they were sent with, and
//! work there; a capability without GRANT cannot be sent (and nothing is
//! delivered); answers carry capabilities too; a reply capability can be
//! handed to another task, which answers the call.

use crate::cap_server::{self, GIVEN_BACK_WORD, Remote};
use crate::child::{Child, Role};
use crate::msg::{STOP, label};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use user::abi::cap::{Kind, Rights};
use user::abi::handles::{SELF_SPACE, SELF_TASK, SELF_THREAD};
use user::abi::ipc::Message;
use user::thread;
use user::{Error, check, check_eq, check_err, check_ok, println, sys};

pub fn run() {
    let (Some(a), Some(b)) =
        (check_ok!(sys::endpoint_create(), "endpoint A"), check_ok!(sys::endpoint_create(), "endpoint B"))
    else {
        return;
    };
    // B's receiver: answers token + 1 and records the badge it saw.
    let badge_seen = Arc::new(AtomicU64::new(u64::MAX));
    let seen = badge_seen.clone();
    let Some(payload) = check_ok!(
        thread::spawn(move || loop {
            let Some(r) = check_ok!(sys::recv(b), "B: receive") else { return };
            seen.store(r.badge, Ordering::SeqCst);
            let stop = r.msg.info.label == STOP;
            check!(stop || r.msg.info.label == cap_server::VIA_CAP, "B: label {:#x}", r.msg.info.label);
            check_ok!(sys::reply(r.reply, &Message::new(1, &[r.msg.words[0] + 1])), "B: answer");
            if stop {
                return;
            }
        }),
        "start B's receiver"
    ) else {
        return;
    };
    let Some(child) =
        check_ok!(Child::start(Role::CapServer, 0, Some((a, Rights::RECEIVE)), None), "start the capability server")
    else {
        return;
    };
    let server = Remote { ep: a };

    // An endpoint capability arrives with its rights and works there.
    let x = sys::cap_copy(b, Rights::SEND | Rights::GRANT).unwrap_or_default();
    let rep = server.check(x, 11, true);
    check_eq!(
        rep.map(|r| (r.has_cap, r.kind, r.rights, r.badge, r.used)),
        Ok((true, Some(Kind::Endpoint), Rights::SEND | Rights::GRANT, 0, Ok(12))),
        "endpoint capability sent and used"
    );
    check_eq!(badge_seen.load(Ordering::SeqCst), 0, "B saw the unbadged capability's badge");
    let x_there = rep.map_or(0, |r| r.handle);
    check!(x_there != 0, "the server got a handle in its own table");

    // A badge travels with the capability.
    let m = sys::cap_mint(b, 77, Rights::SEND | Rights::GRANT).unwrap_or_default();
    let rep = server.check(m, 20, true);
    check_eq!(
        rep.map(|r| (r.kind, r.rights, r.badge, r.used)),
        Ok((Some(Kind::Endpoint), Rights::SEND | Rights::GRANT, 77, Ok(21))),
        "badged capability sent and used"
    );
    check_eq!(badge_seen.load(Ordering::SeqCst), 77, "B saw the badge of the transferred capability");
    let m_there = rep.map_or(0, |r| r.handle);

    // Fewer rights travel as they are, and are enforced over there.
    let y = sys::cap_copy(b, Rights::RECEIVE | Rights::GRANT).unwrap_or_default();
    let rep = server.check(y, 30, true);
    check_eq!(
        rep.map(|r| (r.kind, r.rights, r.used)),
        Ok((Some(Kind::Endpoint), Rights::RECEIVE | Rights::GRANT, Err(Error::InsufficientRights))),
        "a capability without SEND arrives without it"
    );
    let y_there = rep.map_or(0, |r| r.handle);

    // Other kinds.
    for (what, src, rights, kind) in [
        ("thread", SELF_THREAD, Rights::GRANT, Kind::Thread),
        ("task", SELF_TASK, Rights::GRANT, Kind::Task),
        ("address space", SELF_SPACE, Rights::READ | Rights::GRANT, Kind::AddressSpace),
    ] {
        let c = sys::cap_copy(src, rights).unwrap_or_default();
        let rep = server.check(c, 0, false);
        check_eq!(
            rep.map(|r| (r.has_cap, r.kind, r.rights, r.badge)),
            Ok((true, Some(kind), rights, 0)),
            "{what} capability sent"
        );
        let _ = sys::cap_delete(c);
    }

    // Without GRANT nothing is sent at all.
    let before = server.count();
    let z = sys::cap_copy(b, Rights::SEND).unwrap_or_default();
    check_err!(
        sys::call_ep(a, &Message::new(cap_server::CHECK, &[0, 0]).with_cap(z)),
        Error::InsufficientRights,
        "call with a capability lacking GRANT"
    );
    check_err!(
        sys::send(a, &Message::new(cap_server::CHECK, &[0, 0]).with_cap(z)),
        Error::InsufficientRights,
        "send with a capability lacking GRANT"
    );
    let mut no_handle = label(cap_server::CHECK);
    no_handle.info.has_cap = true;
    check_err!(
        sys::call_ep(a, &no_handle),
        Error::InvalidHandle,
        "call flagged as carrying a capability, with no handle"
    );
    let gone = sys::cap_copy(b, Rights::SEND | Rights::GRANT).unwrap_or_default();
    let _ = sys::cap_delete(gone);
    check_err!(
        sys::call_ep(a, &label(cap_server::CHECK).with_cap(gone)),
        Error::StaleHandle,
        "call carrying a deleted capability"
    );
    check_eq!(server.count(), before.map(|n| n + 1), "the refused messages never reached the server");

    // Answers carry capabilities, with GRANT only.
    match sys::call_ep(a, &label(cap_server::GIVE_BACK)) {
        Ok(r) => {
            check!(r.info.has_cap && !r.cap.is_none(), "the answer carries a capability");
            check_eq!(
                sys::cap_info(r.cap),
                Ok((Kind::Endpoint, Rights::SEND | Rights::GRANT, 0)),
                "capability received in an answer"
            );
            let used = sys::call_ep(r.cap, &label(1)).map(|m| m.words[0]);
            check_eq!(used, Ok(GIVEN_BACK_WORD), "calling through the received capability");
            check_ok!(sys::cap_delete(r.cap), "delete the received capability");
        }
        Err(e) => {
            check!(false, "GIVE_BACK failed: {e:?}");
        }
    }
    let tried = sys::call_ep(a, &label(cap_server::NO_GRANT_BACK)).map(|m| cap_server::decode_err(m.words[0]));
    check_eq!(tried, Ok(Some(Error::InsufficientRights)), "answering with a capability lacking GRANT");

    // A reply capability handed to another task answers the call.
    delegated_reply(&server);

    // Revoking what was sent removes the receiver's copies.
    check_eq!(sys::cap_revoke(x), Ok(1), "revoke x: the server's copy");
    check_err!(server.info(x_there), Error::StaleHandle, "the server's copy of x after revoking x");
    check_ok!(sys::cap_info(x), "x itself survives its revocation");
    check_eq!(server.info(m_there).map(|i| i.2), Ok(77), "the server's badged copy is untouched by revoking x");
    let n = sys::cap_revoke(b);
    // Derived from B: x, m, y, z (here) and m's and y's copies there.
    check_eq!(n, Ok(6), "revoke B: every capability derived from it");
    check_err!(server.info(m_there), Error::StaleHandle, "the server's badged copy after revoking B");
    check_err!(server.info(y_there), Error::StaleHandle, "the server's receive copy after revoking B");
    for (what, h) in [("x", x), ("m", m), ("y", y), ("z", z)] {
        check_err!(sys::cap_info(h), Error::StaleHandle, "{what} after revoking B");
    }
    check_eq!(
        sys::cap_info(b),
        Ok((Kind::Endpoint, Rights::SEND | Rights::RECEIVE | Rights::GRANT, 0)),
        "B itself survives"
    );

    check_ok!(server.stop(), "stop the server");
    check_eq!(child.wait(), Ok(0), "the capability server's exit code");
    check_eq!(sys::call_ep(b, &label(STOP)).map(|m| m.words[0]), Ok(1), "stop B's receiver");
    payload.join();
    let _ = (sys::cap_delete(a), sys::cap_delete(b));
    println!("capabilities of 5 kinds sent, checked and used in another task; GRANT enforced both ways");
}

/// A thread here calls endpoint Q; we receive the call and send its reply
/// capability to the server, which answers it.
fn delegated_reply(server: &Remote) {
    let Some(q) = check_ok!(sys::endpoint_create(), "endpoint Q") else { return };
    let caller = thread::spawn(move || {
        let got = sys::call_ep(q, &Message::new(9, &[1]));
        check_eq!(
            got.map(|m| (m.info.label, m.words[0])),
            Ok((cap_server::ANSWER_FOR_ME, 0xabcd)),
            "the call answered by another task"
        );
    });
    let Some(caller) = check_ok!(caller, "start the caller") else { return };
    if let Some(r) = check_ok!(sys::recv(q), "receive the call") {
        check_eq!(
            sys::cap_info(r.reply).map(|i| (i.0, i.1)),
            Ok((Kind::Reply, Rights::SEND | Rights::GRANT)),
            "a reply capability"
        );
        let sent = sys::call_ep(server.ep, &Message::new(cap_server::ANSWER_FOR_ME, &[0xabcd]).with_cap(r.reply));
        check_eq!(
            sent.map(|m| cap_server::decode_err(m.words[0])),
            Ok(None),
            "the server answered through the reply capability"
        );
        // Sending moved a copy; ours still exists but the call is answered.
        check_err!(sys::reply(r.reply, &label(1)), Error::PeerDied, "answering the same call again");
    }
    caller.join();
    let _ = sys::cap_delete(q);
}
