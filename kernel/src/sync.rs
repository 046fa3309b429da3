//! Kernel locks.
//!
//! [`SpinLock`] masks interrupts while held, so an interrupt handler on the
//! same CPU can never spin on a lock its own CPU holds. While it waits with
//! interrupts masked it keeps answering TLB shootdowns: otherwise a CPU
//! holding this lock while waiting for a shootdown acknowledgement from us
//! would wait forever.

use crate::arch::cpu::InterruptGuard;
use core::ops::{Deref, DerefMut};
use crossbeam_utils::Backoff;

/// A spin lock that masks interrupts while held.
pub struct SpinLock<T> {
    inner: spin::Mutex<T>,
}

/// Access to the data of a held [`SpinLock`]; unlocks, then restores the
/// interrupt state, when dropped.
pub struct SpinLockGuard<'a, T> {
    // Field order is drop order: unlock first, then unmask interrupts.
    guard: spin::MutexGuard<'a, T>,
    _irq: InterruptGuard,
}

impl<T> SpinLock<T> {
    /// A new unlocked lock.
    pub const fn new(value: T) -> Self {
        Self { inner: spin::Mutex::new(value) }
    }

    /// Takes the lock, spinning politely.
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        let irq = InterruptGuard::new();
        let backoff = Backoff::new();
        loop {
            if let Some(guard) = self.inner.try_lock() {
                return SpinLockGuard { guard, _irq: irq };
            }
            while self.inner.is_locked() {
                crate::mm::tlb::serve_while_waiting();
                backoff.snooze();
            }
        }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<SpinLockGuard<'_, T>> {
        let irq = InterruptGuard::new();
        self.inner.try_lock().map(|guard| SpinLockGuard { guard, _irq: irq })
    }

    /// The data, through exclusive access (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }
}

impl<T> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

/// The same discipline as [`SpinLock`] as a `lock_api` raw mutex, for
/// crates that take one (the heap allocator). The interrupt state saved at
/// `lock` is restored at `unlock`.
pub struct IrqRawMutex {
    locked: core::sync::atomic::AtomicBool,
    interrupts_were_enabled: core::sync::atomic::AtomicBool,
}

// SAFETY: `lock` returns only once `locked` went from false to true with
// Acquire ordering, and `unlock` stores false with Release, so at most one
// holder exists and the holder's writes are visible to the next one.
unsafe impl lock_api::RawMutex for IrqRawMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Self {
        locked: core::sync::atomic::AtomicBool::new(false),
        interrupts_were_enabled: core::sync::atomic::AtomicBool::new(false),
    };
    type GuardMarker = lock_api::GuardNoSend;

    fn lock(&self) {
        use core::sync::atomic::Ordering;
        let was = crate::arch::cpu::interrupts_enabled();
        crate::arch::cpu::disable_interrupts();
        let backoff = Backoff::new();
        while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            while self.locked.load(Ordering::Relaxed) {
                crate::mm::tlb::serve_while_waiting();
                backoff.snooze();
            }
        }
        self.interrupts_were_enabled.store(was, Ordering::Relaxed);
    }

    fn try_lock(&self) -> bool {
        use core::sync::atomic::Ordering;
        let was = crate::arch::cpu::interrupts_enabled();
        crate::arch::cpu::disable_interrupts();
        if self.locked.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            self.interrupts_were_enabled.store(was, Ordering::Relaxed);
            true
        } else {
            if was {
                crate::arch::cpu::enable_interrupts();
            }
            false
        }
    }

    unsafe fn unlock(&self) {
        use core::sync::atomic::Ordering;
        let was = self.interrupts_were_enabled.load(Ordering::Relaxed);
        self.locked.store(false, Ordering::Release);
        if was {
            crate::arch::cpu::enable_interrupts();
        }
    }
}
