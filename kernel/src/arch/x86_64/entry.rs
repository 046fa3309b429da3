//! The kernel's entry point, as the ELF header and the Limine entry-point
//! request name it: a thin unsafe shell (an exported symbol) around the
//! safe boot code.

/// The boot CPU starts here, on the boot loader's stack.
#[unsafe(no_mangle)]
pub extern "C" fn kernel_entry() -> ! {
    crate::kernel_main()
}
