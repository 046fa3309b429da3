//! Address spaces: a page-table tree, the lock that serialises changes to
//! it, and the set of CPUs that may hold its translations.
//!
//! Every address space's PML4 carries the same 256 upper entries, pointing
//! at the kernel's page-directory-pointer tables, which are allocated once
//! at boot and never replaced. Kernel-half changes happen below those
//! entries, so they are seen by every address space at once; the kernel
//! space itself is the one that makes them.
//!
//! Unmap and protect run one shootdown per call (for all pages touched) and
//! hand unmapped frames back only after every CPU acknowledged it. The
//! shootdown runs after the page-table lock is released, so shootdowns from
//! several CPUs proceed in parallel; that is safe because a frame is reused
//! only after its shootdown, and the kernel reuses a virtual range only
//! after the unmap that freed it returned.

use super::paging::{Access, PageSize, PageTree, PagingError, Translation};
use super::tlb::{self, KERNEL_SCOPE};
use crate::kcore::cpu_set::CpuSet;
use crate::kcore::tlb_batch::FlushBatch;
use crate::sync::SpinLock;
use core::sync::atomic::{AtomicU64, Ordering};

/// An address space.
pub struct AddressSpace {
    tree: SpinLock<PageTree>,
    root: u64,
    kernel: bool,
    /// CPUs with this root in CR3 right now (lazily, for an idle CPU: see
    /// `tlb`).
    active: AtomicU64,
    /// User pages whose frames the kernel allocated (a task's image and
    /// first stack): freed by the kernel when unmapped. Every other user
    /// mapping belongs to whoever mapped it (the memory server).
    owned: SpinLock<alloc::collections::BTreeSet<u64>>,
    /// Set when its task's teardown emptied it: nothing may be mapped
    /// into it any more.
    dead: core::sync::atomic::AtomicBool,
}

