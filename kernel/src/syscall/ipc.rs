//! IPC syscalls: create an endpoint, send, call, receive, reply,
//! reply-and-receive. The message itself is read from and written to the
//! registers by `crate::ipc`.

use super::{lookup, Args, Ret, SysResult};
use crate::object::endpoint::{Endpoint, EndpointRef};
use crate::object::thread::Thread;
use crate::object::{Capability, Object};
use abi::cap::{Handle, Kind, Rights};
use abi::Error;
use alloc::sync::Arc;

fn endpoint(me: &Arc<Thread>, raw: u64, rights: Rights) -> Result<(EndpointRef, u64), Error> {
    let cap = lookup(me, raw, Kind::Endpoint, rights)?;
    match cap.object {
        Object::Endpoint(ep) => Ok((ep.with_receive(false), cap.badge)),
        _ => unreachable!("kind checked"),
    }
}

pub fn create(me: &Arc<Thread>) -> SysResult {
    // The table's size limit bounds how many endpoints a task can hold.
    let mut caps = me.task.caps.lock();
    let ep = Endpoint::create();
    let h = caps.insert(Capability::new(Object::Endpoint(ep), Rights::SEND | Rights::RECEIVE | Rights::GRANT))?;
    Ok(Ret::one(h.raw()))
}

pub fn send(me: &Arc<Thread>, a: &Args, call: bool) -> SysResult {
    let (ep, badge) = endpoint(me, a[0], Rights::SEND)?;
    if crate::ipc::send(me, &ep, badge, call)? { Ok(Ret::Delivered) } else { Ok(Ret::OK) }
}

pub fn recv(me: &Arc<Thread>, a: &Args) -> SysResult {
    let (ep, _) = endpoint(me, a[0], Rights::RECEIVE)?;
    crate::ipc::recv(me, &ep, None)?;
    Ok(Ret::Delivered)
}

pub fn reply(me: &Arc<Thread>, a: &Args) -> SysResult {
    let caller = crate::ipc::reply(me, Handle::from_raw(a[0])?)?;
    if let Some(c) = caller {
        crate::sched::enqueue_here(c);
    }
    Ok(Ret::OK)
}

/// Replies (reply capability in `r15`), then receives on the endpoint in
/// `rdi`. When it has to wait, the answered caller runs at once on this CPU.
pub fn reply_recv(me: &Arc<Thread>, a: &Args) -> SysResult {
    let (ep, _) = endpoint(me, a[0], Rights::RECEIVE)?;
    let reply = me.with_frame(|f| f.r15);
    let caller = if reply == 0 {
        None
    } else {
        match crate::ipc::reply(me, Handle::from_raw(reply)?) {
            Ok(c) => c,
            // A caller that died meanwhile does not stop the receive.
            Err(Error::PeerDied) => None,
            Err(e) => return Err(e),
        }
    };
    crate::ipc::recv(me, &ep, caller)?;
    Ok(Ret::Delivered)
}
