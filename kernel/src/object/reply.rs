//! A reply capability: the right to answer one call. Created when a call is
//! received; consumed by the answer. If it is deleted unanswered (or its
//! holder dies), the caller is released with `PeerDied`; a thread waiting on
//! its pager to resolve a fault is killed instead, since it cannot resume.

use super::thread::Thread;
use crate::sync::SpinLock;
use alloc::sync::{Arc, Weak};

/// What the caller is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    /// An ordinary call: the answer is delivered into its registers.
    Call,
    /// A fault sent to the pager: answering `RESUME` retries the faulting
    /// instruction; any other answer kills the task.
    Fault,
}

/// One pending answer. It refers to the caller weakly: a caller killed
/// while the reply is outstanding is freed at once, not when the callee
/// gets round to answering.
pub struct Reply {
    caller: SpinLock<Option<Weak<Thread>>>,
    /// What kind of wait the caller is in.
    pub kind: ReplyKind,
}

impl Reply {
    /// A reply object for `caller`.
    pub fn new(caller: &Arc<Thread>, kind: ReplyKind) -> Self {
        Self { caller: SpinLock::new(Some(Arc::downgrade(caller))), kind }
    }

    /// Takes the caller (once); `None` if answered already or gone.
    pub fn take_caller(&self) -> Option<Arc<Thread>> {
        self.caller.lock().take().and_then(|w| w.upgrade())
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(caller) = self.caller.get_mut().take().and_then(|w| w.upgrade()) {
            match self.kind {
                ReplyKind::Call => crate::ipc::fail_waiter(&caller, abi::Error::PeerDied),
                ReplyKind::Fault => {
                    log::warn!(
                        "ipc: the pager dropped the fault of thread {} ({}) unanswered; killing the task",
                        caller.id,
                        caller.task.name
                    );
                    caller.task.kill(-1);
                    crate::ipc::fail_waiter(&caller, abi::Error::PeerDied);
                }
            }
        }
    }
}
