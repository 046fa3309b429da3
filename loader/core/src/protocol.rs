//! The Limine boot protocol as the loader speaks it: magic numbers, request
//! identifiers and the C layouts of the responses.
//!
//! The kernel reads these structures through the `limine` crate 0.5, so its
//! layouts are the contract; the tests compare sizes with that crate. All
//! pointers inside responses are stored as `u64` because they hold addresses
//! in the kernel's address space (higher-half direct map), not in the loader's.

/// The first two words of every request identifier.
pub const COMMON_MAGIC: [u64; 2] = [0xc7b1_dd30_df4c_8b88, 0x0a82_e883_a194_f07b];

/// The first two words of the base revision tag; the third is the revision.
pub const BASE_REVISION_MAGIC: [u64; 2] = [0xf956_2b2d_5c95_a6c8, 0x6a7b_3849_4453_6bdc];

/// The four words of the requests start marker.
pub const REQUESTS_START_MARKER: [u64; 4] =
    [0xf6b8_f4b3_9de7_d1ae, 0xfab9_1a69_40fc_b9cf, 0x785c_6ed0_15d3_e316, 0x181e_920a_7852_b9d9];

/// The two words of the requests end marker.
pub const REQUESTS_END_MARKER: [u64; 2] = [0xadc0_e053_1bb1_0d03, 0x9572_709f_3176_4c62];

/// The oldest base revision this loader boots. Revision 0 (no tag) is
/// deprecated and its identity map of the lower half is not provided.
pub const MIN_BASE_REVISION: u64 = 1;
/// The newest base revision this loader implements.
pub const MAX_BASE_REVISION: u64 = 3;

/// Offset of the higher-half direct map. Physical address `p` is visible to
/// the kernel at `HHDM_OFFSET + p`.
pub const HHDM_OFFSET: u64 = 0xffff_8000_0000_0000;

/// The lowest virtual address a kernel segment may use.
pub const KERNEL_MIN_VADDR: u64 = 0xffff_ffff_8000_0000;

/// The stack size given when the kernel does not ask for one (64 KiB).
pub const DEFAULT_STACK_SIZE: u64 = 64 * 1024;

/// `firmware_type` value for 64-bit UEFI.
pub const FIRMWARE_TYPE_UEFI64: u64 = 2;

/// `mode` value of the paging mode feature for 4-level paging on x86-64.
pub const PAGING_MODE_4LVL: u64 = 0;
/// `mode` value of the paging mode feature for 5-level paging on x86-64.
pub const PAGING_MODE_5LVL: u64 = 1;

/// Bit 0 of the MP request flags and of the MP response flags: x2APIC.
pub const MP_X2APIC: u64 = 1;

/// Module request flag of an internal module: fail when it is missing.
pub const INTERNAL_MODULE_REQUIRED: u64 = 1;

/// Memory map entry types.
#[allow(missing_docs)]
pub mod memmap_type {
    pub const USABLE: u64 = 0;
    pub const RESERVED: u64 = 1;
    pub const ACPI_RECLAIMABLE: u64 = 2;
    pub const ACPI_NVS: u64 = 3;
    pub const BAD_MEMORY: u64 = 4;
    pub const BOOTLOADER_RECLAIMABLE: u64 = 5;
    pub const EXECUTABLE_AND_MODULES: u64 = 6;
    pub const FRAMEBUFFER: u64 = 7;
}

/// The features this loader knows, by identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feature {
    /// Bootloader name and version.
    BootloaderInfo,
    /// Firmware type (always UEFI64 here).
    FirmwareType,
    /// Stack size of the BSP and of every AP.
    StackSize,
    /// Offset of the higher-half direct map.
    Hhdm,
    /// Framebuffer (known, not provided).
    Framebuffer,
    /// Paging mode selection.
    PagingMode,
    /// Multiprocessor start-up.
    Mp,
    /// Memory map.
    Memmap,
    /// Entry point override.
    EntryPoint,
    /// The executable (kernel) file.
    ExecutableFile,
    /// Modules.
    Module,
    /// ACPI RSDP address.
    Rsdp,
    /// SMBIOS entry points (known, not provided).
    Smbios,
    /// EFI system table (known, not provided).
    EfiSystemTable,
    /// EFI memory map (known, not provided).
    EfiMemmap,
    /// UNIX time at boot.
    DateAtBoot,
    /// Physical and virtual base of the executable.
    ExecutableAddress,
    /// The executable's command line.
    ExecutableCmdline,
    /// Device tree blob (known, not provided).
    Dtb,
}

