//! Serving requests: each handler checks the request against the client's
//! state before it changes anything, and undoes its own steps if a later
//! one fails, so a refused request leaves no trace.

use crate::clients::{Backing, Client, Region};
use crate::pool::{Cache, Pool};
use crate::stats::CpuStats;
use crate::Server;
use abi::cap::Handle;
use abi::ipc::{kernel_label, Message};
use abi::mem::{MapFlags, PAGE_SIZE};
use abi::Error;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use mm_core::layout::{SHARE_BASE, SHARE_END};
use mm_core::request::{small_pages, Req};
use mm_core::runs::{runs, Frame};
use user::sys;

/// One worker: its CPU and its cache.
pub struct Worker {
    /// The CPU it is pinned to.
    pub cpu: usize,
    /// Its private frame cache.
    pub cache: Cache,
}

/// What to answer.
pub enum Answer {
    /// Reply with this message.
    Reply(Message),
    /// Nothing to reply to (a kernel notice or a plain send).
    Nothing,
}

fn ok(words: &[u64]) -> Answer {
    Answer::Reply(Message::new(0, words))
}

fn err(e: Error) -> Answer {
    Answer::Reply(Message::new(e.code() as u32, &[]))
}

impl Worker {
    fn stats<'a>(&self, s: &'a Server) -> &'a CpuStats {
        &s.cpu_stats[self.cpu]
    }

    /// Handles one received message.
    pub fn handle(&mut self, s: &Server, badge: u64, msg: &Message) -> Answer {
        self.stats(s).requests.fetch_add(1, Ordering::Relaxed);
        let cap = msg.info.has_cap.then_some(msg.cap);
        match msg.info.label {
            kernel_label::FAULT => return self.fault(s, badge, &msg.words),
            kernel_label::TASK_EXIT => {
                self.client_exit(s, badge);
                return Answer::Nothing;
            }
            _ => {}
        }
        let req = mm_core::request::decode(msg.info.label, &msg.words, cap, badge == 0);
        let answer = match req {
            Err(e) => err(e),
            Ok(Req::RegisterClient { badge: b, quota, space }) => match s.clients.insert(Client::new(b, space, quota)) {
                Ok(()) => ok(&[]),
                Err(e) => {
                    let _ = sys::cap_delete(space);
                    err(e)
                }
            },
            Ok(Req::CpuStats { cpu }) => {
                let c = &s.cpu_stats[cpu as usize];
                let l = |a: &core::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                ok(&[l(&c.requests), l(&c.allocs), l(&c.frees), l(&c.faults), l(&c.refusals), l(&c.cache)])
            }
            Ok(req) => match s.clients.get(badge) {
                None => err(Error::NotFound),
                Some(client) => match self.serve(s, &client, req) {
                    Ok(words) => ok(&words),
                    Err(e) => err(e),
                },
            },
        };
        // Registering keeps the capability that came with the message;
        // sharing only reads it. Otherwise it must not linger in the table.
        if let Some(c) = cap {
            if !matches!(req, Ok(Req::RegisterClient { .. })) {
                let _ = sys::cap_delete(c);
            }
        }
        answer
    }

    fn serve(&mut self, s: &Server, c: &Arc<Client>, req: Req) -> Result<Vec<u64>, Error> {
        match req {
            Req::Alloc { pages, flags } => self.alloc(s, c, pages, flags).map(|va| alloc::vec![va]),
            Req::Free { addr, pages } => self.free(s, c, addr, pages).map(|()| Vec::new()),
            Req::Protect { addr, pages, flags } => protect(c, addr, pages, flags).map(|()| Vec::new()),
            Req::Reserve { pages, flags } => reserve(s, self, c, pages, flags).map(|va| alloc::vec![va]),
            Req::Stats => {
                let st = c.state.lock();
                Ok(alloc::vec![st.charged, c.quota, st.faults, s.free_pages(), s.pool.total])
            }
            Req::Share { addr, pages, writable, target } => {
                let target = target_of(s, target)?;
                share(s, c, addr, pages, writable, target).map(|va| alloc::vec![va])
            }
            Req::CpuStats { .. } | Req::RegisterClient { .. } => unreachable!("handled before"),
        }
    }

    fn take_frames(&mut self, pool: &Pool, flags: MapFlags, small: u64) -> Result<Backing, Error> {
        if flags.contains(MapFlags::LARGE) {
            let mut large = Vec::new();
            for _ in 0..small / 512 {
                match pool.take_contiguous(512, 512) {
                    Some(f) => large.push(f),
                    None => {
                        large.iter().for_each(|&f| pool.give_contiguous(f, 512));
                        return Err(Error::OutOfMemory);
                    }
                }
            }
            Ok(Backing::Large(large))
        } else if flags.contains(MapFlags::CONTIGUOUS) {
            pool.take_contiguous(small, 1).map(Backing::Contiguous).ok_or(Error::OutOfMemory)
        } else {
            let frames = self.cache.take(pool, small as usize).ok_or(Error::OutOfMemory)?;
            Ok(Backing::Pages(frames.into_iter().map(Some).collect()))
        }
    }

    fn return_frames(&mut self, pool: &Pool, backing: Backing, pages: u64) {
        match backing {
            Backing::Pages(p) => self.cache.give(pool, p.into_iter().flatten()),
            Backing::Large(l) => l.into_iter().for_each(|f| pool.give_contiguous(f, 512)),
            Backing::Contiguous(f) => pool.give_contiguous(f, pages),
        }
    }

    fn alloc(&mut self, s: &Server, c: &Client, pages: u64, flags: MapFlags) -> Result<u64, Error> {
        let small = small_pages(pages, flags).ok_or(Error::OutOfRange)?;
        let mut st = c.state.lock();
        if st.dead {
            return Err(Error::PeerDied);
        }
        if st.charged + small > c.quota {
            self.stats(s).refusals.fetch_add(1, Ordering::Relaxed);
            return Err(Error::QuotaExceeded);
        }
        let va = st.va.alloc(small * PAGE_SIZE, flags.page_size()).ok_or(Error::OutOfMemory)?;
        let backing = match self.take_frames(&s.pool, flags, small) {
            Ok(b) => b,
            Err(e) => {
                st.va.free(va, small * PAGE_SIZE);
                return Err(e);
            }
        };
        if let Err(e) = map(s, c.space, va, &backing, flags | MapFlags::ZERO, small) {
            let _ = sys::mem_unmap(c.space, va, small);
            self.return_frames(&s.pool, backing, small);
            st.va.free(va, small * PAGE_SIZE);
            return Err(e);
        }
        st.regions.insert(va, Region { pages: small, flags, lazy: false, backing, shares: Vec::new() });
        st.charged += small;
        self.stats(s).allocs.fetch_add(1, Ordering::Relaxed);
        Ok(va)
    }

    fn free(&mut self, s: &Server, c: &Client, addr: u64, pages: u64) -> Result<(), Error> {
        let mut st = c.state.lock();
        match st.regions.get(&addr) {
            None => return Err(Error::NotFound),
            Some(r) if r.pages != pages => return Err(Error::InvalidArgument),
            Some(_) => {}
        }
        let region = st.regions.remove(&addr).expect("checked above");
        unshare(s, &region);
        let _ = sys::mem_unmap(c.space, addr, pages);
        self.return_frames(&s.pool, region.backing, pages);
        st.charged -= pages;
        st.va.free(addr, pages * PAGE_SIZE);
        self.stats(s).frees.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A lazily reserved page was touched: back it and resume the thread.
    /// Anything else is a real fault: the task dies.
    fn fault(&mut self, s: &Server, badge: u64, w: &[u64; 6]) -> Answer {
        const RESUME: Answer = Answer::Reply(Message { info: abi::ipc::MsgInfo::new(kernel_label::RESUME, 0), words: [0; 6], cap: Handle::NONE });
        let kill = || Answer::Reply(Message::new(1, &[]));
        let (addr, error) = (w[0], w[1]);
        let Some(c) = s.clients.get(badge) else { return kill() };
        let mut st = c.state.lock();
        if st.dead {
            return kill();
        }
        let Some((&start, region)) = st.regions.range_mut(..=addr).next_back() else { return kill() };
        if !region.lazy || addr >= start + region.pages * PAGE_SIZE {
            return kill();
        }
        let write = error & 2 != 0;
        let exec = error & 16 != 0;
        if (write && !region.flags.contains(MapFlags::WRITE)) || (exec && !region.flags.contains(MapFlags::EXEC)) {
            return kill();
        }
        let index = ((addr - start) / PAGE_SIZE) as usize;
        let Backing::Pages(frames) = &mut region.backing else { return kill() };
        if frames[index].is_some() {
            // Another thread of the client faulted on it first.
            return RESUME;
        }
        let Some(f) = self.cache.take(&s.pool, 1) else { return kill() };
        let page = start + index as u64 * PAGE_SIZE;
        let range = &s.pool.ranges[f[0].range as usize];
        if sys::mem_map(c.space, range.cap, f[0].page as u64, page, 1, region.flags | MapFlags::ZERO).is_err() {
            self.cache.give(&s.pool, f);
            return kill();
        }
        frames[index] = Some(f[0]);
        st.faults += 1;
        self.stats(s).faults.fetch_add(1, Ordering::Relaxed);
        RESUME
    }

    /// A client died: the kernel already tore its address space down, so
    /// its frames only need to come back (and shares into others undone).
    fn client_exit(&mut self, s: &Server, badge: u64) {
        let Some(c) = s.clients.remove(badge) else { return };
        // Marked dead under the client's lock, so a request another worker
        // is still serving for it either finished before (and its pages are
        // taken back here) or sees the mark and adds nothing.
        let regions = {
            let mut st = c.state.lock();
            st.dead = true;
            core::mem::take(&mut st.regions)
        };
        for (_, region) in regions {
            unshare(s, &region);
            let pages = region.pages;
            self.return_frames(&s.pool, region.backing, pages);
        }
        let _ = sys::cap_delete(c.space);
    }
}

