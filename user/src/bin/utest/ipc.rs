//! IPC between threads of this task: ping-pong on one CPU and across CPUs
//! (every word and the label checked each round), badged capabilities
//! telling clients apart, and many clients on every CPU calling one
//! server at once.

use crate::msg::{STOP, answer, label, request};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use user::abi::cap::{Handle, Kind, Rights};
use user::abi::ipc::{Message, Received};
use user::thread::{self, Builder};
use user::{Error, check, check_eq, check_err, check_ok, println, sys};

/// Rounds of ping-pong on one CPU.
const LOCAL_ROUNDS: u64 = 2000;
/// Rounds of ping-pong across CPUs (each wakes a CPU with an IPI).
const CROSS_ROUNDS: u64 = 400;

pub fn local() {
    let (cpu, _) = sys::cpu_info();
    ping_pong(cpu, cpu, LOCAL_ROUNDS);
}

pub fn cross() {
    let (_, cpus) = sys::cpu_info();
    if !check!(cpus >= 2, "ipc-cross needs two CPUs, the machine has {cpus}") {
        return;
    }
    ping_pong(0, cpus - 1, CROSS_ROUNDS);
    if cpus > 2 {
        ping_pong(1, 2, CROSS_ROUNDS / 2);
    }
}

/// Serves `ep` until STOP: checks that round `i`'s request arrives intact
/// (from a caller, unbadged) and answers it. Returns the rounds served.
fn serve_ping(ep: Handle, cpu: u64) -> u64 {
    let mut r = check_ok!(sys::recv(ep), "server: first receive").unwrap_or_default();
    let mut i = 0;
    while r.msg.info.label != STOP {
        check_eq!(r.msg, request(i), "server: request {i} arrives intact");
        check_eq!(r.badge, 0, "server: request {i} badge");
        check!(!r.reply.is_none(), "server: request {i} comes with a reply capability");
        if i % 64 == 0 {
            check_eq!(sys::cpu_info().0, cpu, "server: runs on its pinned cpu (round {i})");
        }
        let ans = answer(&r.msg);
        r = match sys::reply_recv(ep, r.reply, &ans) {
            Ok(next) => next,
            Err(e) => {
                check!(false, "server: reply_recv after round {i} failed with {e:?}");
                return i;
            }
        };
        i += 1;
    }
    check_ok!(sys::reply(r.reply, &label(STOP)), "server: answer STOP");
    i
}

/// Calls `ep` `rounds` times, checking every answer, then sends STOP.
fn call_ping(ep: Handle, cpu: u64, rounds: u64) {
    for i in 0..rounds {
        let req = request(i);
        let got = sys::call_ep(ep, &req);
        if !check_eq!(got, Ok(answer(&req)), "client: answer to request {i}") {
            return;
        }
        if i % 64 == 0 {
            check_eq!(sys::cpu_info().0, cpu, "client: runs on its pinned cpu (round {i})");
        }
    }
    check_eq!(sys::call_ep(ep, &label(STOP)).map(|m| m.info.label), Ok(STOP), "client: STOP answered");
}

/// Ping-pong between a server pinned to `server_cpu` and a client pinned
/// to `client_cpu`.
fn ping_pong(server_cpu: u64, client_cpu: u64, rounds: u64) {
    let Some(ep) = check_ok!(sys::endpoint_create(), "create an endpoint") else { return };
    let served = Arc::new(AtomicU64::new(0));
    let s = served.clone();
    let server = thread::spawn_on(server_cpu, move || s.store(serve_ping(ep, server_cpu), Ordering::Relaxed));
    let t0 = sys::time().0;
    let client = thread::spawn_on(client_cpu, move || call_ping(ep, client_cpu, rounds));
    let (Some(server), Some(client)) = (check_ok!(server, "start the server"), check_ok!(client, "start the client"))
    else {
        return;
    };
    client.join();
    let us = sys::time().0 - t0;
    server.join();
    check_eq!(served.load(Ordering::Relaxed), rounds, "rounds served");
    println!(
        "ping-pong cpu {client_cpu} -> cpu {server_cpu}: {rounds} round trips in {} ms ({} us each)",
        us / 1000,
        us / rounds.max(1)
    );
    check_ok!(sys::cap_delete(ep), "delete the endpoint");
}

/// Badge the `i`th client's capability carries.
fn badge_of(i: u64) -> u64 {
    0x0b0b_0000 + i * 7 + 1
}

