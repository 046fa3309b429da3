//! Memory management: the physical record, the frame allocator, page
//! tables and address spaces, the kernel heap, kernel stacks and TLB
//! shootdown.

pub mod address_space;
pub mod frame;
pub mod heap;
pub mod kernel_space;
pub mod paging;
pub mod phys;
pub mod scratch;
pub mod stack;
pub mod tlb;

use crate::boot::BootInfo;
use crate::kcore::frame_bitmap::FrameBitmap;
use crate::kcore::mem_kind::RegionKind;
use crate::kcore::PAGE_SIZE;

/// Brings memory management up on the boot CPU: records the memory map,
/// starts the frame allocator, builds the kernel page tables and switches
/// to them. The heap works from here on.
pub fn init(boot: &BootInfo) {
    crate::arch::paging::set_hhdm_offset(boot.hhdm_offset);
    phys::record_boot_map(boot, kernel_space::image_size(boot));
    init_frame_pool();
    let space = kernel_space::build(boot);
    kernel_space::switch_to_kernel_root();
    log::info!("mm: cpu0 runs on the kernel's own page tables (root {:#x})", space.root());
}

/// Creates the frame pool, storing its bitmap in the first usable range
/// large enough, and gives it every other usable page.
fn init_frame_pool() {
    let mut top = 0;
    phys::for_each_range(|_, end, kind| {
        if matches!(kind, RegionKind::Usable | RegionKind::BootloaderReclaimable) {
            top = top.max(end);
        }
    });
    let frames = top / PAGE_SIZE;
    let words = FrameBitmap::words_needed(frames) + FrameBitmap::chunks_needed(frames).div_ceil(4);
    let pages = (words as u64 * 8).div_ceil(PAGE_SIZE);
    let mut storage = None;
    phys::ranges_of(RegionKind::Usable, |s, e| {
        if storage.is_none() && e - s >= pages * PAGE_SIZE {
            storage = Some(s);
        }
    });
    let storage = storage.expect("mm: no usable range can hold the frame bitmap");
    frame::init_at(storage, words, frames, pages);
    phys::ranges_of(RegionKind::Usable, |s, e| {
        let (s, e) = if s == storage { (s + pages * PAGE_SIZE, e) } else { (s, e) };
        if s < e {
            frame::add_range(s, e).expect("mm: usable ranges overlap");
        }
    });
    log::info!(
        "mm: frame allocator covers {frames} frames ({} MiB of address space), bitmap {pages} pages at {storage:#x}",
        (frames * PAGE_SIZE) >> 20
    );
}

/// Hands the boot loader's memory to the frame allocator. Call once
/// nothing uses it: after every AP left its boot stack and after the last
/// read of a boot-loader response.
pub fn reclaim_boot_memory() -> u64 {
    let mut ranges = [(0u64, 0u64); 128];
    let mut n = 0;
    phys::ranges_of(RegionKind::BootloaderReclaimable, |s, e| {
        if n < ranges.len() {
            ranges[n] = (s, e);
            n += 1;
        }
    });
    let mut bytes = 0;
    for &(s, e) in &ranges[..n] {
        frame::add_range(s, e).expect("mm: loader memory overlaps managed memory");
        bytes += e - s;
    }
    phys::relabel(RegionKind::BootloaderReclaimable, RegionKind::Usable);
    bytes
}