impl Feature {
    /// Every feature, in the order of [`Feature`]'s declaration.
    pub const ALL: [Feature; 19] = [
        Feature::BootloaderInfo,
        Feature::FirmwareType,
        Feature::StackSize,
        Feature::Hhdm,
        Feature::Framebuffer,
        Feature::PagingMode,
        Feature::Mp,
        Feature::Memmap,
        Feature::EntryPoint,
        Feature::ExecutableFile,
        Feature::Module,
        Feature::Rsdp,
        Feature::Smbios,
        Feature::EfiSystemTable,
        Feature::EfiMemmap,
        Feature::DateAtBoot,
        Feature::ExecutableAddress,
        Feature::ExecutableCmdline,
        Feature::Dtb,
    ];

    /// The last two words of the feature's request identifier.
    pub const fn id(self) -> [u64; 2] {
        match self {
            Feature::BootloaderInfo => [0xf550_38d8_e2a1_202f, 0x2794_26fc_f5f5_9740],
            Feature::FirmwareType => [0x8c2f_75d9_0bef_28a8, 0x7045_a468_8eac_00c3],
            Feature::StackSize => [0x224e_f046_0a8e_8926, 0xe1cb_0fc2_5f46_ea3d],
            Feature::Hhdm => [0x48dc_f1cb_8ad2_b852, 0x6398_4e95_9a98_244b],
            Feature::Framebuffer => [0x9d58_27dc_d881_dd75, 0xa314_8604_f6fa_b11b],
            Feature::PagingMode => [0x95c1_a0ed_ab09_44cb, 0xa4e5_cb38_42f7_488a],
            Feature::Mp => [0x95a6_7b81_9a1b_857e, 0xa0b6_1b72_3b6a_73e0],
            Feature::Memmap => [0x67cf_3d9d_378a_806f, 0xe304_acdf_c50c_3c62],
            Feature::EntryPoint => [0x13d8_6c03_5a1c_d3e1, 0x2b0c_aa89_d8f3_026a],
            Feature::ExecutableFile => [0xad97_e90e_83f1_ed67, 0x31eb_5d1c_5ff2_3b69],
            Feature::Module => [0x3e7e_2797_02be_32af, 0xca1c_4f3b_d128_0cee],
            Feature::Rsdp => [0xc5e7_7b6b_397e_7b43, 0x2763_7845_accd_cf3c],
            Feature::Smbios => [0x9e90_46f1_1e09_5391, 0xaa4a_520f_efbd_e5ee],
            Feature::EfiSystemTable => [0x5ceb_a516_3eaa_f6d6, 0x0a69_8161_0cf6_5fcc],
            Feature::EfiMemmap => [0x7df6_2a43_1d68_72d5, 0xa4fc_dfb3_e573_06c8],
            Feature::DateAtBoot => [0x5027_46e1_84c0_88aa, 0xfbc5_ec83_e632_7893],
            Feature::ExecutableAddress => [0x71ba_7686_3cc5_5f63, 0xb264_4a48_c516_a487],
            Feature::ExecutableCmdline => [0x4b16_1536_e598_651e, 0xb390_ad4a_2f1f_303a],
            Feature::Dtb => [0xb40d_db48_fb54_bac7, 0x5450_8149_3f81_ffb7],
        }
    }

