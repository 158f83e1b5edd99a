//! PostgreSQL's wire format for the probe, as pure functions over bytes: the frontend
//! messages and the backend framing come from `postgres-protocol` (the crate tokio-postgres is
//! built on); warren adds only the checks a hostile server needs before the crate sees a
//! message (a tag a server may send during startup, a length from 4 to [`MESSAGE_CAP`], so
//! the crate never reserves what a server announces) and the reading of an error's fields
//! for the diagnosis.

use std::fmt;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::{ErrorFields, Message};
use postgres_protocol::message::frontend;

use super::wire::MESSAGE_CAP;

/// Why the bytes are not a PostgreSQL message the probe can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A type byte no server sends during startup: another protocol, or garbage.
    NotPostgres(u8),
    /// A length below 4 (it counts itself) .
    BadLength { tag: u8, len: u32 },
    /// A message longer than [`MESSAGE_CAP`].
    TooLong { tag: u8, len: u32 },
    /// The body does not match its type.
    Malformed { tag: u8, why: String },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |t: &u8| crate::text::escape(&char::from(*t).to_string()).into_owned();
        match self {
            FrameError::NotPostgres(t) => write!(
                f,
                "a message of type 0x{t:02x}, which PostgreSQL does not send at login"
            ),
            FrameError::BadLength { tag, len } => write!(
                f,
                "a '{}' message with the impossible length {len} (at least 4)",
                name(tag)
            ),
            FrameError::TooLong { tag, len } => write!(
                f,
                "a '{}' message of {len} bytes (warren accepts up to {} KiB)",
                name(tag),
                MESSAGE_CAP >> 10
            ),
            FrameError::Malformed { tag, why } => {
                write!(f, "a malformed '{}' message ({why})", name(tag))
            }
        }
    }
}

/// The type bytes a server sends before the login is done: authentication, error, notice,
/// parameter status, backend key, ready for query, protocol negotiation.
const STARTUP_TAGS: &[u8] = b"RENSKZv";

/// Takes one whole message off the front of `buf`; `Ok(None)` when more bytes are needed.
pub fn next_message(buf: &mut BytesMut) -> Result<Option<Message>, FrameError> {
    let Some(head) = buf.get(..5) else {
        return Ok(None);
    };
    let tag = head[0];
    if !STARTUP_TAGS.contains(&tag) {
        return Err(FrameError::NotPostgres(tag));
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if len < 4 {
        return Err(FrameError::BadLength { tag, len });
    }
    if len as usize > MESSAGE_CAP {
        return Err(FrameError::TooLong { tag, len });
    }
    if buf.len() < len as usize + 1 {
        return Ok(None);
    }
    Message::parse(buf).map_err(|e| FrameError::Malformed {
        tag,
        why: e.to_string(),
    })
}

/// The bytes still needed before `buf` may hold a whole message (at least 1).
pub fn wanted(buf: &[u8]) -> usize {
    match buf.get(1..5) {
        Some(l) => (u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize + 1)
            .min(MESSAGE_CAP + 1)
            .saturating_sub(buf.len())
            .max(1),
        None => 5 - buf.len(),
    }
}

/// The fields of an ErrorResponse or NoticeResponse that a diagnosis quotes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PgError {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

/// Reads an error's fields; a malformed list keeps what came before the fault.
pub fn error_fields(mut fields: ErrorFields<'_>) -> PgError {
    let mut e = PgError::default();
    while let Ok(Some(f)) = fields.next() {
        let v = String::from_utf8_lossy(f.value_bytes()).into_owned();
        match f.type_() {
            b'S' => e.severity = v,
            b'C' => e.code = v,
            b'M' => e.message = v,
            b'D' => e.detail = Some(v),
            b'H' => e.hint = Some(v),
            _ => {}
        }
    }
    e
}

/// What the server answered to the SSLRequest, from every byte read for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SslAnswer {
    /// 'S': it will speak TLS next.
    Yes,
    /// 'N': it does not offer TLS.
    No,
    /// An ErrorResponse: a server too old for the SSLRequest (or one refusing us outright).
    Refused(PgError),
    /// Anything else, including 'S' or 'N' followed by more bytes (a server must wait for the
    /// TLS handshake: bytes after the answer were not sent by PostgreSQL, CVE-2021-23222).
    Other,
}

pub fn ssl_answer(b: &[u8]) -> SslAnswer {
    match b {
        [b'S'] => SslAnswer::Yes,
        [b'N'] => SslAnswer::No,
        [b'E', ..] => {
            let mut buf = BytesMut::from(b);
            match next_message(&mut buf) {
                Ok(Some(Message::ErrorResponse(body))) => {
                    SslAnswer::Refused(error_fields(body.fields()))
                }
                _ => SslAnswer::Other,
            }
        }
        _ => SslAnswer::Other,
    }
}

