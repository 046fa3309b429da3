//! `bad-input`, second half: pointers (null, kernel, non-canonical,
//! wrapping, unmapped, read-only, too long), memory ranges and flags
//! (unaligned, empty, huge, unknown bits, W+X), message descriptors with
//! unknown bits, and out-of-range values (CPU numbers, module indexes,
//! sleep times, badges, slots, rights).

use crate::bad_input::{Bad, Kinds, regs};
use user::abi::cap::{Handle, Rights};
use user::abi::handles::{MACHINE, MODULES, SELF_SPACE, SELF_TASK, SELF_THREAD};
use user::abi::ipc::MsgInfo;
use user::abi::mem::{LARGE_PAGE_SIZE, MapFlags, PAGE_SIZE, USER_END, USER_START};
use user::abi::mm::MAX_REQUEST_PAGES;
use user::abi::syscall::Sys;
use user::{Error, check_eq, check_ok, sys};

/// A page-aligned user address nothing is mapped at.
pub const UNMAPPED: u64 = 0x7000_0000_0000;
/// The lowest kernel address.
const KERNEL: u64 = 0xffff_8000_0000_0000;
/// The kernel image.
const KERNEL_IMAGE: u64 = 0xffff_ffff_8000_0000;
/// The first non-canonical address.
const NON_CANONICAL: u64 = 0x0000_8000_0000_0000;

/// The page holding this function (mapped executable, not writable).
pub fn code_page() -> u64 {
    (code_page as fn() -> u64) as usize as u64 & !0xfff
}

static DATA: [u64; 512] = [0; 512];
static mut BSS_PROBE: u64 = 0;

/// The first unmapped page above the program's data: a range ending
/// there runs from mapped into unmapped memory.
fn end_of_data(space: Handle) -> u64 {
    let mut at = (&raw const BSS_PROBE as u64) & !0xfff;
    while sys::mem_translate(space, at).is_ok() {
        at += PAGE_SIZE;
    }
    at
}

pub fn run(bad: &mut Bad, k: &Kinds) {
    pointers(bad);
    memory(bad, k);
    messages(bad, k);
    values(bad, k);
}

