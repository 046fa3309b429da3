//! The code that runs outside the loader's own environment: the AP start-up
//! trampoline (real mode → long mode → parked on `goto_address`) and the last
//! steps of the BSP's handoff.
//!
//! The trampoline is position-independent machine code that the loader
//! copies, with a [`TrampolineData`] block after it, into one
//! bootloader-reclaimable page below 1 MiB (a start-up IPI can only start a
//! CPU there). The page is identity-mapped in the handoff page tables while
//! APs start, and also reachable through the higher-half direct map, where
//! the APs park and where the BSP runs its final steps after removing every
//! lower-half mapping.
//!
//! AP path: real mode at `page:0` → load the GDT → 32-bit protected mode →
//! PAE, CR3, EFER.LME/NXE, PAT → paging on (long mode) → jump to the HHDM
//! alias → reload the GDT from its HHDM address and all segments → switch to
//! its own stack → enable x2APIC if asked → report "started" → spin with
//! `pause` until `goto_address` is set → flush the TLB, push a 0 return
//! address, clear the registers and jump there with RDI = its `limine_mp_info`.
//!
//! BSP path: [`enter`] (in the loader image, identity-mapped for this one
//! instant) loads CR3 and jumps to the HHDM alias of the handoff code, which
//! clears the lower half of the PML4, flushes the TLB, reloads the GDT and
//! segments, switches to the kernel stack, pushes a 0 return address, clears
//! the registers and jumps to the kernel entry point.

use crate::arch::{self, Features};
use crate::mem::{self, Pages};
use core::arch::global_asm;
use core::mem::offset_of;
use loader_core::protocol::MP_INFO_GOTO_OFFSET;
use x86_64::registers::control::{Cr4, Cr4Flags};

/// Where [`TrampolineData`] sits in the trampoline page; the code must fit
/// before it.
pub const DATA_OFFSET: usize = 0xc00;

/// GDT selectors, in the order the protocol lists the descriptors.
pub const SEL_CODE32: u16 = 0x18;
/// 32-bit data selector.
pub const SEL_DATA32: u16 = 0x20;
/// 64-bit code selector (CS at the kernel entry).
pub const SEL_CODE64: u16 = 0x28;
/// 64-bit data selector (DS, ES, FS, GS, SS at the kernel entry).
pub const SEL_DATA64: u16 = 0x30;

/// The GDT the protocol requires: null, 16-bit code and data, 32-bit code
/// and data, 64-bit code and data; accessed bits preset so the CPU never
/// writes to it.
pub const GDT: [u64; 7] = [
    0,
    0x0000_9b00_0000_ffff, // 16-bit code, base 0, limit 0xffff, readable
    0x0000_9300_0000_ffff, // 16-bit data, base 0, limit 0xffff, writable
    0x00cf_9b00_0000_ffff, // 32-bit code, base 0, limit 4 GiB, readable
    0x00cf_9300_0000_ffff, // 32-bit data, base 0, limit 4 GiB, writable
    0x00af_9b00_0000_ffff, // 64-bit code (L=1), readable
    0x00cf_9300_0000_ffff, // 64-bit data, writable
];

/// A GDTR image (`lgdt` operand).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Gdtr {
    /// Size of the GDT minus one.
    pub limit: u16,
    /// Linear address of the GDT.
    pub base: u64,
}

/// A far pointer (`ljmp *` operand, m16:32).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default)]
pub struct FarPtr {
    /// Offset.
    pub offset: u32,
    /// Selector.
    pub selector: u16,
}

