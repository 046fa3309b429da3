//! Pages from the memory server: wrappers for its protocol (`abi::mm`,
//! `docs/mm-protocol.md`), spoken over the task's `MEMORY` capability.
//! None of them allocates, so the heap can grow through them.

use crate::sys;
use abi::Error;
use abi::cap::Handle;
use abi::handles::{MEMORY, MEMORY_CONTROL};
use abi::ipc::Message;
use abi::mem::MapFlags;
use abi::mm::{Request, reply_status};
use core::sync::atomic::AtomicU64;

/// Calls the server through `ep`; returns the reply's words and
/// capability.
fn request_on(ep: Handle, req: Request, words: &[u64], cap: Handle) -> Result<([u64; 6], Handle), Error> {
    let msg = Message::new(req as u32, words).with_cap(cap);
    let reply = sys::call_ep(ep, &msg)?;
    reply_status(reply.info.label)?;
    Ok((reply.words, if reply.info.has_cap { reply.cap } else { Handle::NONE }))
}

fn request(req: Request, words: &[u64], cap: Handle) -> Result<[u64; 6], Error> {
    request_on(MEMORY, req, words, cap).map(|(w, _)| w)
}

/// Allocates `pages` zeroed pages (2 MiB ones with `MapFlags::LARGE`, in
/// one physical run with `CONTIGUOUS`), mapped into this task; returns
/// their address.
pub fn alloc_pages(pages: u64, flags: MapFlags) -> Result<u64, Error> {
    request(Request::Alloc, &[pages, flags.bits()], Handle::NONE).map(|w| w[0])
}

/// Frees a region got from [`alloc_pages`] or [`reserve`], or a part of it
/// (`pages` 4 KiB pages from `addr`; whole 2 MiB pages of a large region):
/// the rest stays mapped. Or drops pages shared into this task (the whole
/// share).
pub fn free_pages(addr: u64, pages: u64) -> Result<(), Error> {
    request(Request::Free, &[addr, pages], Handle::NONE).map(|_| ())
}

/// Changes the protection of allocated pages (never writable and
/// executable at once).
pub fn protect(addr: u64, pages: u64, flags: MapFlags) -> Result<(), Error> {
    request(Request::Protect, &[addr, pages, flags.bits()], Handle::NONE).map(|_| ())
}

/// Reserves `pages` pages backed lazily: each is mapped, zeroed, when first
/// touched. Returns their address.
pub fn reserve(pages: u64, flags: MapFlags) -> Result<u64, Error> {
    request(Request::Reserve, &[pages, flags.bits()], Handle::NONE).map(|w| w[0])
}

/// Maps this task's whole region at `addr` (`pages` 4 KiB pages) into the
/// task that `target` names (a copy of its `MEMORY` capability; GRANT-only
/// is enough), read-write if `writable`; returns the address it has there.
/// The target sees the pages until either side frees them.
pub fn share(addr: u64, pages: u64, writable: bool, target: Handle) -> Result<u64, Error> {
    let flags = if writable { MapFlags::WRITE } else { MapFlags::empty() };
    request(Request::Share, &[addr, pages, flags.bits()], target).map(|w| w[0])
}

/// This task's account with the memory server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Pages charged to it (allocated, or reserved).
    pub held: u64,
    /// Its quota.
    pub quota: u64,
    /// Lazy faults served for it.
    pub faults: u64,
    /// Pages free in the server.
    pub free: u64,
    /// Pages the server has in all.
    pub total: u64,
}

/// This task's account.
pub fn stats() -> Result<Stats, Error> {
    let w = request(Request::Stats, &[], Handle::NONE)?;
    Ok(Stats { held: w[0], quota: w[1], faults: w[2], free: w[3], total: w[4] })
}

/// One CPU's counters in the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Messages handled by that CPU's worker.
    pub requests: u64,
    /// Allocations served.
    pub allocs: u64,
    /// Frees served.
    pub frees: u64,
    /// Lazy faults served.
    pub faults: u64,
    /// Requests refused for quota.
    pub refusals: u64,
    /// Pages in that worker's cache.
    pub cached: u64,
}

