//! The sidecar's guard on its input stream. Every frame from Neovim is cut
//! out of stdin here before nvim-rs sees it (nvim-rs ends its loop on the
//! first frame it cannot read), and checked:
//!
//! - a well-formed msgpack-RPC request, notification or response is passed
//!   on unchanged;
//! - a request whose msgid is readable but whose method, parameters, length
//!   or nesting are wrong is turned into a call of [`MALFORMED`], which
//!   answers with an error: the editor gets a reply and the sidecar keeps
//!   serving;
//! - any other complete frame (not an array, an unknown message type, no
//!   readable msgid, a malformed notification) is logged and dropped: its
//!   end is known, so the stream stays in step;
//! - a response is passed on only when it answers a request the sidecar
//!   sent ([`relay`] notes each one on its way to stdout); any other is
//!   dropped (nvim-rs would end on it);
//! - bytes that are not msgpack at all (the reserved marker 0xc1), a frame
//!   declaring more than [`MAX_FRAME`] bytes, or stdin closing inside a
//!   frame cannot be resynchronised: the guard reports why, and the
//!   sidecar logs it and exits with a non-zero status (the editor says so).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rmpv::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Msgids of the requests the sidecar sent and Neovim has not answered.
#[derive(Clone, Default)]
pub struct Pending(Arc<Mutex<HashSet<u64>>>);

impl Pending {
    fn sent(&self, msgid: u64) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(msgid);
    }

    fn answered(&self, msgid: u64) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&msgid)
    }
}

/// Copies the sidecar's own frames from `input` (the pipe nvim-rs writes
/// to) to `output` (stdout), noting the msgid of each request it sends.
/// Blocking; runs on its own thread until `input` closes.
pub fn relay(
    mut input: impl std::io::Read,
    mut output: impl std::io::Write,
    pending: Pending,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut scanner = Scanner::new();
    loop {
        let mut start = 0;
        while let Scan::Complete { len, .. } = scanner.advance(&buf[start..]) {
            scanner = Scanner::new();
            let frame = &buf[start..start + len];
            if let Some((0, Some(msgid))) = head(frame) {
                // Noted before Neovim can see it, so before it can answer.
                pending.sent(msgid);
            }
            start += len;
        }
        if start > 0 {
            output.write_all(&buf[..start])?;
            output.flush()?;
            buf.drain(..start);
        }
        let n = input.read(&mut chunk)?;
        if n == 0 {
            output.write_all(&buf)?;
            return output.flush();
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The method a malformed request is turned into; its one parameter is
/// the reason. Not a name Neovim can send (it starts with a NUL byte).
pub const MALFORMED: &str = "\u{0}malformed";

/// Largest frame accepted (requests are small; list saves are the largest).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Deepest nesting accepted inside a frame.
pub const MAX_DEPTH: usize = 64;

/// How the input stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Stdin closed between frames: the editor is gone.
    Closed,
    /// The stream cannot be resynchronised; why.
    Broken(String),
}

/// What the start of a buffer holds.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// One whole value of `len` bytes, nested `too_deep` beyond
    /// [`MAX_DEPTH`] or not.
    Complete { len: usize, too_deep: bool },
    /// At least this many bytes are needed.
    Incomplete(usize),
    /// Not msgpack, or too large.
    Invalid(String),
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b))
}

/// Finds the end of the first msgpack value in `buf` without recursion
/// (nesting costs no stack), tracking depth up to [`MAX_DEPTH`].
#[cfg(test)]
fn scan(buf: &[u8]) -> Scan {
    Scanner::new().advance(buf)
}

/// A scan of one frame that goes on where the last call stopped: a large
/// frame arriving in 64 KiB pieces is read once, not once per piece (a
/// 2 MB list reply cost 10% of the sidecar's time rescanned).
struct Scanner {
    /// Offset of the next value to read (may lie past the bytes so far).
    pos: usize,
    /// Values still to read in the whole frame.
    remaining: u64,
    /// Values still to read in each open container, up to MAX_DEPTH + 1.
    open: Vec<u64>,
    too_deep: bool,
}

impl Scanner {
    fn new() -> Self {
        Scanner {
            pos: 0,
            remaining: 1,
            open: Vec::new(),
            too_deep: false,
        }
    }

