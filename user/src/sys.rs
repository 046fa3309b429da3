//! Safe wrappers for every syscall (see `abi::syscall` and `docs/abi.md`).

use crate::raw;
use abi::cap::{Handle, Kind, Rights};
use abi::ipc::{Message, MsgInfo, Received};
use abi::mem::MapFlags;
use abi::syscall::Sys;
use abi::Error;

/// A syscall result.
pub type Result<T> = core::result::Result<T, Error>;

fn status(rax: u64) -> Result<()> {
    match Error::from_code(rax) {
        Some(r) => r,
        None => Err(Error::InvalidArgument),
    }
}

fn call(n: Sys, a: [u64; 6]) -> Result<[u64; 4]> {
    let o = raw::syscall(n as u64, a);
    status(o[0]).map(|()| [o[1], o[2], o[3], o[4]])
}

/// A raw syscall by number (for tests of bad input): returns
/// `[rax, rdi, rsi, rdx, r10]` as the kernel left them.
pub fn raw_syscall(n: u64, a: [u64; 6]) -> [u64; 5] {
    raw::syscall(n, a)
}

pub use crate::raw::IpcRegs;

/// A raw IPC syscall by number with every message register given (for
/// tests of bad input): returns `rax` and the registers as the kernel left
/// them. Only use it where the call cannot block forever.
pub fn raw_ipc(n: u64, regs: IpcRegs) -> (u64, IpcRegs) {
    raw::ipc(n, regs)
}

/// Does nothing (the benchmark baseline).
pub fn null() -> Result<()> {
    call(Sys::Null, [0; 6]).map(|_| ())
}

/// Writes text to the kernel log.
pub fn debug_print(text: &[u8]) -> Result<()> {
    call(Sys::DebugPrint, [text.as_ptr() as u64, text.len() as u64, 0, 0, 0, 0]).map(|_| ())
}

/// Gives up the CPU.
pub fn yield_now() {
    let _ = call(Sys::Yield, [0; 6]);
}

/// Sleeps at least `micros` microseconds.
pub fn sleep(micros: u64) -> Result<()> {
    call(Sys::Sleep, [micros, 0, 0, 0, 0, 0]).map(|_| ())
}

/// Ends the task.
pub fn task_exit(code: i64) -> ! {
    raw::syscall(Sys::TaskExit as u64, [code as u64, 0, 0, 0, 0, 0]);
    unreachable!("TaskExit returned")
}

/// Ends the calling thread.
pub fn thread_exit() -> ! {
    raw::syscall(Sys::ThreadExit as u64, [0; 6]);
    unreachable!("ThreadExit returned")
}

/// Microseconds since boot, and TSC ticks per microsecond.
pub fn time() -> (u64, u64) {
    call(Sys::Time, [0; 6]).map(|v| (v[0], v[1])).unwrap_or((0, 1))
}

/// The current CPU and the number of online CPUs.
pub fn cpu_info() -> (u64, u64) {
    call(Sys::CpuInfo, [0; 6]).map(|v| (v[0], v[1])).unwrap_or((0, 1))
}

/// Copies a capability with `rights`.
pub fn cap_copy(h: Handle, rights: Rights) -> Result<Handle> {
    call(Sys::CapCopy, [h.raw(), rights.bits(), 0, 0, 0, 0]).map(|v| Handle::from_raw(v[0]).unwrap_or(Handle::NONE))
}

/// Makes a badged copy of an unbadged endpoint capability.
pub fn cap_mint(h: Handle, badge: u64, rights: Rights) -> Result<Handle> {
    call(Sys::CapMint, [h.raw(), badge, rights.bits(), 0, 0, 0]).map(|v| Handle::from_raw(v[0]).unwrap_or(Handle::NONE))
}

/// Deletes a capability.
pub fn cap_delete(h: Handle) -> Result<()> {
    call(Sys::CapDelete, [h.raw(), 0, 0, 0, 0, 0]).map(|_| ())
}

/// Deletes every capability derived from `h`; returns how many.
pub fn cap_revoke(h: Handle) -> Result<u64> {
    call(Sys::CapRevoke, [h.raw(), 0, 0, 0, 0, 0]).map(|v| v[0])
}