/// The capability to read the server's counters through: `MEMORY`, or
/// for a registrar that is no client, `MEMORY_CONTROL`.
fn reader() -> Handle {
    if sys::cap_info(MEMORY).is_ok() { MEMORY } else { MEMORY_CONTROL }
}

/// The server's counters for `cpu`.
pub fn cpu_stats(cpu: u64) -> Result<CpuStats, Error> {
    let (w, _) = request_on(reader(), Request::CpuStats, &[cpu], Handle::NONE)?;
    Ok(CpuStats { requests: w[0], allocs: w[1], frees: w[2], faults: w[3], refusals: w[4], cached: w[5] })
}

/// Requests of each kind one CPU's worker handled (refused ones included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindStats {
    /// `Alloc`.
    pub alloc: u64,
    /// `Free`.
    pub free: u64,
    /// `Protect`.
    pub protect: u64,
    /// `Reserve`.
    pub reserve: u64,
    /// `Share`.
    pub share: u64,
    /// Statistics and registrations.
    pub other: u64,
}

/// The server's per-kind counters for `cpu`.
pub fn kind_stats(cpu: u64) -> Result<KindStats, Error> {
    let (w, _) = request_on(reader(), Request::KindStats, &[cpu], Handle::NONE)?;
    Ok(KindStats { alloc: w[0], free: w[1], protect: w[2], reserve: w[3], share: w[4], other: w[5] })
}

/// The server's books, in 4 KiB pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Books {
    /// Pages the kernel gave the server.
    pub total: u64,
    /// Free (pool and worker caches).
    pub free: u64,
    /// Backing clients' regions.
    pub owned: u64,
    /// The server's own (its heap).
    pub server: u64,
    /// Clients registered.
    pub clients: u64,
}

impl Books {
    /// Whether every page is accounted for exactly once.
    pub fn balanced(&self) -> bool {
        self.free + self.owned + self.server == self.total
    }
}

/// The server's books (any client or registrar may read them).
pub fn books() -> Result<Books, Error> {
    let (w, _) = request_on(reader(), Request::Books, &[], Handle::NONE)?;
    Ok(Books { total: w[0], free: w[1], owned: w[2], server: w[3], clients: w[4] })
}

/// (Holders of `MEMORY_CONTROL`) Registers a client with `quota` pages and
/// its address space (given to the server, which needs MAP and GRANT on
/// it). Returns the client's badge and its badged `MEMORY` capability, to
/// give to the client (at its `MEMORY` slot) and to set as its pager.
pub fn register_client(quota: u64, space: Handle) -> Result<(u64, Handle), Error> {
    let (w, cap) = request_on(MEMORY_CONTROL, Request::RegisterClient, &[quota], space)?;
    if cap.is_none() {
        return Err(Error::InvalidArgument);
    }
    Ok((w[0], cap))
}

/// (Holders of `MEMORY_CONTROL`) Makes the memory server serve a task that
/// has not started yet: registers its address space `space` with `quota`
/// pages, makes the server its pager (so its faults and its end reach the
/// server) and gives it its `MEMORY` capability. Returns the client's badge
/// and the caller's copy of that capability (a share token for it, among
/// others; revoked by the server when the task ends).
pub fn serve_task(task: Handle, space: Handle, quota: u64) -> Result<(u64, Handle), Error> {
    // Checked first: a registration whose pager cannot be set would never
    // hear of the task's end.
    let (_, rights, _) = sys::cap_info(task)?;
    if !rights.contains(abi::cap::Rights::CONTROL) {
        return Err(Error::InsufficientRights);
    }
    let (badge, memory) = register_client(quota, space)?;
    let served = sys::task_set_pager(task, memory)
        .and_then(|()| sys::cap_give(task, memory, abi::cap::Rights::SEND | abi::cap::Rights::GRANT, MEMORY.index()));
    match served {
        Ok(_) => Ok((badge, memory)),
        Err(e) => {
            // The task must not start; ending it tells the server (if the
            // pager was set) to forget the client.
            let _ = sys::task_kill(task, -1);
            let _ = sys::cap_delete(memory);
            Err(e)
        }
    }
}