/// The data the trampoline code reads, at [`DATA_OFFSET`] in its page.
#[repr(C)]
#[derive(Debug, Default)]
pub struct TrampolineData {
    /// The GDT itself.
    pub gdt: [u64; 7],
    /// GDTR with the GDT's physical address (used in real mode).
    pub gdtr_phys: Gdtr,
    _pad0: [u8; 6],
    /// GDTR with the GDT's HHDM address (loaded before the kernel runs).
    pub gdtr_hhdm: Gdtr,
    _pad1: [u8; 6],
    /// Scratch far pointer for the jump to 32-bit code (written by the AP).
    pub far32: FarPtr,
    _pad2: [u8; 2],
    /// Scratch far pointer for the jump to 64-bit code (written by the AP).
    pub far64: FarPtr,
    _pad3: [u8; 2],
    /// Physical address of the handoff PML4 (below 4 GiB).
    pub cr3: u64,
    /// CR4 for the APs (PAE and the SSE bits the BSP has).
    pub cr4: u64,
    /// Bits to set in the APs' EFER (LME, and NXE when available).
    pub efer: u64,
    /// Non-zero when the CPU has a PAT.
    pub pat_present: u64,
    /// The PAT value.
    pub pat: u64,
    /// HHDM address of the trampoline page.
    pub hhdm_page: u64,
    /// HHDM address of the PML4, to clear its lower half.
    pub pml4_hhdm: u64,
    /// Non-zero: put each AP's local APIC in x2APIC mode.
    pub x2apic: u64,
    /// Stack top (HHDM) of the AP being started.
    pub ap_stack_top: u64,
    /// `limine_mp_info` (HHDM) of the AP being started.
    pub ap_info: u64,
    /// Set to 1 by the AP once it has taken its stack and info pointer.
    pub ap_started: u64,
    /// The BSP's stack top (HHDM).
    pub bsp_stack_top: u64,
    /// The kernel entry point.
    pub entry: u64,
}

const D_GDTR_PHYS: usize = DATA_OFFSET + offset_of!(TrampolineData, gdtr_phys);
const D_GDTR_HHDM: usize = DATA_OFFSET + offset_of!(TrampolineData, gdtr_hhdm);
const D_FAR32: usize = DATA_OFFSET + offset_of!(TrampolineData, far32);
const D_FAR64: usize = DATA_OFFSET + offset_of!(TrampolineData, far64);
const D_CR3: usize = DATA_OFFSET + offset_of!(TrampolineData, cr3);
const D_CR4: usize = DATA_OFFSET + offset_of!(TrampolineData, cr4);
const D_EFER: usize = DATA_OFFSET + offset_of!(TrampolineData, efer);
const D_PAT_PRESENT: usize = DATA_OFFSET + offset_of!(TrampolineData, pat_present);
const D_PAT: usize = DATA_OFFSET + offset_of!(TrampolineData, pat);
const D_HHDM_PAGE: usize = DATA_OFFSET + offset_of!(TrampolineData, hhdm_page);
const D_PML4_HHDM: usize = DATA_OFFSET + offset_of!(TrampolineData, pml4_hhdm);
const D_X2APIC: usize = DATA_OFFSET + offset_of!(TrampolineData, x2apic);
const D_AP_STACK: usize = DATA_OFFSET + offset_of!(TrampolineData, ap_stack_top);
const D_AP_INFO: usize = DATA_OFFSET + offset_of!(TrampolineData, ap_info);
const D_AP_STARTED: usize = DATA_OFFSET + offset_of!(TrampolineData, ap_started);
const D_BSP_STACK: usize = DATA_OFFSET + offset_of!(TrampolineData, bsp_stack_top);
const D_ENTRY: usize = DATA_OFFSET + offset_of!(TrampolineData, entry);

/// CR0 for the APs: PG, WP, NE, ET, MP, PE — caches on (CD and NW clear).
const AP_CR0: u32 = 0x8001_0033;

/// Loads the 64-bit data selector into every data segment register (the
/// AP and BSP paths both end in long mode on the handoff GDT this way).
macro_rules! load_data_segments {
    () => {
        "movw ${data64}, %ax; movw %ax, %ds; movw %ax, %es; movw %ax, %ss; movw %ax, %fs; movw %ax, %gs"
    };
}

