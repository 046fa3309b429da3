//! Serving requests: each handler checks the request against the client's
//! state before it changes anything, and undoes its own steps if a later
//! one fails, so a refused request leaves no trace.
//!
//! Frames go back to a cache only after every mapping of them is gone:
//! `MemUnmap` returns once its TLB shootdown completed, so no CPU can
//! reach a frame through a stale translation when it is handed out again.

use crate::Server;
use crate::clients::{Backing, Client, ClientState, Incoming, Region};
use crate::pool::{Cache, Pool};
use crate::stats::CpuStats;
use abi::Error;
use abi::cap::{Handle, Kind, Rights};
use abi::handles;
use abi::ipc::{Message, MsgInfo, kernel_label};
use abi::mem::{LARGE_PAGE_SIZE, MapFlags, PAGE_SIZE};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use mm_core::request::{Req, small_pages};
use mm_core::runs::runs;
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
    /// Nothing to reply to (a kernel notice).
    Nothing,
}

fn ok(words: &[u64]) -> Answer {
    Answer::Reply(Message::new(0, words))
}

fn err(e: Error) -> Answer {
    Answer::Reply(Message::new(e.code() as u32, &[]))
}

/// The answer to a fault that resumes the thread.
const RESUME: Answer = Answer::Reply(Message { info: MsgInfo::new(kernel_label::RESUME, 0), words: [0; 6], cap: Handle::NONE });

