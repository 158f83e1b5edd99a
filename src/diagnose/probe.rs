//! What the engines' probes share: the finding, whom a login is for, the framing of each
//! engine's replies, naming a protocol from its first bytes, and the probe of a port whose
//! engine warren does not know (each engine's login is in its own module). Each reply is read through the step's [`Budget`] until its own framing says it
//! is whole, every announced length checked against [`MESSAGE_CAP`] first; the parsers are
//! pure functions over bytes, tested on recorded greetings and fuzzed.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};

use super::wire::{Budget, Cut, MESSAGE_CAP};
use crate::config::Sourced;
use crate::config::model::{RootCert, SslMode};

/// What a probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The database answered as it should (false: the step fails).
    pub ok: bool,
    /// It answered, but something was not checked (the login, without a password): the step
    /// is `warn`, and the detail says what was not checked.
    pub unchecked: bool,
    pub detail: String,
    pub hint: Option<String>,
    /// A failure in a few words, for a list's column: "login refused (1045)".
    pub brief: Option<String>,
}

impl Finding {
    /// The same finding with a few words for a list's column.
    pub(crate) fn brief(mut self, b: impl Into<String>) -> Self {
        self.brief = Some(b.into());
        self
    }

    /// The step's status: fail, warn (something not checked) or pass.
    pub fn status(&self) -> super::Status {
        match (self.ok, self.unchecked) {
            (false, _) => super::Status::Fail,
            (true, true) => super::Status::Warn,
            (true, false) => super::Status::Pass,
        }
    }

    pub(crate) fn pass(detail: impl Into<String>) -> Self {
        Finding {
            ok: true,
            unchecked: false,
            detail: detail.into(),
            hint: None,
            brief: None,
        }
    }
    /// It answered, and `detail` says what was not checked.
    pub(crate) fn warn(detail: impl Into<String>, hint: impl Into<String>) -> Self {
        let hint: String = hint.into();
        Finding {
            ok: true,
            unchecked: true,
            detail: detail.into(),
            hint: (!hint.is_empty()).then_some(hint),
            brief: None,
        }
    }
    pub(crate) fn fail(detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Finding {
            ok: false,
            unchecked: false,
            detail: detail.into(),
            hint: Some(hint.into()),
            brief: None,
        }
    }
}

/// Whom a probe logs in as, where, and how (for the engines that have a login).
pub struct Target {
    /// The database's host as the entry names it (what verify-full checks the certificate
    /// against).
    pub host: String,
    pub user: String,
    /// The database (PostgreSQL, MySQL) or the database number (Redis); empty for none.
    pub database: String,
    /// From password_file or password; `None`: the probe does not log in.
    pub password: Option<zeroize::Zeroizing<String>>,
    pub sslmode: Sourced<SslMode>,
    pub sslrootcert: Sourced<RootCert>,
}

/// Names a protocol from the first bytes a server sent, when it is a well-known one.
pub fn name_protocol(b: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(&b[..b.len().min(64)]).to_ascii_uppercase();
    if b.starts_with(b"SSH-") {
        Some("SSH")
    } else if text.starts_with("HTTP/")
        || text.starts_with("<!DOCTYPE")
        || text.starts_with("<HTML")
    {
        Some("HTTP")
    } else if text.starts_with("220")
        && (text.contains("SMTP") || text.contains("ESMTP") || text.contains("MAIL"))
    {
        Some("SMTP")
    } else if text.starts_with("220") && text.contains("FTP") {
        Some("FTP")
    } else if text.starts_with("+OK") {
        Some("POP3")
    } else if text.starts_with("* OK") {
        Some("IMAP")
    } else if text.starts_with("+PONG") || text.starts_with("-NOAUTH") || text.starts_with("-ERR") {
        Some("Redis")
    } else if mysql_greeting(b).is_ok() {
        Some("MySQL")
    } else if b.first() == Some(&0x16) && b.get(1) == Some(&0x03) {
        Some("TLS")
    } else {
        None
    }
}

/// The first bytes, printable, for a message.
pub fn show_bytes(b: &[u8]) -> String {
    let s: String = b
        .iter()
        .take(40)
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '.'
            }
        })
        .collect();
    format!("\"{s}\"")
}

/// Whether a reply is whole, by its protocol's framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// The first `n` bytes are the whole reply.
    Whole(usize),
    /// More bytes are needed.
    More,
    /// The framing itself is wrong (an impossible or oversized length).
    Bad(String),
}

