//! Kernel objects and the capabilities that name them.
//!
//! One file per object kind. A [`Capability`] is an object reference plus
//! rights and a badge; it lives in a task's [`cap_table::CapTable`] and
//! user space names it by handle. Capabilities derived from others (copies,
//! badged copies, transfers) are linked in the [`derivation`] tree so that
//! revoking one deletes them all, in every task.

pub mod cap_table;
pub mod derivation;
pub mod endpoint;
pub mod phys;
pub mod reply;
pub mod task;
pub mod thread;

use crate::mm::address_space::AddressSpace;
use abi::cap::{Kind, Rights};
use alloc::sync::Arc;
use endpoint::EndpointRef;
use phys::PhysRange;
use reply::Reply;
use task::Task;
use thread::Thread;

/// What a capability refers to.
#[derive(Clone)]
pub enum Object {
    /// An IPC endpoint.
    Endpoint(EndpointRef),
    /// The right to answer one call.
    Reply(Arc<Reply>),
    /// A thread.
    Thread(Arc<Thread>),
    /// A task.
    Task(Arc<Task>),
    /// An address space.
    AddressSpace(Arc<AddressSpace>),
    /// A range of physical memory.
    PhysMemory(Arc<PhysRange>),
    /// The boot modules.
    Modules,
    /// The machine.
    Machine,
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Endpoint(_) => Kind::Endpoint,
            Self::Reply(_) => Kind::Reply,
            Self::Thread(_) => Kind::Thread,
            Self::Task(_) => Kind::Task,
            Self::AddressSpace(_) => Kind::AddressSpace,
            Self::PhysMemory(_) => Kind::PhysMemory,
            Self::Modules => Kind::Modules,
            Self::Machine => Kind::Machine,
        }
    }

    /// A number that tells objects of the same kind apart (endpoint, task
    /// and thread ids; 0 for the others), so a server can recognise its
    /// own endpoint in a capability it is sent.
    pub fn identity(&self) -> u64 {
        match self {
            Self::Endpoint(e) => e.id,
            Self::Task(t) => t.id,
            Self::Thread(t) => t.id,
            _ => 0,
        }
    }

    /// The same object, with receive rights counted only if `rights` has
    /// RECEIVE (see [`EndpointRef`]).
    fn with_rights(&self, rights: Rights) -> Self {
        match self {
            Self::Endpoint(e) => Self::Endpoint(e.with_receive(rights.contains(Rights::RECEIVE))),
            other => other.clone(),
        }
    }
}

/// Identity of a capability, unique for the life of the system.
pub type CapId = u64;

/// A capability: an object, what it allows, and a badge.
#[derive(Clone)]
pub struct Capability {
    /// The object.
    pub object: Object,
    /// What the capability allows.
    pub rights: Rights,
    /// The badge a receiver sees (endpoints; 0 = unbadged).
    pub badge: u64,
    /// Identity for the derivation tree.
    pub id: CapId,
    /// Whether it has a node in the derivation tree (a parent or children).
    pub derived: bool,
}

impl Capability {
    /// A fresh, underived capability with all the rights that mean
    /// something for the object.
    pub fn new(object: Object, rights: Rights) -> Self {
        let rights = rights & object.kind().meaningful_rights();
        let object = object.with_rights(rights);
        Self { object, rights, badge: 0, id: derivation::next_id(), derived: false }
    }

    /// A child capability with `rights` (a subset of this one's) and
    /// `badge`; not yet linked into the tree.
    pub fn derive(&self, rights: Rights, badge: u64) -> Self {
        let rights = rights & self.rights;
        Self { object: self.object.with_rights(rights), rights, badge, id: derivation::next_id(), derived: true }
    }

    /// Checks that the capability names a `kind` object with `needed` rights.
    pub fn require(&self, kind: Kind, needed: Rights) -> Result<&Self, abi::Error> {
        if self.object.kind() != kind {
            return Err(abi::Error::WrongKind);
        }
        if !self.rights.contains(needed) {
            return Err(abi::Error::InsufficientRights);
        }
        Ok(self)
    }
}
