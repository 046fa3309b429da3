//! Per-CPU scheduling: a run queue per CPU, preemption by the timer,
//! `hlt` when idle, pinning, stealing work when idle, and waking a thread
//! on another CPU with an IPI.
//!
//! The kernel does not preempt itself: a thread switches only when it
//! blocks, yields or exits, or on its way back to user mode when its time
//! slice is over or a wake-up asked for it. A CPU switches to a thread only
//! after the CPU that last ran it has finished switching away (`on_cpu`),
//! so one kernel stack never runs on two CPUs.
//!
//! Switching reloads CR3 only when the address space changes, and keeps
//! each address space's set of active CPUs exact (see `mm::tlb`).

use crate::arch::{self, apic::vector};
use crate::cpu::{self, Cpu};
use crate::mm::address_space::{AddressSpace, SpaceRef};
use crate::object::task::Task;
use crate::object::thread::{Block, State, Thread};
use crate::sync::SpinLock;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use spin::Once;

/// Timer ticks a user thread runs before it yields to the next in line.
const SLICE_TICKS: u32 = 2;

/// One CPU's scheduler.
pub struct CpuSched {
    queue: SpinLock<VecDeque<Arc<Thread>>>,
    current: SpinLock<Option<Arc<Thread>>>,
    previous: SpinLock<Option<Arc<Thread>>>,
    idle: Once<Arc<Thread>>,
    loaded: SpinLock<Option<SpaceRef>>,
    need_resched: AtomicBool,
    sleepers: SpinLock<Vec<(u64, Arc<Thread>)>>,
    slice: AtomicU32,
    running: AtomicBool,
}

impl CpuSched {
    /// A scheduler not yet started.
    pub const fn new() -> Self {
        Self {
            queue: SpinLock::new(VecDeque::new()),
            current: SpinLock::new(None),
            previous: SpinLock::new(None),
            idle: Once::new(),
            loaded: SpinLock::new(None),
            need_resched: AtomicBool::new(false),
            sleepers: SpinLock::new(Vec::new()),
            slice: AtomicU32::new(SLICE_TICKS),
            running: AtomicBool::new(false),
        }
    }

    /// Threads waiting to run here.
    pub fn queued(&self) -> usize {
        self.queue.lock().len()
    }
}

impl Default for CpuSched {
    fn default() -> Self {
        Self::new()
    }
}

