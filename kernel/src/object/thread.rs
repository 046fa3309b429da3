//! Threads: a kernel stack, saved registers, FPU state and scheduling
//! state. User threads run in ring 3 and enter the kernel through syscalls
//! and interrupts; each CPU also has one idle thread that runs in the
//! kernel on the CPU's own stack.
//!
//! A thread's saved user registers (its [`TrapFrame`]) sit at the top of
//! its kernel stack. They may be touched by the thread itself while it runs
//! in the kernel, or by whoever took it off a wait queue while it is
//! blocked (the IPC path writes a message straight into the receiver's
//! registers). The context and FPU state are touched only by the CPU that
//! switches the thread in or out, guarded by `on_cpu`.

use super::endpoint::Endpoint;
use super::task::Task;
use crate::arch::context::{self, Context, FpuState};
use crate::arch::gdt::{USER_CS, USER_SS};
use crate::arch::TrapFrame;
use crate::mm::stack::{self, KernelStack, StackUse};
use crate::sync::SpinLock;
use abi::Error;
use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Why a thread is blocked.
#[derive(Clone)]
pub enum Block {
    /// Waiting in `Recv` on the endpoint.
    Recv(Arc<Endpoint>),
    /// Waiting for a receiver on the endpoint (send, call, or a fault).
    Send(Arc<Endpoint>),
    /// Waiting for an answer to a call or a fault.
    Reply,
    /// Sleeping until a deadline.
    Sleep,
    /// Waiting for a task to end.
    TaskWait,
}

/// Scheduling state.
#[derive(Clone)]
pub enum State {
    /// Created, not started.
    Created,
    /// Runnable, in (or on its way into) a run queue.
    Ready,
    /// Running on `SchedInfo::cpu`.
    Running,
    /// Waiting.
    Blocked(Block),
    /// Finished.
    Dead,
}

/// State guarded by the thread's lock.
pub struct SchedInfo {
    /// Where the thread is in its life.
    pub state: State,
    /// The CPU it is pinned to, if any.
    pub affinity: Option<usize>,
    /// The CPU it runs on, is queued on, or last ran on.
    pub cpu: usize,
}

/// A thread.
pub struct Thread {
    /// Identity.
    pub id: u64,
    /// The task it belongs to.
    pub task: Arc<Task>,
    /// Whether it runs user code.
    pub user: bool,
    stack: Option<KernelStack>,
    stack_top: u64,
    context: UnsafeCell<Context>,
    fpu: UnsafeCell<FpuState>,
    /// Scheduling state.
    pub sched: SpinLock<SchedInfo>,
    /// Set while a CPU has it switched in (or is switching it out).
    pub on_cpu: AtomicBool,
    /// Set when its task is being killed: it exits at its next chance.
    pub killed: AtomicBool,
    /// Set when its pager answered its fault with anything but `RESUME`:
    /// the fault is then handled as if there were no pager.
    pub fault_declined: AtomicBool,
}

// SAFETY: `context` and `fpu` are only accessed by the CPU switching the
// thread in or out, which the `on_cpu` flag makes exclusive (a CPU waits for
// the flag to clear before switching a thread in). Everything else is
// immutable or behind locks and atomics.
unsafe impl Sync for Thread {}
// SAFETY: as above; nothing in a thread is tied to the CPU that made it.
unsafe impl Send for Thread {}

