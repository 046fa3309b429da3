//! Deliberate faults: each must end in the matching diagnostic, never a
//! hang or a triple fault.

use alloc::string::String;

pub fn invalid_opcode() -> Result<(), String> {
    crate::arch::cpu::invalid_opcode();
    Err("ud2 did not fault".into())
}

pub fn page_fault() -> Result<(), String> {
    crate::arch::fault::write_byte(0xdead000);
    Err("the write to 0xdead000 did not fault".into())
}
