//! The capability server: a helper task that receives capabilities over
//! its PARENT endpoint and reports what arrived in its own table (kind,
//! rights, badge, whether it works), looks up handles on request (to show
//! that revocation reached it), and sends capabilities back. Used by the
//! `ipc-cap` and `caps` scenarios through [`Remote`].

use crate::msg::{STOP, label};
use user::abi::cap::{Handle, Kind, Rights};
use user::abi::handles::PARENT;
use user::abi::ipc::Message;
use user::{Error, sys};

/// Report on the capability carried by this message; word 0 is a token,
/// word 1 asks to use an endpoint capability (call it with the token).
pub const CHECK: u32 = 0x100;
/// Look up handle word 0 in the server's table.
pub const INFO: u32 = 0x101;
/// Answer with a new endpoint capability (SEND, GRANT), then serve one
/// call on it.
pub const GIVE_BACK: u32 = 0x102;
/// Try to answer with a capability lacking GRANT; report the error.
pub const NO_GRANT_BACK: u32 = 0x103;
/// Report how many messages arrived so far.
pub const COUNT: u32 = 0x104;
/// Answer the call whose reply capability this message carries (word 0
/// goes into the answer), then answer this message.
pub const ANSWER_FOR_ME: u32 = 0x105;
/// Label of calls the server makes through endpoint capabilities it got.
pub const VIA_CAP: u32 = 0x1a1;
/// Word the server answers calls on its given-back endpoint with.
pub const GIVEN_BACK_WORD: u64 = 0xfeed_f00d;

/// Error codes travel as this bit plus the code.
const ERR: u64 = 1 << 63;

fn encode<T>(r: &Result<T, Error>) -> u64 {
    match r {
        Ok(_) => 0,
        Err(e) => ERR | e.code(),
    }
}

/// The error an encoded word carries, if any.
pub fn decode_err(w: u64) -> Option<Error> {
    (w & ERR != 0).then(|| Error::from_code(w & !ERR).and_then(|r| r.err()).unwrap_or(Error::InvalidArgument))
}

/// The helper's main loop.
pub fn server() -> i64 {
    let mut count = 0u64;
    loop {
        let Ok(r) = sys::recv(PARENT) else { return 3 };
        count += 1;
        let m = &r.msg;
        let answer = match m.info.label {
            STOP => {
                let _ = sys::reply(r.reply, &label(STOP));
                return 0;
            }
            CHECK => {
                let info = sys::cap_info(m.cap);
                let (kind, rights, badge) = info.map_or((0, 0, 0), |(k, r, b)| (k as u64, r.bits(), b));
                let used = if m.words[1] == 1 {
                    match sys::call_ep(m.cap, &Message::new(VIA_CAP, &[m.words[0]])) {
                        Ok(a) => a.words[0],
                        Err(e) => ERR | e.code(),
                    }
                } else {
                    0
                };
                Message::new(CHECK, &[m.info.has_cap as u64, kind, rights, badge, used, m.cap.raw()])
            }
            INFO => {
                let info = Handle::from_raw(m.words[0]).and_then(sys::cap_info);
                let (kind, rights, badge) = info.map_or((0, 0, 0), |(k, r, b)| (k as u64, r.bits(), b));
                Message::new(INFO, &[encode(&info), kind, rights, badge])
            }
            GIVE_BACK => {
                let Ok(ep) = sys::endpoint_create() else { return 4 };
                let Ok(send) = sys::cap_copy(ep, Rights::SEND | Rights::GRANT) else { return 5 };
                let sent = sys::reply(r.reply, &Message::new(GIVE_BACK, &[send.raw()]).with_cap(send));
                if sent.is_ok() {
                    // Serve the one call the parent makes through it.
                    if let Ok(c) = sys::recv(ep) {
                        let _ = sys::reply(c.reply, &Message::new(GIVE_BACK, &[GIVEN_BACK_WORD, c.badge]));
                    }
                }
                let _ = sys::cap_delete(send);
                let _ = sys::cap_delete(ep);
                continue;
            }
            NO_GRANT_BACK => {
                let Ok(ep) = sys::endpoint_create() else { return 4 };
                let Ok(no_grant) = sys::cap_copy(ep, Rights::SEND) else { return 5 };
                let tried = sys::reply(r.reply, &Message::new(NO_GRANT_BACK, &[]).with_cap(no_grant));
                let _ = sys::cap_delete(no_grant);
                let _ = sys::cap_delete(ep);
                Message::new(NO_GRANT_BACK, &[encode(&tried)])
            }
            COUNT => Message::new(COUNT, &[count]),
            ANSWER_FOR_ME => {
                let done = sys::reply(m.cap, &Message::new(ANSWER_FOR_ME, &[m.words[0]]));
                Message::new(ANSWER_FOR_ME, &[encode(&done)])
            }
            other => Message::new(other, &[ERR | Error::InvalidArgument.code()]),
        };
        let _ = sys::reply(r.reply, &answer);
    }
}

/// What the server reported about a capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// The message said it carried a capability.
    pub has_cap: bool,
    /// `cap_info` in the server: kind, rights, badge (kind `None` if it
    /// failed).
    pub kind: Option<Kind>,
    /// Rights.
    pub rights: Rights,
    /// Badge.
    pub badge: u64,
    /// Answer word of the call made through it (or an error).
    pub used: Result<u64, Error>,
    /// The handle in the server's table.
    pub handle: u64,
}

/// The parent's side of a capability server reached through `ep`.
#[derive(Clone, Copy)]
pub struct Remote {
    /// The endpoint the server receives on.
    pub ep: Handle,
}

impl Remote {
    /// Sends `cap` (token `token`; `use_it`: the server calls it) and
    /// returns the server's report.
    pub fn check(&self, cap: Handle, token: u64, use_it: bool) -> Result<Report, Error> {
        let m = sys::call_ep(self.ep, &Message::new(CHECK, &[token, use_it as u64]).with_cap(cap))?;
        let w = m.words;
        Ok(Report {
            has_cap: w[0] == 1,
            kind: Kind::from_raw(w[1]).ok(),
            rights: Rights::from_bits_truncate(w[2]),
            badge: w[3],
            used: decode_err(w[4]).map_or(Ok(w[4]), Err),
            handle: w[5],
        })
    }

    /// `cap_info` of `handle` in the server's table.
    pub fn info(&self, handle: u64) -> Result<(Kind, Rights, u64), Error> {
        let m = sys::call_ep(self.ep, &Message::new(INFO, &[handle]))?;
        if let Some(e) = decode_err(m.words[0]) {
            return Err(e);
        }
        Ok((Kind::from_raw(m.words[1])?, Rights::from_bits_truncate(m.words[2]), m.words[3]))
    }

    /// Messages the server received so far (this one included).
    pub fn count(&self) -> Result<u64, Error> {
        Ok(sys::call_ep(self.ep, &label(COUNT))?.words[0])
    }

    /// Stops the server.
    pub fn stop(&self) -> Result<(), Error> {
        sys::call_ep(self.ep, &label(STOP)).map(|_| ())
    }
}
