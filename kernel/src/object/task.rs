//! Tasks: an address space, a capability table and threads.
//!
//! A task is created from an ELF image (a boot module): each segment is
//! loaded into fresh frames and mapped with its own permissions, and a stack
//! is mapped below an unmapped guard page. The frames the kernel allocated
//! for it are remembered, so that when the task ends — its last thread
//! exits, or it is killed — the kernel unmaps everything (with one
//! shootdown), frees its own frames, leaves frames owned by the memory
//! server to the memory server, empties the capability table (releasing
//! anyone waiting on the task's endpoints or replies), tells the task's
//! pager, and wakes whoever waits for the task.

use super::cap_table::CapTable;
use super::endpoint::{EndpointRef, Pending, SendKind};
use super::thread::{Block, State, Thread};
use super::{Capability, Object};
use crate::kcore::mem_kind::FrameUse;
use crate::kcore::user_elf::{self, ElfError};
use crate::mm::address_space::{AddressSpace, SpaceRef};
use crate::mm::frame;
use crate::mm::paging::Access;
use crate::sync::SpinLock;
use abi::cap::Rights;
use abi::handles;
use abi::ipc::{kernel_label, MsgInfo};
use abi::Error;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Top of a task's first stack (16-byte aligned).
pub const USER_STACK_TOP: u64 = 0x0000_7fff_fff0_0000;
/// Pages of a task's first stack (the page below it stays unmapped).
pub const USER_STACK_PAGES: u64 = 16;

/// Why a task could not be created.
#[derive(Debug)]
pub enum SpawnError {
    /// The image is not a program the kernel will load.
    Elf(ElfError),
    /// No memory for it.
    OutOfMemory,
}

impl From<SpawnError> for Error {
    fn from(e: SpawnError) -> Self {
        match e {
            SpawnError::Elf(ElfError::WritableAndExecutable(_)) => Error::WriteExecute,
            SpawnError::Elf(_) => Error::InvalidArgument,
            SpawnError::OutOfMemory => Error::OutOfMemory,
        }
    }
}

struct Life {
    exit_code: Option<i64>,
    /// Threads waiting for the end (weak: a killed waiter must not be kept).
    waiters: Vec<alloc::sync::Weak<Thread>>,
}

/// A task.
pub struct Task {
    /// Identity.
    pub id: u64,
    /// Name (the module path it came from).
    pub name: String,
    /// Its address space.
    pub space: SpaceRef,
    /// Its capability table.
    pub caps: SpinLock<CapTable>,
    threads: SpinLock<Vec<Arc<Thread>>>,
    /// Threads started and not yet dead.
    live: AtomicUsize,
    life: SpinLock<Life>,
    /// Where faults and the exit notice go: a send-only endpoint and badge.
    pager: SpinLock<Option<(EndpointRef, u64)>>,
    dying: AtomicBool,
    finished: AtomicBool,
}

static KERNEL_TASK: spin::Once<Arc<Task>> = spin::Once::new();

