//! A tiny test harness for programs that check the kernel from user space:
//! [`check!`](crate::check), [`check_eq!`](crate::check_eq) and
//! [`check_err!`](crate::check_err) count every check and report each
//! failure (with its source line) to the log; [`summary`] says how many
//! ran and failed. Counters are global and atomic, so any thread of the
//! task may check.

use core::fmt;
use core::panic::Location;
use core::sync::atomic::{AtomicU64, Ordering};

static CHECKS: AtomicU64 = AtomicU64::new(0);
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// Failures reported in full; later ones are only counted.
const REPORTED: u64 = 40;

/// Records one check; reports it when `ok` is false. Returns `ok`.
#[track_caller]
pub fn check(ok: bool, what: fmt::Arguments<'_>) -> bool {
    CHECKS.fetch_add(1, Ordering::Relaxed);
    if !ok {
        fail(Location::caller(), what, None);
    }
    ok
}

/// Records one comparison; reports both sides when they differ.
#[track_caller]
pub fn check_eq<T: PartialEq + fmt::Debug + ?Sized>(left: &T, right: &T, what: fmt::Arguments<'_>) -> bool {
    CHECKS.fetch_add(1, Ordering::Relaxed);
    let ok = left == right;
    if !ok {
        fail(Location::caller(), what, Some(format_args!("got {left:?}, expected {right:?}")));
    }
    ok
}

fn fail(at: &Location<'_>, what: fmt::Arguments<'_>, detail: Option<fmt::Arguments<'_>>) {
    let n = FAILURES.fetch_add(1, Ordering::Relaxed) + 1;
    if n <= REPORTED {
        match detail {
            Some(d) => crate::println!("FAIL {}:{}: {what}: {d}", at.file(), at.line()),
            None => crate::println!("FAIL {}:{}: {what}", at.file(), at.line()),
        }
    } else if n == REPORTED + 1 {
        crate::println!("FAIL: more failures follow; only counting them from here on");
    }
}

/// Checks made and failed so far.
pub fn summary() -> (u64, u64) {
    (CHECKS.load(Ordering::Relaxed), FAILURES.load(Ordering::Relaxed))
}

/// Failures so far.
pub fn failures() -> u64 {
    FAILURES.load(Ordering::Relaxed)
}

/// Checks that a condition holds: `check!(cond, "what {}", x)`.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($what:tt)+) => {
        $crate::test::check($cond, format_args!($($what)+))
    };
}

/// Checks that two values are equal: `check_eq!(got, expected, "what")`.
#[macro_export]
macro_rules! check_eq {
    ($left:expr, $right:expr, $($what:tt)+) => {
        $crate::test::check_eq(&$left, &$right, format_args!($($what)+))
    };
}

/// Checks that a `Result` is exactly `Err(error)`:
/// `check_err!(sys::cap_info(h), Error::StaleHandle, "what")`.
#[macro_export]
macro_rules! check_err {
    ($result:expr, $err:expr, $($what:tt)+) => {
        $crate::test::check_eq(&($result).err(), &Some($err), format_args!($($what)+))
    };
}

/// Checks that a `Result` is `Ok` and yields its value (or `None`).
#[macro_export]
macro_rules! check_ok {
    ($result:expr, $($what:tt)+) => {
        match $result {
            Ok(v) => {
                $crate::test::check(true, format_args!($($what)+));
                Some(v)
            }
            Err(e) => {
                $crate::test::check(false, format_args!("{}: failed with {:?}", format_args!($($what)+), e));
                None
            }
        }
    };
}
