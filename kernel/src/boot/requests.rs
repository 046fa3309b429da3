//! The Limine requests, placed between the request markers in `.requests`.
//!
//! These statics are the kernel's whole contract with its boot loader; the
//! loader fills in their response pointers before the kernel runs. The
//! `link_section` attribute is why this module allows unsafe code.

use limine::mp::RequestFlags;
use limine::paging::Mode;
use limine::request::{
    BootloaderInfoRequest, DateAtBootRequest, EntryPointRequest, ExecutableAddressRequest,
    ExecutableCmdlineRequest, ExecutableFileRequest, FirmwareTypeRequest, HhdmRequest,
    MemoryMapRequest, ModuleRequest, MpRequest, PagingModeRequest, RequestsEndMarker,
    RequestsStartMarker, RsdpRequest, StackSizeRequest,
};
use limine::BaseRevision;

/// Stack the loader gives the boot CPU and each application processor; the
/// kernel moves to its own guarded stacks early, so this only covers boot.
pub const BOOT_STACK_SIZE: u64 = 64 * 1024;

#[used]
#[unsafe(link_section = ".requests_start_marker")]
static START_MARKER: RequestsStartMarker = RequestsStartMarker::new();

/// Base revision 3 (Limine 9.x); see `super::BootInfo` for how the kernel
/// adapts when the loader only supports revision 2.
#[used]
#[unsafe(link_section = ".requests")]
pub static BASE_REVISION: BaseRevision = BaseRevision::with_revision(3);

#[used]
#[unsafe(link_section = ".requests")]
pub static BOOTLOADER_INFO: BootloaderInfoRequest = BootloaderInfoRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
pub static FIRMWARE_TYPE: FirmwareTypeRequest = FirmwareTypeRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
pub static STACK_SIZE: StackSizeRequest = StackSizeRequest::new().with_size(BOOT_STACK_SIZE);

#[used]
#[unsafe(link_section = ".requests")]
pub static HHDM: HhdmRequest = HhdmRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
pub static PAGING_MODE: PagingModeRequest = PagingModeRequest::new()
    .with_mode(Mode::FOUR_LEVEL)
    .with_max_mode(Mode::FOUR_LEVEL)
    .with_min_mode(Mode::FOUR_LEVEL);

#[used]
#[unsafe(link_section = ".requests")]
pub static MEMORY_MAP: MemoryMapRequest = MemoryMapRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
pub static ENTRY_POINT: EntryPointRequest = EntryPointRequest::new().with_entry_point(crate::arch::entry::kernel_entry);

#[used]
#[unsafe(link_section = ".requests")]
pub static EXECUTABLE_FILE: ExecutableFileRequest = ExecutableFileRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
pub static EXECUTABLE_ADDRESS: ExecutableAddressRequest = ExecutableAddressRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
pub static EXECUTABLE_CMDLINE: ExecutableCmdlineRequest = ExecutableCmdlineRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
pub static MODULES: ModuleRequest = ModuleRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
pub static RSDP: RsdpRequest = RsdpRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
pub static DATE_AT_BOOT: DateAtBootRequest = DateAtBootRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
pub static MP: MpRequest = MpRequest::new().with_flags(RequestFlags::X2APIC);

#[used]
#[unsafe(link_section = ".requests_end_marker")]
static END_MARKER: RequestsEndMarker = RequestsEndMarker::new();
