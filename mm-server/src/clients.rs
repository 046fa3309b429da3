//! Clients: the tasks the server serves, each known by its badge (see
//! `mm_core::badge`), with its address space, quota, regions, the pages
//! other clients shared into it, and counters.
//!
//! The registry is an array of slots with a (yielding) lock each, held
//! only to look a client up, so requests of
//! different clients never share a lock; a client's own state sits behind
//! its own lock. No code holds two clients' locks at once (sharing takes
//! them one after the other), so two clients sharing into each other at
//! the same time cannot deadlock.

use abi::cap::Handle;
use abi::mem::MapFlags;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use mm_core::badge::{self, SLOTS};
use mm_core::layout::{ALLOC_BASE, ALLOC_END, SHARE_BASE, SHARE_END};
use mm_core::runs::Frame;
use mm_core::va::VaAllocator;
use user::lock::Mutex;

/// What backs a region.
#[derive(Debug)]
pub enum Backing {
    /// 4 KiB frames, one per page (`None`: lazy, not touched yet).
    Pages(Vec<Option<Frame>>),
    /// 2 MiB frames, one per large page (first frame of each).
    Large(Vec<Frame>),
    /// One physically contiguous run.
    Contiguous(Frame),
}

/// A range of a client's address space the server gave it.
#[derive(Debug)]
pub struct Region {
    /// 4 KiB pages it spans.
    pub pages: u64,
    /// How it is mapped.
    pub flags: MapFlags,
    /// Lazily backed (reserve).
    pub lazy: bool,
    /// Its frames.
    pub backing: Backing,
    /// Where it is shared into: (the target client's badge, address there).
    pub shares: Vec<(u64, u64)>,
}

impl Region {
    /// Splits the region before page `at` (`0 < at < pages`, a multiple of
    /// 512 for a large region): `self` keeps the pages before it, the
    /// result holds the rest, with the same flags. Only unshared regions
    /// are split (a share maps the whole region).
    pub fn split_off(&mut self, at: u64) -> Region {
        debug_assert!(0 < at && at < self.pages && self.shares.is_empty());
        let backing = match &mut self.backing {
            Backing::Pages(frames) => Backing::Pages(frames.split_off(at as usize)),
            Backing::Large(large) => Backing::Large(large.split_off((at / 512) as usize)),
            Backing::Contiguous(first) => Backing::Contiguous(Frame { range: first.range, page: first.page + at as u32 }),
        };
        let rest = Region { pages: self.pages - at, flags: self.flags, lazy: self.lazy, backing, shares: Vec::new() };
        self.pages = at;
        rest
    }

    /// Frames (4 KiB units) currently backing it.
    pub fn backed(&self) -> u64 {
        match &self.backing {
            Backing::Pages(p) => p.iter().filter(|f| f.is_some()).count() as u64,
            Backing::Large(l) => l.len() as u64 * 512,
            Backing::Contiguous(_) => self.pages,
        }
    }
}

/// Pages another client shared into this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// The owner's badge.
    pub from: u64,
    /// The region's address in the owner.
    pub addr: u64,
    /// 4 KiB pages.
    pub pages: u64,
}

/// A client's state, under its lock.
pub struct ClientState {
    /// Pages charged against the quota (allocated, or reserved).
    pub charged: u64,
    /// Regions by start address.
    pub regions: BTreeMap<u64, Region>,
    /// Its allocation window.
    pub va: VaAllocator,
    /// Pages shared into it, by address.
    pub incoming: BTreeMap<u64, Incoming>,
    /// Its share window.
    pub share_va: VaAllocator,
    /// Lazy faults served.
    pub faults: u64,
    /// Its task ended: requests still in flight must not add anything.
    pub dead: bool,
}

/// A client.
pub struct Client {
    /// Its badge.
    pub badge: u64,
    /// Its address space (a capability in the server's table).
    pub space: Handle,
    /// The badged `MEMORY` capability minted for it (revoked when it dies,
    /// taking every copy with it).
    pub memory: Handle,
    /// Most pages it may hold.
    pub quota: u64,
    /// Frames backing its regions (for the books; changed under `state`).
    pub owned: AtomicU64,
    /// Everything else.
    pub state: Mutex<ClientState>,
}

impl Client {
    fn new(badge: u64, space: Handle, memory: Handle, quota: u64) -> Self {
        Self {
            badge,
            space,
            memory,
            quota,
            owned: AtomicU64::new(0),
            state: Mutex::new(ClientState {
                charged: 0,
                regions: BTreeMap::new(),
                va: VaAllocator::new(ALLOC_BASE, ALLOC_END),
                incoming: BTreeMap::new(),
                share_va: VaAllocator::new(SHARE_BASE, SHARE_END),
                faults: 0,
                dead: false,
            }),
        }
    }

    /// Counts `n` more (or, negative, fewer) frames as backing its regions.
    pub fn own(&self, n: i64) {
        self.owned.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// One slot: its current client, and how many clients it had.
#[derive(Default)]
struct Slot {
    client: Option<Arc<Client>>,
    generation: u64,
}

/// The registry.
pub struct Clients {
    slots: Vec<Mutex<Slot>>,
    /// Registered clients.
    count: AtomicU64,
}

impl Clients {
    /// Room for `SLOTS - 1` clients at once.
    pub fn new() -> Self {
        Self { slots: (0..SLOTS).map(|_| Mutex::new(Slot::default())).collect(), count: AtomicU64::new(0) }
    }

    /// The client with `badge` (a badge of a client that died names none).
    pub fn get(&self, badge: u64) -> Option<Arc<Client>> {
        let slot = self.slots.get(badge::slot_of(badge)?)?.lock();
        slot.client.clone().filter(|c| c.badge == badge)
    }

    /// Registers a client in a free slot, with the capability `mint` makes
    /// for its badge; returns the badge and that capability.
    pub fn register(
        &self,
        space: Handle,
        quota: u64,
        mint: impl FnOnce(u64) -> Result<Handle, abi::Error>,
    ) -> Result<(u64, Handle), abi::Error> {
        for (i, slot) in self.slots.iter().enumerate().skip(1) {
            let mut s = slot.lock();
            if s.client.is_none() {
                let badge = badge::make(i, s.generation);
                s.generation += 1;
                let memory = mint(badge)?;
                s.client = Some(Arc::new(Client::new(badge, space, memory, quota)));
                self.count.fetch_add(1, Ordering::Relaxed);
                return Ok((badge, memory));
            }
        }
        Err(abi::Error::OutOfMemory)
    }

    /// Removes the client with `badge`.
    pub fn remove(&self, badge: u64) -> Option<Arc<Client>> {
        let mut slot = self.slots.get(badge::slot_of(badge)?)?.lock();
        if slot.client.as_ref().is_some_and(|c| c.badge == badge) {
            self.count.fetch_sub(1, Ordering::Relaxed);
            slot.client.take()
        } else {
            None
        }
    }

    /// Clients registered now.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Frames backing every registered client's regions.
    pub fn owned(&self) -> u64 {
        self.slots.iter().filter_map(|s| s.lock().client.as_ref().map(|c| c.owned.load(Ordering::Relaxed))).sum()
    }
}

impl Default for Clients {
    fn default() -> Self {
        Self::new()
    }
}
