//! The program heap: `talc` over a fixed arena, so that `Vec`, `Box` and
//! `String` work.

use talc::source::Claim;
use talc::TalcLock;

/// Bytes of heap each program has.
const ARENA: usize = 256 * 1024;

static mut ARENA_BYTES: [u8; ARENA] = [0; ARENA];

#[global_allocator]
// SAFETY: the arena is a static used by nothing but this allocator.
static HEAP: TalcLock<spin::Mutex<()>, Claim> = TalcLock::new(unsafe { Claim::array(&raw mut ARENA_BYTES) });
