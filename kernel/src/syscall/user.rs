//! User memory as the kernel sees it: a claim, until checked.
//!
//! A [`UserSlice`] can only be made through its checked constructor (range
//! inside user space, no wrap-around, bounded length); reading or writing
//! it goes through the fault-tolerant copies, so an unmapped or protected
//! page makes the syscall fail with `BadAddress` rather than fault.

use abi::mem::USER_END;
use abi::Error;

/// A checked range of user memory.
#[derive(Clone, Copy, Debug)]
pub struct UserSlice {
    addr: u64,
    len: usize,
}

impl UserSlice {
    /// Checks `[addr, addr + len)`: inside user space, no wrap, at most
    /// `max` bytes.
    pub fn new(addr: u64, len: u64, max: usize) -> Result<Self, Error> {
        if len > max as u64 {
            return Err(Error::OutOfRange);
        }
        let end = addr.checked_add(len).ok_or(Error::BadAddress)?;
        if end > USER_END {
            return Err(Error::BadAddress);
        }
        Ok(Self { addr, len: len as usize })
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Copies the user bytes into `buf` (which must be `len` long).
    pub fn read(&self, buf: &mut [u8]) -> Result<(), Error> {
        assert_eq!(buf.len(), self.len);
        if crate::arch::usercopy::copy_from_user(buf, self.addr) { Ok(()) } else { Err(Error::BadAddress) }
    }

    /// Copies `data` (at most `len` bytes) to the user memory.
    pub fn write(&self, data: &[u8]) -> Result<(), Error> {
        let n = data.len().min(self.len);
        if crate::arch::usercopy::copy_to_user(self.addr, &data[..n]) { Ok(()) } else { Err(Error::BadAddress) }
    }
}
