//! Processor features for tests and benchmarks, as safe functions: the
//! time-stamp counter, the SSE and x87 registers (to check that the kernel
//! keeps each thread's own), and deliberate faults (to check that the
//! kernel kills a faulting task and nothing else). The instructions
//! themselves are in the runtime's one low-level module.

pub use crate::raw::{mxcsr_read, mxcsr_write, rdtsc, sse_read, sse_write, x87_control_read, x87_control_write};

/// Deliberate faults. Each function returns only if the access it tries
/// was, wrongly, allowed.
pub mod fault {
    pub use crate::raw::{
        fault_exec_data as exec_data, fault_invalid_opcode as invalid_opcode, fault_privileged as privileged,
        fault_read_null as read_null, fault_write_rodata as write_rodata, fault_write_text as write_text, rodata_word,
        rodata_word_address,
    };
}
