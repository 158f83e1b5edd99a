//! The wire format between the daemon and its clients: JSON lines, each in an envelope with
//! the protocol version. A client sends [`Request`]s, each with an id; the daemon sends
//! [`Frame`]s: the [`Reply`] to a request (with its id), or, once the client subscribed, the
//! engine's own [`Event`]s as they happen. The engine's state types are the wire types; no
//! side parses JSON by hand.
//!
//! A line longer than [`MAX_LINE`] is refused (the connection stays usable for the next
//! one); so is a line that is not a request of this version. Both sides frame lines with
//! [`encode`] and [`read_line`], the one codec of the wire.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};
use zeroize::{Zeroize, Zeroizing};

use crate::config::Secret;
use crate::engine::{Event, TunnelStatus};
use crate::prompt::{Answer, HostKeyAnswer};

/// The protocol version; a client of another version gets a clear error.
pub const VERSION: u32 = 2;
/// The longest line either side accepts from the other.
pub const MAX_LINE: usize = 64 * 1024;
/// The longest line a client accepts from the daemon (a status of many tunnels with logs).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Appends `value` as one line of JSON (with its newline) to `out`.
pub fn encode<T: Serialize>(value: &T, out: &mut Vec<u8>) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::other)?;
    out.push(b'\n');
    Ok(())
}

/// What [`read_line`] read into its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line, its newline included.
    Complete,
    /// The last bytes before the other side closed, with no newline.
    Unterminated,
    /// More than the limit before a newline: the line was read to its end and dropped (the
    /// buffer is empty); the next call reads the next line.
    TooLong,
    /// The other side closed.
    Eof,
}

/// Reads one line of at most `max` bytes (its newline not counted) into `buf`. The buffer's
/// old contents are zeroed first, as are the parts of a line too long (a line may carry an
/// answer's secret). Neither side ever holds more than `max + 1` bytes of a line.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    fn wipe(buf: &mut Vec<u8>) {
        buf.as_mut_slice().zeroize();
        buf.clear();
    }
    wipe(buf);
    let n = (&mut *r)
        .take(max as u64 + 1)
        .read_until(b'\n', buf)
        .await?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if buf.ends_with(b"\n") {
        return Ok(Line::Complete);
    }
    if buf.len() <= max {
        return Ok(Line::Unterminated);
    }
    // Skip the rest of that line, a bounded piece at a time.
    loop {
        wipe(buf);
        let n = (&mut *r).take(max as u64).read_until(b'\n', buf).await?;
        if n == 0 || buf.ends_with(b"\n") {
            wipe(buf);
            return Ok(Line::TooLong);
        }
    }
}

/// What a client asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Open tunnels by name (read from the daemon's config files); the reply comes when
    /// each is up or has failed. `for_secs` sets their time limit.
    Open {
        names: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_secs: Option<u64>,
        /// A local port in use is replaced by the next free one.
        #[serde(default)]
        port_fallback: bool,
        /// Read the config as `--no-exec` does (no ProxyCommand, Match exec or
        /// KnownHostsCommand runs), whatever the daemon was started with.
        #[serde(default)]
        no_exec: bool,
        /// Open them on demand (`warren up --on-demand`), whatever their entries say.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        on_demand: bool,
    },
    /// Push back tunnels' time limits (by their max_duration again, or `secs`).
    Extend {
        names: Vec<String>,
        #[serde(default)]
        secs: Option<u64>,
    },
    /// Close tunnels by name.
    Close {
        names: Vec<String>,
    },
    CloseAll,
    Status,
    /// From now on, the engine's events come on this connection too; with `answers`, this
    /// client answers questions (it gets them, and the daemon asks while it is there).
    Subscribe {
        #[serde(default)]
        answers: bool,
    },
    /// The answer to a question (the [`Event::Prompt`] with this id). Not `id`: that is
    /// the request's own, in the envelope.
    Answer {
        question: u64,
        answer: WireAnswer,
    },
    /// Re-establish these tunnels' sessions now (every one when empty).
    Reconnect {
        names: Vec<String>,
    },
}

/// A request with its envelope.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    #[serde(default)]
    pub id: u64,
    #[serde(flatten)]
    pub req: Request,
}

/// The daemon's answer to one request.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub tunnels: Vec<TunnelStatus>,
}

impl Reply {
    pub fn error(e: impl Into<String>) -> Self {
        Reply {
            ok: false,
            error: Some(e.into()),
            tunnels: Vec::new(),
        }
    }

    pub fn tunnels(tunnels: Vec<TunnelStatus>) -> Self {
        Reply {
            ok: true,
            error: None,
            tunnels,
        }
    }
}

/// What the daemon sends.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "frame", rename_all = "snake_case")]
pub enum Frame {
    Reply {
        v: u32,
        /// The id of the request this answers (0 for an unreadable line).
        id: u64,
        #[serde(flatten)]
        reply: Reply,
    },
    Event {
        v: u32,
        event: Event,
    },
}