/// Makes the code running on this CPU its idle thread and turns on what
/// user threads need (SYSCALL, SSE, SMEP/SMAP).
pub fn init_this_cpu() {
    let cpu = cpu::current();
    let top = cpu.stacks.get().expect("a CPU's stacks exist before its scheduler").kernel;
    let idle = Thread::new_idle(Task::kernel(), cpu.index(), top);
    cpu.sched.idle.call_once(|| idle.clone());
    *cpu.sched.current.lock() = Some(idle);
    *cpu.sched.loaded.lock() = Some(SpaceRef::Kernel);
    arch::syscall::init();
    arch::context::enable_sse();
    let (smep, smap) = arch::usercopy::enable_user_protections();
    cpu.sched.running.store(true, Ordering::Release);
    if cpu.index() == 0 {
        log::info!("sched: SYSCALL on, SSE for user threads, SMEP {}, SMAP {}", on_off(smep), on_off(smap));
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off (the CPU lacks it)" }
}

/// The thread running on this CPU.
pub fn current() -> Arc<Thread> {
    cpu::current().sched.current.lock().clone().expect("scheduler not started on this CPU")
}

/// Whether `t` is the thread running on this CPU.
pub fn is_current(t: &Thread) -> bool {
    cpu::current().sched.current.lock().as_ref().is_some_and(|c| core::ptr::eq(&**c, t))
}

fn is_idle(cpu: &Cpu, t: &Arc<Thread>) -> bool {
    cpu.sched.idle.get().is_some_and(|i| Arc::ptr_eq(i, t))
}

/// Takes the next runnable thread off this CPU's queue (skipping stale
/// entries) and marks it running here.
fn pop_ready(cpu: &Cpu) -> Option<Arc<Thread>> {
    loop {
        let t = cpu.sched.queue.lock().pop_front()?;
        let mut s = t.sched.lock();
        if matches!(s.state, State::Ready) {
            s.state = State::Running;
            s.cpu = cpu.index();
            drop(s);
            return Some(t);
        }
    }
}

/// Takes an unpinned runnable thread from the busiest other CPU.
fn steal(cpu: &Cpu) -> Option<Arc<Thread>> {
    let victim = cpu::all()
        .filter(|c| c.index() != cpu.index() && c.sched.running.load(Ordering::Acquire))
        .max_by_key(|c| c.sched.queued())?;
    let t = {
        let mut q = victim.sched.queue.lock();
        let at = q.iter().position(|t| t.sched.lock().affinity.is_none())?;
        q.remove(at)?
    };
    let mut s = t.sched.lock();
    if !matches!(s.state, State::Ready) {
        return None;
    }
    s.state = State::Running;
    s.cpu = cpu.index();
    drop(s);
    Some(t)
}

/// Picks the next thread for this CPU and switches to it. The current
/// thread, if still running, goes to the back of the queue. Interrupts must
/// be masked.
pub fn schedule() {
    let cpu = cpu::current();
    let s = &cpu.sched;
    let here = cpu.index();
    s.need_resched.store(false, Ordering::Relaxed);
    let prev = current();
    // Whether `prev` is still this CPU's to run: another CPU may have woken
    // it meanwhile and claimed it (then it is Ready, or Running elsewhere).
    let (prev_runs, prev_home) = if is_idle(cpu, &prev) {
        (false, here)
    } else {
        let ps = prev.sched.lock();
        (matches!(ps.state, State::Running) && ps.cpu == here, ps.affinity.unwrap_or(here))
    };
    let must_move = prev_runs && prev_home != here;
    let next = match pop_ready(cpu).or_else(|| steal(cpu)) {
        Some(n) => n,
        None if prev_runs && !must_move => {
            s.slice.store(SLICE_TICKS, Ordering::Relaxed);
            return;
        }
        None => s.idle.get().expect("idle thread").clone(),
    };
    if Arc::ptr_eq(&next, &prev) {
        return;
    }
    if prev_runs {
        prev.sched.lock().state = State::Ready;
        enqueue(prev.clone(), prev_home);
    }
    // A thread the scheduler picks gets a fresh slice; one handed the CPU
    // directly (IPC, `block_and_switch`) runs on in the slice it was given,
    // so two threads passing the CPU back and forth cannot keep the
    // threads queued behind them from ever running.
    s.slice.store(SLICE_TICKS, Ordering::Relaxed);
    switch_to(cpu, prev, next);
}

/// Switches from `prev` (running here) to `next` (marked running here).
fn switch_to(cpu: &'static Cpu, prev: Arc<Thread>, next: Arc<Thread>) {
    // The CPU that last ran `next` may still be switching away from it.
    while next.on_cpu.load(Ordering::Acquire) {
        crate::mm::tlb::serve_while_waiting();
        arch::cpu::pause();
    }
    next.on_cpu.store(true, Ordering::Release);
    {
        let mut loaded = cpu.sched.loaded.lock();
        // The idle thread runs on the user space it finds (lazy TLB, see
        // `mm::tlb`): going idle and back to the same task then loads CR3
        // not at all, instead of twice.
        let lazy = is_idle(cpu, &next)
            && loaded.as_ref().is_some_and(|l| matches!(l, SpaceRef::User(_)) && l.root() == arch::cpu::current_root());
        if lazy {
            crate::mm::tlb::enter_lazy();
        } else {
            let target = &next.task.space;
            let same = loaded.as_ref().is_some_and(|l| l.root() == target.root());
            target.activate(if same { None } else { loaded.as_deref() });
            if !same {
                *loaded = Some(target.clone());
            }
        }
    }
    if next.user {
        cpu.tables.set_kernel_stack(next.stack_top());
        cpu.header.kernel_rsp.store(next.stack_top(), Ordering::Relaxed);
    }
    // FPU state is saved only if the thread used the FPU since it was
    // switched in, and loaded only when the next thread first uses it.
    if prev.user && arch::context::fpu_used() {
        prev.save_fpu();
    }
    arch::context::fpu_trap_next_use();
    let (prev_ctx, next_ctx) = (prev.context_ptr(), next.context_ptr());
    *cpu.sched.current.lock() = Some(next);
    *cpu.sched.previous.lock() = Some(prev);
    // SAFETY: interrupts are masked (the scheduler's contract); `prev` is
    // the running thread and `next` is switched out everywhere (`on_cpu`
    // was clear) and now claimed by this CPU; both stay alive in `current`
    // and `previous` across the switch.
    unsafe { arch::context::switch(prev_ctx, next_ctx) };
    finish_switch();
    // Back on this thread (perhaps on another CPU): if it was killed while
    // switched out, its way back to user mode must notice.
    if cpu::current().sched.current.lock().as_ref().is_some_and(|t| t.killed()) {
        request_resched();
    }
}

/// Completes a switch on the thread that was switched to: the thread
/// switched away from may now run elsewhere (and is freed if it died).
pub fn finish_switch() {
    let prev = cpu::current().sched.previous.lock().take();
    if let Some(p) = prev {
        p.on_cpu.store(false, Ordering::Release);
    }
}

/// Puts `t` (marked ready) on CPU `index`'s queue and makes sure that CPU
/// notices: an IPI for another CPU, a reschedule flag for this one.
fn enqueue(t: Arc<Thread>, index: usize) {
    let target = cpu::get(index);
    target.sched.queue.lock().push_back(t);
    if index == cpu::current_index() {
        let c = cpu::current();
        if c.sched.current.lock().as_ref().is_some_and(|cur| is_idle(c, cur)) {
            c.sched.need_resched.store(true, Ordering::Relaxed);
        }
    } else {
        kick(index);
    }
}

/// Makes CPU `index` run its scheduler soon.
pub fn kick(index: usize) {
    arch::apic::send_ipi_fast(cpu::get(index).apic_id(), vector::RESCHEDULE);
}

/// The running user thread used the FPU for the first time since it was
/// switched in (#NM): load its state and let it continue.
pub fn on_fpu_first_use() {
    arch::context::fpu_allow();
    let cur = cpu::current().sched.current.lock().clone();
    if let Some(t) = cur {
        t.restore_fpu();
    }
}

/// Makes this CPU run its scheduler on the way back to user mode.
pub fn request_resched() {
    cpu::current().sched.need_resched.store(true, Ordering::Relaxed);
}

/// The handler of the reschedule IPI.
pub fn on_reschedule_ipi() {
    cpu::current().sched.need_resched.store(true, Ordering::Relaxed);
}

/// What [`wake_with`] did.
pub enum Woken {
    /// The thread is ready and may run on this CPU: the caller runs it
    /// (a direct hand-off) or queues it with [`enqueue_here`].
    Here(Arc<Thread>),
    /// It was queued on its CPU (woken there with an IPI).
    Queued,
    /// It was not blocked (someone else woke it first): nothing done.
    NotBlocked,
}

/// Wakes a blocked thread, first letting `write` deliver its results into
/// its saved registers. Check, write and wake happen under the thread's
/// lock, so of several parties racing to wake a thread (a sender, a kill,
/// a timer) exactly one delivers. With `handoff`, a thread that may run on
/// this CPU is returned instead of queued.
pub fn wake_with(t: &Arc<Thread>, write: impl FnOnce(&mut crate::arch::TrapFrame), handoff: bool) -> Woken {
    let here = cpu::current_index();
    let target = {
        let mut s = t.sched.lock();
        if !matches!(s.state, State::Blocked(_)) {
            return Woken::NotBlocked;
        }
        if t.user {
            t.write_frame(&s, write);
        }
        s.state = State::Ready;
        if handoff && s.affinity.is_none_or(|a| a == here) {
            return Woken::Here(t.clone());
        }
        s.affinity.unwrap_or(s.cpu)
    };
    enqueue(t.clone(), target);
    Woken::Queued
}

/// Blocks the current thread (whose state the caller already set to
/// blocked) and runs `next` if given — a direct hand-off, with no trip
/// through the run queue — or whatever the scheduler picks.
pub fn block_and_switch(next: Option<Arc<Thread>>) {
    let _masked = arch::cpu::InterruptGuard::new();
    match next {
        Some(n) => {
            {
                let mut s = n.sched.lock();
                s.state = State::Running;
                s.cpu = cpu::current_index();
            }
            let cpu = cpu::current();
            let prev = current();
            switch_to(cpu, prev, n);
        }
        None => schedule(),
    }
}

/// Runs `t` (ready, claimed for hand-off) soon on this CPU, after the
/// current thread: used when a hand-off was not needed after all.
pub fn enqueue_here(t: Arc<Thread>) {
    enqueue(t, cpu::current_index());
}

/// Starts a created thread: on its pinned CPU, or on the least busy one.
pub fn start(t: &Arc<Thread>) -> Result<(), abi::Error> {
    let target = {
        let mut s = t.sched.lock();
        if !matches!(s.state, State::Created) {
            return Err(abi::Error::Busy);
        }
        t.task.thread_started()?;
        s.state = State::Ready;
        let target = s.affinity.unwrap_or_else(least_busy);
        s.cpu = target;
        target
    };
    enqueue(t.clone(), target);
    Ok(())
}

fn least_busy() -> usize {
    cpu::online()
        .iter()
        .min_by_key(|&i| {
            let c = cpu::get(i);
            let busy = c.sched.current.lock().as_ref().is_some_and(|cur| !is_idle(c, cur));
            c.sched.queued() * 2 + busy as usize
        })
        .unwrap_or(0)
}

/// Lets pending interrupts (shootdown requests, timer ticks) in during a
/// long operation in the kernel. Nothing is rescheduled here.
pub fn preempt_point() {
    if !arch::cpu::interrupts_enabled() {
        arch::cpu::enable_interrupts();
        core::hint::spin_loop();
        arch::cpu::disable_interrupts();
    }
}

/// Gives up the CPU to the next ready thread, if any.
pub fn yield_now() {
    let _masked = arch::cpu::InterruptGuard::new();
    schedule();
}

/// Sleeps the current thread for at least `micros` microseconds (the wake
/// comes with the next timer tick after the deadline).
pub fn sleep(micros: u64) {
    let _masked = arch::cpu::InterruptGuard::new();
    let me = current();
    let deadline = arch::cpu::rdtsc().saturating_add(micros.saturating_mul(crate::time::tsc_per_micro()));
    me.sched.lock().state = State::Blocked(Block::Sleep);
    cpu::current().sched.sleepers.lock().push((deadline, me));
    schedule();
}

/// Takes a thread off the sleeper list of the CPU it slept on (it is being
/// killed): its memory should not wait for the deadline.
pub fn cancel_sleep(t: &Arc<Thread>) {
    let cpu = t.sched.lock().cpu;
    cpu::get(cpu).sched.sleepers.lock().retain(|(_, s)| !Arc::ptr_eq(s, t));
}

/// Timer interrupt: wakes due sleepers and ends time slices.
pub fn on_timer_tick() {
    let cpu = cpu::current();
    if !cpu.sched.running.load(Ordering::Relaxed) {
        return;
    }
    let now = arch::cpu::rdtsc();
    let due: Vec<Arc<Thread>> = {
        let mut sleepers = cpu.sched.sleepers.lock();
        if sleepers.is_empty() {
            Vec::new()
        } else {
            let (due, rest): (Vec<_>, Vec<_>) = sleepers.drain(..).partition(|(d, _)| *d <= now);
            *sleepers = rest;
            due.into_iter().map(|(_, t)| t).collect()
        }
    };
    for t in &due {
        crate::ipc::finish_wait(t, 0);
    }
    let cur = cpu.sched.current.lock().clone();
    if let Some(cur) = cur {
        if is_idle(cpu, &cur) {
            if cpu.sched.queued() > 0 {
                cpu.sched.need_resched.store(true, Ordering::Relaxed);
            }
        } else if cpu.sched.slice.fetch_sub(1, Ordering::Relaxed) <= 1 {
            cpu.sched.need_resched.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs on every return to user mode: a killed thread exits here, and a
/// thread whose slice ended (or that a wake-up preempts) lets others run.
pub fn before_user_return() {
    loop {
        // Read afresh each time: `schedule` may resume this thread on
        // another CPU (stolen), whose flags and current thread are then the
        // ones that concern it.
        let cpu = cpu::current();
        // The common case costs one load: kills and wake-ups that concern
        // this CPU set `need_resched` (see `Task::kill` and `switch_to`).
        if !cpu.sched.need_resched.load(Ordering::Relaxed) {
            return;
        }
        let killed = cpu.sched.current.lock().as_ref().is_some_and(|t| t.killed());
        if killed {
            exit_current();
        }
        let _masked = arch::cpu::InterruptGuard::new();
        schedule();
    }
}

/// Ends the current thread (and its task, if it was the last).
pub fn exit_current() -> ! {
    arch::cpu::disable_interrupts();
    let me = current();
    me.sched.lock().state = State::Dead;
    if me.user {
        me.task.thread_exited();
    }
    drop(me);
    schedule();
    unreachable!("a dead thread was scheduled again");
}

/// If this CPU has `space` loaded, switches it to the kernel's tables (the
/// space is about to be torn down).
pub fn leave_space(space: &AddressSpace) {
    let _masked = arch::cpu::InterruptGuard::new();
    unload_user_space_if(cpu::current(), |l| l.root() == space.root());
}

/// Lets go of a lazily kept address space whose task has ended, so its
/// page tables are freed now rather than when this CPU next runs a task.
fn release_dead_space(cpu: &Cpu) {
    unload_user_space_if(cpu, AddressSpace::is_dead);
}

/// Switches `cpu` (the current one) to the kernel's tables if the user
/// space it has loaded matches `gone`, dropping its reference to it.
fn unload_user_space_if(cpu: &Cpu, gone: impl Fn(&AddressSpace) -> bool) {
    let mut loaded = cpu.sched.loaded.lock();
    if loaded.as_ref().is_some_and(|l| matches!(l, SpaceRef::User(_)) && gone(l)) {
        crate::mm::kernel_space::kernel_space().activate(loaded.as_deref());
        *loaded = Some(SpaceRef::Kernel);
    }
}

/// The idle thread's loop: run ready threads, run posted kernel work,
/// otherwise halt until an interrupt.
pub fn idle_loop() -> ! {
    let cpu = cpu::current();
    loop {
        arch::cpu::disable_interrupts();
        if cpu.sched.queued() > 0 || cpu.sched.need_resched.load(Ordering::Relaxed) {
            schedule();
            continue;
        }
        if crate::smp::run_posted_work(cpu) {
            continue;
        }
        release_dead_space(cpu);
        if cpu::online().len() > 1 && cpu::all().any(|c| c.index() != cpu.index() && c.sched.queued() > 1) {
            schedule();
        }
        arch::cpu::enable_interrupts_and_wait();
    }
}

/// The name and thread id of what runs on this CPU, for diagnostics:
/// copied into `buf` without waiting for any lock (a fatal report may run
/// while the scheduler's own locks are held).
pub fn describe_current(buf: &mut [u8; 64]) -> (&str, u64) {
    let Some(cur) = cpu::current().sched.current.try_lock() else { return ("?", 0) };
    let Some(t) = cur.as_ref() else { return ("boot", 0) };
    let name = t.task.name.as_bytes();
    let n = name.len().min(buf.len());
    buf[..n].copy_from_slice(&name[..n]);
    let id = t.id;
    drop(cur);
    (core::str::from_utf8(&buf[..n]).unwrap_or("?"), id)
}
