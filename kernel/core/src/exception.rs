//! Names of the x86-64 exception vectors, for diagnostics.

/// What the kernel knows about one of the 32 architectural vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExceptionInfo {
    /// Mnemonic as the SDM writes it (`#PF`), or a plain name for the
    /// vectors that have none.
    pub mnemonic: &'static str,
    /// Human name (`page fault`).
    pub name: &'static str,
    /// Whether the CPU pushes an error code for it.
    pub has_error_code: bool,
}

const fn info(mnemonic: &'static str, name: &'static str, has_error_code: bool) -> ExceptionInfo {
    ExceptionInfo { mnemonic, name, has_error_code }
}

const RESERVED: ExceptionInfo = info("#RES", "reserved vector", false);

/// The exception vectors 0..32.
pub const EXCEPTIONS: [ExceptionInfo; 32] = [
    info("#DE", "divide error", false),
    info("#DB", "debug", false),
    info("#NMI", "non-maskable interrupt", false),
    info("#BP", "breakpoint", false),
    info("#OF", "overflow", false),
    info("#BR", "bound range exceeded", false),
    info("#UD", "invalid opcode", false),
    info("#NM", "device not available", false),
    info("#DF", "double fault", true),
    info("#CSO", "coprocessor segment overrun", false),
    info("#TS", "invalid TSS", true),
    info("#NP", "segment not present", true),
    info("#SS", "stack-segment fault", true),
    info("#GP", "general protection", true),
    info("#PF", "page fault", true),
    RESERVED,
    info("#MF", "x87 floating-point error", false),
    info("#AC", "alignment check", true),
    info("#MC", "machine check", false),
    info("#XM", "SIMD floating-point error", false),
    info("#VE", "virtualization exception", false),
    info("#CP", "control protection", true),
    RESERVED,
    RESERVED,
    RESERVED,
    RESERVED,
    RESERVED,
    RESERVED,
    info("#HV", "hypervisor injection", false),
    info("#VC", "VMM communication", true),
    info("#SX", "security exception", true),
    RESERVED,
];

/// Information on `vector`, or `None` above 31 (those are interrupts).
pub fn exception_info(vector: u8) -> Option<&'static ExceptionInfo> {
    EXCEPTIONS.get(vector as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_vectors_match_the_sdm() {
        let with_code: Vec<usize> =
            (0..32).filter(|&v| EXCEPTIONS[v].has_error_code).collect();
        assert_eq!(with_code, vec![8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
        assert_eq!(exception_info(6).unwrap().mnemonic, "#UD");
        assert_eq!(exception_info(14).unwrap().name, "page fault");
        assert!(exception_info(32).is_none());
    }
}
