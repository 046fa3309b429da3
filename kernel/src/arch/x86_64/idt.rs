//! The interrupt descriptor table, shared by every CPU: all 256 vectors
//! point at the entry stubs of [`super::trap`]; double fault, NMI and machine
//! check run on their own interrupt stacks.

use super::gdt::{IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI};
use spin::Once;
use x86_64::structures::idt::InterruptDescriptorTable;
use x86_64::{PrivilegeLevel, VirtAddr};

static IDT: Once<InterruptDescriptorTable> = Once::new();

fn build() -> InterruptDescriptorTable {
    let mut idt = InterruptDescriptorTable::new();
    for vector in 0..=255u8 {
        let addr = VirtAddr::new(super::trap::stub_address(vector));
        // SAFETY: each stub is a valid interrupt entry point that saves the
        // full frame and returns with IRETQ (see `trap`).
        let options = unsafe {
            match vector {
                0 => idt.divide_error.set_handler_addr(addr),
                1 => idt.debug.set_handler_addr(addr),
                2 => idt.non_maskable_interrupt.set_handler_addr(addr),
                3 => idt.breakpoint.set_handler_addr(addr),
                4 => idt.overflow.set_handler_addr(addr),
                5 => idt.bound_range_exceeded.set_handler_addr(addr),
                6 => idt.invalid_opcode.set_handler_addr(addr),
                7 => idt.device_not_available.set_handler_addr(addr),
                8 => idt.double_fault.set_handler_addr(addr),
                10 => idt.invalid_tss.set_handler_addr(addr),
                11 => idt.segment_not_present.set_handler_addr(addr),
                12 => idt.stack_segment_fault.set_handler_addr(addr),
                13 => idt.general_protection_fault.set_handler_addr(addr),
                14 => idt.page_fault.set_handler_addr(addr),
                16 => idt.x87_floating_point.set_handler_addr(addr),
                17 => idt.alignment_check.set_handler_addr(addr),
                18 => idt.machine_check.set_handler_addr(addr),
                19 => idt.simd_floating_point.set_handler_addr(addr),
                20 => idt.virtualization.set_handler_addr(addr),
                21 => idt.cp_protection_exception.set_handler_addr(addr),
                28 => idt.hv_injection_exception.set_handler_addr(addr),
                29 => idt.vmm_communication_exception.set_handler_addr(addr),
                30 => idt.security_exception.set_handler_addr(addr),
                9 | 15 | 22..=27 | 31 => continue,
                v => idt[v].set_handler_addr(addr),
            }
        };
        match vector {
            // SAFETY: the IST slots are filled in every CPU's TSS before
            // interrupts can occur (see `gdt::CpuTables::load`).
            2 => unsafe { options.set_stack_index(IST_NMI - 1) },
            // SAFETY: as above.
            8 => unsafe { options.set_stack_index(IST_DOUBLE_FAULT - 1) },
            // SAFETY: as above.
            18 => unsafe { options.set_stack_index(IST_MACHINE_CHECK - 1) },
            // Breakpoints may be raised from user mode (int3).
            3 => options.set_privilege_level(PrivilegeLevel::Ring3),
            _ => options,
        };
    }
    idt
}

/// Loads the shared IDT on this CPU (building it on first use).
pub fn load() {
    IDT.call_once(build).load();
}
