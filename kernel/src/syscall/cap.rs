//! Capability syscalls: copy (with equal or fewer rights), mint a badged
//! endpoint capability, delete, revoke, inspect, and give one to another
//! task.

use super::{lookup, Args, Ret, SysResult};
use crate::ipc::{grantable, install_child, Transfer};
use crate::object::derivation::{self};
use crate::object::thread::Thread;
use crate::object::Object;
use abi::cap::{Handle, Kind, Rights};
use abi::Error;
use alloc::sync::Arc;

/// Copies a capability into the caller's own table with `rights` (which
/// must be a subset: asking for more is an error, not a silent cut).
pub fn copy(me: &Arc<Thread>, a: &Args) -> SysResult {
    let h = Handle::from_raw(a[0])?;
    let rights = Rights::from_raw(a[1])?;
    let (cap, from) = {
        let caps = me.task.caps.lock();
        let cap = caps.get(h)?.clone();
        (cap, derivation::at(&me.task, h.index()))
    };
    if !cap.rights.contains(rights) {
        return Err(Error::InsufficientRights);
    }
    let new = install_child(&me.task, Transfer { cap, from }, rights, None)?;
    Ok(Ret::one(new.raw()))
}

/// Makes a badged copy of an unbadged endpoint capability.
pub fn mint(me: &Arc<Thread>, a: &Args) -> SysResult {
    let h = Handle::from_raw(a[0])?;
    let badge = a[1];
    let rights = Rights::from_raw(a[2])?;
    if badge == 0 {
        return Err(Error::InvalidArgument);
    }
    let (mut cap, from) = {
        let caps = me.task.caps.lock();
        let cap = caps.get(h)?.require(Kind::Endpoint, Rights::empty())?.clone();
        (cap, derivation::at(&me.task, h.index()))
    };
    if cap.badge != 0 {
        return Err(Error::InvalidArgument);
    }
    if !cap.rights.contains(rights) {
        return Err(Error::InsufficientRights);
    }
    cap.badge = badge;
    let new = install_child(&me.task, Transfer { cap, from }, rights, None)?;
    Ok(Ret::one(new.raw()))
}

pub fn delete(me: &Arc<Thread>, a: &Args) -> SysResult {
    let h = Handle::from_raw(a[0])?;
    let removed = {
        let mut tree = derivation::lock();
        let cap = me.task.caps.lock().remove(h)?;
        if cap.derived {
            tree.unlink(cap.id);
        }
        cap
    };
    // Dropped outside the locks: this may release waiters.
    drop(removed);
    Ok(Ret::OK)
}

pub fn revoke(me: &Arc<Thread>, a: &Args) -> SysResult {
    let h = Handle::from_raw(a[0])?;
    let removed = {
        let mut tree = derivation::lock();
        let id = me.task.caps.lock().get(h)?.id;
        tree.revoke(id)
    };
    let n = removed.len() as u64;
    drop(removed);
    Ok(Ret::one(n))
}

pub fn info(me: &Arc<Thread>, a: &Args) -> SysResult {
    let h = Handle::from_raw(a[0])?;
    let caps = me.task.caps.lock();
    let cap = caps.get(h)?;
    Ok(Ret::Values([cap.object.kind() as u64, cap.rights.bits(), cap.badge, cap.object.identity()]))
}

/// Copies a capability (which must carry GRANT) into another task's table
/// (the caller needs CONTROL on that task), at `slot` or any free slot.
pub fn give(me: &Arc<Thread>, a: &Args) -> SysResult {
    let target = match lookup(me, a[0], Kind::Task, Rights::CONTROL)?.object {
        Object::Task(t) => t,
        _ => unreachable!("kind checked"),
    };
    let rights = Rights::from_raw(a[2])?;
    let slot = match a[3] {
        0 => None,
        s if s < abi::handles::FIRST_DYNAMIC as u64 => Some(s as u16),
        _ => return Err(Error::InvalidArgument),
    };
    let transfer = grantable(&me.task, Handle::from_raw(a[1])?)?;
    if !transfer.cap.rights.contains(rights) {
        return Err(Error::InsufficientRights);
    }
    if target.dying() {
        return Err(Error::PeerDied);
    }
    let h = install_child(&target, transfer, rights, slot)?;
    Ok(Ret::one(h.raw()))
}
