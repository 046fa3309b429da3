//! A lock for user space: spin briefly, then give the CPU away.
//!
//! A plain spin lock is wrong here: the holder may be a thread preempted on
//! the waiter's own CPU, and spinning would burn the whole time slice it
//! needs to finish. After a short spin (the common case: the holder runs on
//! another CPU and is about to let go) the waiter yields.

use crate::sys;
use core::sync::atomic::{AtomicBool, Ordering};

/// Spins before the waiter starts yielding.
const SPINS: u32 = 128;

/// The raw lock under [`Mutex`].
pub struct YieldLock(AtomicBool);

// SAFETY: the flag is taken only by a successful compare-exchange from
// `false` (Acquire) and released by a store of `false` (Release), so at most
// one owner holds it at a time and its critical section happens-before the
// next owner's.
unsafe impl lock_api::RawMutex for YieldLock {
    const INIT: Self = YieldLock(AtomicBool::new(false));
    type GuardMarker = lock_api::GuardSend;

    fn lock(&self) {
        let mut spins = 0;
        while !self.try_lock() {
            if spins < SPINS {
                spins += 1;
                core::hint::spin_loop();
            } else {
                sys::yield_now();
            }
        }
    }

    fn try_lock(&self) -> bool {
        self.0.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    unsafe fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A mutex whose waiters yield (see the module text).
pub type Mutex<T> = lock_api::Mutex<YieldLock, T>;
/// Its guard.
pub type MutexGuard<'a, T> = lock_api::MutexGuard<'a, YieldLock, T>;
