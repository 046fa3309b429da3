//! What physical memory is used for: the kinds of the boot memory map and
//! the kinds of frames the kernel takes from its allocator.

/// The kind of a physical range as the boot memory map and the kernel's own
/// record describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegionKind {
    /// Free RAM, managed by the frame allocator.
    Usable,
    /// Holds the boot loader's data (responses, page tables, stacks) until
    /// the kernel no longer needs it; then it joins the usable pool.
    BootloaderReclaimable,
    /// ACPI tables the OS may reclaim after reading them.
    AcpiReclaimable,
    /// ACPI non-volatile storage: must be preserved.
    AcpiNvs,
    /// Firmware-reserved or otherwise unusable address space.
    Reserved,
    /// RAM reported as faulty.
    BadMemory,
    /// The kernel's own ELF image.
    KernelImage,
    /// Boot modules (user programs loaded by the boot loader).
    Modules,
    /// A framebuffer.
    Framebuffer,
}

impl RegionKind {
    /// Short name for tables.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Usable => "usable",
            Self::BootloaderReclaimable => "loader-reclaimable",
            Self::AcpiReclaimable => "acpi-reclaimable",
            Self::AcpiNvs => "acpi-nvs",
            Self::Reserved => "reserved",
            Self::BadMemory => "bad",
            Self::KernelImage => "kernel-image",
            Self::Modules => "modules",
            Self::Framebuffer => "framebuffer",
        }
    }

    /// Whether the range is RAM that belongs in the direct map.
    pub const fn is_ram(self) -> bool {
        matches!(
            self,
            Self::Usable
                | Self::BootloaderReclaimable
                | Self::AcpiReclaimable
                | Self::AcpiNvs
                | Self::KernelImage
                | Self::Modules
        )
    }
}

/// What a frame taken from the kernel's frame allocator is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameUse {
    /// Page-table pages (kernel and user address spaces).
    PageTables,
    /// Kernel heap.
    Heap,
    /// Kernel stacks: per-CPU, exception (IST) and thread stacks.
    Stacks,
    /// The frame allocator's own bitmap.
    FrameMetadata,
    /// User task images and first stacks, loaded by the kernel.
    User,
    /// RAM handed to the memory server at boot (its physical-memory
    /// capabilities), which owns it from then on.
    MemoryServer,
    /// Frames used by in-kernel tests and benchmarks.
    Test,
}

impl FrameUse {
    /// Every kind, in table order.
    pub const ALL: [FrameUse; 7] = [
        Self::PageTables,
        Self::Heap,
        Self::Stacks,
        Self::FrameMetadata,
        Self::User,
        Self::MemoryServer,
        Self::Test,
    ];
    /// Number of kinds.
    pub const COUNT: usize = Self::ALL.len();

    /// Short name for tables.
    pub const fn name(self) -> &'static str {
        match self {
            Self::PageTables => "page-tables",
            Self::Heap => "heap",
            Self::Stacks => "stacks",
            Self::FrameMetadata => "frame-metadata",
            Self::User => "task-images",
            Self::MemoryServer => "memory-server",
            Self::Test => "test",
        }
    }
}