    /// Scans on; `buf` starts where the frame starts, and holds at least
    /// the bytes of the previous call. After `Complete` or `Invalid` the
    /// scanner must be replaced for the next frame.
    fn advance(&mut self, buf: &[u8]) -> Scan {
        while self.remaining > 0 {
            let pos = self.pos;
            let Some(&marker) = buf.get(pos) else {
                return Scan::Incomplete(pos + 1);
            };
            // (header bytes after the marker, payload length, children)
            let need = |n: usize| -> Option<u64> { buf.get(pos + 1..pos + 1 + n).map(be) };
            let (header, payload, children): (usize, u64, u64) = match marker {
                0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => (0, 0, 0),
                0x80..=0x8f => (0, 0, 2 * u64::from(marker & 0x0f)),
                0x90..=0x9f => (0, 0, u64::from(marker & 0x0f)),
                0xa0..=0xbf => (0, u64::from(marker & 0x1f), 0),
                0xc1 => return Scan::Invalid(format!("byte 0xc1 at offset {pos} is not msgpack")),
                0xc4 | 0xd9 => match need(1) {
                    Some(n) => (1, n, 0),
                    None => return Scan::Incomplete(pos + 9),
                },
                0xc5 | 0xda => match need(2) {
                    Some(n) => (2, n, 0),
                    None => return Scan::Incomplete(pos + 9),
                },
                0xc6 | 0xdb => match need(4) {
                    Some(n) => (4, n, 0),
                    None => return Scan::Incomplete(pos + 9),
                },
                0xc7 => match need(1) {
                    Some(n) => (2, n, 0),
                    None => return Scan::Incomplete(pos + 9),
                },
                0xc8 => match need(2) {
                    Some(n) => (3, n, 0),
                    None => return Scan::Incomplete(pos + 9),
                },
                0xc9 => match need(4) {
                    Some(n) => (5, n, 0),
                    None => return Scan::Incomplete(pos + 9),
                },
                0xca => (0, 4, 0),
                0xcb => (0, 8, 0),
                0xcc | 0xd0 => (0, 1, 0),
                0xcd | 0xd1 => (0, 2, 0),
                0xce | 0xd2 => (0, 4, 0),
                0xcf | 0xd3 => (0, 8, 0),
                0xd4 => (1, 1, 0),
                0xd5 => (1, 2, 0),
                0xd6 => (1, 4, 0),
                0xd7 => (1, 8, 0),
                0xd8 => (1, 16, 0),
                0xdc => match need(2) {
                    Some(n) => (2, 0, n),
                    None => return Scan::Incomplete(pos + 9),
                },
                0xdd => match need(4) {
                    Some(n) => (4, 0, n),
                    None => return Scan::Incomplete(pos + 9),
                },
                0xde => match need(2) {
                    Some(n) => (2, 0, 2 * n),
                    None => return Scan::Incomplete(pos + 9),
                },
                0xdf => match need(4) {
                    Some(n) => (4, 0, 2 * n),
                    None => return Scan::Incomplete(pos + 9),
                },
            };
            let end = (pos as u64)
                .saturating_add(1 + header as u64)
                .saturating_add(payload);
            // Every value still owed takes at least one byte.
            if end.saturating_add(self.remaining - 1 + children) > MAX_FRAME as u64 {
                return Scan::Invalid(format!("a frame declares more than {MAX_FRAME} bytes"));
            }
            self.pos = end as usize;
            self.remaining = self.remaining - 1 + children;
            if !self.too_deep {
                if let Some(top) = self.open.last_mut() {
                    *top -= 1;
                }
                if children > 0 {
                    self.open.push(children);
                    if self.open.len() > MAX_DEPTH {
                        self.too_deep = true;
                        self.open.clear();
                    }
                }
                while self.open.last() == Some(&0) {
                    self.open.pop();
                }
            }
        }
        if self.pos > buf.len() {
            return Scan::Incomplete(self.pos);
        }
        Scan::Complete {
            len: self.pos,
            too_deep: self.too_deep,
        }
    }
}

/// An unsigned integer at `pos`, and where the next value starts.
fn read_uint(buf: &[u8], pos: usize) -> Option<(u64, usize)> {
    let marker = *buf.get(pos)?;
    let width = match marker {
        0x00..=0x7f => return Some((u64::from(marker), pos + 1)),
        0xcc => 1,
        0xcd => 2,
        0xce => 4,
        0xcf => 8,
        _ => return None,
    };
    Some((be(buf.get(pos + 1..pos + 1 + width)?), pos + 1 + width))
}

