//! Decoding the page-fault error code the CPU pushes (Intel SDM Vol. 3A,
//! "Interrupt 14—Page-Fault Exception").

use core::fmt;

/// The page-fault error code, decoded bit by bit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PageFaultError(pub u64);

impl PageFaultError {
    /// Bit 0: the page was present (a protection violation), not missing.
    pub const fn protection(self) -> bool {
        self.0 & 1 != 0
    }
    /// Bit 1: the access was a write.
    pub const fn write(self) -> bool {
        self.0 & 2 != 0
    }
    /// Bit 2: the access came from user mode (CPL 3).
    pub const fn user(self) -> bool {
        self.0 & 4 != 0
    }
    /// Bit 3: a reserved bit was set in a paging-structure entry.
    pub const fn reserved_bit(self) -> bool {
        self.0 & 8 != 0
    }
    /// Bit 4: the access was an instruction fetch.
    pub const fn instruction_fetch(self) -> bool {
        self.0 & 16 != 0
    }
    /// Bit 5: a protection-key violation.
    pub const fn protection_key(self) -> bool {
        self.0 & 32 != 0
    }
    /// Bit 6: a shadow-stack access.
    pub const fn shadow_stack(self) -> bool {
        self.0 & 64 != 0
    }
}

/// `[not-present write supervisor data]`, plus `reserved-bit`, `pk`, `shadow-stack`
/// when those bits are set.
impl fmt::Display for PageFaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{} {} {} {}",
            if self.protection() { "protection" } else { "not-present" },
            if self.write() { "write" } else { "read" },
            if self.user() { "user" } else { "supervisor" },
            if self.instruction_fetch() { "instruction" } else { "data" },
        )?;
        if self.reserved_bit() {
            f.write_str(" reserved-bit")?;
        }
        if self.protection_key() {
            f.write_str(" pk")?;
        }
        if self.shadow_stack() {
            f.write_str(" shadow-stack")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_bit() {
        assert_eq!(PageFaultError(0x2).to_string(), "[not-present write supervisor data]");
        assert_eq!(PageFaultError(0x0).to_string(), "[not-present read supervisor data]");
        assert_eq!(PageFaultError(0x7).to_string(), "[protection write user data]");
        assert_eq!(PageFaultError(0x11).to_string(), "[protection read supervisor instruction]");
        assert_eq!(PageFaultError(0x9).to_string(), "[protection read supervisor data reserved-bit]");
        assert_eq!(PageFaultError(0x65).to_string(), "[protection read user data pk shadow-stack]");
    }
}
