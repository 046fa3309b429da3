//! `bad-input`: every syscall with invalid numbers, handles and arguments
//! gets exactly the documented error, changes nothing (the argument
//! registers come back as they went in), and the kernel carries on. This
//! file has the harness, syscall numbers and handles; `bad_args` has
//! pointers, ranges, flags and messages.

use crate::bad_args;
use crate::child::{Child, Role};
use crate::msg::label;
use user::abi::cap::{Handle, Kind, Rights};
use user::abi::handles::{MACHINE, MODULES, SELF_SPACE, SELF_TASK, SELF_THREAD};
use user::abi::ipc::{Message, MsgInfo};
use user::abi::syscall::{ANY_CPU, Sys};
use user::sys::{self, IpcRegs};
use user::thread;
use user::{Error, check, check_eq, check_ok, println};

/// Counts the bad calls made.
pub struct Bad {
    made: u64,
}

impl Bad {
    /// A non-IPC syscall that must fail with `want` and leave the argument
    /// registers alone.
    #[track_caller]
    pub fn call(&mut self, what: &str, n: u64, a: [u64; 6], want: Error) {
        self.made += 1;
        let o = sys::raw_syscall(n, a);
        check_eq!(Error::from_code(o[0]), Some(Err(want)), "{what}");
        check_eq!([o[1], o[2], o[3], o[4]], [a[0], a[1], a[2], a[3]], "{what}: registers after the error");
    }

    /// Like [`Bad::call`] with a syscall number.
    #[track_caller]
    pub fn sys(&mut self, what: &str, s: Sys, a: [u64; 6], want: Error) {
        self.call(what, s as u64, a, want);
    }

    /// An IPC syscall (every message register given) that must fail with
    /// `want` and leave the registers alone.
    #[track_caller]
    pub fn ipc(&mut self, what: &str, s: Sys, r: IpcRegs, want: Error) {
        self.made += 1;
        let (rax, o) = sys::raw_ipc(s as u64, r);
        check_eq!(Error::from_code(rax), Some(Err(want)), "{what}");
        check_eq!(
            (o.rdi, o.rsi, o.words, o.r14, o.r15),
            (r.rdi, r.rsi, r.words, r.r14, r.r15),
            "{what}: registers after the error"
        );
    }
}

/// Registers of a message with `info` to `first`.
pub fn regs(first: u64, info: u64) -> IpcRegs {
    IpcRegs { rdi: first, rsi: info, words: [11, 22, 33, 44, 55, 66], r14: 0, r15: 1 << 32 }
}

/// Handles of every kind this task holds, for wrong-kind checks.
pub struct Kinds {
    /// (kind, handle) pairs.
    pub all: alloc::vec::Vec<(Kind, u64)>,
    /// An endpoint (all rights).
    pub ep: Handle,
    /// A reply capability for a call a thread of ours waits in.
    pub reply: Handle,
    /// A deleted handle.
    pub stale: u64,
    /// An address space we may map into (a never-started child's: our own
    /// is READ|GRANT only). Its program is this one, at the same addresses.
    pub space: Handle,
}

pub fn run() {
    let mut bad = Bad { made: 0 };
    let (Some(ep), Some(q)) =
        (check_ok!(sys::endpoint_create(), "an endpoint"), check_ok!(sys::endpoint_create(), "a second endpoint"))
    else {
        return;
    };
    // A thread waits in a call on q for the whole test, so we hold a reply
    // capability; it is answered at the end.
    let Some(caller) = check_ok!(
        thread::spawn(move || {
            check_eq!(sys::call_ep(q, &label(1)).map(|m| m.words[0]), Ok(99), "the held call is answered at the end");
        }),
        "start a caller"
    ) else {
        return;
    };
    let Some(held) = check_ok!(sys::recv(q), "receive the held call") else { return };
    let stale = sys::cap_copy(ep, Rights::SEND).unwrap_or_default();
    let _ = sys::cap_delete(stale);
    let mut all = alloc::vec![
        (Kind::Endpoint, ep.raw()),
        (Kind::Reply, held.reply.raw()),
        (Kind::Thread, SELF_THREAD.raw()),
        (Kind::Task, SELF_TASK.raw()),
        (Kind::AddressSpace, SELF_SPACE.raw()),
        (Kind::Modules, MODULES.raw()),
    ];
    if sys::cap_info(MACHINE).is_ok() {
        all.push((Kind::Machine, MACHINE.raw()));
    } else {
        println!("no machine capability given: machine calls get only invalid handles");
    }
    let Some(child) = check_ok!(Child::create(Role::Hold, 0), "a child task (never started)") else { return };
    let kinds = Kinds { all, ep, reply: held.reply, stale: stale.raw(), space: child.space };

    numbers(&mut bad);
    handles(&mut bad, &kinds);
    bad_args::run(&mut bad, &kinds);

    // The kernel is fine: the held call is still there to answer.
    check_eq!(sys::cap_info(held.reply).map(|i| i.0), Ok(Kind::Reply), "the reply capability survived every bad call");
    check_ok!(sys::reply(held.reply, &Message::new(1, &[99])), "answer the held call");
    caller.join();
    check_ok!(sys::null(), "a good syscall after all the bad ones");
    let _ = (sys::cap_delete(ep), sys::cap_delete(q), sys::task_kill(child.task, 0));
    println!("{} bad calls made, each refused with its documented error", bad.made);
}

