//! Client badges. A client is known by the badge of its `MEMORY`
//! capability: a slot in the server's client table in the low bits and the
//! slot's generation above them. A slot is reused once its client died, but
//! never with the same badge, so a capability minted for a dead client
//! (kept by a task it shared with, say) can never name the new one.

/// Client slots (slot 0 is never used: badge 0 is the unbadged,
/// registering capability).
pub const SLOTS: usize = 256;

const SLOT_BITS: u32 = SLOTS.trailing_zeros();

/// The badge of generation `generation` of `slot`.
pub const fn make(slot: usize, generation: u64) -> u64 {
    generation << SLOT_BITS | slot as u64
}

/// The slot a badge names (`None` for badge 0 and slot 0).
pub fn slot_of(badge: u64) -> Option<usize> {
    match (badge % SLOTS as u64) as usize {
        0 => None,
        slot => Some(slot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges_name_their_slot_and_differ_per_generation() {
        assert_eq!(slot_of(make(7, 0)), Some(7));
        assert_eq!(slot_of(make(7, 5)), Some(7));
        assert_ne!(make(7, 0), make(7, 1));
        assert_eq!(slot_of(0), None);
        assert_eq!(slot_of(make(0, 3)), None);
        assert_eq!(slot_of(make(SLOTS - 1, u64::MAX >> SLOT_BITS)), Some(SLOTS - 1));
    }
}