/// The message type and msgid at the start of a frame (`[type, msgid, …]`),
/// read without decoding the rest.
fn head(frame: &[u8]) -> Option<(u64, Option<u64>)> {
    let first = *frame.first()?;
    let start = match first {
        0x90..=0x9f => 1,
        0xdc => 3,
        0xdd => 5,
        _ => return None,
    };
    let (kind, next) = read_uint(frame, start)?;
    Some((kind, read_uint(frame, next).map(|(id, _)| id)))
}

/// What to do with one whole frame.
#[derive(Debug, PartialEq)]
enum Verdict {
    Pass,
    /// Answer msgid with this error.
    Refuse(u64, String),
    /// Drop, with the reason for the log.
    Drop(String),
}

fn judge(frame: &[u8], too_deep: bool, pending: &Pending) -> Verdict {
    if too_deep {
        let why = format!("a frame nested deeper than {MAX_DEPTH} levels");
        return match head(frame) {
            Some((0, Some(msgid))) => Verdict::Refuse(msgid, why),
            _ => Verdict::Drop(why),
        };
    }
    let value = match rmpv::decode::read_value(&mut &frame[..]) {
        Ok(v) => v,
        Err(e) => return Verdict::Drop(format!("unreadable frame: {e}")),
    };
    let Value::Array(items) = value else {
        return Verdict::Drop("a frame that is not an array".into());
    };
    let kind = items.first().and_then(Value::as_u64);
    let msgid = items.get(1).and_then(Value::as_u64);
    let method_ok = |v: Option<&Value>| matches!(v, Some(Value::String(s)) if s.is_str());
    let params_ok = |v: Option<&Value>| matches!(v, Some(Value::Array(_)));
    match (kind, msgid) {
        (Some(0), Some(msgid)) => {
            if items.len() != 4 {
                Verdict::Refuse(msgid, format!("a request has 4 items, not {}", items.len()))
            } else if !method_ok(items.get(2)) {
                Verdict::Refuse(msgid, "the method name is not a UTF-8 string".into())
            } else if !params_ok(items.get(3)) {
                Verdict::Refuse(msgid, "the parameters are not an array".into())
            } else if items.get(2).and_then(Value::as_str) == Some(MALFORMED) {
                Verdict::Refuse(msgid, "unknown method".into())
            } else {
                Verdict::Pass
            }
        }
        (Some(0), None) => Verdict::Drop("a request without a valid msgid".into()),
        (Some(1), Some(msgid)) if items.len() == 4 => {
            if pending.answered(msgid) {
                Verdict::Pass
            } else {
                Verdict::Drop(format!("a response to no request (msgid {msgid})"))
            }
        }
        (Some(1), _) => Verdict::Drop("a malformed response".into()),
        (Some(2), _) if items.len() == 3 && method_ok(items.get(1)) && params_ok(items.get(2)) => {
            Verdict::Pass
        }
        (Some(2), _) => Verdict::Drop("a malformed notification".into()),
        (Some(other), _) => Verdict::Drop(format!("unknown message type {other}")),
        (None, _) => Verdict::Drop("a frame without a message type".into()),
    }
}

