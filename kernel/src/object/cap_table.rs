//! A task's capability table: slots holding capabilities, named by handles
//! that carry the slot's generation so stale handles are recognised.

use super::Capability;
use abi::cap::{Handle, MAX_SLOTS};
use abi::handles::FIRST_DYNAMIC;
use abi::Error;
use alloc::vec::Vec;

/// Slots a task may fill at most (the ABI allows 65535; this keeps a task
/// from taking unbounded kernel memory).
pub const TABLE_LIMIT: usize = 4096;

struct Slot {
    generation: u16,
    cap: Option<Capability>,
}

/// The table.
pub struct CapTable {
    slots: Vec<Slot>,
    free: Vec<u16>,
}

impl Default for CapTable {
    fn default() -> Self {
        Self::new()
    }
}

impl CapTable {
    /// An empty table.
    pub const fn new() -> Self {
        Self { slots: Vec::new(), free: Vec::new() }
    }

    fn slot(&self, handle: Handle) -> Result<&Slot, Error> {
        let index = handle.index() as usize;
        if index == 0 {
            return Err(Error::InvalidHandle);
        }
        let slot = self.slots.get(index).ok_or(Error::InvalidHandle)?;
        // Stale: the slot moved on since this handle was issued. A
        // generation the slot never had was never issued at all.
        match handle.generation().cmp(&slot.generation) {
            core::cmp::Ordering::Less => Err(Error::StaleHandle),
            core::cmp::Ordering::Greater => Err(Error::InvalidHandle),
            core::cmp::Ordering::Equal => Ok(slot),
        }
    }

    /// The capability `handle` names.
    pub fn get(&self, handle: Handle) -> Result<&Capability, Error> {
        self.slot(handle)?.cap.as_ref().ok_or(Error::InvalidHandle)
    }

    /// The capability `handle` names, mutably.
    pub fn get_mut(&mut self, handle: Handle) -> Result<&mut Capability, Error> {
        self.slot(handle)?;
        self.slots[handle.index() as usize].cap.as_mut().ok_or(Error::InvalidHandle)
    }

    fn handle_of(&self, index: usize) -> Handle {
        Handle::new(index as u16, self.slots[index].generation)
    }

    fn grow_to(&mut self, index: usize) -> Result<(), Error> {
        if index >= TABLE_LIMIT.min(MAX_SLOTS) {
            return Err(Error::NoSlot);
        }
        while self.slots.len() <= index {
            self.slots.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
            self.slots.push(Slot { generation: 0, cap: None });
        }
        Ok(())
    }

    /// Puts `cap` in a free dynamic slot.
    pub fn insert(&mut self, cap: Capability) -> Result<Handle, Error> {
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                let i = self.slots.len().max(FIRST_DYNAMIC as usize);
                self.grow_to(i)?;
                i
            }
        };
        self.slots[index].cap = Some(cap);
        Ok(self.handle_of(index))
    }

    /// Puts `cap` in slot `index`, which must be empty.
    pub fn insert_at(&mut self, index: u16, cap: Capability) -> Result<Handle, Error> {
        let i = index as usize;
        if i == 0 {
            return Err(Error::InvalidArgument);
        }
        self.grow_to(i)?;
        if self.slots[i].cap.is_some() {
            return Err(Error::SlotOccupied);
        }
        self.free.retain(|&f| f as usize != i);
        self.slots[i].cap = Some(cap);
        Ok(self.handle_of(i))
    }

    /// Empties the slot `handle` names and returns its capability; the
    /// slot's generation moves on, so `handle` becomes stale.
    pub fn remove(&mut self, handle: Handle) -> Result<Capability, Error> {
        self.get(handle)?;
        Ok(self.take(handle.index() as usize).expect("checked above"))
    }

    fn take(&mut self, index: usize) -> Option<Capability> {
        let slot = &mut self.slots[index];
        let cap = slot.cap.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        if index >= FIRST_DYNAMIC as usize {
            self.free.push(index as u16);
        }
        Some(cap)
    }

    /// Removes the capability in slot `index` if it still is `id`.
    pub fn remove_id(&mut self, index: u16, id: super::CapId) -> Option<Capability> {
        let i = index as usize;
        match self.slots.get(i).and_then(|s| s.cap.as_ref()) {
            Some(c) if c.id == id => self.take(i),
            _ => None,
        }
    }

    /// Marks the capability in slot `index` as having derivation links, if
    /// it still is `id`; returns whether it was.
    pub fn mark_derived(&mut self, index: u16, id: super::CapId) -> bool {
        match self.slots.get_mut(index as usize).and_then(|s| s.cap.as_mut()) {
            Some(c) if c.id == id => {
                c.derived = true;
                true
            }
            _ => false,
        }
    }

    /// Clears the derivation mark of the capability `handle` names.
    pub fn mark_underived(&mut self, handle: Handle) {
        if let Ok(c) = self.get_mut(handle) {
            c.derived = false;
        }
    }

    /// Empties the whole table (task teardown); returns the capabilities so
    /// the caller drops them outside its locks.
    pub fn drain(&mut self) -> Vec<Capability> {
        let caps = self.slots.iter_mut().filter_map(|s| s.cap.take()).collect();
        self.slots.clear();
        self.free.clear();
        caps
    }
}