impl AddressSpace {
    /// Wraps a page-table tree.
    ///
    /// # Safety
    /// See [`PageTree::from_root`]; `kernel` says whether this is the one
    /// kernel space (the only one allowed to change the kernel half).
    pub const unsafe fn from_tree(root: u64, kernel: bool) -> Self {
        Self {
            // SAFETY: forwarded to the caller.
            tree: SpinLock::new(unsafe { PageTree::from_root(root) }),
            root,
            kernel,
            active: AtomicU64::new(0),
            owned: SpinLock::new(alloc::collections::BTreeSet::new()),
            dead: core::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A new user address space: an empty lower half, the kernel's upper
    /// half.
    pub fn new_user() -> Result<Self, super::frame::OutOfFrames> {
        let root = super::paging::new_root_sharing_kernel_half(super::kernel_space::kernel_space().root())?;
        // SAFETY: a fresh PML4 whose lower half only this space changes.
        Ok(unsafe { Self::from_tree(root, false) })
    }

    /// Maps a frame the kernel allocated for this space (image, stack); it
    /// is freed when unmapped.
    pub fn map_owned(&self, virt: u64, frame: x86_64::structures::paging::PhysFrame, access: Access) -> Result<(), PagingError> {
        self.map(virt, frame.start_address().as_u64(), PageSize::Small, access)?;
        self.owned.lock().insert(virt);
        Ok(())
    }

    /// Frees the frame behind `virt` if the kernel owns it (after it was
    /// unmapped and shot down).
    fn release_owned(&self, virt: u64, phys: u64, size: PageSize) {
        if size == PageSize::Small && self.owned.lock().remove(&virt) {
            super::frame::free(
                x86_64::structures::paging::PhysFrame::containing_address(x86_64::PhysAddr::new(phys)),
                crate::kcore::mem_kind::FrameUse::User,
            );
        }
    }

    /// Unmaps whatever is mapped in `[virt, virt + len)` of a user space,
    /// whatever the page sizes (a large page must lie wholly inside), with
    /// one shootdown; frees kernel-owned frames. Returns the pages (4 KiB
    /// units) that were mapped.
    pub fn unmap_user(&self, virt: u64, len: u64) -> Result<u64, PagingError> {
        self.check_half(virt, len)?;
        let end = virt + len;
        let mut plan = alloc::vec::Vec::new();
        {
            let mut tree = self.tree.lock();
            let mapper = tree.mapper();
            let mut at = virt;
            while at < end {
                match mapper.translate(at) {
                    Some(t) => {
                        let base = at & !(t.size.bytes() - 1);
                        if base < virt || base + t.size.bytes() > end {
                            return Err(PagingError::InsideLargerPage);
                        }
                        plan.push((base, t.size));
                        at = base + t.size.bytes();
                    }
                    None => at += crate::kcore::PAGE_SIZE,
                }
            }
        }
        let mut batch = FlushBatch::new();
        let mut done = alloc::vec::Vec::with_capacity(plan.len());
        {
            let mut tree = self.tree.lock();
            let mut mapper = tree.mapper();
            for (va, size) in plan {
                if let Ok(phys) = mapper.unmap(va, size, &mut batch) {
                    done.push((va, phys, size));
                }
            }
        }
        tlb::shootdown(self.tlb_targets(), self.scope(), &batch);
        let pages = done.iter().map(|&(_, _, s)| s.bytes() / crate::kcore::PAGE_SIZE).sum();
        for (va, phys, size) in done {
            self.release_owned(va, phys, size);
        }
        Ok(pages)
    }

    /// Physical address of the PML4.
    pub fn root(&self) -> u64 {
        self.root
    }

    /// The request scope for shootdowns of this space.
    fn scope(&self) -> u64 {
        if self.kernel { KERNEL_SCOPE } else { self.root }
    }

    /// CPUs that may hold translations of this space.
    pub fn tlb_targets(&self) -> CpuSet {
        if self.kernel { tlb::kernel_users() } else { CpuSet(self.active.load(Ordering::SeqCst)) }
    }

    fn check_half(&self, virt: u64, len: u64) -> Result<(), PagingError> {
        let end = virt.checked_add(len).ok_or(PagingError::Misaligned)?;
        let in_kernel_half = virt >= crate::kcore::layout::KERNEL_HALF;
        let in_user_half = end <= crate::kcore::layout::USER_END;
        if (self.kernel && in_kernel_half) || (!self.kernel && in_user_half) {
            Ok(())
        } else {
            Err(PagingError::Misaligned)
        }
    }

    /// Maps one page. A new mapping needs no shootdown: no CPU can cache a
    /// translation that did not exist.
    pub fn map(&self, virt: u64, phys: u64, size: PageSize, access: Access) -> Result<(), PagingError> {
        self.check_half(virt, size.bytes())?;
        let mut tree = self.tree.lock();
        if self.dead.load(Ordering::Relaxed) {
            return Err(PagingError::Dead);
        }
        tree.mapper().map(virt, phys, size, access)
    }

    /// Maps `pages` pages of `size` from `virt` to consecutive physical
    /// pages from `phys`. On failure the pages mapped so far are unmapped
    /// again (no shootdown needed: they were never reported as mapped).
    pub fn map_range(&self, virt: u64, phys: u64, pages: u64, size: PageSize, access: Access) -> Result<(), PagingError> {
        self.map_range_prepared(virt, phys, pages, size, access, || {})
    }

    /// Like [`Self::map_range`], but first checks that the whole range is
    /// free and then runs `prepare` (zeroing the frames) before mapping, all
    /// under the page-table lock: a refused call changes nothing, and no
    /// thread can see the frames before `prepare` is done.
    pub fn map_range_prepared(
        &self,
        virt: u64,
        phys: u64,
        pages: u64,
        size: PageSize,
        access: Access,
        prepare: impl FnOnce(),
    ) -> Result<(), PagingError> {
        self.check_half(virt, pages * size.bytes())?;
        let mut tree = self.tree.lock();
        if self.dead.load(Ordering::Relaxed) {
            return Err(PagingError::Dead);
        }
        let mut mapper = tree.mapper();
        let mut at = virt;
        while at < virt + pages * size.bytes() {
            match mapper.translate(at) {
                Some(_) => return Err(PagingError::AlreadyMapped),
                None => at += crate::kcore::PAGE_SIZE,
            }
        }
        prepare();
        for i in 0..pages {
            let off = i * size.bytes();
            if let Err(e) = mapper.map(virt + off, phys + off, size, access) {
                let mut batch = FlushBatch::new();
                for j in 0..i {
                    let _ = mapper.unmap(virt + j * size.bytes(), size, &mut batch);
                }
                drop(tree);
                tlb::shootdown(self.tlb_targets(), self.scope(), &batch);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Unmaps `pages` pages of `size` from `virt`, runs one shootdown for
    /// all of them, then calls `release(virt, phys)` for each unmapped page.
    /// Pages that were not mapped are skipped; returns how many were.
    pub fn unmap_range(&self, virt: u64, pages: u64, size: PageSize, mut release: impl FnMut(u64, u64)) -> Result<u64, PagingError> {
        self.check_half(virt, pages * size.bytes())?;
        let mut batch = FlushBatch::new();
        let mut freed = [(0u64, 0u64); 64];
        let mut unmapped = 0;
        let mut done = 0;
        // Work in chunks so the frames can be held on the stack until the
        // shootdown for them completed.
        let mut failure = None;
        while done < pages && failure.is_none() {
            let chunk = (pages - done).min(freed.len() as u64);
            let mut n = 0;
            {
                let mut tree = self.tree.lock();
                let mut mapper = tree.mapper();
                for i in done..done + chunk {
                    match mapper.unmap(virt + i * size.bytes(), size, &mut batch) {
                        Ok(phys) => {
                            freed[n] = (virt + i * size.bytes(), phys);
                            n += 1;
                        }
                        Err(PagingError::NotMapped) => {}
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
            }
            tlb::shootdown(self.tlb_targets(), self.scope(), &batch);
            freed[..n].iter().for_each(|&(v, p)| release(v, p));
            unmapped += n as u64;
            done += chunk;
            batch = FlushBatch::new();
        }
        failure.map_or(Ok(unmapped), Err)
    }

    /// Changes what `pages` pages of `size` from `virt` allow, with one
    /// shootdown. Stops at the first page that is not mapped (pages before
    /// it keep their new permissions and are flushed).
    pub fn protect_range(&self, virt: u64, pages: u64, size: PageSize, access: Access) -> Result<(), PagingError> {
        self.check_half(virt, pages * size.bytes())?;
        let mut batch = FlushBatch::new();
        let mut result = Ok(());
        {
            let mut tree = self.tree.lock();
            let mut mapper = tree.mapper();
            for i in 0..pages {
                if let Err(e) = mapper.protect(virt + i * size.bytes(), size, access, &mut batch) {
                    result = Err(e);
                    break;
                }
            }
        }
        tlb::shootdown(self.tlb_targets(), self.scope(), &batch);
        result
    }

    /// Unmaps every user mapping (task teardown) with one shootdown and
    /// frees the kernel-owned frames. Returns how many pages were mapped.
    pub fn unmap_all_user(&self) -> usize {
        assert!(!self.kernel, "the kernel space is never emptied");
        let mut batch = FlushBatch::new();
        let mut unmapped = alloc::vec::Vec::new();
        {
            let mut tree = self.tree.lock();
            // Under the lock, so no map can slip in after the walk.
            self.dead.store(true, Ordering::Relaxed);
            let leaves = tree.lower_half_leaves();
            let mut mapper = tree.mapper();
            for (virt, size) in leaves {
                if let Ok(phys) = mapper.unmap(virt, size, &mut batch) {
                    unmapped.push((virt, phys, size));
                }
            }
        }
        tlb::shootdown(self.tlb_targets(), self.scope(), &batch);
        for &(v, p, s) in &unmapped {
            self.release_owned(v, p, s);
        }
        unmapped.len()
    }

    /// What `virt` maps to.
    pub fn translate(&self, virt: u64) -> Option<Translation> {
        self.tree.lock().mapper().translate(virt)
    }

    /// Runs `f` with the page tree locked (for building the kernel space).
    pub fn with_tree<R>(&self, f: impl FnOnce(&mut PageTree) -> R) -> R {
        f(&mut self.tree.lock())
    }

    /// Switches the current CPU from `self` back to the kernel's own root.
    pub fn deactivate(&self) {
        super::kernel_space::kernel_space().activate(Some(self));
    }

    /// Makes this the address space of the current CPU (loads CR3 unless it
    /// is already loaded), keeping the `active` sets exact.
    ///
    /// Ends this CPU's lazy-TLB mode (see `tlb`): if a shootdown skipped it
    /// meanwhile and this root stays loaded, its TLB is flushed here (and
    /// the result says so).
    pub fn activate(&self, previous: Option<&AddressSpace>) -> bool {
        let me = crate::cpu::current_index();
        let _masked = crate::arch::cpu::InterruptGuard::new();
        let stale = tlb::leave_lazy();
        let mut flushed_stale = false;
        if crate::arch::cpu::current_root() == self.root {
            if stale {
                crate::arch::cpu::flush_tlb_nonglobal();
                flushed_stale = true;
            }
        } else {
            // Join before loading: a shootdown that misses this bit
            // finished its page-table writes before our CR3 load reads them.
            self.active.fetch_or(1 << me, Ordering::SeqCst);
            // SAFETY: every address space's upper half is the kernel's, so
            // the running code, stack and data stay mapped.
            unsafe { crate::arch::paging::load_root(self.root) };
        }
        // The previous space's translations are gone with the CR3 load that
        // left it (now or earlier).
        if let Some(prev) = previous.filter(|p| p.root != self.root) {
            prev.active.fetch_and(!(1 << me), Ordering::SeqCst);
        }
        flushed_stale
    }

    /// Whether its task's teardown emptied it (a CPU keeping it loaded
    /// lazily should let it go).
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        assert!(!self.kernel, "the kernel address space is never dropped");
        let active = self.active.load(Ordering::SeqCst);
        assert_eq!(active, 0, "address space dropped while CPUs {:?} run it", CpuSet(active));
        // SAFETY: a placeholder tree replaces the real one, which is taken
        // out to be torn down; the placeholder is never used.
        let tree = core::mem::replace(&mut *self.tree.lock(), unsafe { PageTree::from_root(0) });
        let leaked = tree.free_lower_half();
        if leaked != 0 {
            log::warn!("mm: address space {:#x} dropped with {leaked} page(s) still mapped", self.root);
        }
    }
}

/// A reference to an address space that a task or CPU holds: the kernel's
/// (a static, since it exists before the heap) or a user space.
#[derive(Clone)]
pub enum SpaceRef {
    /// The kernel's own space.
    Kernel,
    /// A user address space.
    User(alloc::sync::Arc<AddressSpace>),
}

impl core::ops::Deref for SpaceRef {
    type Target = AddressSpace;
    fn deref(&self) -> &AddressSpace {
        match self {
            Self::Kernel => super::kernel_space::kernel_space(),
            Self::User(s) => s,
        }
    }
}