/// Pointers every call that reads or writes user memory must refuse,
/// with the length to use.
fn bad_pointers() -> [(u64, u64, &'static str); 8] {
    [
        (0, 16, "null"),
        (8, 16, "near null"),
        (KERNEL, 16, "the start of the kernel half"),
        (KERNEL_IMAGE, 16, "the kernel image"),
        (NON_CANONICAL, 16, "the first non-canonical address"),
        (USER_END - 8, 16, "a range crossing the end of user space"),
        (u64::MAX - 7, 16, "a range wrapping around"),
        (UNMAPPED, 16, "unmapped user memory"),
    ]
}

fn pointers(bad: &mut Bad) {
    let text = b"bad-input: this line must never be printed";
    let good = text.as_ptr() as u64;
    for (p, len, what) in bad_pointers() {
        bad.sys(
            &alloc::format!("DebugPrint from {what} ({p:#x})"),
            Sys::DebugPrint,
            [p, len, 0, 0, 0, 0],
            Error::BadAddress,
        );
        bad.sys(
            &alloc::format!("ModuleInfo into {what} ({p:#x})"),
            Sys::ModuleInfo,
            [MODULES.raw(), 0, p, len, 0, 0],
            Error::BadAddress,
        );
        if sys::cap_info(MACHINE).is_ok() {
            bad.sys(
                &alloc::format!("MachineCmdline into {what} ({p:#x})"),
                Sys::MachineCmdline,
                [MACHINE.raw(), p, len, 0, 0, 0],
                Error::BadAddress,
            );
        }
    }
    // (Writes only touch the bytes written, so only reads can check a
    // range that starts mapped and runs into unmapped memory.)
    let end = end_of_data(SELF_SPACE);
    bad.sys(
        "DebugPrint of a range running from data into unmapped memory",
        Sys::DebugPrint,
        [end - 8, 16, 0, 0, 0, 0],
        Error::BadAddress,
    );
    // Lengths are checked before addresses.
    for (p, len, limit) in [(good, 1025, "1024"), (good, u64::MAX, "1024"), (KERNEL, 1 << 20, "1024")] {
        bad.sys(
            &alloc::format!("DebugPrint of {len} bytes at {p:#x} (limit {limit})"),
            Sys::DebugPrint,
            [p, len, 0, 0, 0, 0],
            Error::OutOfRange,
        );
    }
    let mut buf = [0u8; 16];
    let b = buf.as_mut_ptr() as u64;
    for len in [4097, 1 << 40, u64::MAX] {
        bad.sys(
            &alloc::format!("ModuleInfo into {len} bytes"),
            Sys::ModuleInfo,
            [MODULES.raw(), 0, b, len, 0, 0],
            Error::OutOfRange,
        );
        if sys::cap_info(MACHINE).is_ok() {
            bad.sys(
                &alloc::format!("MachineCmdline into {len} bytes"),
                Sys::MachineCmdline,
                [MACHINE.raw(), b, len, 0, 0, 0],
                Error::OutOfRange,
            );
        }
    }
    // Writing into read-only memory: the program's own data and code.
    let word = user::hw::fault::rodata_word();
    for (p, what) in [
        (user::hw::fault::rodata_word_address(), "read-only data"),
        (code_page(), "code"),
        (DATA.as_ptr() as u64, "a read-only static"),
    ] {
        bad.sys(
            &alloc::format!("ModuleInfo into {what}"),
            Sys::ModuleInfo,
            [MODULES.raw(), 0, p, 8, 0, 0],
            Error::BadAddress,
        );
        if sys::cap_info(MACHINE).is_ok() {
            bad.sys(
                &alloc::format!("MachineCmdline into {what}"),
                Sys::MachineCmdline,
                [MACHINE.raw(), p, 8, 0, 0, 0],
                Error::BadAddress,
            );
        }
    }
    check_eq!(user::hw::fault::rodata_word(), word, "read-only data unchanged by the refused writes");
    check_eq!(DATA.iter().all(|&w| w == 0), true, "the read-only static unchanged by the refused writes");
    // What is allowed: empty ranges anywhere in user space, short buffers.
    check_ok!(sys::debug_print(&[]), "DebugPrint of nothing");
    check_eq!(sys::raw_syscall(Sys::DebugPrint as u64, [0, 0, 0, 0, 0, 0])[0], 0, "DebugPrint of nothing at address 0");
    let mut name = [0u8; 64];
    let full = sys::module_info(MODULES, 0, &mut name).map(|r| r.0);
    let short = sys::module_info(MODULES, 0, &mut buf[..2]).map(|r| r.0);
    check_eq!(short, full, "a short buffer still gets the full name length");
    if let Ok(n) = full {
        check_eq!(&buf[..2], &name[..2.min(n)], "a short buffer gets the start of the name");
        check_eq!(buf[2..], [0u8; 14][..], "and nothing past its end");
    }
}

fn memory(bad: &mut Bad, k: &Kinds) {
    // A task may not change its own mappings (SELF_SPACE is READ|GRANT),
    // so the map/protect/unmap checks use a never-started child's space.
    let space = k.space.raw();
    let ep = k.ep.raw();
    let max = MAX_REQUEST_PAGES;
    // Flags are decoded first, then the range, then the capabilities.
    for (f, want, what) in [
        (1 << 5, Error::InvalidArgument, "unknown flag bit 5"),
        (1 << 63, Error::InvalidArgument, "unknown flag bit 63"),
        (u64::MAX, Error::InvalidArgument, "every flag bit"),
        (0b11, Error::WriteExecute, "WRITE and EXEC"),
        (MapFlags::CONTIGUOUS.bits(), Error::InvalidArgument, "CONTIGUOUS (a memory-server flag)"),
    ] {
        bad.sys(&alloc::format!("MemMap with {what}"), Sys::MemMap, [space, ep, 0, UNMAPPED, 1, f], want);
    }
    for (f, want, what) in [
        (1 << 5, Error::InvalidArgument, "unknown flag bit 5"),
        (0b11, Error::WriteExecute, "WRITE and EXEC"),
        (MapFlags::ZERO.bits(), Error::InvalidArgument, "ZERO"),
        (MapFlags::CONTIGUOUS.bits(), Error::InvalidArgument, "CONTIGUOUS"),
    ] {
        bad.sys(&alloc::format!("MemProtect with {what}"), Sys::MemProtect, [space, code_page(), 1, f, 0, 0], want);
    }
    let large = MapFlags::LARGE.bits();
    let ranges = [
        (UNMAPPED + 1, 1, 0, Error::Misaligned, "an address off by one byte"),
        (UNMAPPED + 0x800, 1, 0, Error::Misaligned, "an address off by half a page"),
        (UNMAPPED + PAGE_SIZE, 1, large, Error::Misaligned, "a large page at a 4 KiB boundary"),
        (UNMAPPED, 0, 0, Error::InvalidArgument, "no pages"),
        (0, 1, 0, Error::BadAddress, "address 0"),
        (USER_START - PAGE_SIZE, 1, 0, Error::BadAddress, "the page below USER_START"),
        (KERNEL, 1, 0, Error::BadAddress, "a kernel address"),
        (KERNEL_IMAGE, 1, 0, Error::BadAddress, "the kernel image"),
        (NON_CANONICAL, 1, 0, Error::BadAddress, "a non-canonical address"),
        (USER_END - PAGE_SIZE, 2, 0, Error::BadAddress, "a range crossing the end of user space"),
        (USER_END - LARGE_PAGE_SIZE, 2, large, Error::BadAddress, "large pages crossing the end of user space"),
        (!0xfff, 2, 0, Error::BadAddress, "a range wrapping around"),
        (UNMAPPED, u64::MAX, 0, Error::BadAddress, "u64::MAX pages"),
        (UNMAPPED, 1 << 52, 0, Error::BadAddress, "2^52 pages (overflows)"),
        (USER_START, max + 1, 0, Error::OutOfRange, "one page more than a request may have"),
    ];
    for (va, pages, flags, want, what) in ranges {
        bad.sys(&alloc::format!("MemMap at {what}"), Sys::MemMap, [space, ep, 0, va, pages, flags], want);
        if flags == 0 {
            bad.sys(&alloc::format!("MemUnmap at {what}"), Sys::MemUnmap, [space, va, pages, 0, 0, 0], want);
        }
        bad.sys(&alloc::format!("MemProtect at {what}"), Sys::MemProtect, [space, va, pages, flags, 0, 0], want);
    }
    // A well-formed map whose "physical memory" is something else.
    bad.sys("MemMap of an endpoint as physical memory", Sys::MemMap, [space, ep, 0, UNMAPPED, 1, 0], Error::WrongKind);
    // Protection of what is not (entirely) mapped, or mapped differently.
    bad.sys("MemProtect of unmapped pages", Sys::MemProtect, [space, UNMAPPED, 1, 0, 0, 0], Error::NotMapped);
    let end = end_of_data(k.space);
    let before = sys::mem_translate(k.space, end - PAGE_SIZE);
    bad.sys(
        "MemProtect of a range running into unmapped pages",
        Sys::MemProtect,
        [space, end - PAGE_SIZE, 2, MapFlags::empty().bits(), 0, 0],
        Error::NotMapped,
    );
    check_eq!(
        sys::mem_translate(k.space, end - PAGE_SIZE),
        before,
        "the mapped page is unchanged by the refused protect"
    );
    bad.sys(
        "MemProtect of 4 KiB pages as a large page",
        Sys::MemProtect,
        [space, 0x40_0000, 1, large | MapFlags::EXEC.bits(), 0, 0],
        Error::InvalidArgument,
    );
    check_eq!(sys::mem_unmap(k.space, UNMAPPED, 16), Ok(0), "unmapping nothing is allowed and unmaps nothing");
    // Translation.
    for (va, want, what) in [
        (USER_END, Error::BadAddress, "the end of user space"),
        (KERNEL_IMAGE, Error::BadAddress, "the kernel image"),
        (u64::MAX, Error::BadAddress, "u64::MAX"),
        (0, Error::NotMapped, "address 0"),
        (UNMAPPED, Error::NotMapped, "an unmapped page"),
    ] {
        bad.sys(&alloc::format!("MemTranslate of {what}"), Sys::MemTranslate, [SELF_SPACE.raw(), va, 0, 0, 0, 0], want);
    }
    let flags = |va| sys::mem_translate(SELF_SPACE, va).map(|t| t.1);
    check_eq!(flags(code_page()), Ok(MapFlags::EXEC), "our code is mapped executable, read-only");
    check_eq!(
        flags(user::hw::fault::rodata_word_address()),
        Ok(MapFlags::empty()),
        "our read-only data is read-only, not executable"
    );
    check_eq!(flags(&raw const BSS_PROBE as u64), Ok(MapFlags::WRITE), "our data is writable, not executable");
}

fn messages(bad: &mut Bad, k: &Kinds) {
    let ep = k.ep.raw();
    for (info, what) in [
        (1 << 63, "bit 63"),
        (1 << 36, "bit 36 (above the length)"),
        (1 << 41, "bit 41 (above the capability flag)"),
        (7 << 32, "length 7"),
        (15 << 32, "length 15"),
        (u64::MAX, "every bit"),
        (0xffff_0000, "the first kernel label"),
        (0xffff_0001, "the kernel's fault label"),
        (0xffff_0002 | 2 << 32, "the kernel's exit-notice label"),
        (0xffff_ffff, "the last kernel label"),
    ] {
        for s in [Sys::Send, Sys::Call] {
            bad.ipc(
                &alloc::format!("{} with message info {what}", s.name()),
                s,
                regs(ep, info),
                Error::InvalidArgument,
            );
        }
        bad.ipc(
            &alloc::format!("Reply with message info {what}"),
            Sys::Reply,
            regs(k.reply.raw(), info),
            Error::InvalidArgument,
        );
        let mut r = regs(ep, info);
        r.r15 = k.reply.raw();
        bad.ipc(&alloc::format!("ReplyRecv with message info {what}"), Sys::ReplyRecv, r, Error::InvalidArgument);
    }
    check_eq!(
        sys::cap_info(k.reply).map(|i| i.0),
        Ok(user::abi::cap::Kind::Reply),
        "refused answers leave the reply capability"
    );
    // Rights: an endpoint capability that may only send, or only receive.
    let send_only = sys::cap_copy(k.ep, Rights::SEND).unwrap_or_default();
    let recv_only = sys::cap_copy(k.ep, Rights::RECEIVE).unwrap_or_default();
    let info = MsgInfo::new(1, 0).raw();
    let with_cap = MsgInfo { label: 1, len: 0, has_cap: true }.raw();
    bad.ipc("Recv without RECEIVE", Sys::Recv, regs(send_only.raw(), info), Error::InsufficientRights);
    bad.ipc("Send without SEND", Sys::Send, regs(recv_only.raw(), info), Error::InsufficientRights);
    let mut r = regs(ep, with_cap);
    r.r14 = send_only.raw();
    bad.ipc("Send a capability without GRANT", Sys::Send, r, Error::InsufficientRights);
    let _ = (sys::cap_delete(send_only), sys::cap_delete(recv_only));
}

fn values(bad: &mut Bad, k: &Kinds) {
    let ep = k.ep.raw();
    let (_, cpus) = sys::cpu_info();
    // Calls without arguments ignore whatever the registers hold.
    let junk = [u64::MAX, 1 << 63, 0xdead_beef, KERNEL, NON_CANONICAL, 7];
    check_eq!(sys::raw_syscall(Sys::Null as u64, junk)[0], 0, "Null with junk in every argument register");
    check_eq!(sys::raw_syscall(Sys::Yield as u64, junk)[0], 0, "Yield with junk arguments");
    let cpu = sys::raw_syscall(Sys::CpuInfo as u64, junk);
    check_eq!((cpu[0], cpu[1] < cpus, cpu[2]), (0, true, cpus), "CpuInfo with junk arguments");
    let time = sys::raw_syscall(Sys::Time as u64, junk);
    check_eq!((time[0], time[2] > 0), (0, true), "Time with junk arguments");
    let created = sys::raw_syscall(Sys::EndpointCreate as u64, junk);
    check_eq!(created[0], 0, "EndpointCreate with junk arguments");
    if let Ok(h) = user::abi::cap::Handle::from_raw(created[1]) {
        check_ok!(sys::cap_delete(h), "delete the endpoint made with junk arguments");
    }
    for micros in [3_600_000_001, u64::MAX] {
        bad.sys(&alloc::format!("Sleep for {micros} us"), Sys::Sleep, [micros, 0, 0, 0, 0, 0], Error::OutOfRange);
    }
    for cpu in [cpus, cpus + 1, 255, 1 << 32, u64::MAX - 1] {
        bad.sys(
            &alloc::format!("ThreadSetAffinity to cpu {cpu}"),
            Sys::ThreadSetAffinity,
            [SELF_THREAD.raw(), cpu, 0, 0, 0, 0],
            Error::OutOfRange,
        );
    }
    for index in [1000, 1 << 32, u64::MAX] {
        bad.sys(
            &alloc::format!("TaskSpawn of module {index}"),
            Sys::TaskSpawn,
            [MODULES.raw(), index, 0, 0, 0, 0],
            Error::NotFound,
        );
        bad.sys(
            &alloc::format!("ModuleInfo of module {index}"),
            Sys::ModuleInfo,
            [MODULES.raw(), index, 0, 0, 0, 0],
            Error::NotFound,
        );
    }
    bad.sys("TaskWait for itself", Sys::TaskWait, [SELF_TASK.raw(), 0, 0, 0, 0, 0], Error::InvalidArgument);
    bad.sys("ThreadStart of a running thread", Sys::ThreadStart, [SELF_THREAD.raw(), 0, 0, 0, 0, 0], Error::Busy);
    let stack = UNMAPPED + 0x1000;
    for (entry, sp, what) in [
        (USER_END, stack, "entry at the end of user space"),
        (KERNEL_IMAGE, stack, "entry in the kernel"),
        (u64::MAX, stack, "entry u64::MAX"),
        (code_page(), USER_END + 16, "stack above user space"),
        (code_page(), KERNEL, "stack in the kernel"),
    ] {
        bad.sys(
            &alloc::format!("ThreadCreate with {what}"),
            Sys::ThreadCreate,
            [SELF_TASK.raw(), entry, sp, 0, 0, 0],
            Error::BadAddress,
        );
    }
    bad.sys(
        "ThreadCreate with a stack not 8-byte aligned",
        Sys::ThreadCreate,
        [SELF_TASK.raw(), code_page(), stack + 4, 0, 0, 0],
        Error::Misaligned,
    );
    for rights in [1 << 8, 1 << 63, u64::MAX] {
        bad.sys(
            &alloc::format!("CapCopy with rights {rights:#x}"),
            Sys::CapCopy,
            [ep, rights, 0, 0, 0, 0],
            Error::InvalidArgument,
        );
        bad.sys(
            &alloc::format!("CapMint with rights {rights:#x}"),
            Sys::CapMint,
            [ep, 1, rights, 0, 0, 0],
            Error::InvalidArgument,
        );
        bad.sys(
            &alloc::format!("CapGive with rights {rights:#x}"),
            Sys::CapGive,
            [SELF_TASK.raw(), ep, rights, 0, 0, 0],
            Error::InvalidArgument,
        );
    }
    bad.sys("CapMint with badge 0", Sys::CapMint, [ep, 0, Rights::SEND.bits(), 0, 0, 0], Error::InvalidArgument);
    for slot in [64, 65, 4096, 65535, 1 << 16, 1 << 32, u64::MAX] {
        bad.sys(
            &alloc::format!("CapGive into slot {slot}"),
            Sys::CapGive,
            [SELF_TASK.raw(), ep, Rights::SEND.bits(), slot, 0, 0],
            Error::InvalidArgument,
        );
    }
    bad.sys(
        "CapGive into an occupied slot",
        Sys::CapGive,
        [SELF_TASK.raw(), ep, Rights::SEND.bits(), SELF_SPACE.index() as u64, 0, 0],
        Error::SlotOccupied,
    );
    if sys::cap_info(MACHINE).is_ok() {
        for success in [2, 0x100, u64::MAX] {
            bad.sys(
                &alloc::format!("MachinePowerOff with success = {success}"),
                Sys::MachinePowerOff,
                [MACHINE.raw(), success, 0, 0, 0, 0],
                Error::InvalidArgument,
            );
        }
    }
}