fn too_long(len: usize) -> Frame {
    Frame::Bad(format!(
        "it announces {len} bytes; warren reads replies of up to {} KiB",
        MESSAGE_CAP >> 10
    ))
}

/// A MySQL packet: a 3-byte little-endian length, a sequence number, the payload.
pub fn mysql_frame(b: &[u8]) -> Frame {
    let Some(h) = b.get(..4) else {
        return Frame::More;
    };
    let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    match len {
        0 => Frame::Bad("an empty packet".into()),
        l if l > MESSAGE_CAP => too_long(l),
        l if b.len() < 4 + l => Frame::More,
        l => Frame::Whole(4 + l),
    }
}

/// A MySQL/MariaDB server greeting (protocol 10): the server version.
pub fn mysql_greeting(b: &[u8]) -> Result<String, String> {
    let Some(h) = b.get(..4) else {
        return Err("too short".into());
    };
    let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    let payload = &b[4..];
    if len < 2 {
        return Err("bad length".into());
    }
    let Some(payload) = payload.get(..len) else {
        return Err(format!(
            "cut short: the packet announces {len} bytes, {} arrived",
            payload.len()
        ));
    };
    match payload[0] {
        10 => {
            let end = payload[1..]
                .iter()
                .position(|&c| c == 0)
                .ok_or("no version")?;
            Ok(String::from_utf8_lossy(&payload[1..1 + end]).into_owned())
        }
        0xff => {
            let msg = String::from_utf8_lossy(payload.get(3..).unwrap_or_default()).into_owned();
            Err(format!(
                "the server refused: {}",
                msg.trim_start_matches('#').trim()
            ))
        }
        v => Err(format!("protocol version {v}")),
    }
}

/// A Redis reply: one line, up to its CRLF.
pub fn redis_frame(b: &[u8]) -> Frame {
    match b.iter().position(|&c| c == b'\n') {
        Some(i) => Frame::Whole(i + 1),
        None if b.len() > MESSAGE_CAP => Frame::Bad(format!(
            "a reply line longer than {} KiB",
            MESSAGE_CAP >> 10
        )),
        None => Frame::More,
    }
}

/// A Redis reply to `PING`.
pub fn redis_reply(b: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(b);
    let line = text.lines().next().unwrap_or_default();
    if line.starts_with("+PONG") {
        Ok("PONG".into())
    } else if line.starts_with("-NOAUTH") {
        Ok("asks for a password (NOAUTH)".into())
    } else if let Some(e) = line.strip_prefix('-') {
        Err(e.chars().take(200).collect())
    } else {
        Err(format!("not a Redis reply: {}", show_bytes(b)))
    }
}

/// A MongoDB message: a 4-byte little-endian length (the whole message), then the rest.
pub fn mongo_frame(b: &[u8]) -> Frame {
    let Some(h) = b.get(..4) else {
        return Frame::More;
    };
    let len = i32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    match usize::try_from(len) {
        Ok(l) if l < 21 => Frame::Bad(format!("an impossible length ({len})")),
        Ok(l) if l > MESSAGE_CAP => too_long(l),
        Ok(l) if b.len() < l => Frame::More,
        Ok(l) => Frame::Whole(l),
        Err(_) => Frame::Bad(format!("an impossible length ({len})")),
    }
}

/// A MongoDB reply to `hello`: an OP_MSG whose document has `ok` (and usually `maxWireVersion`).
pub fn mongo_reply(b: &[u8]) -> Result<String, String> {
    if b.len() < 21 {
        return Err(format!("not a MongoDB reply: {}", show_bytes(b)));
    }
    let opcode = i32::from_le_bytes([b[12], b[13], b[14], b[15]]);
    if opcode != 2013 && opcode != 1 {
        return Err(format!("not a MongoDB reply (opcode {opcode})"));
    }
    let body = &b[16..];
    let has = |key: &[u8]| body.windows(key.len()).any(|w| w == key);
    if has(b"ok\0") || has(b"isWritablePrimary\0") || has(b"ismaster\0") {
        let wire = if has(b"maxWireVersion\0") {
            ", wire protocol reported"
        } else {
            ""
        };
        Ok(format!("answered hello{wire}"))
    } else {
        Err("a reply without 'ok'".into())
    }
}