/// Syscall numbers that do not exist.
fn numbers(bad: &mut Bad) {
    for n in [8, 9, 16, 19, 26, 29, 38, 39, 45, 49, 53, 99, 255, 1000, 1 << 32, 1 << 63, u64::MAX] {
        check!(Sys::from_raw(n).is_err(), "{n} is not a syscall number in the ABI");
        bad.call("unknown syscall number", n, [1, 2, 3, 4, 5, 6], Error::InvalidSyscall);
    }
}

/// Handles that name nothing: beyond 32 bits, slot 0, slot 65535, a
/// stale generation, a deleted capability.
fn invalid_handles(k: &Kinds) -> [(u64, Error, &'static str); 7] {
    [
        (1 << 32, Error::InvalidHandle, "a handle above 32 bits"),
        (1 << 32 | SELF_TASK.raw(), Error::InvalidHandle, "a valid handle with bit 32 set"),
        (u64::MAX, Error::InvalidHandle, "handle u64::MAX"),
        (0, Error::InvalidHandle, "handle 0"),
        (Handle::new(u16::MAX, 0).raw(), Error::InvalidHandle, "slot 65535"),
        (Handle::new(SELF_TASK.index(), 9).raw(), Error::InvalidHandle, "a generation the slot never had"),
        (k.stale, Error::StaleHandle, "a deleted capability"),
    ]
}

/// One handle argument of a call: where it goes, what kind it must be
/// (`None`: any), and the other arguments (which would make the call
/// harmless even if the handle were accepted).
struct Slot {
    sys: Sys,
    at: usize,
    kind: Option<Kind>,
    args: [u64; 6],
}

fn handles(bad: &mut Bad, k: &Kinds) {
    let ep = k.ep.raw();
    let code = bad_args::code_page();
    let spare = bad_args::UNMAPPED;
    let mut buf = [0u8; 64];
    let b = buf.as_mut_ptr() as u64;
    let s = |sys, at, kind, args| Slot { sys, at, kind, args };
    let slots = [
        s(Sys::CapCopy, 0, None, [0, 0, 0, 0, 0, 0]),
        s(Sys::CapMint, 0, Some(Kind::Endpoint), [0, 1, 0, 0, 0, 0]),
        s(Sys::CapDelete, 0, None, [0; 6]),
        s(Sys::CapRevoke, 0, None, [0; 6]),
        s(Sys::CapInfo, 0, None, [0; 6]),
        s(Sys::CapGive, 0, Some(Kind::Task), [0, ep, Rights::SEND.bits(), 0, 0, 0]),
        s(Sys::CapGive, 1, None, [SELF_TASK.raw(), 0, 0, 0, 0, 0]),
        s(Sys::TaskSpawn, 0, Some(Kind::Modules), [0, 9999, 0, 0, 0, 0]),
        s(Sys::TaskKill, 0, Some(Kind::Task), [0, 1, 0, 0, 0, 0]),
        s(Sys::TaskWait, 0, Some(Kind::Task), [0; 6]),
        s(Sys::ThreadCreate, 0, Some(Kind::Task), [0, code, spare, 0, 0, 0]),
        s(Sys::ThreadStart, 0, Some(Kind::Thread), [0; 6]),
        s(Sys::ThreadSetAffinity, 0, Some(Kind::Thread), [0, ANY_CPU, 0, 0, 0, 0]),
        s(Sys::TaskSetPager, 0, Some(Kind::Task), [0, ep, 0, 0, 0, 0]),
        s(Sys::TaskSetPager, 1, Some(Kind::Endpoint), [SELF_TASK.raw(), 0, 0, 0, 0, 0]),
        s(Sys::ModuleInfo, 0, Some(Kind::Modules), [0, 0, b, 64, 0, 0]),
        s(Sys::MemMap, 0, Some(Kind::AddressSpace), [0, ep, 0, spare, 1, 0]),
        s(Sys::MemMap, 1, Some(Kind::PhysMemory), [k.space.raw(), 0, 0, spare, 1, 0]),
        s(Sys::MemUnmap, 0, Some(Kind::AddressSpace), [0, spare, 1, 0, 0, 0]),
        s(Sys::MemProtect, 0, Some(Kind::AddressSpace), [0, code, 1, 2, 0, 0]),
        s(Sys::PhysInfo, 0, Some(Kind::PhysMemory), [0; 6]),
        s(Sys::MemTranslate, 0, Some(Kind::AddressSpace), [0, code, 0, 0, 0, 0]),
        s(Sys::MachineStats, 0, Some(Kind::Machine), [0; 6]),
        // Success = 0: were a wrong handle accepted, the run would end as
        // a failure, not a false success.
        s(Sys::MachinePowerOff, 0, Some(Kind::Machine), [0; 6]),
        s(Sys::MachineCmdline, 0, Some(Kind::Machine), [0, b, 64, 0, 0, 0]),
    ];
    for slot in &slots {
        let name = slot.sys.name();
        for (h, want, what) in invalid_handles(k) {
            if (slot.sys, slot.at, h) == (Sys::TaskSetPager, 1, 0) {
                continue; // handle 0 as the pager means "no pager" (caps tests that)
            }
            let mut a = slot.args;
            a[slot.at] = h;
            bad.sys(&alloc::format!("{name} argument {}: {what}", slot.at), slot.sys, a, want);
        }
        if let Some(kind) = slot.kind {
            for &(other, h) in k.all.iter().filter(|(o, _)| *o != kind) {
                let mut a = slot.args;
                a[slot.at] = h;
                bad.sys(
                    &alloc::format!("{name} argument {}: a {other:?} capability instead of {kind:?}", slot.at),
                    slot.sys,
                    a,
                    Error::WrongKind,
                );
            }
        }
    }
    ipc_handles(bad, k);
    check_eq!(buf, [0u8; 64], "no failed call wrote into the buffer");
}

/// The handle registers of the IPC calls: the endpoint or reply in `rdi`,
/// the reply of `ReplyRecv` in `r15`, the capability sent in `r14`.
fn ipc_handles(bad: &mut Bad, k: &Kinds) {
    let ok_info = MsgInfo::new(1, 2).raw();
    let with_cap = MsgInfo { label: 1, len: 0, has_cap: true }.raw();
    let ep = k.ep.raw();
    for (h, want, what) in invalid_handles(k) {
        for s in [Sys::Send, Sys::Call, Sys::Recv, Sys::ReplyRecv, Sys::Reply] {
            bad.ipc(&alloc::format!("{} rdi: {what}", s.name()), s, regs(h, ok_info), want);
        }
        let mut r = regs(ep, ok_info);
        r.r15 = h;
        if h != 0 {
            // (r15 = 0 means "nothing to answer": the call would receive.)
            bad.ipc(&alloc::format!("ReplyRecv r15: {what}"), Sys::ReplyRecv, r, want);
        }
        for s in [Sys::Send, Sys::Call] {
            let mut r = regs(ep, with_cap);
            r.r14 = h;
            bad.ipc(&alloc::format!("{} r14 (capability sent): {what}", s.name()), s, r, want);
        }
        let mut r = regs(k.reply.raw(), with_cap);
        r.r14 = h;
        bad.ipc(&alloc::format!("Reply r14 (capability sent): {what}"), Sys::Reply, r, want);
    }
    for &(kind, h) in &k.all {
        if kind != Kind::Endpoint {
            for s in [Sys::Send, Sys::Call, Sys::Recv, Sys::ReplyRecv] {
                bad.ipc(
                    &alloc::format!("{} on a {kind:?} capability", s.name()),
                    s,
                    regs(h, ok_info),
                    Error::WrongKind,
                );
            }
        }
        if kind != Kind::Reply {
            bad.ipc(&alloc::format!("Reply on a {kind:?} capability"), Sys::Reply, regs(h, ok_info), Error::WrongKind);
            let mut r = regs(ep, ok_info);
            r.r15 = h;
            bad.ipc(
                &alloc::format!("ReplyRecv answering through a {kind:?} capability"),
                Sys::ReplyRecv,
                r,
                Error::WrongKind,
            );
        }
    }
}
