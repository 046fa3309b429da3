//! Capability slots every task starts with. A task finds its initial
//! capabilities here instead of being told at run time.

use crate::cap::Handle;

/// The task itself (CONTROL).
pub const SELF_TASK: Handle = Handle::new(1, 0);
/// The task's address space (READ, GRANT: only the memory server changes
/// a task's mappings; its own has every right).
pub const SELF_SPACE: Handle = Handle::new(2, 0);
/// The task's first thread (CONTROL).
pub const SELF_THREAD: Handle = Handle::new(3, 0);
/// The memory server's endpoint. Clients hold a badged SEND capability;
/// the memory server itself holds the receiving one.
pub const MEMORY: Handle = Handle::new(4, 0);
/// The boot modules (init only).
pub const MODULES: Handle = Handle::new(5, 0);
/// Machine control (init only; the memory server gets READ for statistics).
pub const MACHINE: Handle = Handle::new(6, 0);
/// A task's own endpoint to talk to whoever started it (given by init to
/// the tasks it starts; absent otherwise).
pub const PARENT: Handle = Handle::new(7, 0);
/// The memory server's unbadged endpoint capability (SEND, GRANT), which
/// registers clients (init, and tasks init lets start clients).
pub const MEMORY_CONTROL: Handle = Handle::new(8, 0);
/// First of the memory server's physical-memory capabilities; the number
/// of them is the memory server's start argument.
pub const PHYS_FIRST: u16 = 16;
/// Slots below this are reserved for the well-known capabilities above;
/// the kernel hands out dynamic slots from here on.
pub const FIRST_DYNAMIC: u16 = 64;
