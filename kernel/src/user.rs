//! Starting user space: the kernel runs one program itself, `init`, from
//! the boot modules, and gives it the capabilities to start the others
//! (the modules, machine control). Everything after that is up to init.

use crate::object::task::Task;
use crate::object::{Capability, Object};
use abi::cap::Rights;
use abi::handles;
use alloc::format;
use alloc::string::String;

/// Name of the first program.
pub const INIT: &str = "init";

/// Starts init. Without an init module there is no user space: the kernel's
/// own boot checks were the whole job.
pub fn start_init() -> Result<(), String> {
    let Some((_, module)) = crate::modules::find(INIT) else {
        log::info!("kernel: no `{INIT}` boot module; nothing to run in user space");
        crate::shutdown(true);
    };
    let (task, thread) = Task::spawn(INIT, module.data, 0).map_err(|e| format!("cannot start {INIT}: {e:?}"))?;
    {
        let mut caps = task.caps.lock();
        let all = Rights::all();
        caps.insert_at(handles::MODULES.index(), Capability::new(Object::Modules, all))
            .map_err(|e| format!("init capabilities: {e:?}"))?;
        caps.insert_at(handles::MACHINE.index(), Capability::new(Object::Machine, all))
            .map_err(|e| format!("init capabilities: {e:?}"))?;
    }
    crate::sched::start(&thread).map_err(|e| format!("cannot start {INIT}'s thread: {e:?}"))?;
    log::info!("kernel: started {INIT} (task {})", task.id);
    Ok(())
}
