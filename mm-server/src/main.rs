//! The memory server: a privileged user-space task that owns all the RAM
//! the kernel did not keep, and serves frame and mapping requests from user
//! tasks over capability IPC (`abi::mm`, `docs/mm-protocol.md`).
//!
//! The kernel starts it first, with one physical-memory capability per RAM
//! range (at `PHYS_FIRST..`; how many is its start argument) and the
//! receiving side of the endpoint clients call (`MEMORY`). It runs one
//! worker per CPU, pinned; the kernel hands a call to the worker waiting on
//! the caller's CPU, so a request is served on the caller's CPU, with a
//! per-CPU frame cache and no shared lock on the common path. It is also
//! the pager of its clients: faults on lazily reserved pages arrive as IPC
//! and are answered by mapping a zeroed page; when a client dies, the
//! kernel's exit notice makes the server take back everything it held.

#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

mod clients;
mod heap;
mod pool;
mod serve;
mod stats;

use abi::handles;
use abi::ipc::Message;
use clients::Clients;
use core::sync::atomic::Ordering;
use pool::{Cache, Pool};
use serve::{Answer, Worker};
use stats::CpuStats;
use user::{println, sys};

/// Everything the workers share.
pub struct Server {
    /// The frames.
    pub pool: Pool,
    /// The clients.
    pub clients: Clients,
    /// Per-CPU counters.
    pub cpu_stats: [CpuStats; 64],
    /// Identity of the server's own endpoint (to recognise share tokens).
    pub endpoint_id: u64,
}

impl Server {
    /// Free pages: the shared pool plus every worker cache.
    pub fn free_pages(&self) -> u64 {
        self.pool.free() + self.cpu_stats.iter().map(|c| c.cache.load(Ordering::Relaxed)).sum::<u64>()
    }
}

static SERVER: spin::Once<Server> = spin::Once::new();

user::main!(main);

fn main(ranges: u64) -> i64 {
    heap::init(ranges);
    let clients = Clients::new();
    let endpoint_id = sys::cap_identity(handles::MEMORY).unwrap_or(0);
    // Nothing allocates from here until the pool is published (see `heap`).
    let pool = Pool::new(ranges);
    let server = SERVER.call_once(|| Server {
        pool,
        clients,
        cpu_stats: core::array::from_fn(|_| CpuStats::default()),
        endpoint_id,
    });
    let (_, cpus) = sys::cpu_info();
    println!(
        "serving {} MiB in {} ranges with one worker per CPU ({cpus}); {} KiB for its own heap so far",
        (server.pool.total * 4096) >> 20,
        server.pool.ranges.len(),
        heap::pages() * 4
    );
    for cpu in 1..cpus {
        if let Err(e) = start_worker(cpu) {
            println!("cannot start the worker for cpu {cpu}: {e}");
        }
    }
    let _ = sys::thread_set_affinity(handles::SELF_THREAD, Some(0));
    sys::yield_now();
    worker_main(0)
}

/// Bytes of stack each worker gets.
const WORKER_STACK: usize = 64 * 1024;

/// Starts the worker for `cpu`, pinned there before it first runs.
fn start_worker(cpu: u64) -> Result<(), abi::Error> {
    let stack: &'static mut [u64] = alloc::vec![0u64; WORKER_STACK / 8].leak();
    // The entry is entered as if called: the stack pointer is 8 below a
    // 16-byte boundary.
    let top = (stack.as_ptr() as u64 + WORKER_STACK as u64) & !15;
    let entry = worker_main as extern "C" fn(u64) -> ! as usize as u64;
    let t = sys::thread_create(handles::SELF_TASK, entry, top - 8, cpu)?;
    sys::thread_set_affinity(t, Some(cpu))?;
    sys::thread_start(t)
}

/// A worker: receive, serve, reply, forever.
extern "C" fn worker_main(cpu: u64) -> ! {
    let server = SERVER.get().expect("the server is set up before its workers start");
    let mut worker = Worker { cpu: cpu as usize, cache: Cache::new(&server.cpu_stats[cpu as usize].cache) };
    let mut pending: Option<(abi::cap::Handle, Message)> = None;
    loop {
        let received = match pending.take() {
            Some((reply, msg)) => sys::reply_recv(handles::MEMORY, reply, &msg),
            None => sys::recv(handles::MEMORY),
        };
        let rx = match received {
            Ok(rx) => rx,
            Err(e) => {
                println!("worker {cpu}: receive failed: {e}");
                continue;
            }
        };
        match worker.handle(server, rx.badge, &rx.msg) {
            Answer::Reply(msg) if !rx.reply.is_none() => pending = Some((rx.reply, msg)),
            _ => {}
        }
    }
}
