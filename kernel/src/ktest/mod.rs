//! In-kernel test scenarios, selected with `test=NAME` on the kernel
//! command line. xtask boots the kernel with each scenario named in
//! `tests/` and checks the serial log and the exit status.
//!
//! A scenario returns `Ok` when it passed; the deliberate-fault scenarios
//! never return (the fault handler reports and ends the run).

mod faults;

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
];

/// Runs the scenario called `name`.
pub fn run(name: &str) -> Result<(), String> {
    let Some(s) = SCENARIOS.iter().find(|s| s.name == name) else {
        let names: alloc::vec::Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        return Err(format!("test: no scenario `{name}`; known: {}", names.join(", ")));
    };
    log::info!("test: {} ({})", s.name, s.about);
    let result = (s.run)();
    match &result {
        Ok(()) => log::info!("test: {} passed", s.name),
        Err(e) => log::error!("test: {} FAILED: {e}", s.name),
    }
    result
}