/// Maps `backing` at `va` of `space`.
fn map(s: &Server, space: Handle, va: u64, backing: &Backing, flags: MapFlags, small: u64) -> Result<(), Error> {
    let flags = flags - MapFlags::CONTIGUOUS;
    match backing {
        Backing::Pages(frames) => {
            for run in runs(frames) {
                let cap = s.pool.ranges[run.range as usize].cap;
                sys::mem_map(space, cap, run.page as u64, va + run.at as u64 * PAGE_SIZE, run.count as u64, flags)?;
            }
        }
        Backing::Large(large) => {
            for (i, f) in large.iter().enumerate() {
                let cap = s.pool.ranges[f.range as usize].cap;
                sys::mem_map(space, cap, f.page as u64, va + i as u64 * (512 * PAGE_SIZE), 1, flags)?;
            }
        }
        Backing::Contiguous(f) => {
            let cap = s.pool.ranges[f.range as usize].cap;
            sys::mem_map(space, cap, f.page as u64, va, small, flags)?;
        }
    }
    Ok(())
}

/// Takes a region's pages out of every task it was shared into (tasks that
/// died meanwhile have nothing left to unmap).
fn unshare(s: &Server, region: &Region) {
    for &(badge, va) in &region.shares {
        if let Some(t) = s.clients.get(badge) {
            let _ = sys::mem_unmap(t.space, va, region.pages);
        }
    }
}

