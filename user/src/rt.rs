//! Program start and end: the entry the `_start` stub calls, and the panic
//! handler (report, then exit with code 101).

use crate::sys;

/// Called by `_start` with the starter's argument.
pub extern "C" fn entry(arg: u64) -> ! {
    let code = crate::raw::call_main(arg);
    sys::task_exit(code)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::println!("panic: {info}");
    sys::task_exit(101)
}
