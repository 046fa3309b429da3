//! Synchronous IPC: send, receive, call, reply, reply-and-receive, and the
//! kernel's own notices (faults, task exits).
//!
//! Messages travel in registers: the sender's are read from its saved user
//! registers and written straight into the receiver's. A call that finds
//! its receiver waiting on this CPU switches to it directly, and the reply
//! switches straight back, with no trip through the run queue; a receiver
//! that must run on another CPU is woken there with an IPI. A transferred
//! capability (it needs the grant right) lands in the receiver's table as a
//! child of the sender's, so revoking the original reaches it.

use crate::object::derivation::{self, Location};
use crate::object::endpoint::{EndpointRef, EpState, Pending, SendKind};
use crate::object::reply::{Reply, ReplyKind};
use crate::object::task::Task;
use crate::object::thread::{Block, State, Thread};
use crate::object::{Capability, Object};
use crate::sched;
use abi::cap::{Handle, Kind, Rights};
use abi::ipc::{kernel_label, MsgInfo, MSG_WORDS};
use abi::Error;
use alloc::sync::Arc;

/// A capability on its way: the copy and where its original lives.
pub struct Transfer {
    /// The capability (a clone of the sender's).
    pub cap: Capability,
    /// The sender's slot, for the derivation link.
    pub from: Location,
}

/// Reads the outgoing message of the running thread `me` from its
/// registers: `rsi` info, payload in `rdx, r10, r8, r9, r12, r13`, and the
/// capability in `r14` (which must carry GRANT). Labels the kernel keeps
/// for its own messages are refused, so no task can pass for the kernel.
pub fn outgoing(me: &Arc<Thread>) -> Result<(MsgInfo, [u64; MSG_WORDS], Option<Transfer>), Error> {
    let (info, words, cap) = me.with_frame(|f| (f.rsi, [f.rdx, f.r10, f.r8, f.r9, f.r12, f.r13], f.r14));
    let info = MsgInfo::from_raw(info)?;
    if info.label >= abi::ipc::kernel_label::FIRST {
        return Err(Error::InvalidArgument);
    }
    let mut payload = [0; MSG_WORDS];
    payload[..info.len as usize].copy_from_slice(&words[..info.len as usize]);
    let transfer = if info.has_cap { Some(grantable(&me.task, Handle::from_raw(cap)?)?) } else { None };
    Ok((info, payload, transfer))
}

/// Looks up a capability the task may pass on (it needs GRANT).
pub fn grantable(task: &Arc<Task>, h: Handle) -> Result<Transfer, Error> {
    let caps = task.caps.lock();
    let cap = caps.get(h)?;
    if !cap.rights.contains(Rights::GRANT) {
        return Err(Error::InsufficientRights);
    }
    Ok(Transfer { cap: cap.clone(), from: derivation::at(task, h.index()) })
}

/// Installs a child of a transferred capability in `task`'s table (at
/// `slot`, or any free slot), linked under its original when that still
/// exists.
pub fn install_child(task: &Arc<Task>, t: Transfer, rights: Rights, slot: Option<u16>) -> Result<Handle, Error> {
    let child = t.cap.derive(rights, t.cap.badge);
    let child_id = child.id;
    let mut tree = derivation::lock();
    let h = {
        let mut caps = task.caps.lock();
        match slot {
            Some(i) => caps.insert_at(i, child)?,
            None => caps.insert(child)?,
        }
    };
    let linked = t.from.task.upgrade().is_some_and(|owner| owner.caps.lock().mark_derived(t.from.index, t.cap.id));
    if linked {
        tree.link(t.cap.id, t.from, child_id, derivation::at(task, h.index()));
    } else {
        task.caps.lock().mark_underived(h);
    }
    Ok(h)
}

/// Wakes a waiting thread with error `e` in `rax` (if it is still waiting).
pub fn fail_waiter(t: &Arc<Thread>, e: Error) {
    sched::wake_with(t, |f| f.rax = e.code(), false);
}

/// Wakes a waiting thread with success and `rdi = value`.
pub fn finish_wait(t: &Arc<Thread>, value: u64) {
    sched::wake_with(
        t,
        |f| {
            f.rax = 0;
            f.rdi = value;
        },
        false,
    );
}

/// Picks a waiting receiver, preferring one that may run on this CPU.
fn pick_receiver(st: &mut EpState) -> Option<Arc<Thread>> {
    let here = crate::cpu::current_index();
    let at = st
        .receivers
        .iter()
        .position(|r| {
            let s = r.sched.lock();
            s.affinity == Some(here) || (s.affinity.is_none() && s.cpu == here)
        })
        .or_else(|| st.receivers.iter().position(|r| r.sched.lock().affinity.is_none()))
        .unwrap_or(0);
    st.receivers.remove(at)
}