/// TDS packets (an 8-byte header with a big-endian length) up to the one marked
/// end-of-message.
pub fn mssql_frame(b: &[u8]) -> Frame {
    let mut i = 0;
    loop {
        let Some(h) = b.get(i..i + 8) else {
            return Frame::More;
        };
        let len = usize::from(h[2]) << 8 | usize::from(h[3]);
        if len < 8 {
            return Frame::Bad(format!("a packet with the impossible length {len}"));
        }
        if i + len > MESSAGE_CAP {
            return too_long(i + len);
        }
        if b.len() < i + len {
            return Frame::More;
        }
        i += len;
        if h[1] & 0x01 != 0 {
            return Frame::Whole(i);
        }
    }
}

/// A PRELOGIN response: the server's version from its VERSION option.
pub fn mssql_reply(b: &[u8]) -> Result<String, String> {
    if b.len() < 8 || b[0] != 0x04 {
        return Err(format!("not a SQL Server reply: {}", show_bytes(b)));
    }
    let len = (usize::from(b[2]) << 8 | usize::from(b[3])).clamp(8, b.len());
    let payload = &b[8..len];
    let mut i = 0;
    while i + 5 <= payload.len() && payload[i] != 0xff {
        let (token, off, len) = (
            payload[i],
            usize::from(payload[i + 1]) << 8 | usize::from(payload[i + 2]),
            usize::from(payload[i + 3]) << 8 | usize::from(payload[i + 4]),
        );
        if token == 0 && len >= 4 && off + 4 <= payload.len() {
            let v = &payload[off..off + 4];
            return Ok(format!(
                "SQL Server {}.{}.{}",
                v[0],
                v[1],
                u16::from(v[2]) << 8 | u16::from(v[3])
            ));
        }
        i += 5;
    }
    Ok("SQL Server (no version given)".into())
}

/// Reads one reply, whole by `frame`, within the budget: its bytes, or what arrived and why it
/// is not whole.
pub async fn read_whole<S: AsyncRead + Unpin>(
    s: &mut S,
    budget: &mut Budget,
    frame: impl Fn(&[u8]) -> Frame,
) -> Result<Vec<u8>, (Vec<u8>, String)> {
    let mut buf = BytesMut::new();
    loop {
        match frame(&buf) {
            Frame::Whole(n) => return Ok(buf[..n].to_vec()),
            Frame::Bad(why) => return Err((buf.to_vec(), why)),
            Frame::More => {}
        }
        if let Err(cut) = budget.read_more(s, &mut buf).await {
            let why = match cut {
                Cut::Closed if !buf.is_empty() => {
                    format!("the reply was cut short after {} bytes", buf.len())
                }
                c => c.to_string(),
            };
            return Err((buf.to_vec(), why));
        }
    }
}

/// What bytes that are not `engine`'s answer say: another protocol by name (the port is
/// wrong: the engine's usual one is `port`), silence, or the first bytes. `silent` is the
/// hint for a port that says nothing.
pub fn not_the_engine(b: &[u8], why: &str, engine: &str, port: u16, silent: &str) -> Finding {
    match name_protocol(b) {
        Some(p) if p != engine => Finding::fail(
            format!("this port speaks {p}, not {engine}"),
            format!("the port is wrong: {engine} usually listens on {port}"),
        ),
        _ if b.is_empty() => Finding::fail(format!("{engine} did not answer: {why}"), silent),
        _ => Finding::fail(
            format!("not a {engine} answer ({why}): {}", show_bytes(b)),
            format!("check that {engine} listens on this port"),
        ),
    }
}

/// Probes an engine warren has no protocol for (or a forward with no database): whatever the
/// port says first, if anything, within 2 s.
pub async fn probe_other<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    budget: &mut Budget,
) -> Finding {
    let mut quick = Budget::new(std::time::Duration::from_secs(2).min(budget.timeout()));
    let mut b = BytesMut::new();
    let _ = quick.read_more(s, &mut b).await;
    match (b.is_empty(), name_protocol(&b)) {
        (true, _) => Finding::pass("the port is open (it waits for the client to speak first)"),
        (false, Some(p)) => Finding::pass(format!("the port speaks {p}")),
        (false, None) => Finding::pass(format!("the port answered {}", show_bytes(&b))),
    }
}

/// A target for the engines' tests: user `app`, database `orders`, host `db.internal`.
#[cfg(test)]
pub(crate) fn test_target(password: Option<&str>, sslmode: SslMode) -> Target {
    Target {
        host: "db.internal".into(),
        user: "app".into(),
        database: "orders".into(),
        password: password.map(|p| zeroize::Zeroizing::new(p.to_string())),
        sslmode: Sourced::default_value(sslmode),
        sslrootcert: Sourced::default_value(RootCert::File("/nonexistent/root.crt".into())),
    }
}

