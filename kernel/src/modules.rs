//! The boot modules (user programs the loader brought), copied out of the
//! loader's memory at boot so they outlive its reclamation. Their contents
//! stay where the loader put them, in memory the kernel never reuses.

use crate::boot::BootInfo;
use alloc::string::String;
use alloc::vec::Vec;
use spin::Once;

/// A boot module.
pub struct Module {
    /// The file name of its path (`init` for `boot():/boot/init`).
    pub name: String,
    /// Its contents.
    pub data: &'static [u8],
}

static MODULES: Once<Vec<Module>> = Once::new();

/// Records the modules the loader reported.
pub fn record(boot: &BootInfo) {
    MODULES.call_once(|| {
        boot.modules()
            .map(|m| Module {
                name: String::from(m.path.rsplit('/').next().unwrap_or(m.path)),
                data: m.data,
            })
            .collect()
    });
    for (i, m) in all().iter().enumerate() {
        log::info!("boot: module {i}: {} ({} KiB)", m.name, m.data.len() / 1024);
    }
}

/// Every module, in limine.conf order.
pub fn all() -> &'static [Module] {
    MODULES.get().map_or(&[], |m| m.as_slice())
}

/// The module called `name`.
pub fn find(name: &str) -> Option<(usize, &'static Module)> {
    all().iter().enumerate().find(|(_, m)| m.name == name)
}
