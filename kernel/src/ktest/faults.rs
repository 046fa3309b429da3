//! Deliberate faults: each must end in the matching diagnostic, never a
//! hang or a triple fault.

use crate::arch::fault;
use alloc::boxed::Box;
use alloc::string::String;

pub fn invalid_opcode() -> Result<(), String> {
    crate::arch::cpu::invalid_opcode();
    Err("ud2 did not fault".into())
}

pub fn page_fault() -> Result<(), String> {
    fault::write_byte(0xdead000);
    Err("the write to 0xdead000 did not fault".into())
}

/// Writing to the kernel's own code must fault (text is mapped read-only
/// and CR0.WP makes ring 0 honour that).
pub fn write_text() -> Result<(), String> {
    let text = write_text as fn() -> Result<(), String> as usize as u64;
    log::info!("test: writing to kernel text at {text:#018x}");
    fault::write_byte(text);
    Err("the write to kernel text did not fault".into())
}

/// Executing from the heap must fault (heap pages are no-execute).
pub fn execute_heap() -> Result<(), String> {
    let code = Box::new([0xc3u8; 16]); // `ret`, if it ever ran
    let addr = code.as_ptr() as u64;
    log::info!("test: calling heap memory at {addr:#018x}");
    fault::execute_at(addr);
    drop(code);
    Err("executing heap memory did not fault".into())
}

/// Unbounded recursion must hit the stack's guard page and be reported as
/// a stack overflow.
pub fn stack_overflow() -> Result<(), String> {
    log::info!("test: recursing until the stack overflows");
    let depth = fault::overflow_stack(0);
    Err(alloc::format!("recursion returned ({depth})"))
}