/// Kind, rights and badge of a capability.
pub fn cap_info(h: Handle) -> Result<(Kind, Rights, u64)> {
    let v = call(Sys::CapInfo, [h.raw(), 0, 0, 0, 0, 0])?;
    Ok((Kind::from_raw(v[0])?, Rights::from_bits_truncate(v[1]), v[2]))
}

/// The identity of the object a capability names (endpoint, task and
/// thread ids; 0 for other kinds): tells two endpoints apart.
pub fn cap_identity(h: Handle) -> Result<u64> {
    call(Sys::CapInfo, [h.raw(), 0, 0, 0, 0, 0]).map(|v| v[3])
}

/// Copies a capability into another task (at `slot`, or any if 0).
pub fn cap_give(task: Handle, h: Handle, rights: Rights, slot: u16) -> Result<Handle> {
    call(Sys::CapGive, [task.raw(), h.raw(), rights.bits(), slot as u64, 0, 0])
        .map(|v| Handle::from_raw(v[0]).unwrap_or(Handle::NONE))
}

/// Creates an endpoint.
pub fn endpoint_create() -> Result<Handle> {
    call(Sys::EndpointCreate, [0; 6]).map(|v| Handle::from_raw(v[0]).unwrap_or(Handle::NONE))
}

fn regs(first: u64, msg: &Message) -> IpcRegs {
    IpcRegs { rdi: first, rsi: msg.info.raw(), words: msg.words, r14: msg.cap.raw(), r15: 0 }
}

fn received(o: IpcRegs) -> Received {
    let info = MsgInfo::from_raw(o.rsi).unwrap_or_default();
    Received {
        msg: Message {
            info,
            words: o.words,
            cap: if info.has_cap { Handle::from_raw(o.r14).unwrap_or(Handle::NONE) } else { Handle::NONE },
        },
        badge: o.rdi,
        reply: Handle::from_raw(o.r15).unwrap_or(Handle::NONE),
    }
}

/// Sends `msg` on `ep`, waiting for a receiver.
pub fn send(ep: Handle, msg: &Message) -> Result<()> {
    let (rax, _) = raw::ipc(Sys::Send as u64, regs(ep.raw(), msg));
    status(rax)
}

/// Waits for a message on `ep`.
pub fn recv(ep: Handle) -> Result<Received> {
    let (rax, o) = raw::ipc(Sys::Recv as u64, IpcRegs { rdi: ep.raw(), ..IpcRegs::default() });
    status(rax).map(|()| received(o))
}

/// Sends `msg` on `ep` and waits for the reply.
pub fn call_ep(ep: Handle, msg: &Message) -> Result<Message> {
    let (rax, o) = raw::ipc(Sys::Call as u64, regs(ep.raw(), msg));
    status(rax).map(|()| received(o).msg)
}

/// Answers a call.
pub fn reply(reply: Handle, msg: &Message) -> Result<()> {
    let (rax, _) = raw::ipc(Sys::Reply as u64, regs(reply.raw(), msg));
    status(rax)
}

/// Answers a call (if `reply` is not NONE), then waits on `ep`.
pub fn reply_recv(ep: Handle, reply: Handle, msg: &Message) -> Result<Received> {
    let mut r = regs(ep.raw(), msg);
    r.r15 = reply.raw();
    let (rax, o) = raw::ipc(Sys::ReplyRecv as u64, r);
    status(rax).map(|()| received(o))
}

/// Handles of a task started from a boot module.
#[derive(Clone, Copy, Debug)]
pub struct Spawned {
    /// The task.
    pub task: Handle,
    /// Its first thread (not started).
    pub thread: Handle,
    /// Its address space.
    pub space: Handle,
}

/// Creates a task from boot module `index`.
pub fn task_spawn(modules: Handle, index: u64, arg: u64) -> Result<Spawned> {
    let v = call(Sys::TaskSpawn, [modules.raw(), index, arg, 0, 0, 0])?;
    let h = |x| Handle::from_raw(x).unwrap_or(Handle::NONE);
    Ok(Spawned { task: h(v[0]), thread: h(v[1]), space: h(v[2]) })
}

/// Kills a task.
pub fn task_kill(task: Handle, code: i64) -> Result<()> {
    call(Sys::TaskKill, [task.raw(), code as u64, 0, 0, 0, 0]).map(|_| ())
}

/// Waits for a task to end; returns its exit code.
pub fn task_wait(task: Handle) -> Result<i64> {
    call(Sys::TaskWait, [task.raw(), 0, 0, 0, 0, 0]).map(|v| v[0] as i64)
}