/// Clears every general register except `rdi` (an AP's argument) and
/// `rsp`: the kernel is entered with no loader state in registers.
macro_rules! clear_gprs_but_rdi {
    () => {
        "xorl %eax, %eax; xorl %ebx, %ebx; xorl %ecx, %ecx; xorl %edx, %edx; xorl %esi, %esi; xorl %ebp, %ebp
         xorl %r8d, %r8d; xorl %r9d, %r9d; xorl %r10d, %r10d; xorl %r11d, %r11d
         xorl %r12d, %r12d; xorl %r13d, %r13d; xorl %r14d, %r14d; xorl %r15d, %r15d"
    };
}

global_asm!(
    ".pushsection .text",
    ".balign 16",
    ".global ferrite_trampoline_start",
    ".global ferrite_trampoline_end",
    ".global ferrite_handoff_high",
    // ---- AP, real mode: CS = page >> 4, IP = 0 ----
    ".code16",
    "ferrite_trampoline_start:",
    "cli",
    "cld",
    "xorl %ebx, %ebx",
    "movw %cs, %bx",
    "movw %bx, %ds",
    "shll $4, %ebx", // ebx = physical address of the page
    "lgdtl {gdtr_phys}",
    "leal (ferrite_ap_prot32 - ferrite_trampoline_start)(%ebx), %eax",
    "movl %eax, {far32}",
    "movw ${code32}, {far32}+4",
    "movl %cr0, %eax",
    "orl $1, %eax",
    "movl %eax, %cr0",
    "ljmpl *{far32}",
    // ---- AP, 32-bit protected mode, flat segments ----
    ".code32",
    "ferrite_ap_prot32:",
    "movw ${data32}, %ax",
    "movw %ax, %ds",
    "movw %ax, %es",
    "movw %ax, %ss",
    "movw %ax, %fs",
    "movw %ax, %gs",
    "movl {cr4}(%ebx), %eax",
    "movl %eax, %cr4",
    "movl {cr3}(%ebx), %eax",
    "movl %eax, %cr3",
    "movl $0xc0000080, %ecx",
    "rdmsr",
    "orl {efer}(%ebx), %eax",
    "wrmsr",
    "cmpl $0, {pat_present}(%ebx)",
    "je .Lferrite_ap_no_pat",
    "movl $0x277, %ecx",
    "movl {pat}(%ebx), %eax",
    "movl {pat}+4(%ebx), %edx",
    "wrmsr",
    ".Lferrite_ap_no_pat:",
    "movl ${cr0}, %eax",
    "movl %eax, %cr0", // paging on: long mode (compatibility sub-mode)
    "leal (ferrite_ap_long64 - ferrite_trampoline_start)(%ebx), %eax",
    "movl %eax, {far64}(%ebx)",
    "movw ${code64}, {far64}+4(%ebx)",
    "ljmpl *{far64}(%ebx)",
    // ---- AP, 64-bit, identity-mapped: move to the HHDM alias ----
    ".code64",
    "ferrite_ap_long64:",
    "movl %ebx, %ebx",
    "movq {hhdm_page}(%rbx), %rax",
    "addq $(ferrite_ap_high - ferrite_trampoline_start), %rax",
    "jmpq *%rax",
    "ferrite_ap_high:",
    "movq {hhdm_page}(%rbx), %rbx", // from here on rbx = HHDM address of the page
    "lgdtq {gdtr_hhdm}(%rbx)",
    "movq {ap_stack}(%rbx), %rsp",
    "movq {ap_info}(%rbx), %rdi",
    load_data_segments!(),
    "leaq .Lferrite_ap_cs(%rip), %rax",
    "pushq ${code64}",
    "pushq %rax",
    "lretq",
    ".Lferrite_ap_cs:",
    "cmpq $0, {x2apic}(%rbx)",
    "je .Lferrite_ap_started",
    "movl $0x1b, %ecx",
    "rdmsr",
    "orl $0xc00, %eax",
    "wrmsr",
    ".Lferrite_ap_started:",
    "movq $1, {ap_started}(%rbx)", // the BSP may now reuse the AP fields
    ".Lferrite_ap_park:",
    "movq {goto}(%rdi), %rax",
    "testq %rax, %rax",
    "jnz .Lferrite_ap_go",
    "pause",
    "jmp .Lferrite_ap_park",
    ".Lferrite_ap_go:",
    "movq %cr3, %rcx",
    "movq %rcx, %cr3", // drop any TLB entry of the removed identity map
    "pushq $0",
    "pushq %rax",
    clear_gprs_but_rdi!(),
    "cld",
    "retq",
    // ---- BSP, on the handoff page tables, at the HHDM alias; rbx = HHDM page ----
    "ferrite_handoff_high:",
    "cld",
    "movq {pml4_hhdm}(%rbx), %rdi",
    "xorl %eax, %eax",
    "movl $256, %ecx",
    "rep stosq", // no lower-half mapping is left
    "movq %cr4, %rax",
    "movq %rax, %rcx",
    "andq $-129, %rcx", // toggle CR4.PGE: flushes global entries too
    "movq %rcx, %cr4",
    "movq %rax, %cr4",
    "movq %cr3, %rax",
    "movq %rax, %cr3",
    "lgdtq {gdtr_hhdm}(%rbx)",
    "movq {bsp_stack}(%rbx), %rsp",
    load_data_segments!(),
    "leaq .Lferrite_handoff_cs(%rip), %rax",
    "pushq ${code64}",
    "pushq %rax",
    "lretq",
    ".Lferrite_handoff_cs:",
    "pushq $0",
    "pushq {entry}(%rbx)",
    "xorl %edi, %edi",
    clear_gprs_but_rdi!(),
    "retq",
    "ferrite_trampoline_end:",
    // ---- BSP, in the loader image: switch page tables ----
    ".balign 16",
    ".global ferrite_enter",
    ".global ferrite_enter_end",
    "ferrite_enter:",
    "cli",
    "movq %rdx, %rbx",
    "movq %rdi, %cr3", // this page is identity-mapped in the new tables
    "jmpq *%rsi",
    "ferrite_enter_end:",
    ".popsection",
    gdtr_phys = const D_GDTR_PHYS,
    gdtr_hhdm = const D_GDTR_HHDM,
    far32 = const D_FAR32,
    far64 = const D_FAR64,
    cr3 = const D_CR3,
    cr4 = const D_CR4,
    efer = const D_EFER,
    pat_present = const D_PAT_PRESENT,
    pat = const D_PAT,
    hhdm_page = const D_HHDM_PAGE,
    pml4_hhdm = const D_PML4_HHDM,
    x2apic = const D_X2APIC,
    ap_stack = const D_AP_STACK,
    ap_info = const D_AP_INFO,
    ap_started = const D_AP_STARTED,
    bsp_stack = const D_BSP_STACK,
    entry = const D_ENTRY,
    goto = const MP_INFO_GOTO_OFFSET,
    cr0 = const AP_CR0,
    code32 = const SEL_CODE32,
    data32 = const SEL_DATA32,
    code64 = const SEL_CODE64,
    data64 = const SEL_DATA64,
    options(att_syntax)
);

