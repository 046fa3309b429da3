//! Running one function on every online CPU at once (the boot CPU included)
//! and waiting for all of them.

use crate::cpu;
use crate::smp;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Runs `f(cpu_index)` on every online CPU and waits up to `timeout_s`
/// seconds for all to finish. The boot CPU runs its share last, after
/// posting to the others.
pub fn run(f: fn(u64), timeout_s: u64) -> Result<usize, String> {
    let me = cpu::current_index();
    let mut tickets = Vec::new();
    for c in cpu::online().iter().filter(|&c| c != me) {
        let t = smp::run_on(c, f, c as u64).map_err(|e| format!("cannot post work to cpu{c}: {e:?}"))?;
        tickets.push((c, t));
    }
    f(me as u64);
    for (c, t) in &tickets {
        if !smp::wait_done(*c, *t, timeout_s * 1_000_000) {
            return Err(format!("cpu{c} did not finish within {timeout_s} s (deadlock?)"));
        }
    }
    Ok(tickets.len() + 1)
}
