//! Memory syscalls: map pages of a physical-memory capability into an
//! address space, unmap, change protection, and query.

use super::{lookup, Args, Ret, SysResult};
use crate::mm::address_space::AddressSpace;
use crate::mm::paging::{Access, PageSize, PagingError};
use crate::object::phys::PhysRange;
use crate::object::thread::Thread;
use crate::object::Object;
use abi::cap::{Kind, Rights};
use abi::mem::{check_user_range, MapFlags, PAGE_SIZE};
use abi::mm::MAX_REQUEST_PAGES;
use abi::Error;
use alloc::sync::Arc;

fn space_of(me: &Arc<Thread>, raw: u64, rights: Rights) -> Result<Arc<AddressSpace>, Error> {
    match lookup(me, raw, Kind::AddressSpace, rights)?.object {
        Object::AddressSpace(s) => Ok(s),
        _ => unreachable!("kind checked"),
    }
}

fn paging_error(e: PagingError) -> Error {
    match e {
        PagingError::AlreadyMapped => Error::AlreadyMapped,
        PagingError::NotMapped => Error::NotMapped,
        PagingError::OutOfFrames => Error::OutOfMemory,
        PagingError::Misaligned => Error::Misaligned,
        PagingError::InsideLargerPage => Error::InvalidArgument,
        PagingError::Dead => Error::PeerDied,
    }
}

fn access(flags: MapFlags) -> Access {
    Access {
        write: flags.contains(MapFlags::WRITE),
        execute: flags.contains(MapFlags::EXEC),
        user: true,
        global: false,
        uncached: false,
    }
}

/// `(space, phys, first_page, va, pages, flags)`.
pub fn map(me: &Arc<Thread>, a: &Args) -> SysResult {
    let flags = MapFlags::from_raw(a[5])?;
    if flags.contains(MapFlags::CONTIGUOUS) {
        return Err(Error::InvalidArgument);
    }
    let (first, va, pages) = (a[2], a[3], a[4]);
    let page = flags.page_size();
    let frames_per_page = page / PAGE_SIZE;
    check_user_range(va, pages, page)?;
    if pages.saturating_mul(frames_per_page) > MAX_REQUEST_PAGES {
        return Err(Error::OutOfRange);
    }
    let space = space_of(me, a[0], Rights::MAP)?;
    let mut needed = Rights::MAP;
    if flags.contains(MapFlags::WRITE) {
        needed |= Rights::WRITE;
    }
    if flags.contains(MapFlags::EXEC) {
        needed |= Rights::EXECUTE;
    }
    let phys: Arc<PhysRange> = match lookup(me, a[1], Kind::PhysMemory, needed)?.object {
        Object::PhysMemory(p) => p,
        _ => unreachable!("kind checked"),
    };
    let frames = pages * frames_per_page;
    if !phys.contains(first, frames) {
        return Err(Error::OutOfRange);
    }
    let base = phys.page(first).ok_or(Error::OutOfRange)?;
    if base % page != 0 {
        return Err(Error::Misaligned);
    }
    let size = if flags.contains(MapFlags::LARGE) { PageSize::Large } else { PageSize::Small };
    let zero = flags.contains(MapFlags::ZERO);
    space
        .map_range_prepared(va, base, pages, size, access(flags), || {
            if zero {
                phys.zero_pages(first, frames);
            }
        })
        .map_err(paging_error)?;
    Ok(Ret::OK)
}

/// `(space, va, pages)`.
pub fn unmap(me: &Arc<Thread>, a: &Args) -> SysResult {
    check_user_range(a[1], a[2], PAGE_SIZE)?;
    if a[2] > MAX_REQUEST_PAGES {
        return Err(Error::OutOfRange);
    }
    let space = space_of(me, a[0], Rights::MAP)?;
    let pages = space.unmap_user(a[1], a[2] * PAGE_SIZE).map_err(paging_error)?;
    Ok(Ret::one(pages))
}

/// `(space, va, pages, flags)`: flags may hold WRITE or EXEC (never both)
/// and LARGE for 2 MiB pages.
pub fn protect(me: &Arc<Thread>, a: &Args) -> SysResult {
    let flags = MapFlags::from_raw(a[3])?;
    if flags.intersects(MapFlags::ZERO | MapFlags::CONTIGUOUS) {
        return Err(Error::InvalidArgument);
    }
    let page = flags.page_size();
    check_user_range(a[1], a[2], page)?;
    if a[2].saturating_mul(page / PAGE_SIZE) > MAX_REQUEST_PAGES {
        return Err(Error::OutOfRange);
    }
    let space = space_of(me, a[0], Rights::MAP)?;
    let size = if flags.contains(MapFlags::LARGE) { PageSize::Large } else { PageSize::Small };
    // Check the whole range first, so a failure changes nothing.
    for i in 0..a[2] {
        match space.translate(a[1] + i * page) {
            Some(t) if t.size == size => {}
            Some(_) => return Err(Error::InvalidArgument),
            None => return Err(Error::NotMapped),
        }
    }
    space.protect_range(a[1], a[2], size, access(flags)).map_err(paging_error)?;
    Ok(Ret::OK)
}

pub fn phys_info(me: &Arc<Thread>, a: &Args) -> SysResult {
    match lookup(me, a[0], Kind::PhysMemory, Rights::READ)?.object {
        Object::PhysMemory(p) => Ok(Ret::Values([p.base, p.pages, 0, 0])),
        _ => unreachable!("kind checked"),
    }
}

pub fn translate(me: &Arc<Thread>, a: &Args) -> SysResult {
    if a[1] >= abi::mem::USER_END {
        return Err(Error::BadAddress);
    }
    let space = space_of(me, a[0], Rights::READ)?;
    let t = space.translate(a[1]).ok_or(Error::NotMapped)?;
    let mut flags = MapFlags::empty();
    flags.set(MapFlags::WRITE, t.access.write);
    flags.set(MapFlags::EXEC, t.access.execute);
    flags.set(MapFlags::LARGE, t.size == PageSize::Large);
    Ok(Ret::Values([t.phys, flags.bits(), 0, 0]))
}
