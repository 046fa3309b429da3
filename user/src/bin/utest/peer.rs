//! `ipc-peer-died`: nobody waits forever on a task that died. A caller
//! waiting for the answer of a server that is killed (or exits) is
//! released with `PeerDied`; so are callers and senders still queued on an
//! endpoint whose last receiver died, and later calls on it; a server
//! answering a caller that was killed is told `PeerDied`.

use crate::child::{Child, Role};
use crate::msg::label;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};
use user::abi::cap::{Handle, Rights};
use user::abi::handles::PARENT;
use user::abi::ipc::Message;
use user::thread;
use user::{Error, check, check_eq, check_err, check_ok, println, sys};

/// Slot of the endpoint an echo server reports on.
const NOTIFY: Handle = Handle::new(8, 0);
/// Ask the echo server to take the call and never answer.
const HANG: u32 = 0x4a;
/// Ask the echo server to end its task without answering.
const QUIT: u32 = 0x51;
/// What the echo server reports on NOTIFY before hanging.
const HANGING: u32 = 0x4b;

/// Echo role: answers every call with its own words; on HANG reports on
/// NOTIFY and keeps the call unanswered; on QUIT exits with 42.
pub fn echo() -> i64 {
    loop {
        let Ok(r) = sys::recv(PARENT) else { return 3 };
        match r.msg.info.label {
            HANG => {
                let _ = sys::send(NOTIFY, &label(HANGING));
                loop {
                    let _ = sys::sleep(1_000_000);
                }
            }
            QUIT => return 42,
            l => {
                let _ = sys::reply(r.reply, &Message::new(l, &r.msg.words));
            }
        }
    }
}

/// Hold role: keeps PARENT (able to receive) and never receives.
pub fn hold() -> i64 {
    loop {
        let _ = sys::sleep(1_000_000);
    }
}

/// Caller role: calls PARENT and waits.
pub fn caller() -> i64 {
    match sys::call_ep(PARENT, &label(1)) {
        Ok(_) => 0,
        Err(e) => e.code() as i64,
    }
}

/// Starts `role` as the only task that can receive on a new endpoint;
/// returns it and a SEND capability to the endpoint.
fn lone_server(role: Role, notify: Option<Handle>) -> Option<(Child, Handle)> {
    let ep = check_ok!(sys::endpoint_create(), "create an endpoint")?;
    let child = check_ok!(Child::create(role, 0), "create the server task")?;
    check_ok!(child.give(ep, Rights::RECEIVE, PARENT), "give it the endpoint")?;
    if let Some(n) = notify {
        check_ok!(child.give(n, Rights::SEND, NOTIFY), "give it the notification endpoint")?;
    }
    let send = check_ok!(sys::cap_copy(ep, Rights::SEND), "keep a send capability")?;
    // From here on only the server can receive on it.
    check_ok!(sys::cap_delete(ep), "drop our receiving capability")?;
    check_ok!(sys::thread_start(child.thread), "start the server")?;
    Some((child, send))
}

pub fn run() {
    killed_while_answering();
    exited_while_answering();
    died_before_receiving();
    caller_killed();
    println!("callers, queued senders and servers were all released with PeerDied");
}

/// The server holds the call (it received it) when it is killed.
fn killed_while_answering() {
    let Some(notify) = check_ok!(sys::endpoint_create(), "notification endpoint") else { return };
    let Some((child, ep)) = lone_server(Role::Echo, Some(notify)) else { return };
    let words = [1, 2, 3, 4, 5, 6];
    check_eq!(sys::call_ep(ep, &Message::new(7, &words)).map(|m| m.words), Ok(words), "the echo server answers");
    let client = thread::spawn(move || {
        let t0 = sys::time().0;
        check_err!(sys::call_ep(ep, &label(HANG)), Error::PeerDied, "a call the killed server held");
        println!("the held call was released after {} ms", (sys::time().0 - t0) / 1000);
    });
    let Some(client) = check_ok!(client, "start the client") else { return };
    // The server says it holds the call; give the client time to block.
    check_eq!(
        sys::recv(notify).map(|r| (r.msg.info.label, r.reply)),
        Ok((HANGING, Handle::NONE)),
        "the server took the call"
    );
    let _ = sys::sleep(20_000);
    check!(!client.is_finished(), "the client still waits for its answer");
    check_ok!(sys::task_kill(child.task, 77), "kill the server");
    check_eq!(child.wait(), Ok(77), "the killed server's exit code");
    client.join();
    check_err!(sys::call_ep(ep, &label(1)), Error::PeerDied, "a new call on the dead server's endpoint");
    check_err!(sys::send(ep, &label(1)), Error::PeerDied, "a new send on the dead server's endpoint");
    let _ = (sys::cap_delete(ep), sys::cap_delete(notify));
}

/// The server ends its task, not answering the call it received.
fn exited_while_answering() {
    let Some((child, ep)) = lone_server(Role::Echo, None) else { return };
    check_eq!(sys::call_ep(ep, &Message::new(3, &[9])).map(|m| m.words[0]), Ok(9), "the echo server answers");
    check_err!(sys::call_ep(ep, &label(QUIT)), Error::PeerDied, "a call whose server exited instead of answering");
    check_eq!(child.wait(), Ok(42), "the server's exit code");
    let _ = sys::cap_delete(ep);
}

/// Callers and senders queued on an endpoint whose only receiver never
/// receives, and then dies.
fn died_before_receiving() {
    let Some((child, ep)) = lone_server(Role::Hold, None) else { return };
    let released = Arc::new(AtomicBool::new(false));
    let (r1, r2) = (released.clone(), released.clone());
    let caller = thread::spawn(move || {
        check_err!(sys::call_ep(ep, &label(1)), Error::PeerDied, "a queued call");
        check!(r1.load(Ordering::SeqCst), "the queued call ended only after the kill");
    });
    let sender = thread::spawn(move || {
        check_err!(sys::send(ep, &label(2)), Error::PeerDied, "a queued send");
        check!(r2.load(Ordering::SeqCst), "the queued send ended only after the kill");
    });
    let (Some(caller), Some(sender)) = (check_ok!(caller, "start the caller"), check_ok!(sender, "start the sender"))
    else {
        return;
    };
    let _ = sys::sleep(50_000);
    check!(!caller.is_finished() && !sender.is_finished(), "the caller and the sender wait for a receiver");
    released.store(true, Ordering::SeqCst);
    check_ok!(sys::task_kill(child.task, 5), "kill the receiver");
    check_eq!(child.wait(), Ok(5), "the receiver's exit code");
    caller.join();
    sender.join();
    let _ = sys::cap_delete(ep);
}

/// We hold the call of a task that is killed: answering it fails.
fn caller_killed() {
    let Some(ep) = check_ok!(sys::endpoint_create(), "create an endpoint") else { return };
    let Some(child) = check_ok!(Child::start(Role::Caller, 0, Some((ep, Rights::SEND)), None), "start the caller task")
    else {
        return;
    };
    if let Some(r) = check_ok!(sys::recv(ep), "receive its call") {
        check!(!r.reply.is_none(), "a call comes with a reply capability");
        check_ok!(sys::task_kill(child.task, 6), "kill the caller");
        check_eq!(child.wait(), Ok(6), "the caller's exit code");
        check_err!(sys::reply(r.reply, &label(1)), Error::PeerDied, "answering a caller that was killed");
        check_err!(sys::cap_info(r.reply), Error::StaleHandle, "the reply capability is consumed by the failed answer");
    }
    let _ = sys::cap_delete(ep);
}
