//! Safe building blocks for tests and benchmarks that poke at mappings:
//! frames owned by a test, and pages of the scratch window that only ever
//! map such frames, read and written through fault-tolerant probes.
//!
//! Because a scratch page maps nothing but test-owned frames, a probe
//! through it can at worst touch a test's own frame, even when the probe
//! races with an unmap on another CPU (which is what the stale-TLB tests
//! provoke on purpose).

use super::address_space::AddressSpace;
use super::frame::{self, OutOfFrames};
use super::kernel_space::kernel_space;
use super::paging::{Access, PageSize, PagingError};
use crate::arch::paging::phys_to_virt;
use crate::kcore::layout::{SCRATCH_BASE, SCRATCH_SIZE};
use crate::kcore::mem_kind::FrameUse;
use crate::kcore::PAGE_SIZE;
use crate::sync::SpinLock;
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::structures::paging::{PhysFrame, Size4KiB};

/// A 4 KiB frame owned by a test; freed when dropped.
pub struct TestFrame {
    frame: PhysFrame<Size4KiB>,
}

impl TestFrame {
    /// Takes a frame from the allocator.
    pub fn alloc() -> Result<Self, OutOfFrames> {
        frame::alloc(FrameUse::Test).map(|frame| Self { frame })
    }

    /// Its physical address.
    pub fn phys(&self) -> u64 {
        self.frame.start_address().as_u64()
    }

    fn word(&self, index: usize) -> *mut u64 {
        assert!(index < 512, "a frame has 512 words");
        (phys_to_virt(self.phys()) as *mut u64).wrapping_add(index)
    }

    /// Writes word `index` (volatile: other CPUs may read it).
    pub fn write(&self, index: usize, value: u64) {
        // SAFETY: the frame belongs to this test and is RAM in the direct map.
        unsafe { self.word(index).write_volatile(value) }
    }

    /// Reads word `index`.
    pub fn read(&self, index: usize) -> u64 {
        // SAFETY: as for `write`.
        unsafe { self.word(index).read_volatile() }
    }
}

impl Drop for TestFrame {
    fn drop(&mut self) {
        frame::free(self.frame, FrameUse::Test);
    }
}

static NEXT_SCRATCH: AtomicU64 = AtomicU64::new(0);

/// Where a scratch page lives: the kernel window (shared by every CPU) or
/// the lower half of a user address space.
#[derive(Clone, Copy)]
pub enum Where<'a> {
    /// The kernel's scratch window.
    Kernel,
    /// A user address space (mapped supervisor-only).
    Space(&'a AddressSpace, u64),
}

/// Scratch pages that exist now: (virtual address, root of their space).
/// Probes from other CPUs are allowed only at these addresses.
static LIVE: SpinLock<[Option<(u64, u64)>; 64]> = SpinLock::new([None; 64]);

/// A probing view of a live scratch page, usable from any CPU.
#[derive(Clone, Copy)]
pub struct ScratchView {
    va: u64,
}

impl ScratchView {
    /// The view of the live scratch page at `va`, if there is one.
    pub fn of(va: u64) -> Option<Self> {
        LIVE.lock().iter().flatten().any(|&(v, _)| v == va).then_some(Self { va })
    }

    /// Reads word `index` through the mapping; `None` if it faults.
    pub fn probe_read(&self, index: u64) -> Option<u64> {
        assert!(index < 512);
        // The probe has a fixup, and the page only maps test-owned frames.
        crate::arch::extable::read_u64_any(self.va + index * 8)
    }

    /// Writes word `index` through the mapping; `false` if it faults.
    pub fn probe_write(&self, index: u64, value: u64) -> bool {
        assert!(index < 512);
        // SAFETY: a live scratch page only ever maps test-owned frames (see
        // the module docs), so a successful write lands in one of them; in
        // an address space that does not map it, the write faults.
        unsafe { crate::arch::extable::write_u64(self.va + index * 8, value) }
    }
}

/// One page of address space that only ever maps [`TestFrame`]s.
pub struct ScratchPage<'a> {
    va: u64,
    space: &'a AddressSpace,
    user_half: bool,
}

