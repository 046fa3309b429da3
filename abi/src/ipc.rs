//! IPC messages: a label, up to [`MSG_WORDS`] payload words and at most one
//! capability, all carried in registers.

use crate::cap::Handle;
use crate::error::Error;

/// Payload words a message carries.
pub const MSG_WORDS: usize = 6;

/// The message descriptor (register `rsi`): label, payload length and
/// whether a capability travels with the message.
///
/// Layout: bits 0..32 label, bits 32..36 length (0..=6), bit 40 "carries a
/// capability". Every other bit must be zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MsgInfo {
    /// What the message is about (protocol-defined).
    pub label: u32,
    /// Payload words used (0..=6).
    pub len: u8,
    /// A capability is transferred.
    pub has_cap: bool,
}

const LEN_SHIFT: u32 = 32;
const CAP_BIT: u64 = 1 << 40;
const KNOWN_BITS: u64 = 0xffff_ffff | 0xf << LEN_SHIFT | CAP_BIT;

impl MsgInfo {
    /// A descriptor for `len` words with `label`, no capability.
    pub const fn new(label: u32, len: u8) -> Self {
        Self { label, len, has_cap: false }
    }

    /// The register value.
    pub const fn raw(self) -> u64 {
        self.label as u64 | (self.len as u64) << LEN_SHIFT | if self.has_cap { CAP_BIT } else { 0 }
    }

    /// Decodes a register value, rejecting unknown bits and lengths above
    /// [`MSG_WORDS`].
    pub fn from_raw(raw: u64) -> Result<Self, Error> {
        if raw & !KNOWN_BITS != 0 {
            return Err(Error::InvalidArgument);
        }
        let len = ((raw >> LEN_SHIFT) & 0xf) as u8;
        if len as usize > MSG_WORDS {
            return Err(Error::InvalidArgument);
        }
        Ok(Self { label: raw as u32, len, has_cap: raw & CAP_BIT != 0 })
    }
}

/// A whole message as the user runtime handles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Message {
    /// Label, length and capability flag.
    pub info: MsgInfo,
    /// Payload (words past `info.len` are zero on receipt).
    pub words: [u64; MSG_WORDS],
    /// The capability sent, or received (a handle in the receiver's table).
    pub cap: Handle,
}

impl Message {
    /// A message with `label` and `words` (at most six).
    pub fn new(label: u32, words: &[u64]) -> Self {
        let mut m = Self { info: MsgInfo::new(label, words.len().min(MSG_WORDS) as u8), ..Self::default() };
        m.words[..words.len().min(MSG_WORDS)].copy_from_slice(&words[..words.len().min(MSG_WORDS)]);
        m
    }

    /// The same message carrying capability `cap`.
    pub fn with_cap(mut self, cap: Handle) -> Self {
        self.info.has_cap = !cap.is_none();
        self.cap = cap;
        self
    }
}

/// What a receive returns besides the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Received {
    /// The message.
    pub msg: Message,
    /// The badge of the capability the sender used (0: unbadged).
    pub badge: u64,
    /// A reply capability when the sender called (NONE for a plain send).
    pub reply: Handle,
}

/// Labels the kernel itself uses in messages it sends.
pub mod kernel_label {
    /// Labels from here up are the kernel's: a user task's message with one
    /// is refused (`InvalidArgument`), so a receiver can trust them.
    pub const FIRST: u32 = 0xffff_0000;
    /// A thread faulted (words: address, error code, rip, thread id,
    /// vector). Answer via the reply capability: label [`RESUME`] retries
    /// the instruction, anything else kills the task.
    pub const FAULT: u32 = 0xffff_0001;
    /// A task the receiver is the pager of has died (words: task id, exit
    /// code). Its address space is already torn down.
    pub const TASK_EXIT: u32 = 0xffff_0002;
    /// Reply label that resumes a faulted thread.
    pub const RESUME: u32 = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_info_round_trips_and_rejects_junk() {
        let i = MsgInfo { label: 0xdead_beef, len: 6, has_cap: true };
        assert_eq!(MsgInfo::from_raw(i.raw()), Ok(i));
        assert_eq!(MsgInfo::from_raw(7 << 32), Err(Error::InvalidArgument));
        assert_eq!(MsgInfo::from_raw(1 << 36), Err(Error::InvalidArgument));
        assert_eq!(MsgInfo::from_raw(1 << 63), Err(Error::InvalidArgument));
    }

    #[test]
    fn message_builders() {
        let m = Message::new(3, &[1, 2]).with_cap(Handle::new(4, 0));
        assert_eq!(m.info.len, 2);
        assert!(m.info.has_cap);
        assert_eq!(m.words[..3], [1, 2, 0]);
        let long = Message::new(1, &[9; 10]);
        assert_eq!(long.info.len, 6);
    }
}
