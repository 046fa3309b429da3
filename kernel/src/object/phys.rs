//! A range of physical memory, as a capability names it: the frames the
//! kernel handed to the memory server at boot, or slices of them.

use abi::mem::PAGE_SIZE;

/// `pages` frames from `base`.
#[derive(Debug)]
pub struct PhysRange {
    /// First byte (page-aligned).
    pub base: u64,
    /// Number of 4 KiB frames.
    pub pages: u64,
}

impl PhysRange {
    /// Fills `count` pages from page `first` with zeros (checked by the
    /// caller to lie in the range).
    pub fn zero_pages(&self, first: u64, count: u64) {
        assert!(self.contains(first, count), "zeroing outside a physical range");
        for i in 0..count {
            // SAFETY: the range is RAM the kernel handed to user space at
            // boot and never uses itself; whoever holds the capability
            // decides its contents.
            unsafe { crate::mm::frame::zero(self.base + (first + i) * PAGE_SIZE, PAGE_SIZE) };
            if i % 256 == 255 {
                crate::sched::preempt_point();
            }
        }
    }

    /// The physical address of page `index`, if inside the range.
    pub fn page(&self, index: u64) -> Option<u64> {
        (index < self.pages).then(|| self.base + index * PAGE_SIZE)
    }

    /// Whether `count` pages from page `first` lie inside the range.
    pub fn contains(&self, first: u64, count: u64) -> bool {
        first.checked_add(count).is_some_and(|end| end <= self.pages)
    }
}