pub fn badges() {
    let Some(ep) = check_ok!(sys::endpoint_create(), "create an endpoint") else { return };
    mint_rules(ep);
    let (_, cpus) = sys::cpu_info();
    let clients = cpus + 2;
    const ROUNDS: u64 = 40;
    // Client i uses a capability badged badge_of(i); the last one uses an
    // unbadged copy, and one more uses the largest badge there is.
    let mut caps = Vec::new();
    for i in 0..clients {
        let badge = if i == clients - 1 { u64::MAX } else { badge_of(i) };
        let Some(h) = check_ok!(sys::cap_mint(ep, badge, Rights::SEND), "mint badge {badge:#x}") else { return };
        check_eq!(sys::cap_info(h), Ok((Kind::Endpoint, Rights::SEND, badge)), "minted capability {i}");
        caps.push((h, badge));
    }
    let Some(plain) = check_ok!(sys::cap_copy(ep, Rights::SEND), "unbadged copy") else { return };
    caps.push((plain, 0));

    let expected: Vec<u64> = caps.iter().map(|&(_, b)| b).collect();
    let counts = Arc::new(spin::Mutex::new(Vec::<(u64, u64)>::new()));
    let c = counts.clone();
    let total = caps.len() as u64 * ROUNDS;
    let server = thread::spawn(move || {
        let mut seen: Vec<(u64, u64)> = Vec::new();
        let mut r: Option<Received> = None;
        for n in 0..total {
            let next = match r.take() {
                None => sys::recv(ep),
                Some(prev) => sys::reply_recv(ep, prev.reply, &Message::new(2, &[prev.badge, prev.msg.words[1]])),
            };
            let Some(got) = check_ok!(next, "server: receive {n}") else { return };
            check_eq!(got.badge, got.msg.words[0], "server: badge of message {n} is the one its sender holds");
            match seen.iter_mut().find(|(b, _)| *b == got.badge) {
                Some((_, k)) => *k += 1,
                None => seen.push((got.badge, 1)),
            }
            r = Some(got);
        }
        if let Some(last) = r {
            check_ok!(
                sys::reply(last.reply, &Message::new(2, &[last.badge, last.msg.words[1]])),
                "server: last answer"
            );
        }
        *c.lock() = seen;
    });
    let mut workers = Vec::new();
    for (i, &(h, badge)) in caps.iter().enumerate() {
        let cpu = i as u64 % cpus;
        workers.push(thread::spawn_on(cpu, move || {
            for k in 0..ROUNDS {
                // Word 0: the badge this client expects the server to see.
                let got = sys::call_ep(h, &Message::new(1, &[badge, k]));
                check_eq!(
                    got.map(|m| [m.words[0], m.words[1]]),
                    Ok([badge, k]),
                    "client with badge {badge:#x}: round {k}"
                );
            }
        }));
    }
    for w in workers.into_iter().flat_map(|w| check_ok!(w, "start a client")) {
        w.join();
    }
    if let Some(s) = check_ok!(server, "start the server") {
        s.join();
    }
    let seen = counts.lock().clone();
    for b in &expected {
        let n = seen.iter().find(|(x, _)| x == b).map_or(0, |&(_, n)| n);
        check_eq!(n, ROUNDS, "messages the server saw with badge {b:#x}");
    }
    check_eq!(seen.len(), expected.len(), "distinct badges the server saw");
    println!(
        "{} clients, {} badges (0 and u64::MAX among them), {ROUNDS} calls each, all told apart",
        caps.len(),
        seen.len()
    );
    for (h, _) in caps {
        let _ = sys::cap_delete(h);
    }
    let _ = sys::cap_delete(ep);
}

/// What minting allows and refuses.
fn mint_rules(ep: Handle) {
    check_err!(sys::cap_mint(ep, 0, Rights::SEND), Error::InvalidArgument, "mint with badge 0");
    let Some(badged) = check_ok!(sys::cap_mint(ep, 5, Rights::SEND | Rights::GRANT), "mint badge 5") else { return };
    check_err!(sys::cap_mint(badged, 6, Rights::SEND), Error::InvalidArgument, "re-mint a badged capability");
    check_err!(
        sys::cap_mint(badged, 6, Rights::SEND | Rights::RECEIVE),
        Error::InvalidArgument,
        "re-mint a badged capability with more rights"
    );
    let Some(copy) = check_ok!(sys::cap_copy(badged, Rights::SEND), "copy a badged capability") else { return };
    check_eq!(sys::cap_info(copy), Ok((Kind::Endpoint, Rights::SEND, 5)), "a copy keeps the badge");
    let Some(send_only) = check_ok!(sys::cap_copy(ep, Rights::SEND), "send-only copy") else { return };
    check_err!(
        sys::cap_mint(send_only, 9, Rights::SEND | Rights::RECEIVE),
        Error::InsufficientRights,
        "mint more rights than held"
    );
    check_err!(
        sys::cap_mint(send_only, 9, Rights::CONTROL),
        Error::InsufficientRights,
        "mint a right endpoints do not have"
    );
    check_err!(
        sys::cap_mint(user::abi::handles::SELF_TASK, 9, Rights::empty()),
        Error::WrongKind,
        "mint a task capability"
    );
    for h in [copy, send_only, badged] {
        check_ok!(sys::cap_delete(h), "delete");
    }
}

