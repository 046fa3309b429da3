//! The derivation tree: which capability was made from which, across all
//! tasks, so that revoking a capability deletes everything derived from it.
//!
//! Only capabilities that have a parent or children get a node, so the
//! common IPC paths (which create reply capabilities) never touch it. One
//! global lock orders all derivation changes; it is always taken before any
//! task's capability-table lock.

use super::task::Task;
use super::{CapId, Capability};
use crate::sync::SpinLock;
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh capability identity.
pub fn next_id() -> CapId {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Where a capability lives.
#[derive(Clone)]
pub struct Location {
    /// Its task.
    pub task: Weak<Task>,
    /// Its slot.
    pub index: u16,
}

struct Node {
    parent: Option<CapId>,
    children: Vec<CapId>,
    at: Location,
}

/// The tree, locked.
pub struct Tree {
    nodes: BTreeMap<CapId, Node>,
}

static TREE: SpinLock<Tree> = SpinLock::new(Tree { nodes: BTreeMap::new() });

/// Locks the tree. Take it before any capability-table lock.
pub fn lock() -> crate::sync::SpinLockGuard<'static, Tree> {
    TREE.lock()
}

impl Tree {
    /// Records that `child` (at `child_at`) was derived from `parent` (at
    /// `parent_at`).
    pub fn link(&mut self, parent: CapId, parent_at: Location, child: CapId, child_at: Location) {
        self.nodes
            .entry(parent)
            .or_insert_with(|| Node { parent: None, children: Vec::new(), at: parent_at })
            .children
            .push(child);
        self.nodes.insert(child, Node { parent: Some(parent), children: Vec::new(), at: child_at });
    }

    /// Forgets a deleted capability: its children move up to its parent,
    /// so revoking an ancestor still reaches them.
    pub fn unlink(&mut self, id: CapId) {
        let Some(node) = self.nodes.remove(&id) else { return };
        if let Some(p) = node.parent.and_then(|p| self.nodes.get_mut(&p)) {
            p.children.retain(|&c| c != id);
            p.children.extend_from_slice(&node.children);
        }
        for c in &node.children {
            if let Some(child) = self.nodes.get_mut(c) {
                child.parent = node.parent;
            }
        }
    }

    /// Every capability derived (directly or not) from `id`, deepest first.
    pub fn descendants(&self, id: CapId) -> Vec<(CapId, Location)> {
        let mut out = Vec::new();
        let mut stack: Vec<CapId> = self.nodes.get(&id).map(|n| n.children.clone()).unwrap_or_default();
        while let Some(c) = stack.pop() {
            if let Some(n) = self.nodes.get(&c) {
                stack.extend_from_slice(&n.children);
                out.push((c, n.at.clone()));
            }
        }
        out.reverse();
        out
    }

    /// Deletes every capability derived from `id`, in every task. Returns
    /// the capabilities so the caller drops them after unlocking.
    pub fn revoke(&mut self, id: CapId) -> Vec<Capability> {
        let mut removed = Vec::new();
        for (c, at) in self.descendants(id) {
            if let Some(task) = at.task.upgrade()
                && let Some(cap) = task.caps.lock().remove_id(at.index, c)
            {
                removed.push(cap);
            }
            self.unlink(c);
        }
        removed
    }
}

/// The location of slot `index` in `task`.
pub fn at(task: &Arc<Task>, index: u16) -> Location {
    Location { task: Arc::downgrade(task), index }
}
