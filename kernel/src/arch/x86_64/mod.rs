//! x86-64: descriptor tables, trap entry, the x2APIC, paging registers and
//! the other instructions the kernel needs, each behind a safe interface.

pub mod apic;
pub mod backtrace;
pub mod context;
pub mod cpu;
pub mod entry;
pub mod extable;
pub mod fault;
pub mod gdt;
pub mod idt;
pub mod io;
pub mod paging;
pub mod percpu;
pub mod pit;
pub mod serial;
pub mod stack;
pub mod syscall;
pub mod trap;
pub mod usercopy;

pub use trap::{Regs, TrapFrame};
