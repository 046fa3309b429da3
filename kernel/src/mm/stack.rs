//! Kernel stacks, each in its own slot of the stack window with an unmapped
//! guard page below it, so an overflow faults (and is reported as a stack
//! overflow by the double-fault handler) instead of overwriting whatever
//! lies below.

use super::frame;
use super::kernel_space::kernel_space;
use super::paging::{Access, PageSize};
use crate::kcore::layout::{self, STACK_PAGES, STACK_SLOTS};
use crate::kcore::mem_kind::FrameUse;
use crate::sync::SpinLock;
use core::sync::atomic::{AtomicU64, Ordering};

/// What a stack slot is used for, for diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackUse {
    /// A CPU's kernel stack.
    Cpu(usize),
    /// A CPU's double-fault stack.
    DoubleFault(usize),
    /// A CPU's NMI stack.
    Nmi(usize),
    /// A CPU's machine-check stack.
    MachineCheck(usize),
    /// A thread's kernel stack.
    Thread(u64),
    /// A test's stack.
    Test,
}

impl StackUse {
    fn encode(self) -> u64 {
        let (tag, id) = match self {
            Self::Cpu(c) => (1, c as u64),
            Self::DoubleFault(c) => (2, c as u64),
            Self::Nmi(c) => (3, c as u64),
            Self::MachineCheck(c) => (4, c as u64),
            Self::Thread(t) => (5, t),
            Self::Test => (6, 0),
        };
        tag << 56 | (id & ((1 << 56) - 1))
    }

    fn decode(word: u64) -> Option<Self> {
        let id = word & ((1 << 56) - 1);
        Some(match word >> 56 {
            1 => Self::Cpu(id as usize),
            2 => Self::DoubleFault(id as usize),
            3 => Self::Nmi(id as usize),
            4 => Self::MachineCheck(id as usize),
            5 => Self::Thread(id),
            6 => Self::Test,
            _ => return None,
        })
    }
}

/// Slots whose use is remembered for diagnostics (lock-free, so the
/// double-fault handler can read it).
const NAMED_SLOTS: usize = 4096;
static SLOT_USE: [AtomicU64; NAMED_SLOTS] = [const { AtomicU64::new(0) }; NAMED_SLOTS];
static NEXT_SLOT: AtomicU64 = AtomicU64::new(0);
static FREE_SLOTS: SpinLock<FreeSlots> = SpinLock::new(FreeSlots { slots: [0; 256], len: 0 });

struct FreeSlots {
    slots: [u64; 256],
    len: usize,
}

/// A mapped kernel stack. Freed explicitly with [`free`].
#[derive(Debug)]
pub struct KernelStack {
    slot: u64,
}

impl KernelStack {
    /// The initial stack pointer.
    pub fn top(&self) -> u64 {
        layout::stack_top(self.slot)
    }

    /// The lowest mapped byte.
    pub fn bottom(&self) -> u64 {
        layout::stack_bottom(self.slot)
    }
}

/// Describes slot `slot` for a diagnostic (no locks, no allocation).
pub fn describe_slot(slot: u64) -> &'static str {
    let word = SLOT_USE.get(slot as usize).map_or(0, |w| w.load(Ordering::Relaxed));
    match StackUse::decode(word) {
        Some(StackUse::Cpu(_)) => "a CPU kernel stack",
        Some(StackUse::DoubleFault(_)) => "a double-fault stack",
        Some(StackUse::Nmi(_)) => "an NMI stack",
        Some(StackUse::MachineCheck(_)) => "a machine-check stack",
        Some(StackUse::Thread(_)) => "a thread kernel stack",
        Some(StackUse::Test) => "a test stack",
        None => "an unnamed stack",
    }
}

/// Allocates and maps a stack for `purpose`.
pub fn alloc(purpose: StackUse) -> Result<KernelStack, frame::OutOfFrames> {
    let slot = {
        let mut free = FREE_SLOTS.lock();
        if free.len > 0 {
            free.len -= 1;
            free.slots[free.len]
        } else {
            let s = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
            assert!(s < STACK_SLOTS, "kernel stack window exhausted");
            s
        }
    };
    let stack = KernelStack { slot };
    for i in 0..STACK_PAGES {
        let f = match frame::alloc(FrameUse::Stacks) {
            Ok(f) => f,
            Err(e) => {
                release_pages(&stack, i);
                return Err(e);
            }
        };
        kernel_space()
            .map(stack.bottom() + i * 4096, f.start_address().as_u64(), PageSize::Small, Access::KERNEL_DATA)
            .expect("a free stack slot has no mappings");
    }
    if let Some(w) = SLOT_USE.get(slot as usize) {
        w.store(purpose.encode(), Ordering::Relaxed);
    }
    Ok(stack)
}

fn release_pages(stack: &KernelStack, pages: u64) {
    kernel_space()
        .unmap_range(stack.bottom(), pages, PageSize::Small, |_, phys| {
            frame::free(x86_64::structures::paging::PhysFrame::containing_address(x86_64::PhysAddr::new(phys)), FrameUse::Stacks)
        })
        .expect("unmapping a kernel stack");
    let mut free = FREE_SLOTS.lock();
    if free.len < free.slots.len() {
        let at = free.len;
        free.slots[at] = stack.slot;
        free.len += 1;
    }
}

/// Unmaps a stack (with a shootdown) and frees its frames. The caller must
/// no longer run on it.
pub fn free(stack: KernelStack) {
    if let Some(w) = SLOT_USE.get(stack.slot as usize) {
        w.store(0, Ordering::Relaxed);
    }
    release_pages(&stack, STACK_PAGES);
}

/// CPUs that moved onto their kernel stack (each may do so once).
static ENTERED: AtomicU64 = AtomicU64::new(0);

/// Moves the current CPU onto its own kernel stack and runs `f(arg)` there.
/// Allowed once per CPU, at bring-up, when the stack is fresh.
pub fn enter_cpu_stack(cpu: &crate::cpu::Cpu, f: extern "C" fn(u64) -> !, arg: u64) -> ! {
    let bit = 1u64 << cpu.index();
    assert!(ENTERED.fetch_or(bit, Ordering::AcqRel) & bit == 0, "cpu{} entered its kernel stack twice", cpu.index());
    let top = cpu.stacks.get().expect("a CPU's stacks exist before it enters them").kernel;
    // SAFETY: `top` is the top of this CPU's guarded kernel stack, allocated
    // for it alone and never entered before (checked above).
    unsafe { crate::arch::stack::run_on_stack(top, f, arg) }
}
