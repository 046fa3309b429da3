//! Message helpers shared by the scenarios: a request whose every word
//! depends on a sequence number, the answer a server computes from it, and
//! the labels of the small protocols between utest and its helpers.

use user::abi::ipc::Message;

/// Label of a ping request (the sequence number is added, modulo 1000).
pub const PING: u32 = 0x1000;
/// Label that ends a server loop.
pub const STOP: u32 = 0xdead;

/// A request for round `i`: all six words and the label depend on `i`.
pub fn request(i: u64) -> Message {
    Message::new(
        PING + (i % 1000) as u32,
        &[i, !i, i.rotate_left(17), i ^ 0xdead_beef_f00d_cafe, i.wrapping_mul(0x9e37_79b9_7f4a_7c15), u64::MAX - i],
    )
}

/// The answer to `req`: every word and the label transformed.
pub fn answer(req: &Message) -> Message {
    let mut words = [0u64; 6];
    for (k, w) in words.iter_mut().enumerate() {
        *w = req.words[k].wrapping_add(k as u64 + 1).rotate_left(7) ^ 0x5555_aaaa_5555_aaaa;
    }
    Message::new(req.info.label ^ 0x5a5a, &words)
}

/// A message with only a label.
pub fn label(l: u32) -> Message {
    Message::new(l, &[])
}
