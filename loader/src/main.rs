//! A UEFI application that boots the kernel over the Limine protocol.
#![no_std]
#![no_main]

use uefi::prelude::*;

#[entry]
fn main() -> Status {
    Status::SUCCESS
}