/// Creates a thread in `task`.
pub fn thread_create(task: Handle, entry: u64, stack_top: u64, arg: u64) -> Result<Handle> {
    call(Sys::ThreadCreate, [task.raw(), entry, stack_top, arg, 0, 0]).map(|v| Handle::from_raw(v[0]).unwrap_or(Handle::NONE))
}

/// Starts a created thread.
pub fn thread_start(thread: Handle) -> Result<()> {
    call(Sys::ThreadStart, [thread.raw(), 0, 0, 0, 0, 0]).map(|_| ())
}

/// Pins a thread to `cpu` (`None`: any CPU).
pub fn thread_set_affinity(thread: Handle, cpu: Option<u64>) -> Result<()> {
    call(Sys::ThreadSetAffinity, [thread.raw(), cpu.unwrap_or(abi::syscall::ANY_CPU), 0, 0, 0, 0]).map(|_| ())
}

/// Sends a task's faults and exit notice to `ep`.
pub fn task_set_pager(task: Handle, ep: Handle) -> Result<()> {
    call(Sys::TaskSetPager, [task.raw(), ep.raw(), 0, 0, 0, 0]).map(|_| ())
}

/// Name (into `buf`) and size of boot module `index`: `(name length, size)`.
pub fn module_info(modules: Handle, index: u64, buf: &mut [u8]) -> Result<(usize, u64)> {
    call(Sys::ModuleInfo, [modules.raw(), index, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0])
        .map(|v| (v[0] as usize, v[1]))
}

/// Finds a boot module by name; returns its index.
pub fn module_find(modules: Handle, name: &str) -> Result<u64> {
    let mut buf = [0u8; 64];
    for i in 0.. {
        let (len, _) = module_info(modules, i, &mut buf)?;
        if &buf[..len.min(buf.len())] == name.as_bytes() {
            return Ok(i);
        }
    }
    Err(Error::NotFound)
}

/// Maps `pages` pages of physical-memory capability `phys`, from its page
/// `first`, at `va` in `space`.
pub fn mem_map(space: Handle, phys: Handle, first: u64, va: u64, pages: u64, flags: MapFlags) -> Result<()> {
    call(Sys::MemMap, [space.raw(), phys.raw(), first, va, pages, flags.bits()]).map(|_| ())
}

/// Unmaps `pages` pages at `va` in `space`; returns how many were mapped.
pub fn mem_unmap(space: Handle, va: u64, pages: u64) -> Result<u64> {
    call(Sys::MemUnmap, [space.raw(), va, pages, 0, 0, 0]).map(|v| v[0])
}

/// Changes the protection of `pages` pages at `va` in `space`.
pub fn mem_protect(space: Handle, va: u64, pages: u64, flags: MapFlags) -> Result<()> {
    call(Sys::MemProtect, [space.raw(), va, pages, flags.bits(), 0, 0]).map(|_| ())
}

/// Base address and pages of a physical-memory capability.
pub fn phys_info(phys: Handle) -> Result<(u64, u64)> {
    call(Sys::PhysInfo, [phys.raw(), 0, 0, 0, 0, 0]).map(|v| (v[0], v[1]))
}

/// What `va` maps to in `space`: physical address and flags.
pub fn mem_translate(space: Handle, va: u64) -> Result<(u64, MapFlags)> {
    call(Sys::MemTranslate, [space.raw(), va, 0, 0, 0, 0]).map(|v| (v[0], MapFlags::from_bits_truncate(v[1])))
}

/// Machine statistics: `(managed, free, kernel, user)` kernel frames.
pub fn machine_stats(machine: Handle) -> Result<[u64; 4]> {
    call(Sys::MachineStats, [machine.raw(), 0, 0, 0, 0, 0])
}

/// Powers the machine off, reporting success or failure.
pub fn power_off(machine: Handle, success: bool) -> Result<()> {
    call(Sys::MachinePowerOff, [machine.raw(), success as u64, 0, 0, 0, 0]).map(|_| ())
}

/// Copies the kernel command line into `buf`; returns its length.
pub fn kernel_cmdline(machine: Handle, buf: &mut [u8]) -> Result<usize> {
    call(Sys::MachineCmdline, [machine.raw(), buf.as_ptr() as u64, buf.len() as u64, 0, 0, 0]).map(|v| v[0] as usize)
}
