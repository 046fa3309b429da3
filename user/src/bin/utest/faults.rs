//! `faults`: tasks that read address 0, execute a data page, write their
//! read-only data or their code, execute an undefined or a privileged
//! instruction each die with the fault's code (`-(vector) - 1`) and a
//! kernel diagnostic, one after the other, while a task pinned to another
//! CPU keeps computing and reporting progress throughout, and finishes
//! with the right result.

use crate::child::{Child, Role, SURVIVED};
use alloc::sync::Arc;
use alloc::vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use user::abi::cap::Rights;
use user::abi::handles::PARENT;
use user::abi::ipc::Message;
use user::hw::fault;
use user::thread;
use user::{check, check_eq, check_ok, println, sys};

/// Labels of the compute task's progress calls and of the answers.
const PROGRESS: u32 = 0x9a;
const CONTINUE: u32 = 0;
const FINISH: u32 = 1;
/// Words the compute task works over.
const WORK_WORDS: usize = 2048;

/// A faulting role: tries its access; reports if it survived.
pub fn fault(role: Role) -> i64 {
    match role {
        Role::FaultNull => {
            let v = fault::read_null();
            println!("read {v:#x} at address 0 without a fault");
        }
        Role::FaultExecData => {
            let mut buf = vec![0u8; 64];
            fault::exec_data(&mut buf);
            println!("executed a heap page without a fault");
        }
        Role::FaultWriteRodata => {
            fault::write_rodata();
            println!("wrote read-only data without a fault (now {:#x})", fault::rodata_word());
        }
        Role::FaultWriteText => {
            fault::write_text();
            println!("wrote its own code without a fault");
        }
        Role::FaultInvalidOpcode => {
            fault::invalid_opcode();
            println!("executed ud2 without a fault");
        }
        Role::FaultPrivileged => {
            fault::privileged();
            println!("executed hlt in ring 3 without a fault");
        }
        _ => return 2,
    }
    SURVIVED
}

/// One chunk of the compute task's work: mixes every word with the
/// accumulator.
fn work(buf: &mut [u64], acc: &mut u64, chunk: u64) {
    for (i, w) in buf.iter_mut().enumerate() {
        let mut x = *w ^ *acc ^ (i as u64) << 32 ^ chunk;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        *w = x;
        *acc = acc.rotate_left(5) ^ x;
    }
}

/// The result after `chunks` chunks.
fn expected(chunks: u64) -> u64 {
    let mut buf = vec![0u64; WORK_WORDS];
    let mut acc = 0x1234_5678;
    for c in 0..chunks {
        work(&mut buf, &mut acc, c);
    }
    acc
}

/// The compute role: works in chunks, calling PARENT with its progress
/// (chunks done, CPU, result so far) after each, until told to finish.
pub fn compute(_param: u16) -> i64 {
    let mut buf = vec![0u64; WORK_WORDS];
    let mut acc = 0x1234_5678;
    for chunk in 0.. {
        work(&mut buf, &mut acc, chunk);
        let report = Message::new(PROGRESS, &[chunk + 1, sys::cpu_info().0, acc]);
        match sys::call_ep(PARENT, &report) {
            Ok(m) if m.info.label == FINISH => return 0,
            Ok(_) => {}
            Err(e) => return e.code() as i64 + 100,
        }
    }
    unreachable!()
}

pub fn run() {
    let (_, cpus) = sys::cpu_info();
    if !check!(cpus >= 2, "faults needs two CPUs, the machine has {cpus}") {
        return;
    }
    let (fault_cpu, compute_cpu) = (0, cpus - 1);
    let Some(ep) = check_ok!(sys::endpoint_create(), "progress endpoint") else { return };
    let chunks = Arc::new(AtomicU64::new(0));
    let faults_done = Arc::new(AtomicBool::new(false));
    let result = Arc::new(AtomicU64::new(0));
    let (c, done, res) = (chunks.clone(), faults_done.clone(), result.clone());
    // Answers the compute task's progress reports; once the faults are
    // over and a few more chunks came in, tells it to finish.
    let progress = thread::spawn(move || {
        let mut after = 0;
        let mut r = check_ok!(sys::recv(ep), "progress: first report").unwrap_or_default();
        loop {
            let [n, cpu, acc, ..] = r.msg.words;
            check_eq!((r.msg.info.label, n), (PROGRESS, c.load(Ordering::Relaxed) + 1), "progress: report in sequence");
            check_eq!(cpu, compute_cpu, "progress: the compute task stays on its cpu (chunk {n})");
            c.store(n, Ordering::Relaxed);
            let finish = done.load(Ordering::Relaxed) && {
                after += 1;
                after > 3
            };
            if finish {
                res.store(acc, Ordering::Relaxed);
                check_ok!(sys::reply(r.reply, &Message::new(FINISH, &[])), "progress: tell it to finish");
                return;
            }
            r = match sys::reply_recv(ep, r.reply, &Message::new(CONTINUE, &[])) {
                Ok(next) => next,
                Err(e) => {
                    check!(false, "progress: reply_recv failed with {e:?}");
                    return;
                }
            };
        }
    });
    let Some(progress) = check_ok!(progress, "start the progress server") else { return };
    let Some(computer) = check_ok!(
        Child::start(Role::Compute, 0, Some((ep, Rights::SEND)), Some(compute_cpu)),
        "start the compute task"
    ) else {
        return;
    };
    while chunks.load(Ordering::Relaxed) < 2 {
        let _ = sys::sleep(1_000);
    }
    let before = chunks.load(Ordering::Relaxed);
    let faulters = [
        (Role::FaultNull, -15, "reads address 0"),
        (Role::FaultExecData, -15, "executes a heap page"),
        (Role::FaultWriteRodata, -15, "writes its read-only data"),
        (Role::FaultWriteText, -15, "writes its code"),
        (Role::FaultInvalidOpcode, -7, "executes ud2"),
        (Role::FaultPrivileged, -14, "executes hlt"),
    ];
    for (role, code, what) in faulters {
        let at = chunks.load(Ordering::Relaxed);
        match Child::start(role, 0, None, Some(fault_cpu)) {
            Ok(child) => {
                check_eq!(child.wait(), Ok(code), "exit code of the task that {what}");
                println!(
                    "the task that {what} died with code {code}; the compute task went from chunk {at} to {}",
                    chunks.load(Ordering::Relaxed)
                );
            }
            Err(e) => {
                check!(false, "start the task that {what}: {e:?}");
            }
        }
    }
    let after = chunks.load(Ordering::Relaxed);
    check!(after > before, "the compute task made progress while the others faulted ({before} -> {after} chunks)");
    faults_done.store(true, Ordering::Relaxed);
    progress.join();
    check_eq!(computer.wait(), Ok(0), "exit code of the compute task");
    let n = chunks.load(Ordering::Relaxed);
    check_eq!(result.load(Ordering::Relaxed), expected(n), "the compute task's result after {n} chunks");
    println!(
        "{} faulting tasks died; the compute task on cpu {compute_cpu} did {n} chunks, {} of them during the faults, with the right result",
        faulters.len(),
        after - before
    );
    let _ = sys::cap_delete(ep);
}
