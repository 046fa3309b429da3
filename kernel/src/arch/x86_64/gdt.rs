//! Each CPU's GDT and TSS.
//!
//! The GDT layout is fixed by SYSCALL/SYSRET: kernel code, kernel data, then
//! user data and user code, so that `STAR` can derive all four selectors.
//! The TSS supplies the stack for entries from user mode (`rsp0`) and the
//! interrupt stacks (IST) for the exceptions that must never run on a
//! possibly broken stack: double fault, NMI and machine check.

use core::cell::UnsafeCell;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::{PrivilegeLevel, VirtAddr};

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data/stack selector.
pub const KERNEL_SS: u16 = 0x10;
/// User data/stack selector (RPL 3).
pub const USER_SS: u16 = 0x18 | 3;
/// User code selector (RPL 3).
pub const USER_CS: u16 = 0x20 | 3;

/// IST slot (1-based, as the IDT names it) of the double-fault stack.
pub const IST_DOUBLE_FAULT: u16 = 1;
/// IST slot of the NMI stack.
pub const IST_NMI: u16 = 2;
/// IST slot of the machine-check stack.
pub const IST_MACHINE_CHECK: u16 = 3;

/// One CPU's descriptor tables.
pub struct CpuTables {
    gdt: UnsafeCell<GlobalDescriptorTable>,
    tss: UnsafeCell<TaskStateSegment>,
}

// SAFETY: a CPU's tables are written only by that CPU (in `load` before the
// CPU uses them, and `set_kernel_stack` with interrupts masked); other CPUs
// never touch them.
unsafe impl Sync for CpuTables {}

/// The stacks a CPU's TSS points at (tops, i.e. initial stack pointers).
#[derive(Clone, Copy, Debug)]
pub struct TssStacks {
    /// Stack for entries from user mode.
    pub kernel: u64,
    /// Double-fault stack.
    pub double_fault: u64,
    /// NMI stack.
    pub nmi: u64,
    /// Machine-check stack.
    pub machine_check: u64,
}

impl CpuTables {
    /// Empty tables, filled by [`Self::load`].
    pub const fn new() -> Self {
        Self { gdt: UnsafeCell::new(GlobalDescriptorTable::new()), tss: UnsafeCell::new(TaskStateSegment::new()) }
    }

    /// Fills the TSS and GDT and loads them on this CPU, reloading every
    /// segment register. Must run on the CPU that owns `self`, once its
    /// stacks exist; calling it again (to move to new stacks) is allowed.
    pub fn load(&'static self, stacks: TssStacks) {
        // SAFETY: only this CPU touches its tables (see the Sync impl), and
        // interrupts cannot use the TSS while we rebuild it because the old
        // TSS stays loaded until `load_tss` below.
        let (gdt, tss) = unsafe { (&mut *self.gdt.get(), &mut *self.tss.get()) };
        tss.privilege_stack_table[0] = VirtAddr::new(stacks.kernel);
        tss.interrupt_stack_table[(IST_DOUBLE_FAULT - 1) as usize] = VirtAddr::new(stacks.double_fault);
        tss.interrupt_stack_table[(IST_NMI - 1) as usize] = VirtAddr::new(stacks.nmi);
        tss.interrupt_stack_table[(IST_MACHINE_CHECK - 1) as usize] = VirtAddr::new(stacks.machine_check);

        *gdt = GlobalDescriptorTable::new();
        let kcs = gdt.append(Descriptor::kernel_code_segment());
        let kss = gdt.append(Descriptor::kernel_data_segment());
        let uss = gdt.append(Descriptor::user_data_segment());
        let ucs = gdt.append(Descriptor::user_code_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment(
            // SAFETY: the TSS lives as long as `self`, which is 'static.
            unsafe { &*self.tss.get() },
        ));
        debug_assert_eq!(
            (kcs.0, kss.0, uss.0, ucs.0),
            (KERNEL_CS, KERNEL_SS, USER_SS, USER_CS),
            "GDT layout must match SYSCALL/SYSRET"
        );
        // SAFETY: the GDT is 'static (inside `self`) and not modified again
        // while loaded, except by a later `load` on this same CPU.
        unsafe { (*self.gdt.get()).load_unsafe() };
        // SAFETY: the selectors index the GDT just loaded. A TSS descriptor
        // must be "available" to be loaded; a fresh GDT guarantees that.
        unsafe {
            CS::set_reg(SegmentSelector::new(1, PrivilegeLevel::Ring0));
            SS::set_reg(SegmentSelector::new(2, PrivilegeLevel::Ring0));
            DS::set_reg(SegmentSelector::new(0, PrivilegeLevel::Ring0));
            ES::set_reg(SegmentSelector::new(0, PrivilegeLevel::Ring0));
            load_tss(tss_sel);
        }
    }

    /// Sets the stack used on entry from user mode (a thread's kernel stack).
    pub fn set_kernel_stack(&self, top: u64) {
        let _masked = super::cpu::InterruptGuard::new();
        // SAFETY: only the owning CPU calls this, with interrupts masked, and
        // the CPU reads rsp0 only on a privilege change, which cannot happen
        // during this store.
        unsafe { (*self.tss.get()).privilege_stack_table[0] = VirtAddr::new(top) };
    }
}

impl Default for CpuTables {
    fn default() -> Self {
        Self::new()
    }
}
