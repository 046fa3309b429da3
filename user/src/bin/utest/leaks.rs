//! `leaks`: a task gives back every kernel frame it used (page tables,
//! kernel stacks, its image) however it ends: returning from main, its
//! last thread calling ThreadExit, killing itself, killed while it sleeps,
//! runs or waits for an answer, or killed by a fault. Each way is tried
//! a few times to warm up, then many times more; the kernel's count of
//! frames in use must come back to where it was.

use crate::child::{Child, Role};
use user::abi::cap::Rights;
use user::abi::handles::{MACHINE, SELF_TASK};
use user::thread;
use user::{check, check_eq, check_ok, println, sys};

/// Rounds before the measurement (the kernel heap may grow meanwhile).
const WARMUP: u32 = 3;
/// Rounds measured.
const ROUNDS: u32 = 16;
/// Frames that may still be in use right after the measured rounds without
/// a leak, per CPU: a task that just ended may not have left every CPU yet
/// (its kernel stack and page tables go when the CPU last running it
/// switches away), and the kernel heap may grow meanwhile. A leak of a
/// task's kernel stack and page tables is some 23 frames per task, 368 over
/// the measured rounds.
const SLACK_PER_CPU: i64 = 24;

/// ExitThreads role: a second thread ends the task after the first one
/// has ended with ThreadExit.
pub fn exit_threads() -> i64 {
    match thread::spawn(|| {
        let _ = sys::sleep(20_000);
    }) {
        Ok(t) => {
            // Detached: the task ends when this second thread does.
            drop(t);
            sys::thread_exit()
        }
        Err(e) => e.code() as i64,
    }
}

/// KillSelf role.
pub fn kill_self(code: u16) -> i64 {
    let _ = sys::task_kill(SELF_TASK, code as i64);
    99
}

fn kernel_frames() -> i64 {
    sys::machine_stats(MACHINE).map_or(0, |s| s[2] as i64)
}

/// One way for a task to end.
struct Way {
    what: &'static str,
    role: Role,
    param: u16,
    code: i64,
    /// We kill it (after it started sleeping, running or calling).
    killed: bool,
}

const WAYS: [Way; 7] = [
    Way { what: "return from main", role: Role::Exit, param: 7, code: 7, killed: false },
    Way { what: "end their last thread", role: Role::ExitThreads, param: 0, code: 0, killed: false },
    Way { what: "kill themselves", role: Role::KillSelf, param: 9, code: 9, killed: false },
    Way { what: "are killed while sleeping", role: Role::Hold, param: 0, code: 5, killed: true },
    Way { what: "are killed while running", role: Role::Yielder, param: 0, code: 5, killed: true },
    Way { what: "are killed while calling", role: Role::Caller, param: 0, code: 5, killed: true },
    Way { what: "fault", role: Role::FaultNull, param: 0, code: -15, killed: false },
];

/// Starts a task that ends in `way`, makes it end, checks its code.
fn one(way: &Way) {
    let what = way.what;
    let Some(ep) = check_ok!(sys::endpoint_create(), "{what}: endpoint") else { return };
    let Some(child) = check_ok!(Child::start(way.role, way.param, Some((ep, Rights::SEND)), None), "{what}: start")
    else {
        return;
    };
    let mut held = None;
    if way.killed {
        if way.role == Role::Caller {
            held = check_ok!(sys::recv(ep), "{what}: its call arrives").map(|r| r.reply);
        } else {
            let _ = sys::sleep(2_000);
        }
        check_ok!(sys::task_kill(child.task, 5), "{what}: kill");
    }
    check_eq!(child.wait(), Ok(way.code), "{what}: exit code");
    drop(child);
    if let Some(reply) = held {
        // The unanswered call's reply capability is ours to drop.
        check_ok!(sys::cap_delete(reply), "{what}: delete the reply capability");
    }
    let _ = sys::cap_delete(ep);
}

pub fn run() {
    if !check!(sys::machine_stats(MACHINE).is_ok(), "the machine capability (to read the kernel's frame count)") {
        return;
    }
    let (_, cpus) = sys::cpu_info();
    let slack = SLACK_PER_CPU * cpus as i64;
    for way in &WAYS {
        for _ in 0..WARMUP {
            one(way);
        }
        let before = kernel_frames();
        for _ in 0..ROUNDS {
            one(way);
        }
        let grown = kernel_frames() - before;
        let what = way.what;
        check!(
            grown <= slack,
            "{ROUNDS} tasks that {what}: {grown} kernel frames more in use (about {} per task; {slack} allowed in all)",
            grown / ROUNDS as i64
        );
        println!("{ROUNDS} tasks that {what}: kernel frames in use {grown:+}");
    }
    // Information only: what is still in use a while later.
    let before = kernel_frames();
    let _ = sys::sleep(1_200_000);
    println!("1.2 s later: kernel frames in use {:+}", kernel_frames() - before);
}
