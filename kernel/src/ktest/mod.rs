//! In-kernel test scenarios, selected with `test=NAME` on the kernel
//! command line. xtask boots the kernel with each scenario named in
//! `tests/` and checks the serial log and the exit status.
//!
//! A scenario returns `Ok` when it passed; the deliberate-fault scenarios
//! never return (the fault handler reports and ends the run).

pub mod all_cpus;
mod faults;
mod frames;
mod heap;
mod tlb;

use alloc::format;
use alloc::string::String;

/// A scenario: name, what it checks, and its body.
struct Scenario {
    name: &'static str,
    about: &'static str,
    run: fn() -> Result<(), String>,
}

const SCENARIOS: &[Scenario] = &[
    Scenario { name: "boot", about: "boot only (the boot checks are the test)", run: || Ok(()) },
    Scenario { name: "invalid-opcode", about: "ud2 on cpu0: #UD diagnostics", run: faults::invalid_opcode },
    Scenario { name: "page-fault", about: "write to unmapped 0xdead000: #PF diagnostics", run: faults::page_fault },
    Scenario { name: "write-text", about: "write to kernel text: protection fault", run: faults::write_text },
    Scenario { name: "exec-heap", about: "call into the heap: no-execute fault", run: faults::execute_heap },
    Scenario { name: "stack-overflow", about: "recurse into the guard page: stack overflow report", run: faults::stack_overflow },
    Scenario { name: "frames", about: "frame allocator stress from all CPUs, 2 MiB frames, exhaustion", run: frames::stress },
    Scenario { name: "heap", about: "heap stress from all CPUs, sizes and alignments, exhaustion", run: heap::stress },
    Scenario { name: "tlb-stale", about: "stale-TLB detector, unmap, kernel half", run: tlb::stale_unmap },
    Scenario { name: "tlb-stale-protect", about: "stale-TLB detector, write-protect, kernel half", run: tlb::stale_protect },
    Scenario { name: "tlb-stale-user", about: "stale-TLB detector, unmap, user address space", run: tlb::stale_unmap_user },
    Scenario {
        name: "tlb-stale-lazy",
        about: "stale-TLB detector, unmap, user address space, readers lazy while halted",
        run: tlb::stale_unmap_lazy,
    },
    Scenario { name: "tlb-storm", about: "every CPU shoots down every other at once", run: tlb::storm },
];

/// Runs the scenario called `name`.
pub fn run(name: &str) -> Result<(), String> {
    let Some(s) = SCENARIOS.iter().find(|s| s.name == name) else {
        let names: alloc::vec::Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        return Err(format!("test: no scenario `{name}`; known: {}", names.join(", ")));
    };
    log::info!("test: {} ({})", s.name, s.about);
    let result = (s.run)().and_then(|()| {
        crate::mm::phys::check_balance().map_err(|e| alloc::format!("memory books after the test: {e}"))
    });
    match &result {
        Ok(()) => log::info!("test: {} passed", s.name),
        Err(e) => log::error!("test: {} FAILED: {e}", s.name),
    }
    result
}