/// Copies whole, checked frames from `input` to `output` until the input
/// ends; see the module documentation.
pub async fn guard(
    mut input: impl AsyncRead + Unpin,
    mut output: impl AsyncWrite + Unpin,
    pending: Pending,
) -> End {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut scanner = Scanner::new();
    loop {
        // Pass on every whole frame in the buffer.
        let mut start = 0;
        let wanted = loop {
            match scanner.advance(&buf[start..]) {
                Scan::Incomplete(need) => break start + need,
                Scan::Invalid(why) => return End::Broken(why),
                Scan::Complete { len, too_deep } => {
                    scanner = Scanner::new();
                    let frame = &buf[start..start + len];
                    let written = match judge(frame, too_deep, &pending) {
                        Verdict::Pass => output.write_all(frame).await,
                        Verdict::Refuse(msgid, why) => {
                            tracing::warn!(msgid, reason = %why, "malformed request answered with an error");
                            let call = Value::Array(vec![
                                Value::from(0),
                                Value::from(msgid),
                                Value::from(MALFORMED),
                                Value::Array(vec![Value::from(format!(
                                    "malformed request: {why}"
                                ))]),
                            ]);
                            let mut bytes = Vec::new();
                            match rmpv::encode::write_value(&mut bytes, &call) {
                                Ok(()) => output.write_all(&bytes).await,
                                Err(_) => Ok(()),
                            }
                        }
                        Verdict::Drop(why) => {
                            tracing::warn!(reason = %why, bytes = len, "malformed frame dropped");
                            Ok(())
                        }
                    };
                    if written.is_err() {
                        // The RPC loop is gone; nothing more to pass on.
                        return End::Closed;
                    }
                    start += len;
                }
            }
        };
        buf.drain(..start);
        let wanted = wanted - start;
        // Read at least up to where the scan stopped before scanning again,
        // so a large frame is not rescanned for every chunk.
        loop {
            let n = match input.read(&mut chunk).await {
                Ok(n) => n,
                Err(e) => return End::Broken(format!("cannot read stdin: {e}")),
            };
            if n == 0 {
                return if buf.is_empty() {
                    End::Closed
                } else {
                    End::Broken(format!(
                        "stdin closed inside a frame ({} bytes unread)",
                        buf.len()
                    ))
                };
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() >= wanted {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, v).unwrap();
        out
    }

    #[test]
    fn scan_finds_frame_ends_and_depth() {
        let req = encode(&Value::Array(vec![
            0.into(),
            1.into(),
            "hello".into(),
            Value::Array(vec![Value::Map(vec![("a".into(), 1.5.into())])]),
        ]));
        let mut two = req.clone();
        two.extend_from_slice(&req);
        assert_eq!(
            scan(&two),
            Scan::Complete {
                len: req.len(),
                too_deep: false
            }
        );
        for cut in 0..req.len() {
            assert!(
                matches!(scan(&req[..cut]), Scan::Incomplete(n) if n > cut),
                "cut at {cut}"
            );
        }
        let mut deep = vec![0x91; 2000];
        deep.push(0xc0);
        assert_eq!(
            scan(&deep),
            Scan::Complete {
                len: 2001,
                too_deep: true
            }
        );
        assert!(matches!(scan(&[0xc1]), Scan::Invalid(_)));
        assert!(matches!(
            scan(&[0xc6, 0xff, 0xff, 0xff, 0xff]),
            Scan::Invalid(_)
        ));
    }

    #[test]
    fn a_scan_resumed_piece_by_piece_finds_the_same_end() {
        let lines: Vec<Value> = (0..300)
            .map(|i| Value::from(format!("/id{i} [ ] task {i}")))
            .collect();
        let reply = encode(&Value::Array(vec![
            1.into(),
            9.into(),
            Value::Nil,
            Value::Map(vec![("lines".into(), Value::Array(lines))]),
        ]));
        let mut deep = vec![0x91; 200];
        deep.push(0xc0);
        for (frame, too_deep) in [(&reply, false), (&deep, true)] {
            for step in [1, 7, 64, 1000] {
                let mut scanner = Scanner::new();
                let mut have = 0;
                let end = loop {
                    have = (have + step).min(frame.len());
                    match scanner.advance(&frame[..have]) {
                        Scan::Incomplete(n) => assert!(n > have, "step {step} at {have}"),
                        other => break other,
                    }
                };
                assert_eq!(
                    end,
                    Scan::Complete {
                        len: frame.len(),
                        too_deep
                    },
                    "step {step}"
                );
            }
        }
    }

    #[test]
    fn judge_sorts_frames() {
        let v = |v: Value| encode(&v);
        let arr = Value::Array;
        let pending = Pending::default();
        let judge = |frame: &[u8], deep: bool| super::judge(frame, deep, &pending);
        assert_eq!(
            judge(
                &v(arr(vec![0.into(), 3.into(), "m".into(), arr(vec![])])),
                false
            ),
            Verdict::Pass
        );
        assert!(matches!(
            judge(
                &v(arr(vec![0.into(), 3.into(), 5.into(), arr(vec![])])),
                false
            ),
            Verdict::Refuse(3, _)
        ));
        assert!(matches!(
            judge(&v(arr(vec![0.into(), 3.into(), "m".into()])), false),
            Verdict::Refuse(3, _)
        ));
        assert!(matches!(
            judge(&v(arr(vec![9.into(), 3.into()])), false),
            Verdict::Drop(_)
        ));
        assert!(matches!(judge(&v(42.into()), false), Verdict::Drop(_)));
        let response = v(arr(vec![1.into(), 7.into(), Value::Nil, Value::Nil]));
        assert!(matches!(judge(&response, false), Verdict::Drop(_)));
        pending.sent(7);
        assert_eq!(judge(&response, false), Verdict::Pass);
        assert!(matches!(judge(&response, false), Verdict::Drop(_)));
    }
}
