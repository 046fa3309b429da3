//! The program heap: `talc` over a fixed 1 MiB arena, so that `Vec`, `Box`
//! and `String` work (and thread stacks come from it: see `thread`).

use talc::source::Claim;
use talc::TalcLock;

/// Bytes of heap each program has.
const ARENA: usize = 1024 * 1024;

static mut ARENA_BYTES: [u8; ARENA] = [0; ARENA];

#[global_allocator]
// SAFETY: the arena is a static used by nothing but this allocator.
static HEAP: TalcLock<spin::Mutex<()>, Claim> = TalcLock::new(unsafe { Claim::array(&raw mut ARENA_BYTES) });
