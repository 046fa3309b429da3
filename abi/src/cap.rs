//! Capabilities as user space sees them: handles, object kinds, rights.
//!
//! A handle is an index into the task's capability table plus the slot's
//! generation, so a handle kept after its capability was deleted (and the
//! slot reused) is recognised as stale instead of silently naming the new
//! occupant.

use crate::error::Error;
use bitflags::bitflags;

/// Bits of a handle that hold the slot index.
pub const INDEX_BITS: u32 = 16;
/// Slots a capability table can have at most.
pub const MAX_SLOTS: usize = 1 << INDEX_BITS;

/// A capability handle: `generation << 16 | index`. Index 0 is never a
/// valid slot, so the all-zero handle means "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Handle(u32);

impl Handle {
    /// "No capability".
    pub const NONE: Self = Self(0);

    /// The handle for slot `index` at `generation`.
    pub const fn new(index: u16, generation: u16) -> Self {
        Self((generation as u32) << INDEX_BITS | index as u32)
    }

    /// Decodes a register value: anything above 32 bits is not a handle.
    pub fn from_raw(raw: u64) -> Result<Self, Error> {
        u32::try_from(raw).map(Self).map_err(|_| Error::InvalidHandle)
    }

    /// The register value.
    pub const fn raw(self) -> u64 {
        self.0 as u64
    }

    /// The slot index.
    pub const fn index(self) -> u16 {
        self.0 as u16
    }

    /// The slot generation.
    pub const fn generation(self) -> u16 {
        (self.0 >> INDEX_BITS) as u16
    }

    /// Whether this is [`Handle::NONE`].
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }
}

/// The kind of object a capability names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Kind {
    /// An IPC endpoint.
    Endpoint = 1,
    /// The right to answer one call.
    Reply = 2,
    /// A thread.
    Thread = 3,
    /// A task (address space, capability table and threads).
    Task = 4,
    /// An address space.
    AddressSpace = 5,
    /// A range of physical memory.
    PhysMemory = 6,
    /// The boot modules (ELF images the loader brought).
    Modules = 7,
    /// Control of the machine (power off, kernel statistics).
    Machine = 8,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 8] = [
        Self::Endpoint,
        Self::Reply,
        Self::Thread,
        Self::Task,
        Self::AddressSpace,
        Self::PhysMemory,
        Self::Modules,
        Self::Machine,
    ];

    /// Decodes a raw kind.
    pub fn from_raw(raw: u64) -> Result<Self, Error> {
        Self::ALL.iter().copied().find(|k| *k as u64 == raw).ok_or(Error::InvalidArgument)
    }

    /// The rights that mean something for this kind (others are refused).
    pub const fn meaningful_rights(self) -> Rights {
        match self {
            Self::Endpoint => Rights::SEND.union(Rights::RECEIVE).union(Rights::GRANT),
            Self::Reply => Rights::SEND.union(Rights::GRANT),
            Self::Thread | Self::Task => Rights::CONTROL.union(Rights::GRANT),
            Self::AddressSpace => Rights::MAP.union(Rights::READ).union(Rights::GRANT),
            Self::PhysMemory => Rights::MAP.union(Rights::READ).union(Rights::WRITE).union(Rights::EXECUTE).union(Rights::GRANT),
            Self::Modules => Rights::READ.union(Rights::CONTROL).union(Rights::GRANT),
            Self::Machine => Rights::CONTROL.union(Rights::READ).union(Rights::GRANT),
        }
    }
}

bitflags! {
    /// What a capability allows.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Rights: u64 {
        /// Send on an endpoint; answer with a reply capability.
        const SEND = 1 << 0;
        /// Receive on an endpoint.
        const RECEIVE = 1 << 1;
        /// Pass this capability on in an IPC message or to another task.
        const GRANT = 1 << 2;
        /// Read (memory contents, statistics, module data).
        const READ = 1 << 3;
        /// Map physical memory writable.
        const WRITE = 1 << 4;
        /// Map physical memory executable.
        const EXECUTE = 1 << 5;
        /// Change mappings (of an address space) / map (physical memory).
        const MAP = 1 << 6;
        /// Manage the object (start, stop, configure, power off).
        const CONTROL = 1 << 7;
    }
}

impl Rights {
    /// Decodes a rights mask, rejecting unknown bits.
    pub fn from_raw(raw: u64) -> Result<Self, Error> {
        Self::from_bits(raw).ok_or(Error::InvalidArgument)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_pack_index_and_generation() {
        let h = Handle::new(513, 7);
        assert_eq!((h.index(), h.generation()), (513, 7));
        assert_eq!(Handle::from_raw(h.raw()), Ok(h));
        assert_eq!(Handle::from_raw(1 << 32), Err(Error::InvalidHandle));
        assert!(Handle::NONE.is_none());
    }

    #[test]
    fn unknown_values_are_rejected() {
        assert_eq!(Kind::from_raw(0), Err(Error::InvalidArgument));
        assert_eq!(Kind::from_raw(9), Err(Error::InvalidArgument));
        for k in Kind::ALL {
            assert_eq!(Kind::from_raw(k as u64), Ok(k));
            assert!(k.meaningful_rights().contains(Rights::GRANT));
        }
        assert_eq!(Rights::from_raw(1 << 8), Err(Error::InvalidArgument));
        assert_eq!(Rights::from_raw(0b11), Ok(Rights::SEND | Rights::RECEIVE));
    }
}