impl Task {
    fn with_space(name: &str, space: SpaceRef) -> Arc<Self> {
        Arc::new(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: String::from(name),
            space,
            caps: SpinLock::new(CapTable::new()),
            threads: SpinLock::new(Vec::new()),
            live: AtomicUsize::new(0),
            life: SpinLock::new(Life { exit_code: None, waiters: Vec::new() }),
            pager: SpinLock::new(None),
            dying: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        })
    }

    /// The task the idle threads belong to (the kernel's address space).
    pub fn kernel() -> Arc<Task> {
        KERNEL_TASK.call_once(|| Self::with_space("kernel", SpaceRef::Kernel)).clone()
    }

    /// Creates a task from ELF `image`, with one thread (not started) that
    /// begins at the entry point with `rdi = arg`, and the initial
    /// capabilities `SELF_TASK`, `SELF_SPACE` and `SELF_THREAD`.
    pub fn spawn(name: &str, image: &[u8], arg: u64) -> Result<(Arc<Task>, Arc<Thread>), SpawnError> {
        let img = user_elf::check(image).map_err(SpawnError::Elf)?;
        let space = SpaceRef::User(Arc::new(AddressSpace::new_user().map_err(|_| SpawnError::OutOfMemory)?));
        let task = Self::with_space(name, space);
        let result = (|| {
            for seg in img.segments() {
                let access = Access { write: seg.write, execute: seg.execute, user: true, global: false, uncached: false };
                task.map_fresh(seg.page_start(), (seg.page_end() - seg.page_start()) / 4096, access, |page, buf| {
                    // Copy the part of the file that falls into this page.
                    let (lo, hi) = (page.max(seg.vaddr), (page + 4096).min(seg.vaddr + seg.file_size));
                    if lo < hi {
                        let from = (seg.offset + (lo - seg.vaddr)) as usize;
                        buf[(lo - page) as usize..(hi - page) as usize].copy_from_slice(&image[from..from + (hi - lo) as usize]);
                    }
                })?;
            }
            let stack = Access { write: true, execute: false, user: true, global: false, uncached: false };
            task.map_fresh(USER_STACK_TOP - USER_STACK_PAGES * 4096, USER_STACK_PAGES, stack, |_, _| {})?;
            let thread = Thread::new_user(task.clone(), img.entry, USER_STACK_TOP, arg).map_err(|_| SpawnError::OutOfMemory)?;
            task.install_initial_caps(&thread)?;
            task.threads.lock().push(thread.clone());
            Ok(thread)
        })();
        match result {
            Ok(thread) => Ok((task, thread)),
            Err(e) => {
                task.release_memory();
                task.caps.lock().drain();
                Err(e)
            }
        }
    }

    /// Maps `pages` fresh zeroed frames from `start`, letting `fill` write
    /// each page's contents first; the space frees them when unmapped.
    fn map_fresh(&self, start: u64, pages: u64, access: Access, mut fill: impl FnMut(u64, &mut [u8; 4096])) -> Result<(), SpawnError> {
        for i in 0..pages {
            let va = start + i * 4096;
            let f = frame::alloc_zeroed(FrameUse::User).map_err(|_| SpawnError::OutOfMemory)?;
            // SAFETY: `f` was just allocated for this task and is not mapped
            // anywhere yet.
            unsafe { frame::with_frame_bytes(f, |bytes| fill(va, bytes)) };
            if self.space.map_owned(va, f, access).is_err() {
                frame::free(f, FrameUse::User);
                return Err(SpawnError::OutOfMemory);
            }
        }
        Ok(())
    }

    fn install_initial_caps(self: &Arc<Self>, thread: &Arc<Thread>) -> Result<(), SpawnError> {
        let mut caps = self.caps.lock();
        let all = Rights::all();
        // A task may look at its own address space but not change it: its
        // mappings are the memory server's business (a task that could
        // remap them could, say, make a read-only share writable).
        let entries = [
            (handles::SELF_TASK, Object::Task(self.clone()), all),
            (handles::SELF_SPACE, Object::AddressSpace(self.user_space()), Rights::READ | Rights::GRANT),
            (handles::SELF_THREAD, Object::Thread(thread.clone()), all),
        ];
        for (h, obj, rights) in entries {
            caps.insert_at(h.index(), Capability::new(obj, rights)).map_err(|_| SpawnError::OutOfMemory)?;
        }
        Ok(())
    }

    /// Its (user) address space.
    pub fn user_space(&self) -> Arc<AddressSpace> {
        match &self.space {
            SpaceRef::User(s) => s.clone(),
            SpaceRef::Kernel => panic!("the kernel task has no user address space"),
        }
    }

    /// Adds a thread (created by `ThreadCreate`).
    pub fn add_thread(&self, thread: Arc<Thread>) -> Result<(), Error> {
        if self.dying.load(Ordering::Acquire) {
            return Err(Error::PeerDied);
        }
        self.threads.lock().push(thread);
        Ok(())
    }

    /// Counts a thread as started. Fails if the task is dying.
    pub fn thread_started(&self) -> Result<(), Error> {
        if self.dying.load(Ordering::Acquire) {
            return Err(Error::PeerDied);
        }
        self.live.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Called by each started thread as it dies; the last one ends the task.
    pub fn thread_exited(self: &Arc<Self>) {
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish(0);
        }
    }

    /// Sets the pager (faults and the exit notice go there).
    pub fn set_pager(&self, ep: EndpointRef, badge: u64) {
        *self.pager.lock() = Some((ep.with_receive(false), badge));
    }

    /// Removes the pager: faults kill the task again.
    pub fn clear_pager(&self) {
        *self.pager.lock() = None;
    }

    /// The pager, if any.
    pub fn pager(&self) -> Option<(EndpointRef, u64)> {
        self.pager.lock().clone()
    }

    /// Whether the task is being killed or has ended.
    pub fn dying(&self) -> bool {
        self.dying.load(Ordering::Acquire)
    }

    /// Kills the task: every thread exits at its next chance (a blocked one
    /// is released at once); the task ends when the last one has.
    pub fn kill(self: &Arc<Self>, code: i64) {
        if self.dying.swap(true, Ordering::AcqRel) {
            return;
        }
        self.life.lock().exit_code.get_or_insert(code);
        let threads: Vec<Arc<Thread>> = self.threads.lock().clone();
        for t in &threads {
            t.killed.store(true, Ordering::Release);
            let (state, cpu) = {
                let mut s = t.sched.lock();
                if matches!(s.state, State::Created) {
                    s.state = State::Dead;
                }
                (s.state.clone(), s.cpu)
            };
            // A thread on a queue is released by whoever takes it off: here
            // only if the kill got it first (a sender or receiver that took
            // it will wake it, and it exits then).
            match state {
                State::Blocked(Block::Recv(ep)) if ep.remove_receiver(t) => crate::ipc::fail_waiter(t, Error::PeerDied),
                State::Blocked(Block::Send(ep)) => {
                    if let Some(p) = ep.remove_sender(t) {
                        drop(p);
                        crate::ipc::fail_waiter(t, Error::PeerDied);
                    }
                }
                // Waking is atomic under the thread's lock, so racing the
                // timer, a waited-for task or a reply is harmless.
                State::Blocked(Block::Sleep) => {
                    crate::sched::cancel_sleep(t);
                    crate::ipc::fail_waiter(t, Error::PeerDied);
                }
                State::Blocked(Block::TaskWait | Block::Reply) => crate::ipc::fail_waiter(t, Error::PeerDied),
                State::Running | State::Ready if cpu != crate::cpu::current_index() => crate::sched::kick(cpu),
                State::Running | State::Ready => crate::sched::request_resched(),
                _ => {}
            }
        }
        if self.live.load(Ordering::Acquire) == 0 {
            self.finish(code);
        }
    }

    /// Unmaps everything and frees the frames the kernel allocated.
    fn release_memory(&self) {
        self.space.unmap_all_user();
    }

    /// Ends the task (once): releases its memory and capabilities, tells its
    /// pager and wakes its waiters.
    fn finish(self: &Arc<Self>, code: i64) {
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        self.dying.store(true, Ordering::Release);
        let code = *self.life.lock().exit_code.get_or_insert(code);
        crate::sched::leave_space(&self.space);
        self.release_memory();
        // CPUs that kept the space loaded while idle (lazy TLB) let it go
        // now, so its page tables are freed without waiting for them.
        for cpu in self.space.tlb_targets().without(crate::cpu::current_index()).iter() {
            crate::sched::kick(cpu);
        }
        let caps = {
            let mut tree = super::derivation::lock();
            let caps = self.caps.lock().drain();
            for c in caps.iter().filter(|c| c.derived) {
                tree.unlink(c.id);
            }
            caps
        };
        drop(caps);
        let threads = core::mem::take(&mut *self.threads.lock());
        drop(threads);
        if let Some((ep, badge)) = self.pager.lock().take() {
            let mut words = [0; abi::ipc::MSG_WORDS];
            words[0] = self.id;
            words[1] = code as u64;
            let info = MsgInfo::new(kernel_label::TASK_EXIT, 2);
            crate::ipc::kernel_send(&ep, Pending::new(None, info, words, None, badge, SendKind::Kernel));
        }
        let waiters = core::mem::take(&mut self.life.lock().waiters);
        for w in waiters.iter().filter_map(|w| w.upgrade()) {
            crate::ipc::finish_wait(&w, code as u64);
        }
        log::info!("task: {} (id {}) ended with code {code}", self.name, self.id);
    }

    /// Makes the current thread wait for the task to end; `Ok(Some(code))`
    /// if it already has.
    pub fn wait(&self, me: &Arc<Thread>) -> Option<i64> {
        let mut life = self.life.lock();
        if self.finished.load(Ordering::Acquire) {
            return life.exit_code;
        }
        me.sched.lock().state = State::Blocked(Block::TaskWait);
        life.waiters.retain(|w| w.strong_count() > 0);
        life.waiters.push(Arc::downgrade(me));
        None
    }
}