/// An answer on the wire. Unlike [`Answer`] (whose secrets never serialize), it carries the
/// secret itself: it goes only through the daemon's own socket (0600, in a 0700 directory
/// of the user's) and is never logged; its Debug shows `***`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireAnswer {
    HostKey { answer: HostKeyAnswer },
    Secret { value: Zeroizing<String> },
    Responses { values: Vec<Zeroizing<String>> },
    Cancel,
}

impl std::fmt::Debug for WireAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireAnswer::HostKey { answer } => write!(f, "HostKey({answer:?})"),
            WireAnswer::Secret { .. } => f.write_str("Secret(***)"),
            WireAnswer::Responses { values } => write!(f, "Responses({} x ***)", values.len()),
            WireAnswer::Cancel => f.write_str("Cancel"),
        }
    }
}

impl From<Answer> for WireAnswer {
    fn from(a: Answer) -> Self {
        match a {
            Answer::HostKey(answer) => WireAnswer::HostKey { answer },
            Answer::Secret(s) => WireAnswer::Secret { value: s.copied() },
            Answer::Responses(r) => WireAnswer::Responses {
                values: r.iter().map(Secret::copied).collect(),
            },
            Answer::Cancel => WireAnswer::Cancel,
        }
    }
}

impl From<WireAnswer> for Answer {
    fn from(a: WireAnswer) -> Self {
        match a {
            WireAnswer::HostKey { answer } => Answer::HostKey(answer),
            WireAnswer::Secret { value } => Answer::Secret(Secret::from_zeroizing(value)),
            WireAnswer::Responses { values } => {
                Answer::Responses(values.into_iter().map(Secret::from_zeroizing).collect())
            }
            WireAnswer::Cancel => Answer::Cancel,
        }
    }
}

/// Reads one request line: `Err` is the reply to send back (the connection stays usable).
pub fn parse_request(line: &str) -> Result<Envelope, Reply> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| Reply::error(format!("not a JSON request: {e}")))?;
    let v = value.get("v").and_then(|v| v.as_u64()).unwrap_or(0);
    if v != u64::from(VERSION) {
        return Err(Reply::error(format!(
            "protocol version {v}, but this daemon speaks version {VERSION}: run the same warren for both (warren down --all, then start again)"
        )));
    }
    serde_json::from_value(value)
        .map_err(|e| Reply::error(format!("not a request this daemon knows: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_framed_and_bounded() {
        let mut wire = Vec::new();
        encode(&serde_json::json!({"a": 1}), &mut wire).expect("encode");
        wire.extend_from_slice(&[b'x'; 40]);
        wire.extend_from_slice(b"\nshort\nlast");
        let mut r = tokio::io::BufReader::new(&wire[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, &mut buf, 16).await.ok(),
            Some(Line::Complete)
        );
        assert_eq!(buf, b"{\"a\":1}\n");
        assert_eq!(
            read_line(&mut r, &mut buf, 16).await.ok(),
            Some(Line::TooLong)
        );
        assert!(buf.is_empty());
        assert_eq!(
            read_line(&mut r, &mut buf, 16).await.ok(),
            Some(Line::Complete)
        );
        assert_eq!(buf, b"short\n");
        assert_eq!(
            read_line(&mut r, &mut buf, 16).await.ok(),
            Some(Line::Unterminated)
        );
        assert_eq!(buf, b"last");
        assert_eq!(read_line(&mut r, &mut buf, 16).await.ok(), Some(Line::Eof));
        // A too-long line at the end, with no newline, is dropped too.
        let long = [b'y'; 100];
        let mut r = tokio::io::BufReader::new(&long[..]);
        assert_eq!(
            read_line(&mut r, &mut buf, 16).await.ok(),
            Some(Line::TooLong)
        );
        assert_eq!(read_line(&mut r, &mut buf, 16).await.ok(), Some(Line::Eof));
    }

    #[test]
    fn requests_and_frames_round_trip() {
        let line = serde_json::to_string(&Envelope {
            v: VERSION,
            id: 7,
            req: Request::Open {
                names: vec!["subscribe".into()],
                for_secs: None,
                port_fallback: false,
                on_demand: false,
                no_exec: false,
            },
        })
        .unwrap_or_default();
        let e = parse_request(&line).expect("parses");
        assert_eq!(e.id, 7);
        assert!(matches!(e.req, Request::Open { names, .. } if names == ["subscribe"]));
        assert!(parse_request("{\"v\": 1, \"cmd\": \"status\"}").is_err());
        assert!(parse_request("not json").is_err());
        let secret = WireAnswer::Secret {
            value: String::from("hunter2").into(),
        };
        assert!(!format!("{secret:?}").contains("hunter2"));
        // An answer keeps both ids: the request's and the question's.
        let line = serde_json::to_string(&Envelope {
            v: VERSION,
            id: 3,
            req: Request::Answer {
                question: 9,
                answer: secret,
            },
        })
        .unwrap_or_default();
        let e = parse_request(&line).expect("parses");
        assert_eq!(e.id, 3);
        assert!(matches!(e.req, Request::Answer { question: 9, .. }));
    }
}
