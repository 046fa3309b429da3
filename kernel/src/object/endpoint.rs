//! IPC endpoints: rendezvous points where senders meet receivers.
//!
//! An endpoint queues the threads waiting to receive and the messages
//! waiting to be received (from blocked senders and callers, or from the
//! kernel itself: fault and task-exit notices). It counts the capabilities
//! that can receive on it; when the last one goes, the endpoint is closed
//! and every waiting sender is released with `PeerDied`, so nobody waits
//! forever on a server that died.

use super::thread::Thread;
use crate::ipc::Transfer;
use crate::sync::SpinLock;
use abi::ipc::MsgInfo;
use abi::ipc::MSG_WORDS;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::ops::Deref;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How a queued message expects to be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendKind {
    /// Plain send: the sender continues once received.
    Send,
    /// Call: the receiver gets a reply capability; the caller waits for it.
    Call,
    /// A fault the kernel reports for the sending thread (call-like).
    Fault,
    /// A notice from the kernel itself (no sender thread).
    Kernel,
}

/// A message in flight: what the receiver will see.
pub struct Pending {
    /// The thread that sent it (none for kernel notices).
    pub sender: Option<Arc<Thread>>,
    /// Label, length and capability flag.
    pub info: MsgInfo,
    /// Payload.
    pub words: [u64; MSG_WORDS],
    /// A capability being transferred (checked when sent).
    pub cap: Option<Transfer>,
    /// The badge of the capability it was sent through.
    pub badge: u64,
    /// How it is answered.
    pub kind: SendKind,
}

impl Pending {
    /// A message.
    pub fn new(
        sender: Option<Arc<Thread>>,
        info: MsgInfo,
        words: [u64; MSG_WORDS],
        cap: Option<Transfer>,
        badge: u64,
        kind: SendKind,
    ) -> Self {
        Self { sender, info, words, cap, badge, kind }
    }
}

/// The queues, under the endpoint's lock.
pub struct EpState {
    /// Threads blocked receiving.
    pub receivers: VecDeque<Arc<Thread>>,
    /// Messages waiting for a receiver.
    pub senders: VecDeque<Pending>,
    /// No capability can receive any more.
    pub closed: bool,
}

/// An endpoint.
pub struct Endpoint {
    /// Identity, for logs.
    pub id: u64,
    /// Queues.
    pub state: SpinLock<EpState>,
    receive_caps: AtomicUsize,
}

impl Endpoint {
    /// A new endpoint, referenced by one receive-capable reference.
    pub fn create() -> EndpointRef {
        let ep = Arc::new(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            state: SpinLock::new(EpState { receivers: VecDeque::new(), senders: VecDeque::new(), closed: false }),
            receive_caps: AtomicUsize::new(1),
        });
        EndpointRef { ep, receive: true }
    }

    /// Removes `thread` from the receive queue (it is being killed).
    /// Returns whether it was there.
    pub fn remove_receiver(&self, thread: &Arc<Thread>) -> bool {
        let mut s = self.state.lock();
        let before = s.receivers.len();
        s.receivers.retain(|t| !Arc::ptr_eq(t, thread));
        before != s.receivers.len()
    }

    /// Removes `thread`'s queued message (it is being killed).
    pub fn remove_sender(&self, thread: &Arc<Thread>) -> Option<Pending> {
        let mut s = self.state.lock();
        let at = s.senders.iter().position(|p| p.sender.as_ref().is_some_and(|t| Arc::ptr_eq(t, thread)))?;
        s.senders.remove(at)
    }

    fn close(&self) {
        let (receivers, senders) = {
            let mut s = self.state.lock();
            s.closed = true;
            (core::mem::take(&mut s.receivers), core::mem::take(&mut s.senders))
        };
        for t in receivers {
            crate::ipc::fail_waiter(&t, abi::Error::PeerDied);
        }
        for p in senders {
            if let Some(t) = p.sender {
                if p.kind == SendKind::Fault {
                    t.task.kill(-1);
                }
                crate::ipc::fail_waiter(&t, abi::Error::PeerDied);
            }
        }
    }
}

/// A reference to an endpoint from a capability. References with the
/// receive right are counted; dropping the last closes the endpoint.
pub struct EndpointRef {
    ep: Arc<Endpoint>,
    receive: bool,
}

impl EndpointRef {
    /// The same endpoint, counted as receive-capable or not.
    pub fn with_receive(&self, receive: bool) -> Self {
        if receive {
            self.ep.receive_caps.fetch_add(1, Ordering::AcqRel);
        }
        Self { ep: self.ep.clone(), receive }
    }

    /// The endpoint itself.
    pub fn arc(&self) -> &Arc<Endpoint> {
        &self.ep
    }
}

impl Clone for EndpointRef {
    fn clone(&self) -> Self {
        self.with_receive(self.receive)
    }
}

impl Drop for EndpointRef {
    fn drop(&mut self) {
        if self.receive && self.ep.receive_caps.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ep.close();
        }
    }
}

impl Deref for EndpointRef {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.ep
    }
}