/// The answer to a fault the server will not resolve: the kernel kills the
/// task (any label but `RESUME`).
fn kill() -> Answer {
    Answer::Reply(Message::new(1, &[]))
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
        self.stats(s).kinds[crate::stats::kind_slot(msg.info.label)].fetch_add(1, Ordering::Relaxed);
        let req = mm_core::request::decode(msg.info.label, &msg.words, cap, badge == 0);
        let mut keep_cap = false;
        let answer = match req {
            Err(e) => err(e),
            Ok(Req::RegisterClient { quota, space }) => match register(s, quota, space) {
                Ok((badge, memory)) => {
                    keep_cap = true;
                    Answer::Reply(Message::new(0, &[badge]).with_cap(memory))
                }
                Err(e) => err(e),
            },
            Ok(Req::CpuStats { cpu }) => {
                let c = &s.cpu_stats[cpu as usize];
                let l = |a: &core::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                ok(&[l(&c.requests), l(&c.allocs), l(&c.frees), l(&c.faults), l(&c.refusals), l(&c.cache)])
            }
            Ok(Req::KindStats { cpu }) => {
                let k = &s.cpu_stats[cpu as usize].kinds;
                ok(&core::array::from_fn::<u64, 6, _>(|i| k[i].load(Ordering::Relaxed)))
            }
            Ok(Req::Books) => ok(&[s.pool.total, s.free_pages(), s.clients.owned(), crate::heap::pages(), s.clients.count()]),
            Ok(req) => match s.clients.get(badge) {
                None => err(Error::NotFound),
                Some(client) => match self.serve(s, &client, req) {
                    Ok(words) => ok(&words),
                    Err(e) => err(e),
                },
            },
        };
        // A registered client's address space stays; any other capability
        // that came with a message must not linger in the server's table.
        if let Some(c) = cap.filter(|_| !keep_cap) {
            let _ = sys::cap_delete(c);
        }
        answer
    }

    fn serve(&mut self, s: &Server, c: &Arc<Client>, req: Req) -> Result<Vec<u64>, Error> {
        match req {
            Req::Alloc { pages, flags } => self.alloc(s, c, pages, flags).map(|va| alloc::vec![va]),
            Req::Free { addr, pages } => self.free(s, c, addr, pages).map(|()| Vec::new()),
            Req::Protect { addr, pages, flags } => protect(c, addr, pages, flags).map(|()| Vec::new()),
            Req::Reserve { pages, flags } => self.reserve(s, c, pages, flags).map(|va| alloc::vec![va]),
            Req::Stats => {
                let st = c.state.lock();
                Ok(alloc::vec![st.charged, c.quota, st.faults, s.free_pages(), s.pool.total])
            }
            Req::Share { addr, pages, writable, target } => {
                let target = target_of(s, target)?;
                share(s, c, addr, pages, writable, target).map(|va| alloc::vec![va])
            }
            Req::CpuStats { .. } | Req::KindStats { .. } | Req::Books | Req::RegisterClient { .. } => {
                unreachable!("answered in `handle`")
            }
        }
    }

    fn take_frames(&mut self, pool: &Pool, flags: MapFlags, small: u64) -> Result<Backing, Error> {
        if flags.contains(MapFlags::LARGE) {
            let mut large = Vec::with_capacity((small / 512) as usize);
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

    /// Charges `small` pages to the client, or refuses (counted).
    fn charge(&self, s: &Server, c: &Client, st: &mut ClientState, small: u64) -> Result<(), Error> {
        if st.dead {
            return Err(Error::PeerDied);
        }
        if st.charged + small > c.quota {
            self.stats(s).refusals.fetch_add(1, Ordering::Relaxed);
            return Err(Error::QuotaExceeded);
        }
        Ok(())
    }

    fn alloc(&mut self, s: &Server, c: &Client, pages: u64, flags: MapFlags) -> Result<u64, Error> {
        let small = small_pages(pages, flags).ok_or(Error::OutOfRange)?;
        let mut st = c.state.lock();
        self.charge(s, c, &mut st, small)?;
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
        c.own(small as i64);
        self.stats(s).allocs.fetch_add(1, Ordering::Relaxed);
        Ok(va)
    }

    fn reserve(&mut self, s: &Server, c: &Client, pages: u64, flags: MapFlags) -> Result<u64, Error> {
        let mut st = c.state.lock();
        self.charge(s, c, &mut st, pages)?;
        let va = st.va.alloc(pages * PAGE_SIZE, PAGE_SIZE).ok_or(Error::OutOfMemory)?;
        let backing = Backing::Pages(alloc::vec![None; pages as usize]);
        st.regions.insert(va, Region { pages, flags, lazy: true, backing, shares: Vec::new() });
        st.charged += pages;
        self.stats(s).allocs.fetch_add(1, Ordering::Relaxed);
        Ok(va)
    }

    /// Frees pages of one region of the client (all of it, or a part: what
    /// is left stays, split in two if the part was in the middle), or drops
    /// pages shared into it.
    fn free(&mut self, s: &Server, c: &Client, addr: u64, pages: u64) -> Result<(), Error> {
        let mut st = c.state.lock();
        if let Some(inc) = st.incoming.get(&addr).copied() {
            if inc.pages != pages {
                return Err(Error::InvalidArgument);
            }
            st.incoming.remove(&addr);
            let _ = sys::mem_unmap(c.space, addr, pages);
            st.share_va.free(addr, pages * PAGE_SIZE);
            drop(st);
            // The owner no longer needs to take it back from us.
            if let Some(owner) = s.clients.get(inc.from)
                && let Some(r) = owner.state.lock().regions.get_mut(&inc.addr)
            {
                r.shares.retain(|&share| share != (c.badge, addr));
            }
            self.stats(s).frees.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let start = {
            let (start, region) = region_for(&mut st, addr, pages)?;
            if start != addr || region.pages != pages {
                // A part: a share maps the whole region, and a large
                // region comes apart only at its 2 MiB pages.
                if !region.shares.is_empty() {
                    return Err(Error::Busy);
                }
                let large = matches!(region.backing, Backing::Large(_));
                if large && (!addr.is_multiple_of(LARGE_PAGE_SIZE) || !pages.is_multiple_of(512)) {
                    return Err(Error::Misaligned);
                }
            }
            start
        };
        let mut region = st.regions.remove(&start).expect("found above");
        if addr > start {
            let part = region.split_off((addr - start) / PAGE_SIZE);
            st.regions.insert(start, region);
            region = part;
        }
        if region.pages > pages {
            let rest = region.split_off(pages);
            st.regions.insert(addr + pages * PAGE_SIZE, rest);
        }
        let _ = sys::mem_unmap(c.space, addr, pages);
        st.va.free(addr, pages * PAGE_SIZE);
        st.charged -= pages;
        c.own(-(region.backed() as i64));
        drop(st);
        unshare(s, c.badge, addr, &region);
        self.return_frames(&s.pool, region.backing, pages);
        self.stats(s).frees.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A lazily reserved page was touched: back it and resume the thread.
    /// Anything else is a real fault: the task dies.
    fn fault(&mut self, s: &Server, badge: u64, w: &[u64; 6]) -> Answer {
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
        let flags = region.flags;
        let Backing::Pages(frames) = &mut region.backing else { return kill() };
        if frames[index].is_some() {
            // Another thread of the client faulted on it first.
            return RESUME;
        }
        let Some(f) = self.cache.take(&s.pool, 1) else { return kill() };
        let page = start + index as u64 * PAGE_SIZE;
        let range = &s.pool.ranges[f[0].range as usize];
        if sys::mem_map(c.space, range.cap, f[0].page as u64, page, 1, flags | MapFlags::ZERO).is_err() {
            self.cache.give(&s.pool, f);
            return kill();
        }
        frames[index] = Some(f[0]);
        st.faults += 1;
        c.own(1);
        self.stats(s).faults.fetch_add(1, Ordering::Relaxed);
        RESUME
    }

    /// A client died: the kernel already emptied its address space, so its
    /// frames only need to come back, once no other task maps them.
    fn client_exit(&mut self, s: &Server, badge: u64) {
        let Some(c) = s.clients.remove(badge) else { return };
        // Marked dead under the client's lock, so a request another worker
        // is still serving for it either finished before (and its pages are
        // taken back here) or sees the mark and adds nothing.
        let (regions, incoming) = {
            let mut st = c.state.lock();
            st.dead = true;
            (core::mem::take(&mut st.regions), core::mem::take(&mut st.incoming))
        };
        for (addr, region) in regions {
            unshare(s, badge, addr, &region);
            c.own(-(region.backed() as i64));
            let pages = region.pages;
            self.return_frames(&s.pool, region.backing, pages);
        }
        for (at, inc) in incoming {
            if let Some(owner) = s.clients.get(inc.from)
                && let Some(r) = owner.state.lock().regions.get_mut(&inc.addr)
            {
                r.shares.retain(|&share| share != (badge, at));
            }
        }
        // Every copy of its memory capability goes (share tokens others
        // hold included), and its address space.
        let _ = sys::cap_revoke(c.memory);
        let _ = (sys::cap_delete(c.memory), sys::cap_delete(c.space));
    }
}

/// Registers a client whose address space is `space` (needs MAP and READ):
/// → its badge and a badged `MEMORY` capability for it.
fn register(s: &Server, quota: u64, space: Handle) -> Result<(u64, Handle), Error> {
    let (kind, rights, _) = sys::cap_info(space)?;
    if kind != Kind::AddressSpace {
        return Err(Error::WrongKind);
    }
    if !rights.contains(Rights::MAP | Rights::READ) {
        return Err(Error::InsufficientRights);
    }
    s.clients.register(space, quota, |badge| sys::cap_mint(handles::MEMORY, badge, Rights::SEND | Rights::GRANT))
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
                sys::mem_map(space, cap, f.page as u64, va + i as u64 * LARGE_PAGE_SIZE, 1, flags)?;
            }
        }
        Backing::Contiguous(f) => {
            let cap = s.pool.ranges[f.range as usize].cap;
            sys::mem_map(space, cap, f.page as u64, va, small, flags)?;
        }
    }
    Ok(())
}

