//! Cutting a physical range into the largest pages that fit.
//!
//! The higher-half direct map can cover gigabytes; mapping it with 1 GiB and
//! 2 MiB pages where alignment allows keeps the page tables small (a few
//! pages for a 4 GiB machine instead of thousands). The HHDM offset is 1 GiB
//! aligned, so physical alignment is virtual alignment.

/// 4 KiB.
pub const SIZE_4K: u64 = 1 << 12;
/// 2 MiB.
pub const SIZE_2M: u64 = 1 << 21;
/// 1 GiB.
pub const SIZE_1G: u64 = 1 << 30;

/// Iterator over `(address, size)` pieces covering `[start, end)`, each
/// piece 4 KiB, 2 MiB or (when allowed) 1 GiB and aligned to its size.
#[derive(Debug, Clone)]
pub struct Chunks {
    next: u64,
    end: u64,
    allow_1g: bool,
}

/// Cuts `[start, end)` (both 4 KiB aligned) into pages; `allow_1g` says
/// whether the CPU has 1 GiB pages.
pub fn chunks(start: u64, end: u64, allow_1g: bool) -> Chunks {
    Chunks { next: start, end, allow_1g }
}

impl Iterator for Chunks {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        if self.next >= self.end {
            return None;
        }
        let at = self.next;
        let left = self.end - at;
        let size = if self.allow_1g && at.is_multiple_of(SIZE_1G) && left >= SIZE_1G {
            SIZE_1G
        } else if at.is_multiple_of(SIZE_2M) && left >= SIZE_2M {
            SIZE_2M
        } else {
            SIZE_4K
        };
        self.next = at + size;
        Some((at, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_aligned_pieces() {
        let v: Vec<_> = chunks(0x1ff000, 0x40201000 + SIZE_1G, true).collect();
        assert_eq!(v[0], (0x1ff000, SIZE_4K));
        assert_eq!(v[1], (0x200000, SIZE_2M));
        // 2 MiB pages up to 1 GiB, then one 1 GiB page, then 2 MiB, then 4 KiB.
        assert_eq!(v.iter().filter(|c| c.1 == SIZE_1G).count(), 1);
        assert!(v.contains(&(SIZE_1G, SIZE_1G)));
        assert_eq!(v.last(), Some(&(0x40200000 + SIZE_1G, SIZE_4K)));
        let mut at = 0x1ff000;
        for (addr, size) in &v {
            assert_eq!(*addr, at);
            assert_eq!(addr % size, 0);
            at += size;
        }
        assert_eq!(at, 0x40201000 + SIZE_1G);
    }

    #[test]
    fn without_1g_pages() {
        let v: Vec<_> = chunks(0, 2 * SIZE_1G, false).collect();
        assert_eq!(v.len(), 1024);
        assert!(v.iter().all(|c| c.1 == SIZE_2M));
        assert_eq!(chunks(0x5000, 0x5000, true).count(), 0);
    }
}