impl<'a> ScratchPage<'a> {
    /// Reserves a page: in the kernel scratch window, or at `va` (a lower-half
    /// address) of a user address space.
    pub fn new(at: Where<'a>) -> Self {
        let page = match at {
            Where::Kernel => {
                let n = NEXT_SCRATCH.fetch_add(1, Ordering::Relaxed);
                assert!(n * PAGE_SIZE < SCRATCH_SIZE, "scratch window exhausted");
                Self { va: SCRATCH_BASE + n * PAGE_SIZE, space: kernel_space(), user_half: false }
            }
            Where::Space(space, va) => {
                assert!(va < crate::kcore::layout::USER_END, "user scratch pages live in the lower half");
                assert!(space.translate(va).is_none(), "a user scratch page must start unmapped");
                Self { va: va & !(PAGE_SIZE - 1), space, user_half: true }
            }
        };
        let mut live = LIVE.lock();
        let slot = live.iter_mut().find(|s| s.is_none()).expect("too many live scratch pages");
        *slot = Some((page.va, page.space.root()));
        page
    }

    /// A view for probing from other CPUs.
    pub fn view(&self) -> ScratchView {
        ScratchView { va: self.va }
    }

    /// Its virtual address.
    pub fn va(&self) -> u64 {
        self.va
    }

    /// Maps `frame` here. The borrow keeps the frame alive until unmapped
    /// (the caller unmaps before dropping the frame; [`Drop`] checks).
    pub fn map(&self, frame: &TestFrame, write: bool) -> Result<(), PagingError> {
        let access = Access { write, execute: false, user: false, global: !self.user_half, uncached: false };
        self.space.map(self.va, frame.phys(), PageSize::Small, access)
    }

    /// Unmaps the page (one shootdown); the frame may be reused afterwards.
    pub fn unmap(&self) -> Result<(), PagingError> {
        self.space.unmap_range(self.va, 1, PageSize::Small, |_, _| {}).map(|_| ())
    }

    /// Makes the page read-only (one shootdown).
    pub fn protect_read_only(&self) -> Result<(), PagingError> {
        let access = Access { write: false, execute: false, user: false, global: !self.user_half, uncached: false };
        self.space.protect_range(self.va, 1, PageSize::Small, access)
    }

    /// Reads word `index` through the mapping; `None` if it faults.
    pub fn probe_read(&self, index: u64) -> Option<u64> {
        self.view().probe_read(index)
    }
}

impl Drop for ScratchPage<'_> {
    fn drop(&mut self) {
        if self.space.translate(self.va).is_some() {
            let _ = self.unmap();
        }
        let mut live = LIVE.lock();
        if let Some(slot) = live.iter_mut().find(|s| s.is_some_and(|(v, r)| v == self.va && r == self.space.root())) {
            *slot = None;
        }
    }
}

/// A 2 MiB frame owned by a test; freed when dropped.
pub struct TestLargeFrame {
    frame: PhysFrame<x86_64::structures::paging::Size2MiB>,
}

impl TestLargeFrame {
    /// Takes a 2 MiB frame from the allocator.
    pub fn alloc() -> Result<Self, OutOfFrames> {
        frame::alloc_large(FrameUse::Test).map(|frame| Self { frame })
    }

    /// Its physical address.
    pub fn phys(&self) -> u64 {
        self.frame.start_address().as_u64()
    }

    fn word(&self, index: usize) -> *mut u64 {
        assert!(index < 512 * 512, "a 2 MiB frame has 262144 words");
        (phys_to_virt(self.phys()) as *mut u64).wrapping_add(index)
    }

    /// Writes word `index`.
    pub fn write(&self, index: usize, value: u64) {
        // SAFETY: the frame belongs to this test and is RAM in the direct map.
        unsafe { self.word(index).write_volatile(value) }
    }

    /// Reads word `index`.
    pub fn read(&self, index: usize) -> u64 {
        // SAFETY: as for `write`.
        unsafe { self.word(index).read_volatile() }
    }
}

impl Drop for TestLargeFrame {
    fn drop(&mut self) {
        frame::free_large(self.frame, FrameUse::Test);
    }
}