    /// The feature whose identifier ends with `words`, if any.
    pub fn from_id(words: [u64; 2]) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.id() == words)
    }

    /// A short name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Feature::BootloaderInfo => "bootloader info",
            Feature::FirmwareType => "firmware type",
            Feature::StackSize => "stack size",
            Feature::Hhdm => "HHDM",
            Feature::Framebuffer => "framebuffer",
            Feature::PagingMode => "paging mode",
            Feature::Mp => "MP",
            Feature::Memmap => "memory map",
            Feature::EntryPoint => "entry point",
            Feature::ExecutableFile => "executable file",
            Feature::Module => "module",
            Feature::Rsdp => "RSDP",
            Feature::Smbios => "SMBIOS",
            Feature::EfiSystemTable => "EFI system table",
            Feature::EfiMemmap => "EFI memory map",
            Feature::DateAtBoot => "date at boot",
            Feature::ExecutableAddress => "executable address",
            Feature::ExecutableCmdline => "executable command line",
            Feature::Dtb => "device tree blob",
        }
    }

    /// Whether this loader answers the request (the others keep a NULL
    /// response, as the protocol allows).
    pub const fn supported(self) -> bool {
        !matches!(
            self,
            Feature::Framebuffer | Feature::Smbios | Feature::EfiSystemTable | Feature::EfiMemmap | Feature::Dtb
        )
    }

    /// The newest request revision this loader understands. A newer request
    /// is read as if it had this revision.
    pub const fn max_request_revision(self) -> u64 {
        match self {
            Feature::PagingMode | Feature::Module => 1,
            _ => 0,
        }
    }

    /// The size in bytes of a request of revision `revision` (capped at what
    /// the loader understands), i.e. how much of the image must be readable.
    pub const fn request_size(self, revision: u64) -> usize {
        let revision = if revision > self.max_request_revision() { self.max_request_revision() } else { revision };
        match (self, revision) {
            (Feature::StackSize | Feature::Mp | Feature::EntryPoint, _) => 56,
            (Feature::PagingMode, 0) => 56,
            (Feature::PagingMode, _) => 72,
            (Feature::Module, 0) => 48,
            (Feature::Module, _) => 64,
            _ => 48,
        }
    }
}

/// Offset of the `revision` word inside every request.
pub const REQUEST_REVISION_OFFSET: usize = 32;
/// Offset of the `response` pointer inside every request.
pub const REQUEST_RESPONSE_OFFSET: usize = 40;
/// Offset of the first request-specific field.
pub const REQUEST_FIELDS_OFFSET: usize = 48;

/// `limine_bootloader_info_response`.
#[repr(C)]
#[allow(missing_docs)]
pub struct BootloaderInfoResponse {
    pub revision: u64,
    pub name: u64,
    pub version: u64,
}

/// `limine_firmware_type_response`.
#[repr(C)]
#[allow(missing_docs)]
pub struct FirmwareTypeResponse {
    pub revision: u64,
    pub firmware_type: u64,
}

/// A response carrying only its revision (stack size, entry point).
#[repr(C)]
#[allow(missing_docs)]
pub struct EmptyResponse {
    pub revision: u64,
}

/// `limine_hhdm_response`.
#[repr(C)]
#[allow(missing_docs)]
pub struct HhdmResponse {
    pub revision: u64,
    pub offset: u64,
}

/// `limine_paging_mode_response`.
#[repr(C)]
#[allow(missing_docs)]
pub struct PagingModeResponse {
    pub revision: u64,
    pub mode: u64,
}

/// `limine_mp_response` (x86-64).
#[repr(C)]
#[allow(missing_docs)]
pub struct MpResponse {
    pub revision: u64,
    pub flags: u32,
    pub bsp_lapic_id: u32,
    pub cpu_count: u64,
    pub cpus: u64,
}

/// `limine_mp_info` (x86-64).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct MpInfo {
    pub processor_id: u32,
    pub lapic_id: u32,
    pub reserved: u64,
    pub goto_address: u64,
    pub extra_argument: u64,
}

/// Offset of `goto_address` in [`MpInfo`]; the parked APs poll it.
pub const MP_INFO_GOTO_OFFSET: usize = 16;

/// `limine_memmap_response`.
#[repr(C)]
#[allow(missing_docs)]
pub struct MemmapResponse {
    pub revision: u64,
    pub entry_count: u64,
    pub entries: u64,
}