/// Takes the region at `addr` of client `owner` out of every task it was
/// shared into. A target that dropped the share itself, or died, has no
/// record of it any more and is left alone (the address may hold
/// something else by now).
fn unshare(s: &Server, owner: u64, addr: u64, region: &Region) {
    let record = Incoming { from: owner, addr, pages: region.pages };
    for &(badge, va) in &region.shares {
        let Some(t) = s.clients.get(badge) else { continue };
        let mut st = t.state.lock();
        if st.incoming.get(&va) == Some(&record) {
            st.incoming.remove(&va);
            let _ = sys::mem_unmap(t.space, va, region.pages);
            st.share_va.free(va, region.pages * PAGE_SIZE);
        }
    }
}

/// The region holding `[addr, addr + pages)` entirely.
fn region_for(st: &mut ClientState, addr: u64, pages: u64) -> Result<(u64, &mut Region), Error> {
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
            if !addr.is_multiple_of(LARGE_PAGE_SIZE) || !pages.is_multiple_of(512) {
                return Err(Error::Misaligned);
            }
            sys::mem_protect(c.space, addr, pages / 512, flags | MapFlags::LARGE)?;
        }
        Backing::Pages(frames) if region.lazy => {
            // Future faults use the region's flags, so only whole regions.
            if !whole {
                return Err(Error::InvalidArgument);
            }
            for run in runs(frames) {
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
/// own endpoint (a copy of the target's memory capability).
fn target_of(s: &Server, token: Handle) -> Result<u64, Error> {
    let (kind, _, badge) = sys::cap_info(token)?;
    if kind != Kind::Endpoint || sys::cap_identity(token)? != s.endpoint_id || badge == 0 {
        return Err(Error::InvalidArgument);
    }
    Ok(badge)
}

/// Shares the whole region at `addr` of `c` into client `target`. The
/// target's address is reserved first (under the target's lock), then the
/// region is mapped there (under the owner's), so no two client locks are
/// ever held together.
fn share(s: &Server, c: &Client, addr: u64, pages: u64, writable: bool, target: u64) -> Result<u64, Error> {
    let t = s.clients.get(target).ok_or(Error::NotFound)?;
    if t.badge == c.badge {
        return Err(Error::InvalidArgument);
    }
    let large = {
        let mut st = c.state.lock();
        let (start, region) = region_for(&mut st, addr, pages)?;
        if start != addr || pages != region.pages {
            return Err(Error::InvalidArgument);
        }
        matches!(region.backing, Backing::Large(_))
    };
    let align = if large { LARGE_PAGE_SIZE } else { PAGE_SIZE };
    let record = Incoming { from: c.badge, addr, pages };
    let at = {
        let mut st = t.state.lock();
        if st.dead {
            return Err(Error::PeerDied);
        }
        let at = st.share_va.alloc(pages * PAGE_SIZE, align).ok_or(Error::OutOfMemory)?;
        st.incoming.insert(at, record);
        at
    };
    let mapped = map_share(s, c, &t, addr, pages, writable, at);
    if mapped.is_err() {
        let mut st = t.state.lock();
        if st.incoming.get(&at) == Some(&record) {
            st.incoming.remove(&at);
            st.share_va.free(at, pages * PAGE_SIZE);
        }
    }
    mapped.map(|()| at)
}

/// The owner's half of [`share`]: checks the region again under its lock
/// (it may have changed) and maps it at `at` in the target.
fn map_share(s: &Server, c: &Client, t: &Client, addr: u64, pages: u64, writable: bool, at: u64) -> Result<(), Error> {
    let mut st = c.state.lock();
    if st.dead {
        return Err(Error::PeerDied);
    }
    let region = st.regions.get_mut(&addr).filter(|r| r.pages == pages).ok_or(Error::NotFound)?;
    if let Backing::Pages(f) = &region.backing
        && f.iter().any(|p| p.is_none())
    {
        return Err(Error::NotMapped);
    }
    if writable && !region.flags.contains(MapFlags::WRITE) {
        return Err(Error::InsufficientRights);
    }
    let flags = if writable { MapFlags::WRITE } else { MapFlags::empty() };
    if let Err(e) = map(s, t.space, at, &region.backing, flags | (region.flags & MapFlags::LARGE), pages) {
        let _ = sys::mem_unmap(t.space, at, pages);
        return Err(e);
    }
    region.shares.push((t.badge, at));
    Ok(())
}
