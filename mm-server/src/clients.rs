//! Clients: the tasks the server serves, one per badge, each with its
//! address space, quota, regions and counters.
//!
//! The registry is an array indexed by badge with a lock per slot, so
//! requests of different clients never share a lock; a client's own state
//! sits behind its own lock.

use abi::cap::Handle;
use abi::mem::MapFlags;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use mm_core::layout::{ALLOC_BASE, ALLOC_END};
use mm_core::request::MAX_CLIENTS;
use mm_core::runs::Frame;
use mm_core::va::VaAllocator;
use spin::{Mutex, RwLock};

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

/// A range of a client's address space the server manages.
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
    /// Where it is shared into: (the target client's badge, address).
    pub shares: Vec<(u64, u64)>,
}

impl Region {
    /// Frames (4 KiB units) currently backing it.
    pub fn backed(&self) -> u64 {
        match &self.backing {
            Backing::Pages(p) => p.iter().filter(|f| f.is_some()).count() as u64,
            Backing::Large(l) => l.len() as u64 * 512,
            Backing::Contiguous(_) => self.pages,
        }
    }
}

/// A client's state, under its lock.
pub struct ClientState {
    /// Pages charged against the quota (allocated, or reserved).
    pub charged: u64,
    /// Regions by start address.
    pub regions: BTreeMap<u64, Region>,
    /// Its allocation window.
    pub va: VaAllocator,
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
    /// Most pages it may hold.
    pub quota: u64,
    /// Everything else.
    pub state: Mutex<ClientState>,
}

impl Client {
    /// A new client.
    pub fn new(badge: u64, space: Handle, quota: u64) -> Self {
        Self {
            badge,
            space,
            quota,
            state: Mutex::new(ClientState {
                charged: 0,
                regions: BTreeMap::new(),
                va: VaAllocator::new(ALLOC_BASE, ALLOC_END),
                faults: 0,
                dead: false,
            }),
        }
    }
}

/// The registry.
pub struct Clients {
    slots: Vec<RwLock<Option<Arc<Client>>>>,
}

impl Clients {
    /// Room for `MAX_CLIENTS` clients.
    pub fn new() -> Self {
        Self { slots: (0..MAX_CLIENTS).map(|_| RwLock::new(None)).collect() }
    }

    /// The client with `badge`.
    pub fn get(&self, badge: u64) -> Option<Arc<Client>> {
        self.slots.get(badge as usize)?.read().clone()
    }

    /// Registers a client; fails if the badge is taken.
    pub fn insert(&self, client: Client) -> Result<(), abi::Error> {
        let slot = self.slots.get(client.badge as usize).ok_or(abi::Error::OutOfRange)?;
        let mut s = slot.write();
        if s.is_some() {
            return Err(abi::Error::SlotOccupied);
        }
        *s = Some(Arc::new(client));
        Ok(())
    }

    /// Removes the client with `badge`.
    pub fn remove(&self, badge: u64) -> Option<Arc<Client>> {
        self.slots.get(badge as usize)?.write().take()
    }

    /// Every registered client.
    pub fn all(&self) -> impl Iterator<Item = Arc<Client>> + '_ {
        self.slots.iter().filter_map(|s| s.read().clone())
    }
}

impl Default for Clients {
    fn default() -> Self {
        Self::new()
    }
}
