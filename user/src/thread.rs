//! Threads of the calling task: [`spawn`] a closure on a new thread with
//! its own stack (from the heap), optionally pinned to a CPU, and
//! [`JoinHandle::join`] it.
//!
//! The kernel starts a thread at an address with `rdi` = one word and `rsp`
//! = a stack top. Here every thread starts at the runtime's entry stub
//! (`raw::thread_entry_address`) with `rdi` = a key into a table of pending
//! closures; the stub calls [`thread_main`], which runs the closure, and
//! then sets the thread's "finished" flag and ends the thread without
//! touching the stack again, so a joiner may free the stack at once.
//!
//! The lowest bytes of every stack hold a canary that `join` checks: heap
//! stacks have no guard page, so an overflow would otherwise go unnoticed.

use crate::sys;
use abi::Error;
use abi::cap::Handle;
use abi::handles::SELF_TASK;
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// Default stack size of a thread.
pub const DEFAULT_STACK: usize = 16 * 1024;
/// Canary bytes at the bottom of every stack.
const CANARY_BYTES: usize = 512;
const CANARY: u8 = 0xc5;

/// A page of stack: stacks are whole, page-aligned pages, so no other
/// heap data shares a page with a stack.
#[derive(Clone)]
#[repr(C, align(4096))]
struct StackPage([u8; 4096]);

type Work = Box<dyn FnOnce() + Send + 'static>;

struct Shared {
    /// Set to 1 by the entry stub once the closure returned.
    finished: AtomicU64,
}

struct Start {
    work: Work,
    shared: Arc<Shared>,
}

static PENDING: spin::Mutex<Vec<(u64, Start)>> = spin::Mutex::new(Vec::new());
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// A thread started by [`spawn`]. Dropping it without joining detaches the
/// thread (its stack is then never freed).
pub struct JoinHandle {
    handle: Handle,
    shared: Arc<Shared>,
    stack: Option<Box<[StackPage]>>,
}

/// Options for a new thread.
#[derive(Clone, Copy, Debug)]
pub struct Builder {
    cpu: Option<u64>,
    stack_bytes: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Any CPU, the default stack size.
    pub const fn new() -> Self {
        Self { cpu: None, stack_bytes: DEFAULT_STACK }
    }

    /// Pins the thread to `cpu` before it starts.
    pub const fn cpu(mut self, cpu: u64) -> Self {
        self.cpu = Some(cpu);
        self
    }

    /// Pins the thread to `cpu`, or lets it run anywhere (`None`).
    pub const fn affinity(mut self, cpu: Option<u64>) -> Self {
        self.cpu = cpu;
        self
    }

    /// Uses a stack of `bytes` (rounded up to whole pages).
    pub const fn stack(mut self, bytes: usize) -> Self {
        self.stack_bytes = bytes;
        self
    }

    /// Creates the thread, pins it if asked, and starts it running `f`.
    pub fn spawn(self, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle, Error> {
        let pages = self.stack_bytes.max(1).div_ceil(4096);
        let mut stack: Box<[StackPage]> = alloc::vec![StackPage([0; 4096]); pages].into_boxed_slice();
        stack[0].0[..CANARY_BYTES].fill(CANARY);
        // The top of the stack (page-aligned, so 16-byte aligned too).
        let top = stack.as_ptr() as u64 + (pages * 4096) as u64;
        let shared = Arc::new(Shared { finished: AtomicU64::new(0) });
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        PENDING.lock().push((key, Start { work: Box::new(f), shared: shared.clone() }));
        let created = sys::thread_create(SELF_TASK, crate::raw::thread_entry_address(), top, key).and_then(|h| {
            if let Some(cpu) = self.cpu {
                sys::thread_set_affinity(h, Some(cpu)).inspect_err(|_| {
                    let _ = sys::cap_delete(h);
                })?;
            }
            Ok(h)
        });
        let started = created.and_then(|h| {
            sys::thread_start(h).inspect_err(|_| {
                let _ = sys::cap_delete(h);
            })?;
            Ok(h)
        });
        match started {
            Ok(handle) => Ok(JoinHandle { handle, shared, stack: Some(stack) }),
            Err(e) => {
                PENDING.lock().retain(|(k, _)| *k != key);
                Err(e)
            }
        }
    }
}

/// Starts `f` on a new thread that may run on any CPU.
pub fn spawn(f: impl FnOnce() + Send + 'static) -> Result<JoinHandle, Error> {
    Builder::new().spawn(f)
}

/// Starts `f` on a new thread pinned to `cpu`.
pub fn spawn_on(cpu: u64, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle, Error> {
    Builder::new().cpu(cpu).spawn(f)
}

impl JoinHandle {
    /// The thread's capability (CONTROL).
    pub fn handle(&self) -> Handle {
        self.handle
    }

    /// Whether the closure has returned.
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::Acquire) != 0
    }

    /// Waits for the closure to return, frees the stack and deletes the
    /// thread capability. Panics if the thread overflowed its stack.
    pub fn join(mut self) {
        // Sleep rather than spin: the joiner must not take CPU time from
        // the threads it waits for (nor disturb what they measure).
        while !self.is_finished() {
            let _ = sys::sleep(1_000);
        }
        let stack = self.stack.take().expect("joined once");
        assert!(
            stack[0].0[..CANARY_BYTES].iter().all(|&b| b == CANARY),
            "a thread overflowed its {} KiB stack",
            stack.len() * 4
        );
        drop(stack);
        let _ = sys::cap_delete(self.handle);
    }
}

impl Drop for JoinHandle {
    fn drop(&mut self) {
        if let Some(stack) = self.stack.take() {
            // Detached: the thread may still run on this stack and will
            // write its finished flag, so both must live forever.
            core::mem::forget(stack);
            core::mem::forget(self.shared.clone());
        }
    }
}

/// First Rust code of a new thread (called by the entry stub with the
/// start key): runs the closure and returns the address of the finished
/// flag for the stub to set.
pub(crate) extern "C" fn thread_main(key: u64) -> u64 {
    let start = {
        let mut pending = PENDING.lock();
        let at = pending.iter().position(|(k, _)| *k == key).expect("a thread started with an unknown key");
        pending.swap_remove(at).1
    };
    let Start { work, shared } = start;
    work();
    // The joiner (or a detached handle's leaked clone) keeps `shared` alive
    // until it has seen the flag set.
    &shared.finished as *const AtomicU64 as u64
}