/// `limine_memmap_entry`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct MemmapEntry {
    pub base: u64,
    pub length: u64,
    pub kind: u64,
}

impl MemmapEntry {
    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        self.base + self.length
    }
}

/// `limine_executable_file_response`.
#[repr(C)]
#[allow(missing_docs)]
pub struct ExecutableFileResponse {
    pub revision: u64,
    pub file: u64,
}

/// `limine_module_response`.
#[repr(C)]
#[allow(missing_docs)]
pub struct ModuleResponse {
    pub revision: u64,
    pub module_count: u64,
    pub modules: u64,
}

/// `limine_uuid`, kept as its 16 raw bytes.
pub type Uuid = [u8; 16];

/// `limine_file`.
#[repr(C)]
#[allow(missing_docs)]
pub struct LimineFile {
    pub revision: u64,
    pub address: u64,
    pub size: u64,
    pub path: u64,
    pub cmdline: u64,
    pub media_type: u32,
    pub unused: u32,
    pub tftp_ip: u32,
    pub tftp_port: u32,
    pub partition_index: u32,
    pub mbr_disk_id: u32,
    pub gpt_disk_uuid: Uuid,
    pub gpt_part_uuid: Uuid,
    pub part_uuid: Uuid,
}

/// `limine_rsdp_response`.
#[repr(C)]
#[allow(missing_docs)]
pub struct RsdpResponse {
    pub revision: u64,
    pub address: u64,
}

/// `limine_date_at_boot_response`.
#[repr(C)]
#[allow(missing_docs)]
pub struct DateAtBootResponse {
    pub revision: u64,
    pub timestamp: i64,
}

/// `limine_executable_address_response`.
#[repr(C)]
#[allow(missing_docs)]
pub struct ExecutableAddressResponse {
    pub revision: u64,
    pub physical_base: u64,
    pub virtual_base: u64,
}

/// `limine_executable_cmdline_response`.
#[repr(C)]
#[allow(missing_docs)]
pub struct ExecutableCmdlineResponse {
    pub revision: u64,
    pub cmdline: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn layouts_match_the_limine_crate() {
        use limine::{file, memory_map, mp, response as r};
        assert_eq!(size_of::<BootloaderInfoResponse>(), size_of::<r::BootloaderInfoResponse>());
        assert_eq!(size_of::<FirmwareTypeResponse>(), size_of::<r::FirmwareTypeResponse>());
        assert_eq!(size_of::<EmptyResponse>(), size_of::<r::StackSizeResponse>());
        assert_eq!(size_of::<EmptyResponse>(), size_of::<r::EntryPointResponse>());
        assert_eq!(size_of::<HhdmResponse>(), size_of::<r::HhdmResponse>());
        assert_eq!(size_of::<PagingModeResponse>(), size_of::<r::PagingModeResponse>());
        assert_eq!(size_of::<MpResponse>(), size_of::<r::MpResponse>());
        assert_eq!(size_of::<MpInfo>(), size_of::<mp::Cpu>());
        assert_eq!(size_of::<MemmapResponse>(), size_of::<r::MemoryMapResponse>());
        assert_eq!(size_of::<MemmapEntry>(), size_of::<memory_map::Entry>());
        assert_eq!(size_of::<ExecutableFileResponse>(), size_of::<r::ExecutableFileResponse>());
        assert_eq!(size_of::<ModuleResponse>(), size_of::<r::ModuleResponse>());
        assert_eq!(size_of::<LimineFile>(), size_of::<file::File>());
        assert_eq!(size_of::<RsdpResponse>(), size_of::<r::RsdpResponse>());
        assert_eq!(size_of::<DateAtBootResponse>(), size_of::<r::DateAtBootResponse>());
        assert_eq!(size_of::<ExecutableAddressResponse>(), size_of::<r::ExecutableAddressResponse>());
        assert_eq!(size_of::<ExecutableCmdlineResponse>(), size_of::<r::ExecutableCmdlineResponse>());
        assert_eq!(core::mem::offset_of!(MpInfo, goto_address), MP_INFO_GOTO_OFFSET);
    }

