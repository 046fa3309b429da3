//! Small syscalls: debug output, yielding, sleeping, exiting, time, CPU
//! information, machine statistics and power-off.

use super::user::UserSlice;
use super::{lookup, Args, Ret, SysResult};
use crate::object::thread::Thread;
use crate::sched;
use abi::cap::{Kind, Rights};
use abi::Error;
use alloc::sync::Arc;

/// Longest text one `DebugPrint` writes.
const PRINT_MAX: usize = 1024;

pub fn debug_print(me: &Arc<Thread>, a: &Args) -> SysResult {
    let text = UserSlice::new(a[0], a[1], PRINT_MAX)?;
    let mut buf = [0u8; PRINT_MAX];
    text.read(&mut buf[..text.len()])?;
    let s = core::str::from_utf8(&buf[..text.len()]).unwrap_or("<text is not UTF-8>");
    for line in s.trim_end_matches('\n').split('\n') {
        log::info!("{}: {}", me.task.name, line);
    }
    Ok(Ret::OK)
}

pub fn yield_now() -> SysResult {
    sched::yield_now();
    Ok(Ret::OK)
}

pub fn sleep(a: &Args) -> SysResult {
    // An hour at most: longer sleeps are surely mistakes.
    if a[0] > 3_600_000_000 {
        return Err(Error::OutOfRange);
    }
    sched::sleep(a[0]);
    Ok(Ret::Delivered)
}

pub fn task_exit(me: Arc<Thread>, a: &Args) -> SysResult {
    me.task.kill(a[0] as i64);
    drop(me);
    sched::exit_current()
}

pub fn thread_exit(me: Arc<Thread>) -> SysResult {
    drop(me);
    sched::exit_current()
}

pub fn time() -> SysResult {
    Ok(Ret::Values([crate::time::micros_since_boot(), crate::time::tsc_per_micro(), 0, 0]))
}

pub fn cpu_info() -> SysResult {
    Ok(Ret::Values([crate::cpu::current_index() as u64, crate::cpu::online().len() as u64, 0, 0]))
}

pub fn machine_stats(me: &Arc<Thread>, a: &Args) -> SysResult {
    lookup(me, a[0], Kind::Machine, Rights::READ)?;
    let stats = crate::mm::frame::stats();
    let server = stats.used[crate::kcore::mem_kind::FrameUse::MemoryServer as usize].max(0) as u64;
    let kernel = stats.used_total().max(0) as u64 - server;
    Ok(Ret::Values([stats.managed, stats.free(), kernel, server]))
}

pub fn power_off(me: &Arc<Thread>, a: &Args) -> SysResult {
    lookup(me, a[0], Kind::Machine, Rights::CONTROL)?;
    let success = match a[1] {
        0 => false,
        1 => true,
        _ => return Err(Error::InvalidArgument),
    };
    log::info!(
        "kernel: {} asked to power off ({})",
        me.task.name,
        if success { "success" } else { "failure" }
    );
    crate::shutdown(success)
}

pub fn cmdline(me: &Arc<Thread>, a: &Args) -> SysResult {
    lookup(me, a[0], Kind::Machine, Rights::READ)?;
    let text = crate::boot::cmdline().as_str();
    let buf = UserSlice::new(a[1], a[2], 4096)?;
    buf.write(text.as_bytes())?;
    Ok(Ret::one(text.len() as u64))
}
