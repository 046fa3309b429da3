//! Starting user space. The kernel itself runs two programs from the boot
//! modules: the memory server first, which receives every free RAM range
//! the kernel does not keep for itself (as physical-memory capabilities)
//! and the endpoint its clients reach it through; then `init`, which gets
//! the modules, machine control and a capability to the memory server, and
//! starts everything else.

use crate::kcore::mem_kind::FrameUse;
use crate::mm::frame;
use crate::object::endpoint::{Endpoint, EndpointRef};
use crate::object::phys::PhysRange;
use crate::object::task::Task;
use crate::object::{Capability, Object};
use abi::cap::Rights;
use abi::handles;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Name of the first program.
pub const INIT: &str = "init";
/// Name of the memory server.
pub const MEMORY_SERVER: &str = "mm-server";
/// Physical-memory capabilities the memory server can receive.
const MAX_RANGES: usize = (handles::FIRST_DYNAMIC - handles::PHYS_FIRST) as usize;
/// RAM the kernel keeps for its own objects: a quarter of what is free,
/// within these bounds.
const KEEP_MIN: u64 = 24 << 20;
const KEEP_MAX: u64 = 256 << 20;

/// Starts the memory server (if there is one) and init.
pub fn start() -> Result<(), String> {
    let Some((_, init)) = crate::modules::find(INIT) else {
        log::info!("kernel: no `{INIT}` boot module; nothing to run in user space");
        crate::shutdown(true);
    };
    let memory = match crate::modules::find(MEMORY_SERVER) {
        Some((_, m)) => Some(start_memory_server(m.data)?),
        None => {
            log::warn!("kernel: no `{MEMORY_SERVER}` boot module; user tasks get no memory service");
            None
        }
    };
    let (task, thread) = Task::spawn(INIT, init.data, 0).map_err(|e| format!("cannot start {INIT}: {e:?}"))?;
    {
        let mut caps = task.caps.lock();
        let all = Rights::all();
        let mut put = |h: abi::cap::Handle, cap| caps.insert_at(h.index(), cap).map(|_| ()).map_err(|e| format!("init capabilities: {e:?}"));
        put(handles::MODULES, Capability::new(Object::Modules, all))?;
        put(handles::MACHINE, Capability::new(Object::Machine, all))?;
        if let Some(ep) = &memory {
            put(handles::MEMORY_CONTROL, Capability::new(Object::Endpoint(ep.with_receive(false)), Rights::SEND | Rights::GRANT))?;
        }
    }
    crate::sched::start(&thread).map_err(|e| format!("cannot start {INIT}'s thread: {e:?}"))?;
    log::info!("kernel: started {INIT} (task {})", task.id);
    Ok(())
}

/// Takes the RAM the kernel does not keep, in 2 MiB chunks merged into
/// contiguous ranges, and starts the memory server with them.
fn start_memory_server(image: &'static [u8]) -> Result<EndpointRef, String> {
    let free = frame::stats().free() * 4096;
    let keep = (free / 4).clamp(KEEP_MIN, KEEP_MAX).min(free);
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut given = 0u64;
    while given + (2 << 20) <= free - keep {
        let Ok(chunk) = frame::alloc_large(FrameUse::MemoryServer) else { break };
        let base = chunk.start_address().as_u64();
        given += 2 << 20;
        match ranges.iter_mut().find(|(b, len)| b + len == base) {
            Some((_, len)) => *len += 2 << 20,
            None => ranges.push((base, 2 << 20)),
        }
    }
    ranges.sort_unstable_by_key(|&(b, _)| b);
    // Merge neighbours found out of order, then keep the largest ranges if
    // there are more than the server has slots for.
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (b, len) in ranges {
        match merged.last_mut() {
            Some((mb, ml)) if *mb + *ml == b => *ml += len,
            _ => merged.push((b, len)),
        }
    }
    merged.sort_unstable_by_key(|&(_, len)| core::cmp::Reverse(len));
    for &(b, len) in merged.iter().skip(MAX_RANGES) {
        frame::free_contiguous(b, len / 4096, FrameUse::MemoryServer);
    }
    merged.truncate(MAX_RANGES);
    merged.sort_unstable_by_key(|&(b, _)| b);
    let total: u64 = merged.iter().map(|&(_, l)| l).sum();

    let (task, thread) = Task::spawn(MEMORY_SERVER, image, merged.len() as u64).map_err(|e| format!("cannot start {MEMORY_SERVER}: {e:?}"))?;
    let ep = Endpoint::create();
    {
        let mut caps = task.caps.lock();
        let err = |e| format!("{MEMORY_SERVER} capabilities: {e:?}");
        for (i, &(base, len)) in merged.iter().enumerate() {
            let range = Arc::new(PhysRange { base, pages: len / 4096 });
            caps.insert_at(handles::PHYS_FIRST + i as u16, Capability::new(Object::PhysMemory(range), Rights::all()))
                .map_err(err)?;
        }
        caps.insert_at(handles::MEMORY.index(), Capability::new(Object::Endpoint(ep.clone()), Rights::all())).map_err(err)?;
        // The memory server maps into its own address space (its heap).
        // (In place: the well-known handle keeps its generation. The
        // capability is fresh, with nothing derived from it yet.)
        caps.get_mut(handles::SELF_SPACE).map_err(err)?.rights = Rights::all();
        caps.insert_at(handles::MACHINE.index(), Capability::new(Object::Machine, Rights::READ)).map_err(err)?;
    }
    crate::sched::start(&thread).map_err(|e| format!("cannot start {MEMORY_SERVER}'s thread: {e:?}"))?;
    log::info!(
        "kernel: started {MEMORY_SERVER} (task {}) with {} MiB of RAM in {} ranges; the kernel keeps {} MiB",
        task.id,
        total >> 20,
        merged.len(),
        (free - total) >> 20
    );
    // The kernel's own reference does not count as a receiver.
    Ok(ep.with_receive(false))
}