/// What a receiver's registers get.
struct Delivery {
    info: MsgInfo,
    badge: u64,
    words: [u64; MSG_WORDS],
    cap: Handle,
    reply: Handle,
}

impl Delivery {
    fn write(&self, f: &mut crate::arch::TrapFrame) {
        f.rax = 0;
        f.rdi = self.badge;
        f.rsi = self.info.raw();
        [f.rdx, f.r10, f.r8, f.r9, f.r12, f.r13] = self.words;
        f.r14 = self.cap.raw();
        f.r15 = self.reply.raw();
    }
}

/// Prepares the delivery of `p` to receiver `r`: installs the transferred
/// capability and, for a call or fault, a reply capability in `r`'s table
/// (the caller then waits for that reply); releases a plain sender.
fn prepare(r: &Arc<Thread>, p: Pending) -> Delivery {
    let mut info = p.info;
    let mut cap = Handle::NONE;
    match p.cap {
        Some(t) => match install_child(&r.task, t, Rights::all(), None) {
            Ok(h) => cap = h,
            Err(_) => info.has_cap = false,
        },
        None => info.has_cap = false,
    }
    let mut reply = Handle::NONE;
    match (p.kind, &p.sender) {
        (SendKind::Call | SendKind::Fault, Some(sender)) => {
            sender.sched.lock().state = State::Blocked(Block::Reply);
            let kind = if p.kind == SendKind::Call { ReplyKind::Call } else { ReplyKind::Fault };
            let obj = Arc::new(Reply::new(sender, kind));
            // If the table is full, dropping the reply object here releases
            // the caller with an error.
            if let Ok(h) = r.task.caps.lock().insert(Capability::new(Object::Reply(obj), Rights::SEND | Rights::GRANT)) {
                reply = h;
            }
            // A caller killed while it was being delivered is released now
            // (its kill saw it still queued and left it to us).
            if sender.killed() {
                fail_waiter(sender, Error::PeerDied);
            }
        }
        // A plain sender gets what a send that met its receiver at once
        // gets: success, and rdi..r10 cleared.
        (SendKind::Send, Some(sender)) => {
            sched::wake_with(
                sender,
                |f| {
                    f.rax = 0;
                    [f.rdi, f.rsi, f.rdx, f.r10] = [0; 4];
                },
                false,
            );
        }
        _ => {}
    }
    Delivery { info, badge: p.badge, words: p.words, cap, reply }
}

/// Delivers `p` to a receiver just taken off the queue and wakes it (with
/// `handoff`, returns it instead if it may run here).
fn deliver_to_waiting(r: &Arc<Thread>, p: Pending, handoff: bool) -> Option<Arc<Thread>> {
    let d = prepare(r, p);
    match sched::wake_with(r, |f| d.write(f), handoff) {
        sched::Woken::Here(t) => Some(t),
        // Queued, or the receiver was killed meanwhile: what was installed
        // in its table goes with its task (a reply capability dropped then
        // releases the caller).
        _ => None,
    }
}

/// Sends the running thread's message (from its registers) on `ep`:
/// a plain send waits for a receiver; a call also waits for the reply,
/// which lands in its registers. Returns `Ok(true)` when the registers
/// already hold the result.
pub fn send(me: &Arc<Thread>, ep: &EndpointRef, badge: u64, call: bool) -> Result<bool, Error> {
    let (info, words, transfer) = outgoing(me)?;
    let kind = if call { SendKind::Call } else { SendKind::Send };
    send_message(me, ep, Pending::new(Some(me.clone()), info, words, transfer, badge, kind))
}

/// The running thread faulted: sends the fault to its pager and waits for
/// the answer (resume, or death).
pub fn send_fault(me: &Arc<Thread>, ep: &EndpointRef, badge: u64, words: [u64; MSG_WORDS]) -> Result<bool, Error> {
    let info = MsgInfo::new(kernel_label::FAULT, 5);
    send_message(me, ep, Pending::new(Some(me.clone()), info, words, None, badge, SendKind::Fault))
}