impl Thread {
    /// A user thread of `task` starting at `entry` with stack pointer
    /// `stack` and `rdi = arg`. Not started.
    pub fn new_user(task: Arc<Task>, entry: u64, stack: u64, arg: u64) -> Result<Arc<Self>, Error> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let kstack = stack::alloc(StackUse::Thread(id)).map_err(|_| Error::OutOfMemory)?;
        let top = kstack.top();
        let frame = TrapFrame {
            rip: entry,
            cs: USER_CS as u64,
            rflags: 0x202,
            rsp: stack,
            ss: USER_SS as u64,
            rdi: arg,
            ..TrapFrame::default()
        };
        // SAFETY: the stack was just allocated for this thread alone.
        let ctx = unsafe { context::prepare_new_thread(top, &frame) };
        Ok(Arc::new(Self {
            id,
            task,
            user: true,
            stack: Some(kstack),
            stack_top: top,
            context: UnsafeCell::new(ctx),
            fpu: UnsafeCell::new(FpuState::initial()),
            sched: SpinLock::new(SchedInfo { state: State::Created, affinity: None, cpu: 0 }),
            on_cpu: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            fault_declined: AtomicBool::new(false),
        }))
    }

    /// The idle thread of CPU `cpu`: the code already running there.
    pub fn new_idle(task: Arc<Task>, cpu: usize, stack_top: u64) -> Arc<Self> {
        Arc::new(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            task,
            user: false,
            stack: None,
            stack_top,
            context: UnsafeCell::new(Context::default()),
            fpu: UnsafeCell::new(FpuState::initial()),
            sched: SpinLock::new(SchedInfo { state: State::Running, affinity: Some(cpu), cpu }),
            on_cpu: AtomicBool::new(true),
            killed: AtomicBool::new(false),
            fault_declined: AtomicBool::new(false),
        })
    }

    /// Top of its kernel stack (loaded into the TSS and the syscall entry
    /// while it runs).
    pub fn stack_top(&self) -> u64 {
        self.stack_top
    }

    /// Runs `f` on its saved user registers. Allowed for the running thread
    /// itself, and for a blocked or not yet started thread by the code that
    /// took it off its wait queue (a blocked thread does not touch its
    /// registers until it is woken, even while its CPU finishes switching
    /// away from it).
    pub fn with_frame<R>(&self, f: impl FnOnce(&mut TrapFrame) -> R) -> R {
        assert!(self.user, "kernel threads have no user registers");
        let allowed = crate::sched::is_current(self)
            || matches!(self.sched.lock().state, State::Blocked(_) | State::Created);
        assert!(allowed, "user registers of a thread that is running elsewhere");
        let at = context::user_frame_address(self.stack_top);
        // SAFETY: the frame lies at the top of this thread's own, mapped
        // kernel stack; the check above (and the queue discipline described
        // in the module docs) makes this the only access.
        f(unsafe { &mut *(at as *mut TrapFrame) })
    }

    /// Runs `f` on the saved user registers of a thread that is blocked or
    /// not yet started, while its scheduling lock is held (`s` is the
    /// locked state): the way a waker delivers results.
    pub fn write_frame(&self, s: &SchedInfo, f: impl FnOnce(&mut TrapFrame)) {
        assert!(self.user, "kernel threads have no user registers");
        assert!(matches!(s.state, State::Blocked(_) | State::Created), "user registers of a runnable thread");
        let at = context::user_frame_address(self.stack_top);
        // SAFETY: the frame lies at the top of this thread's own kernel
        // stack; the thread is blocked (checked under its lock) and does not
        // touch its registers until woken, which only the lock holder does.
        f(unsafe { &mut *(at as *mut TrapFrame) })
    }

    /// Raw pointer to the switch context (scheduler only).
    pub fn context_ptr(&self) -> *mut Context {
        self.context.get()
    }

    /// Saves the CPU's FPU/SSE registers into this thread (scheduler only,
    /// on the CPU switching it out).
    pub fn save_fpu(&self) {
        // SAFETY: only the CPU switching this thread out calls this, while
        // `on_cpu` is still set, so no one else touches the state.
        unsafe { (*self.fpu.get()).save() }
    }

    /// Loads this thread's FPU/SSE registers (scheduler only, on the CPU
    /// switching it in).
    pub fn restore_fpu(&self) {
        // SAFETY: as for `save_fpu`, on the CPU switching it in.
        unsafe { (*self.fpu.get()).restore() }
    }

    /// Whether it has been killed.
    pub fn killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        if let Some(s) = self.stack.take() {
            stack::free(s);
        }
    }
}