    /// Reads the words of a request as the limine crate lays it out.
    fn words<T>(value: &T) -> Vec<u64> {
        let bytes =
            // SAFETY: `value` is a live `repr(C)` request made only of u64
            // words and pointers; reading its bytes is reading initialised data.
            unsafe { core::slice::from_raw_parts(value as *const T as *const u8, size_of::<T>()) };
        bytes.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
    }

    #[test]
    fn identifiers_match_the_limine_crate() {
        use limine::request::*;
        let cases: Vec<(Vec<u64>, Feature, u64, usize)> = vec![
            (words(&BootloaderInfoRequest::new()), Feature::BootloaderInfo, 0, size_of::<BootloaderInfoRequest>()),
            (words(&FirmwareTypeRequest::new()), Feature::FirmwareType, 0, size_of::<FirmwareTypeRequest>()),
            (words(&StackSizeRequest::new()), Feature::StackSize, 0, size_of::<StackSizeRequest>()),
            (words(&HhdmRequest::new()), Feature::Hhdm, 0, size_of::<HhdmRequest>()),
            (words(&FramebufferRequest::new()), Feature::Framebuffer, 0, size_of::<FramebufferRequest>()),
            (words(&PagingModeRequest::new()), Feature::PagingMode, 1, size_of::<PagingModeRequest>()),
            (words(&MpRequest::new()), Feature::Mp, 0, size_of::<MpRequest>()),
            (words(&MemoryMapRequest::new()), Feature::Memmap, 0, size_of::<MemoryMapRequest>()),
            (words(&EntryPointRequest::new()), Feature::EntryPoint, 0, size_of::<EntryPointRequest>()),
            (words(&ExecutableFileRequest::new()), Feature::ExecutableFile, 0, size_of::<ExecutableFileRequest>()),
            (words(&ModuleRequest::new()), Feature::Module, 1, size_of::<ModuleRequest>()),
            (words(&RsdpRequest::new()), Feature::Rsdp, 0, size_of::<RsdpRequest>()),
            (words(&SmbiosRequest::new()), Feature::Smbios, 0, size_of::<SmbiosRequest>()),
            (words(&EfiSystemTableRequest::new()), Feature::EfiSystemTable, 0, size_of::<EfiSystemTableRequest>()),
            (words(&EfiMemoryMapRequest::new()), Feature::EfiMemmap, 0, size_of::<EfiMemoryMapRequest>()),
            (words(&DateAtBootRequest::new()), Feature::DateAtBoot, 0, size_of::<DateAtBootRequest>()),
            (
                words(&ExecutableAddressRequest::new()),
                Feature::ExecutableAddress,
                0,
                size_of::<ExecutableAddressRequest>(),
            ),
            (
                words(&ExecutableCmdlineRequest::new()),
                Feature::ExecutableCmdline,
                0,
                size_of::<ExecutableCmdlineRequest>(),
            ),
            (words(&DeviceTreeBlobRequest::new()), Feature::Dtb, 0, size_of::<DeviceTreeBlobRequest>()),
        ];
        assert_eq!(cases.len(), Feature::ALL.len());
        for (w, feature, revision, size) in cases {
            assert_eq!([w[0], w[1]], COMMON_MAGIC, "{}", feature.name());
            assert_eq!(Feature::from_id([w[2], w[3]]), Some(feature));
            assert_eq!(w[4], revision, "{}", feature.name());
            assert_eq!(feature.max_request_revision(), revision, "{}", feature.name());
            assert_eq!(feature.request_size(revision), size, "{}", feature.name());
        }
    }

    #[test]
    fn markers_and_base_revision_match_the_limine_crate() {
        assert_eq!(words(&limine::request::RequestsStartMarker::new()), REQUESTS_START_MARKER);
        assert_eq!(words(&limine::request::RequestsEndMarker::new()), REQUESTS_END_MARKER);
        let tag = words(&limine::BaseRevision::new());
        assert_eq!([tag[0], tag[1]], BASE_REVISION_MAGIC);
        assert_eq!(tag[2], MAX_BASE_REVISION);
    }
}