unsafe extern "C" {
    static ferrite_trampoline_start: u8;
    static ferrite_trampoline_end: u8;
    static ferrite_handoff_high: u8;
    static ferrite_enter: u8;
    static ferrite_enter_end: u8;
}

fn addr(symbol: *const u8) -> u64 {
    symbol as u64
}

/// The trampoline code, as bytes to copy.
pub fn code() -> &'static [u8] {
    let start = addr(&raw const ferrite_trampoline_start);
    let end = addr(&raw const ferrite_trampoline_end);
    // SAFETY: both symbols delimit the assembled trampoline inside the
    // loader's text section, which is mapped and never modified.
    unsafe { core::slice::from_raw_parts(start as *const u8, (end - start) as usize) }
}

/// Offset of the BSP's handoff code inside the trampoline page.
pub fn handoff_offset() -> u64 {
    addr(&raw const ferrite_handoff_high) - addr(&raw const ferrite_trampoline_start)
}

/// The loader-image address range of [`enter`], which the handoff page
/// tables must identity-map.
pub fn enter_range() -> (u64, u64) {
    (addr(&raw const ferrite_enter), addr(&raw const ferrite_enter_end))
}

unsafe extern "sysv64" {
    #[link_name = "ferrite_enter"]
    fn ferrite_enter_fn(cr3: u64, target: u64, page_hhdm: u64) -> !;
}