/// Runs `engine`'s probe for `t` against `server`, which gets the other end of a pipe.
#[cfg(test)]
pub(crate) async fn against<F, Fut>(engine: &str, t: &Target, server: F) -> Finding
where
    F: FnOnce(tokio::io::DuplexStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(64 << 10);
    let task = tokio::spawn(server(theirs));
    let slot = std::sync::Mutex::new(Some(ours));
    let open = || async { slot.lock().ok().and_then(|mut s| s.take()) };
    let f = super::probe_with(engine, t, std::time::Duration::from_secs(10), open).await;
    task.abort();
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from MySQL 8.0 (first packet of the handshake, auth data trimmed).
    const MYSQL_8: &[u8] = b"\x4a\x00\x00\x00\x0a8.0.36\x00\x08\x00\x00\x00\x3e\x32\x18\x45\x2b\x4c\x0e\x53\x00\xff\xff\xff\x02\x00\xff\xdf\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x4b\x0b\x12\x3d\x6d\x0c\x0c\x44\x7c\x7d\x1f\x5e\x00caching_sha2_password\x00";
    /// MariaDB refusing a host.
    const MYSQL_REFUSED: &[u8] = b"\x43\x00\x00\x00\xffj\x04Host '10.0.0.5' is not allowed to connect to this MariaDB server";
    /// Recorded PRELOGIN response of SQL Server 2019 (15.0.2000).
    const MSSQL_2019: &[u8] = b"\x04\x01\x00\x25\x00\x00\x01\x00\x00\x00\x15\x00\x06\x01\x00\x1b\x00\x01\x02\x00\x1c\x00\x01\x03\x00\x1d\x00\x00\xff\x0f\x00\x07\xd0\x00\x00\x02\x00";

    #[test]
    fn mysql_greetings() {
        assert_eq!(mysql_greeting(MYSQL_8).as_deref(), Ok("8.0.36"));
        let refused = mysql_greeting(MYSQL_REFUSED).err().unwrap_or_default();
        assert!(refused.contains("is not allowed to connect"), "{refused}");
        assert_eq!(name_protocol(MYSQL_8), Some("MySQL"));
    }

    #[test]
    fn redis_replies() {
        assert_eq!(redis_reply(b"+PONG\r\n").as_deref(), Ok("PONG"));
        assert_eq!(
            redis_reply(b"-NOAUTH Authentication required.\r\n").as_deref(),
            Ok("asks for a password (NOAUTH)")
        );
        assert!(redis_reply(b"SSH-2.0-OpenSSH_9.2\r\n").is_err());
    }

    #[test]
    fn mongo_hello_and_reply() {
        // A recorded reply's shape: header (opcode 2013), flags, kind 0, BSON with ok: 1.0.
        let mut reply = vec![0u8; 16];
        reply[12..16].copy_from_slice(&2013i32.to_le_bytes());
        reply.extend_from_slice(&[0, 0, 0, 0, 0]);
        reply.extend_from_slice(b"\x2d\x00\x00\x00\x08isWritablePrimary\x00\x01\x10maxWireVersion\x00\x15\x00\x00\x00\x01ok\x00\x00\x00\x00\x00\x00\x00\xf0\x3f\x00");
        let len = reply.len() as i32;
        reply[0..4].copy_from_slice(&len.to_le_bytes());
        assert_eq!(
            mongo_reply(&reply).as_deref(),
            Ok("answered hello, wire protocol reported")
        );
        assert!(mongo_reply(b"HTTP/1.1 400 Bad Request\r\n\r\n").is_err());
    }

    #[test]
    fn mssql_prelogin_reply() {
        assert_eq!(
            mssql_reply(MSSQL_2019).as_deref(),
            Ok("SQL Server 15.0.2000")
        );
        assert!(mssql_reply(b"+PONG\r\n").is_err());
    }

    #[test]
    fn protocols_are_named() {
        assert_eq!(
            name_protocol(b"220 mail.example.com ESMTP Postfix\r\n"),
            Some("SMTP")
        );
        assert_eq!(name_protocol(b"HTTP/1.1 400 Bad Request"), Some("HTTP"));
        assert_eq!(name_protocol(b"\x16\x03\x01\x00"), Some("TLS"));
        assert_eq!(name_protocol(b"hello"), None);
    }
}