/// Words in a 4 KiB page.
pub const PAGE_WORDS: usize = 512;

/// Pages the memory server gave this task ([`alloc_pages`] or
/// [`reserve`]), freed when dropped.
#[derive(Debug)]
pub struct Pages {
    addr: u64,
    pages: u64,
}

impl Pages {
    /// [`alloc_pages`] (`pages` counted in the flags' page size).
    pub fn alloc(pages: u64, flags: MapFlags) -> Result<Pages, Error> {
        let addr = alloc_pages(pages, flags)?;
        Ok(Pages { addr, pages: pages * (flags.page_size() / abi::mem::PAGE_SIZE) })
    }

    /// [`reserve`]: each page is backed when first touched.
    pub fn reserve(pages: u64, flags: MapFlags) -> Result<Pages, Error> {
        Ok(Pages { addr: reserve(pages, flags)?, pages })
    }

    /// Their address.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// How many 4 KiB pages.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// The memory, as atomic words (other tasks may share it). Writing a
    /// read-only page faults, and the task dies of it.
    pub fn words(&self) -> &[AtomicU64] {
        #[allow(unsafe_code)]
        // SAFETY: the server mapped these pages for us (a reserved page is
        // mapped on first touch) and they stay until `self` is dropped;
        // they hold no Rust object.
        unsafe {
            crate::raw::server_words(self.addr, self.pages as usize * PAGE_WORDS)
        }
    }

    /// Changes their protection.
    pub fn protect(&self, flags: MapFlags) -> Result<(), Error> {
        protect(self.addr, self.pages, flags)
    }

    /// Shares them into the task `target` names; see [`share`].
    pub fn share(&self, writable: bool, target: Handle) -> Result<u64, Error> {
        share(self.addr, self.pages, writable, target)
    }

    /// Frees them now, reporting the server's answer.
    pub fn free(self) -> Result<(), Error> {
        let r = free_pages(self.addr, self.pages);
        core::mem::forget(self);
        r
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        let _ = free_pages(self.addr, self.pages);
    }
}

/// Pages another task shared into this one (at `addr`, `pages` of them, as
/// it said), dropped from this task's view when this is dropped.
#[derive(Debug)]
pub struct SharedPages {
    addr: u64,
    pages: u64,
}

impl SharedPages {
    /// Takes charge of the share the owner reported at `addr`: checks with
    /// the kernel that this task has `pages` pages mapped there.
    pub fn accept(addr: u64, pages: u64) -> Result<SharedPages, Error> {
        if addr < abi::mm::SHARE_BASE || pages == 0 || pages > abi::mm::MAX_REQUEST_PAGES {
            return Err(Error::BadAddress);
        }
        let end = addr.checked_add(pages * abi::mem::PAGE_SIZE).ok_or(Error::BadAddress)?;
        if end > abi::mm::SHARE_END {
            return Err(Error::BadAddress);
        }
        for p in 0..pages {
            sys::mem_translate(abi::handles::SELF_SPACE, addr + p * abi::mem::PAGE_SIZE)?;
        }
        Ok(SharedPages { addr, pages })
    }

    /// Their address here.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The memory, as atomic words. Once the owner frees the pages,
    /// touching them faults (and the task dies of it).
    pub fn words(&self) -> &[AtomicU64] {
        #[allow(unsafe_code)]
        // SAFETY: `accept` checked the pages are mapped in this task's
        // share window, where the server maps nothing but shares; they
        // hold no Rust object.
        unsafe {
            crate::raw::server_words(self.addr, self.pages as usize * PAGE_WORDS)
        }
    }
}

impl Drop for SharedPages {
    fn drop(&mut self) {
        let _ = free_pages(self.addr, self.pages);
    }
}