/// Switches to the handoff page tables and continues at `target` (the HHDM
/// address of the handoff code) with RBX = `page_hhdm`. Never returns.
///
/// # Safety
///
/// `cr3` must be a complete set of handoff page tables that identity-maps
/// [`enter_range`] and maps the trampoline page (holding a filled-in
/// [`TrampolineData`]) at `page_hhdm`, with `target` inside it; boot services
/// must be gone and every AP either parked or stopped.
pub unsafe fn enter(cr3: u64, target: u64, page_hhdm: u64) -> ! {
    // SAFETY: guaranteed by the caller.
    unsafe { ferrite_enter_fn(cr3, target, page_hhdm) }
}

/// Installs the trampoline in `page` and fills its data block: the GDT, the
/// handoff tables `cr3`, what the APs must set up like the BSP, the BSP's
/// stack top and the kernel entry point. Returns the data block (identity
/// address), or `None` if the code does not fit.
pub fn prepare(
    page: Pages,
    cr3: u64,
    features: &Features,
    x2apic: bool,
    bsp_stack_top: u64,
    entry: u64,
) -> Option<*mut TrampolineData> {
    let page_phys = page.phys;
    let data = install(page.into_slice())?;
    let gdt_phys = page_phys + DATA_OFFSET as u64;
    let limit = (size_of_val(&GDT) - 1) as u16;
    data.gdt = GDT;
    data.gdtr_phys = Gdtr { limit, base: gdt_phys };
    data.gdtr_hhdm = Gdtr { limit, base: mem::hhdm(gdt_phys) };
    data.cr3 = cr3;
    let sse = Cr4::read_raw() & (Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE).bits();
    data.cr4 = Cr4Flags::PHYSICAL_ADDRESS_EXTENSION.bits() | sse;
    data.efer = arch::EFER_LME | if features.nx { arch::EFER_NXE } else { 0 };
    data.pat_present = u64::from(features.pat);
    data.pat = arch::PAT_VALUE;
    data.hhdm_page = mem::hhdm(page_phys);
    data.pml4_hhdm = mem::hhdm(cr3);
    data.x2apic = u64::from(x2apic);
    data.bsp_stack_top = bsp_stack_top;
    data.entry = entry;
    Some(core::ptr::from_mut(data))
}

/// Copies the trampoline code into `page` (one page) and returns its data
/// block, zeroed.
fn install(page: &'static mut [u8]) -> Option<&'static mut TrampolineData> {
    let code = code();
    if page.len() < 4096 || code.len() > DATA_OFFSET {
        return None;
    }
    page[..code.len()].copy_from_slice(code);
    let data = page[DATA_OFFSET..].as_mut_ptr().cast::<TrampolineData>();
    // SAFETY: `data` lies inside the page (DATA_OFFSET + the struct's size is
    // below 4096, checked at compile time below), is 8-byte aligned (the page
    // is page aligned and DATA_OFFSET is a multiple of 8), and the page is
    // owned by the caller for good; writing a default value initialises it.
    unsafe {
        data.write(TrampolineData::default());
        Some(&mut *data)
    }
}

const _: () = assert!(DATA_OFFSET + size_of::<TrampolineData>() <= 4096 && DATA_OFFSET.is_multiple_of(8));