fn reserve(s: &Server, w: &Worker, c: &Client, pages: u64, flags: MapFlags) -> Result<u64, Error> {
    let mut st = c.state.lock();
    if st.dead {
        return Err(Error::PeerDied);
    }
    if st.charged + pages > c.quota {
        s.cpu_stats[w.cpu].refusals.fetch_add(1, Ordering::Relaxed);
        return Err(Error::QuotaExceeded);
    }
    let va = st.va.alloc(pages * PAGE_SIZE, PAGE_SIZE).ok_or(Error::OutOfMemory)?;
    let backing = Backing::Pages(alloc::vec![None; pages as usize]);
    st.regions.insert(va, Region { pages, flags, lazy: true, backing, shares: Vec::new() });
    st.charged += pages;
    Ok(va)
}

/// The region holding `[addr, addr + pages)` entirely.
fn region_for(st: &mut crate::clients::ClientState, addr: u64, pages: u64) -> Result<(u64, &mut Region), Error> {
    let (&start, region) = st.regions.range_mut(..=addr).next_back().ok_or(Error::NotFound)?;
    if addr + pages * PAGE_SIZE > start + region.pages * PAGE_SIZE {
        return Err(Error::NotFound);
    }
    Ok((start, region))
}

fn protect(c: &Client, addr: u64, pages: u64, flags: MapFlags) -> Result<(), Error> {
    let mut st = c.state.lock();
    let (start, region) = region_for(&mut st, addr, pages)?;
    let whole = start == addr && region.pages == pages;
    match &region.backing {
        Backing::Large(_) => {
            if addr % (512 * PAGE_SIZE) != 0 || pages % 512 != 0 {
                return Err(Error::Misaligned);
            }
            sys::mem_protect(c.space, addr, pages / 512, flags | MapFlags::LARGE)?;
        }
        Backing::Pages(frames) if region.lazy => {
            // Future faults use the region's flags, so only whole regions.
            if !whole {
                return Err(Error::InvalidArgument);
            }
            let backed: Vec<Option<Frame>> = frames.clone();
            for run in runs(&backed) {
                sys::mem_protect(c.space, start + run.at as u64 * PAGE_SIZE, run.count as u64, flags)?;
            }
        }
        _ => sys::mem_protect(c.space, addr, pages, flags)?,
    }
    if whole {
        region.flags = flags;
    }
    Ok(())
}