pub fn many() {
    // The server anywhere, half the clients pinned; then the server pinned
    // and the clients free (each answer may then move its client).
    many_clients(None, |c, cpus| if c % 2 == 1 { None } else { Some(c % cpus) }, 200);
    many_clients(Some(0), |_, _| None, 100);
}

/// `3 × cpus` clients placed by `place(client, cpus)` call one server
/// (pinned to `server_cpu` if given) `rounds` times each.
fn many_clients(server_cpu: Option<u64>, place: fn(u64, u64) -> Option<u64>, rounds: u64) {
    let Some(ep) = check_ok!(sys::endpoint_create(), "create an endpoint") else { return };
    let (_, cpus) = sys::cpu_info();
    let clients = 3 * cpus;
    let served = Arc::new(AtomicU64::new(0));
    let per_client: Arc<Vec<AtomicU64>> = Arc::new((0..clients).map(|_| AtomicU64::new(0)).collect());
    let (s, pc) = (served.clone(), per_client.clone());
    let server = Builder::new().affinity(server_cpu).spawn(move || {
        let mut r = check_ok!(sys::recv(ep), "server: first receive").unwrap_or_default();
        while r.msg.info.label != STOP {
            let (client, round) = (r.msg.words[0], r.msg.words[1]);
            // The client's own check words: they must arrive as sent.
            let ok = r.msg.words[2] == client.wrapping_mul(0x1_0001) ^ round && r.msg.words[5] == !round;
            check!(ok, "server: request {round} of client {client} arrives intact: {:?}", r.msg.words);
            if let Some(n) = pc.get(client as usize) {
                n.fetch_add(1, Ordering::Relaxed);
            }
            s.fetch_add(1, Ordering::Relaxed);
            let ans = Message::new(r.msg.info.label + 1, &[client, round, client * 1000 + round]);
            r = match sys::reply_recv(ep, r.reply, &ans) {
                Ok(next) => next,
                Err(e) => {
                    check!(false, "server: reply_recv failed with {e:?}");
                    return;
                }
            };
        }
        check_ok!(sys::reply(r.reply, &label(STOP)), "server: answer STOP");
    });
    let t0 = sys::time().0;
    let mut workers = Vec::new();
    for c in 0..clients {
        workers.push(Builder::new().affinity(place(c, cpus)).spawn(move || {
            for round in 0..rounds {
                let req = Message::new(10, &[c, round, c.wrapping_mul(0x1_0001) ^ round, 0, 0, !round]);
                let got = sys::call_ep(ep, &req).map(|m| (m.info.label, [m.words[0], m.words[1], m.words[2]]));
                if !check_eq!(got, Ok((11, [c, round, c * 1000 + round])), "client {c}: answer to call {round}") {
                    return;
                }
            }
        }));
    }
    for w in workers.into_iter().flat_map(|w| check_ok!(w, "start a client")) {
        w.join();
    }
    let us = sys::time().0 - t0;
    check_eq!(sys::call_ep(ep, &label(STOP)).map(|m| m.info.label), Ok(STOP), "server stops");
    if let Some(s) = check_ok!(server, "start the server") {
        s.join();
    }
    check_eq!(served.load(Ordering::Relaxed), clients * rounds, "calls served in all");
    for (c, n) in per_client.iter().enumerate() {
        check_eq!(n.load(Ordering::Relaxed), rounds, "calls served for client {c}");
    }
    let server_at = match server_cpu {
        Some(c) => alloc::format!("pinned to cpu {c}"),
        None => alloc::string::String::from("free to move"),
    };
    println!("{clients} clients on {cpus} cpus made {} calls to one server ({server_at}) in {} ms", clients * rounds, us / 1000);
    let _ = sys::cap_delete(ep);
}