fn send_message(me: &Arc<Thread>, ep: &EndpointRef, p: Pending) -> Result<bool, Error> {
    let waits = matches!(p.kind, SendKind::Call | SendKind::Fault);
    let _masked = crate::arch::cpu::InterruptGuard::new();
    let mut st = ep.state.lock();
    if st.closed {
        return Err(Error::PeerDied);
    }
    if let Some(r) = pick_receiver(&mut st) {
        drop(st);
        if waits {
            me.sched.lock().state = State::Blocked(Block::Reply);
            let next = deliver_to_waiting(&r, p, true);
            sched::block_and_switch(next);
            Ok(true)
        } else {
            if let Some(t) = deliver_to_waiting(&r, p, true) {
                sched::enqueue_here(t);
            }
            Ok(false)
        }
    } else {
        me.sched.lock().state = State::Blocked(Block::Send(ep.arc().clone()));
        st.senders.push_back(p);
        drop(st);
        sched::block_and_switch(None);
        Ok(true)
    }
}

/// Receives on `ep` into the running thread's registers, waiting if no
/// message is queued. `handoff` (a thread claimed by a reply) runs instead
/// of the scheduler's choice if this thread has to wait.
pub fn recv(me: &Arc<Thread>, ep: &EndpointRef, handoff: Option<Arc<Thread>>) -> Result<(), Error> {
    let _masked = crate::arch::cpu::InterruptGuard::new();
    let mut st = ep.state.lock();
    if let Some(p) = st.senders.pop_front() {
        drop(st);
        let d = prepare(me, p);
        me.with_frame(|f| d.write(f));
        if let Some(h) = handoff {
            sched::enqueue_here(h);
        }
        return Ok(());
    }
    if st.closed {
        drop(st);
        if let Some(h) = handoff {
            sched::enqueue_here(h);
        }
        return Err(Error::PeerDied);
    }
    me.sched.lock().state = State::Blocked(Block::Recv(ep.arc().clone()));
    st.receivers.push_back(me.clone());
    drop(st);
    sched::block_and_switch(handoff);
    Ok(())
}

/// Answers the call behind reply capability `h` with the running thread's
/// message. Returns the caller if it may run on this CPU (claimed for a
/// hand-off: the caller of this function runs it or queues it).
pub fn reply(me: &Arc<Thread>, h: Handle) -> Result<Option<Arc<Thread>>, Error> {
    let (info, words, transfer) = outgoing(me)?;
    let obj = {
        let mut caps = me.task.caps.lock();
        caps.get(h)?.require(Kind::Reply, Rights::SEND)?;
        match caps.remove(h)?.object {
            Object::Reply(r) => r,
            _ => unreachable!("kind checked above"),
        }
    };
    let caller = obj.take_caller().ok_or(Error::PeerDied)?;
    let woken = match obj.kind {
        ReplyKind::Call => {
            let mut info = info;
            let mut cap = Handle::NONE;
            match transfer {
                Some(t) => match install_child(&caller.task, t, Rights::all(), None) {
                    Ok(c) => cap = c,
                    Err(_) => info.has_cap = false,
                },
                None => info.has_cap = false,
            }
            let d = Delivery { info, badge: 0, words, cap, reply: Handle::NONE };
            sched::wake_with(&caller, |f| d.write(f), true)
        }
        ReplyKind::Fault => {
            if info.label != kernel_label::RESUME {
                // The faulting thread reports the fault and kills its task
                // itself, as if it had no pager.
                caller.fault_declined.store(true, core::sync::atomic::Ordering::Relaxed);
            }
            sched::wake_with(&caller, |_| {}, true)
        }
    };
    match woken {
        sched::Woken::Here(t) => Ok(Some(t)),
        sched::Woken::Queued => Ok(None),
        // The caller was killed and released meanwhile.
        sched::Woken::NotBlocked => Err(Error::PeerDied),
    }
}

/// Most kernel notices an endpoint holds unreceived; beyond this they are
/// dropped (with a warning) rather than taking kernel memory without end.
const MAX_QUEUED_NOTICES: usize = 4096;

/// Queues a message from the kernel itself on `ep` (never blocks).
pub fn kernel_send(ep: &EndpointRef, p: Pending) {
    let _masked = crate::arch::cpu::InterruptGuard::new();
    let mut st = ep.state.lock();
    if st.closed {
        return;
    }
    match pick_receiver(&mut st) {
        Some(r) => {
            drop(st);
            deliver_to_waiting(&r, p, false);
        }
        None if st.senders.iter().filter(|q| q.kind == SendKind::Kernel).count() >= MAX_QUEUED_NOTICES => {
            drop(st);
            log::warn!("ipc: endpoint {} has {MAX_QUEUED_NOTICES} unreceived kernel notices; dropping one", ep.id);
        }
        None => st.senders.push_back(p),
    }
}