/// The client a share token names: a badged capability to this server's
/// own endpoint (the target's memory capability).
fn target_of(s: &Server, token: Handle) -> Result<u64, Error> {
    let (kind, _, badge) = sys::cap_info(token)?;
    if kind != abi::cap::Kind::Endpoint || sys::cap_identity(token)? != s.endpoint_id || badge == 0 {
        return Err(Error::InvalidArgument);
    }
    Ok(badge)
}

fn share(s: &Server, c: &Client, addr: u64, pages: u64, writable: bool, target: u64) -> Result<u64, Error> {
    let target = s.clients.get(target).ok_or(Error::NotFound)?;
    let mut st = c.state.lock();
    if st.dead {
        return Err(Error::PeerDied);
    }
    let (start, region) = region_for(&mut st, addr, pages)?;
    if start != addr || pages != region.pages {
        return Err(Error::InvalidArgument);
    }
    if let Backing::Pages(f) = &region.backing {
        if f.iter().any(|p| p.is_none()) {
            return Err(Error::NotMapped);
        }
    }
    if writable && !region.flags.contains(MapFlags::WRITE) {
        return Err(Error::InsufficientRights);
    }
    let len = pages * PAGE_SIZE;
    let align = if matches!(region.backing, Backing::Large(_)) { 512 * PAGE_SIZE } else { PAGE_SIZE };
    let at = s.share_cursor.fetch_add(len + align, Ordering::Relaxed).next_multiple_of(align);
    if at + len > SHARE_END || at < SHARE_BASE {
        return Err(Error::OutOfMemory);
    }
    let flags = if writable { MapFlags::WRITE } else { MapFlags::empty() };
    if let Err(e) = map(s, target.space, at, &region.backing, flags | (region.flags & MapFlags::LARGE), pages) {
        let _ = sys::mem_unmap(target.space, at, pages);
        return Err(e);
    }
    region.shares.push((target.badge, at));
    Ok(at)
}