/// Whether the bytes so far are enough to judge the SSLRequest's answer.
pub fn ssl_answer_complete(b: &[u8]) -> bool {
    match b.first() {
        None => false,
        Some(b'E') => wanted(b) == 0 || b.len() > MESSAGE_CAP,
        Some(_) => true,
    }
}

pub fn ssl_request() -> Vec<u8> {
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    buf.to_vec()
}

/// The startup message for `user` and `database`.
pub fn startup(user: &str, database: &str) -> Result<Vec<u8>, String> {
    let mut buf = BytesMut::new();
    frontend::startup_message(
        [
            ("user", user),
            ("database", database),
            ("application_name", "warren doctor"),
        ],
        &mut buf,
    )
    .map_err(|e| format!("the user or database name cannot be sent: {e}"))?;
    Ok(buf.to_vec())
}

/// Every message in `bytes` as the probe reads them, stopping at the first fault: what the
/// fuzz target and the property tests run (no panic, whatever the bytes).
pub fn read_all(bytes: &[u8]) -> (Vec<String>, Option<FrameError>) {
    let mut buf = BytesMut::from(bytes);
    let mut seen = Vec::new();
    loop {
        match next_message(&mut buf) {
            Ok(None) => return (seen, None),
            Err(e) => return (seen, Some(e)),
            Ok(Some(m)) => seen.push(describe(&m)),
        }
    }
}

/// A message in a word or two, its text fields read as the probe reads them.
fn describe(m: &Message) -> String {
    match m {
        Message::ErrorResponse(b) => format!("error {:?}", error_fields(b.fields())),
        Message::NoticeResponse(b) => format!("notice {:?}", error_fields(b.fields())),
        Message::AuthenticationSasl(b) => format!("sasl {:?}", mechanisms(b)),
        Message::AuthenticationSaslContinue(b) => {
            format!("sasl-continue {:?}", super::pgauth::server_first(b.data()))
        }
        Message::ParameterStatus(b) => {
            format!("parameter {:?}={:?}", b.name().ok(), b.value().ok())
        }
        Message::ReadyForQuery(_) => "ready".into(),
        _ => "other".into(),
    }
}

/// The SASL mechanisms a server offers (at most 16; a server offers one or two).
pub fn mechanisms(b: &postgres_protocol::message::backend::AuthenticationSaslBody) -> Vec<String> {
    b.mechanisms()
        .take(16)
        .map(|m| Ok(m.to_string()))
        .collect()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_below_four_is_an_error_not_a_panic() {
        // The crash of issue 12: 'E' with length 1.
        let (seen, err) = read_all(b"E\x00\x00\x00\x01SFATAL\x00");
        assert!(seen.is_empty());
        assert_eq!(err, Some(FrameError::BadLength { tag: b'E', len: 1 }));
    }

    #[test]
    fn a_huge_announced_length_is_refused_before_any_allocation() {
        let mut buf = BytesMut::from(&b"N\x7f\xff\xff\xff"[..]);
        let e = next_message(&mut buf).err();
        assert_eq!(
            e,
            Some(FrameError::TooLong {
                tag: b'N',
                len: 0x7fff_ffff
            })
        );
        assert!(
            buf.capacity() < 1024,
            "nothing reserved for the announced length"
        );
    }

    #[test]
    fn messages_are_read_one_by_one() {
        let sasl = b"R\x00\x00\x00\x17\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00";
        let err = b"E\x00\x00\x00\x5cSFATAL\x00C28000\x00Mno pg_hba.conf entry for host \"10.0.0.5\", user \"app\", database \"orders\"\x00\x00";
        let (seen, fault) = read_all(&[&sasl[..], &err[..]].concat());
        assert_eq!(fault, None);
        assert_eq!(seen.len(), 2);
        assert!(seen[0].contains("SCRAM-SHA-256"), "{seen:?}");
        assert!(
            seen[1].contains("28000") && seen[1].contains("pg_hba"),
            "{seen:?}"
        );
    }

    #[test]
    fn ssl_answers() {
        assert_eq!(ssl_answer(b"S"), SslAnswer::Yes);
        assert_eq!(ssl_answer(b"N"), SslAnswer::No);
        assert_eq!(ssl_answer(b"SSH-2.0-OpenSSH_9.6\r\n"), SslAnswer::Other);
        assert!(ssl_answer_complete(b"N"));
        assert!(!ssl_answer_complete(b"E\x00\x00"));
    }
}
