//! Error codes. A syscall returns 0 in `rax` on success, otherwise one of
//! these; the memory server uses the same codes in its replies.

/// Why a syscall (or a memory-server request) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Error {
    /// No such syscall number.
    InvalidSyscall = 1,
    /// The handle names no capability (empty slot or out of range).
    InvalidHandle = 2,
    /// The handle's slot was reused since the handle was issued.
    StaleHandle = 3,
    /// The capability names an object of another kind than the call needs.
    WrongKind = 4,
    /// The capability lacks a right the call needs.
    InsufficientRights = 5,
    /// An argument is out of its allowed set (unknown flag, bad label, ...).
    InvalidArgument = 6,
    /// A user pointer or range is not (entirely) in user space, wraps, or
    /// is not mapped as the call needs.
    BadAddress = 7,
    /// An address or length is not aligned as required.
    Misaligned = 8,
    /// An index or size is beyond what the object has.
    OutOfRange = 9,
    /// The kernel (or server) has no memory left for this.
    OutOfMemory = 10,
    /// The capability table has no free slot.
    NoSlot = 11,
    /// The virtual range is already (partly) mapped.
    AlreadyMapped = 12,
    /// The virtual range is not (entirely) mapped.
    NotMapped = 13,
    /// The other side of an IPC died or was deleted.
    PeerDied = 14,
    /// The operation would block and a non-blocking variant was asked for.
    WouldBlock = 15,
    /// Nothing matches (no such module, no such client, ...).
    NotFound = 16,
    /// The object is busy (e.g. a thread already started).
    Busy = 17,
    /// The client's memory quota would be exceeded.
    QuotaExceeded = 18,
    /// Writable and executable at once was asked for (W^X).
    WriteExecute = 19,
    /// The destination slot is occupied.
    SlotOccupied = 20,
}

impl Error {
    /// Every code, for exhaustive tests and documentation.
    pub const ALL: [Error; 20] = [
        Self::InvalidSyscall,
        Self::InvalidHandle,
        Self::StaleHandle,
        Self::WrongKind,
        Self::InsufficientRights,
        Self::InvalidArgument,
        Self::BadAddress,
        Self::Misaligned,
        Self::OutOfRange,
        Self::OutOfMemory,
        Self::NoSlot,
        Self::AlreadyMapped,
        Self::NotMapped,
        Self::PeerDied,
        Self::WouldBlock,
        Self::NotFound,
        Self::Busy,
        Self::QuotaExceeded,
        Self::WriteExecute,
        Self::SlotOccupied,
    ];

    /// The raw code.
    pub const fn code(self) -> u64 {
        self as u64
    }

    /// Decodes a raw code; `Ok(())` for 0, `None` for an unknown code.
    pub fn from_code(code: u64) -> Option<Result<(), Error>> {
        if code == 0 {
            return Some(Ok(()));
        }
        Self::ALL.iter().copied().find(|e| e.code() == code).map(Err)
    }

    /// A short description.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::InvalidSyscall => "invalid syscall number",
            Self::InvalidHandle => "invalid capability handle",
            Self::StaleHandle => "stale capability handle",
            Self::WrongKind => "capability of the wrong kind",
            Self::InsufficientRights => "capability lacks a needed right",
            Self::InvalidArgument => "invalid argument",
            Self::BadAddress => "bad user address",
            Self::Misaligned => "misaligned address or length",
            Self::OutOfRange => "out of range",
            Self::OutOfMemory => "out of memory",
            Self::NoSlot => "capability table full",
            Self::AlreadyMapped => "already mapped",
            Self::NotMapped => "not mapped",
            Self::PeerDied => "IPC peer died",
            Self::WouldBlock => "would block",
            Self::NotFound => "not found",
            Self::Busy => "busy",
            Self::QuotaExceeded => "quota exceeded",
            Self::WriteExecute => "writable and executable at once",
            Self::SlotOccupied => "destination slot occupied",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.describe())
    }
}

/// Result of a syscall or a request.
pub type SysResult<T> = Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_rejected() {
        for e in Error::ALL {
            assert_eq!(Error::from_code(e.code()), Some(Err(e)));
        }
        assert_eq!(Error::from_code(0), Some(Ok(())));
        assert_eq!(Error::from_code(21), None);
        assert_eq!(Error::from_code(u64::MAX), None);
        let mut codes: Vec<u64> = Error::ALL.iter().map(|e| e.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), Error::ALL.len());
    }
}
