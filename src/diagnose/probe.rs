//! Speaks the first bytes of a database's protocol through a channel and names what answered.
//! The parsers are pure functions over bytes, tested on recorded greetings; PostgreSQL is also
//! tested live.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What a probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub detail: String,
    pub hint: Option<String>,
}

impl Finding {
    fn pass(detail: impl Into<String>) -> Self {
        Finding {
            ok: true,
            detail: detail.into(),
            hint: None,
        }
    }
    fn fail(detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Finding {
            ok: false,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }
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

/// A MySQL/MariaDB server greeting (protocol 10): the server version.
pub fn mysql_greeting(b: &[u8]) -> Result<String, String> {
    if b.len() < 6 {
        return Err("too short".into());
    }
    let len = usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16;
    let payload = &b[4..];
    if payload.len() < len.min(payload.len()) || len < 2 {
        return Err("bad length".into());
    }
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

/// A Redis reply to `PING`.
pub fn redis_reply(b: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(b);
    let line = text.lines().next().unwrap_or_default();
    if line.starts_with("+PONG") {
        Ok("PONG".into())
    } else if line.starts_with("-NOAUTH") {
        Ok("asks for a password (NOAUTH)".into())
    } else if let Some(e) = line.strip_prefix('-') {
        Err(e.to_string())
    } else {
        Err(format!("not a Redis reply: {}", show_bytes(b)))
    }
}

/// `hello` for MongoDB as an OP_MSG (opcode 2013) with a BSON document `{hello: 1, $db: "admin"}`.
pub fn mongo_hello() -> Vec<u8> {
    let mut doc = Vec::new();
    doc.push(0x10); // int32
    doc.extend_from_slice(b"hello\0");
    doc.extend_from_slice(&1i32.to_le_bytes());
    doc.push(0x02); // string
    doc.extend_from_slice(b"$db\0");
    doc.extend_from_slice(&6i32.to_le_bytes());
    doc.extend_from_slice(b"admin\0");
    doc.push(0);
    let mut bson = ((doc.len() + 4) as i32).to_le_bytes().to_vec();
    bson.extend_from_slice(&doc);
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_le_bytes()); // flags
    body.push(0); // section kind 0: body
    body.extend_from_slice(&bson);
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + body.len()) as i32).to_le_bytes());
    msg.extend_from_slice(&1i32.to_le_bytes()); // request id
    msg.extend_from_slice(&0i32.to_le_bytes()); // response to
    msg.extend_from_slice(&2013i32.to_le_bytes());
    msg.extend_from_slice(&body);
    msg
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

/// A TDS PRELOGIN request (SQL Server), with an empty VERSION and ENCRYPTION off.
pub fn mssql_prelogin() -> Vec<u8> {
    // Options: VERSION (0) at offset 11 len 6, ENCRYPTION (1) at 17 len 1, terminator.
    let options = [
        0x00, 0x00, 0x0b, 0x00, 0x06, 0x01, 0x00, 0x11, 0x00, 0x01, 0xff,
    ];
    let data = [0u8, 0, 0, 0, 0, 0, 0x02];
    let total = 8 + options.len() + data.len();
    let mut p = vec![0x12, 0x01, (total >> 8) as u8, total as u8, 0, 0, 1, 0];
    p.extend_from_slice(&options);
    p.extend_from_slice(&data);
    p
}

/// A PRELOGIN response: the server's version from its VERSION option.
pub fn mssql_reply(b: &[u8]) -> Result<String, String> {
    if b.len() < 8 || b[0] != 0x04 {
        return Err(format!("not a SQL Server reply: {}", show_bytes(b)));
    }
    let payload = &b[8..];
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

fn pg_startup(user: &str, database: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196608i32.to_be_bytes());
    for (k, v) in [
        ("user", user),
        ("database", database),
        ("application_name", "warren doctor"),
    ] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// The answer to a PostgreSQL startup message.
pub fn pg_startup_reply(b: &[u8], user: &str, database: &str) -> Finding {
    let mut i = 0;
    let mut version = None;
    while i + 5 <= b.len() {
        let kind = b[i];
        let len = i32::from_be_bytes([b[i + 1], b[i + 2], b[i + 3], b[i + 4]]) as usize;
        let body = &b[(i + 5).min(b.len())..(i + 1 + len).min(b.len())];
        match kind {
            b'R' if body.len() >= 4 => {
                let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let how = match code {
                    0 => None,
                    3 => Some("a cleartext password".to_string()),
                    5 => Some("an MD5 password".to_string()),
                    10 => {
                        let mechs: Vec<String> = body[4..]
                            .split(|&c| c == 0)
                            .filter(|m| !m.is_empty())
                            .map(|m| String::from_utf8_lossy(m).into_owned())
                            .collect();
                        Some(format!("a {} password", mechs.join("/")))
                    }
                    c => Some(format!("authentication method {c}")),
                };
                if let Some(how) = how {
                    return Finding::pass(format!(
                        "PostgreSQL answered: it asks {user} for {how} to open {database} (not sent by the probe)"
                    ));
                }
            }
            b'S' => {
                let mut parts = body.split(|&c| c == 0);
                if parts.next() == Some(b"server_version".as_slice()) {
                    version = parts
                        .next()
                        .map(|v| String::from_utf8_lossy(v).into_owned());
                }
            }
            b'Z' => {
                let v = version
                    .map(|v| format!(" (PostgreSQL {v})"))
                    .unwrap_or_default();
                return Finding::pass(format!(
                    "PostgreSQL answered: {user} is logged in to {database} without a password{v}"
                ));
            }
            b'E' => return pg_error(body, user, database),
            _ => {}
        }
        i += 1 + len;
    }
    if let Some(p) = name_protocol(b) {
        return Finding::fail(
            format!("this port speaks {p}, not PostgreSQL"),
            "the port is wrong: PostgreSQL usually listens on 5432",
        );
    }
    Finding::fail(
        format!("not a PostgreSQL answer: {}", show_bytes(b)),
        "check the database port",
    )
}

fn pg_error(body: &[u8], user: &str, database: &str) -> Finding {
    let mut code = String::new();
    let mut message = String::new();
    for field in body.split(|&c| c == 0).filter(|f| !f.is_empty()) {
        let text = String::from_utf8_lossy(&field[1..]).into_owned();
        match field[0] {
            b'C' => code = text,
            b'M' => message = text,
            _ => {}
        }
    }
    let hint = match code.as_str() {
        "28000" if message.contains("pg_hba") => "PostgreSQL has no pg_hba.conf entry for the bastion's address: add a `host` line for the bastion's IP (or its subnet) and reload".to_string(),
        "28000" => format!("the role {user} may not log in: check the role exists and has LOGIN"),
        "28P01" => "the password was wrong: check password_file".to_string(),
        "3D000" => format!("there is no database {database}: check `database` in epoch.toml"),
        "53300" => "too many connections: the server's max_connections is reached".to_string(),
        _ => "see the server's message".to_string(),
    };
    // Reaching PostgreSQL at all is the probe's question: an access rule is a failure with
    // its own fix.
    Finding::fail(
        format!("PostgreSQL answered with error {code}: {message}"),
        hint,
    )
}

async fn read_some<S: AsyncRead + Unpin>(s: &mut S, timeout: Duration, want: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut chunk = [0u8; 4096];
    while buf.len() < want {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    buf
}

/// Whether a startup answer is complete: ReadyForQuery, an error, or a request for a password;
/// or bytes that are not PostgreSQL messages at all (then nothing more is worth waiting for).
fn pg_answer_complete(b: &[u8]) -> bool {
    let mut i = 0;
    while i + 5 <= b.len() {
        let kind = b[i];
        let len = i32::from_be_bytes([b[i + 1], b[i + 2], b[i + 3], b[i + 4]]);
        if !(4..=1 << 20).contains(&len) || !kind.is_ascii_alphabetic() {
            return true;
        }
        let end = i + 1 + len as usize;
        if end > b.len() {
            return false;
        }
        match kind {
            b'Z' | b'E' => return true,
            b'R' if b.len() >= i + 9 && b[i + 5..i + 9] != [0, 0, 0, 0] => return true,
            _ => {}
        }
        i = end;
    }
    // A first chunk that cannot start a message (an SSH banner, say) is complete as it is.
    !b.is_empty() && !b[0].is_ascii_alphabetic()
}

/// Reads until `done` says the bytes so far are a whole answer, or the time is up.
async fn read_until<S: AsyncRead + Unpin>(
    s: &mut S,
    timeout: Duration,
    done: fn(&[u8]) -> bool,
) -> Vec<u8> {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut chunk = [0u8; 4096];
    while !done(&buf) {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    buf
}

/// The PostgreSQL SSLRequest: 'S' (TLS offered) or 'N'.
pub async fn pg_ssl<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    timeout: Duration,
) -> Result<bool, Vec<u8>> {
    let mut req = 8i32.to_be_bytes().to_vec();
    req.extend_from_slice(&80877103i32.to_be_bytes());
    if s.write_all(&req).await.is_err() {
        return Err(Vec::new());
    }
    let b = read_some(s, timeout, 1).await;
    match b.first() {
        Some(b'S') => Ok(true),
        Some(b'N') => Ok(false),
        _ => Err(b),
    }
}

/// Sends the startup message and reads the answer.
pub async fn pg_login<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    user: &str,
    database: &str,
    timeout: Duration,
) -> Finding {
    if s.write_all(&pg_startup(user, database)).await.is_err() {
        return Finding::fail(
            "the connection closed before the startup message",
            "the database closed the connection: check its logs",
        );
    }
    let b = read_until(s, timeout, pg_answer_complete).await;
    if b.is_empty() {
        return Finding::fail(
            "PostgreSQL did not answer the startup message",
            "the port accepts connections but says nothing: check the database is PostgreSQL and not hung",
        );
    }
    pg_startup_reply(&b, user, database)
}

/// Logs in with a password (from password_file), as a client would: SCRAM-SHA-256, MD5 or
/// cleartext, whichever the server asks for; the server's SCRAM signature is checked too.
pub async fn pg_login_password<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    user: &str,
    database: &str,
    password: &str,
    timeout: Duration,
) -> Finding {
    use super::pgauth::{md5_password, nonce, read_message, scram_final, send};
    if s.write_all(&pg_startup(user, database)).await.is_err() {
        return Finding::fail(
            "the connection closed before the startup message",
            "the database closed the connection: check its logs",
        );
    }
    let mut version = None;
    let mut scram: Option<(String, String)> = None; // (client-first-bare, nonce)
    let mut expect_signature: Option<Vec<u8>> = None;
    let mut method = "no password";
    for _ in 0..32 {
        let Some((kind, body)) = read_message(s, timeout).await else {
            return Finding::fail(
                "PostgreSQL stopped answering during authentication",
                "check the database's logs",
            );
        };
        match (
            kind,
            body.get(..4)
                .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]])),
        ) {
            (b'R', Some(0)) => {}
            (b'R', Some(3)) => {
                method = "a cleartext password";
                let mut b = password.as_bytes().to_vec();
                b.push(0);
                send(s, b'p', &b).await;
            }
            (b'R', Some(5)) if body.len() >= 8 => {
                method = "an MD5 password";
                let mut b = md5_password(password, user, &body[4..8]).into_bytes();
                b.push(0);
                send(s, b'p', &b).await;
            }
            (b'R', Some(10)) => {
                let mechs = String::from_utf8_lossy(&body[4..]).to_string();
                if !mechs.split('\0').any(|m| m == "SCRAM-SHA-256") {
                    return Finding::fail(
                        format!(
                            "PostgreSQL asks for SASL mechanisms warren does not speak ({})",
                            mechs.replace('\0', " ").trim()
                        ),
                        "use SCRAM-SHA-256 for this role",
                    );
                }
                method = "SCRAM-SHA-256";
                let n = nonce();
                let bare = format!("n=,r={n}");
                let first = format!("n,,{bare}");
                let mut b = b"SCRAM-SHA-256\0".to_vec();
                b.extend_from_slice(&(first.len() as i32).to_be_bytes());
                b.extend_from_slice(first.as_bytes());
                send(s, b'p', &b).await;
                scram = Some((bare, n));
            }
            (b'R', Some(11)) => {
                let Some((bare, n)) = &scram else {
                    return Finding::fail("an unexpected SASL message", "see the server's log");
                };
                let server_first = String::from_utf8_lossy(&body[4..]).to_string();
                match scram_final(password, bare, &server_first, n) {
                    Ok((msg, sig)) => {
                        expect_signature = Some(sig);
                        send(s, b'p', msg.as_bytes()).await;
                    }
                    Err(e) => return Finding::fail(e, "see the server's log"),
                }
            }
            (b'R', Some(12)) => {
                let text = String::from_utf8_lossy(&body[4..]).to_string();
                let got = text.strip_prefix("v=").and_then(|v| {
                    <base64ct::Base64 as base64ct::Encoding>::decode_vec(v.trim()).ok()
                });
                if got.is_none() || got != expect_signature {
                    return Finding::fail(
                        "the server's SCRAM signature is wrong: it does not know the password, or something is in between",
                        "check that nothing intercepts the connection",
                    );
                }
            }
            (b'S', _) => {
                let mut parts = body.split(|&c| c == 0);
                if parts.next() == Some(b"server_version".as_slice()) {
                    version = parts
                        .next()
                        .map(|v| String::from_utf8_lossy(v).into_owned());
                }
            }
            (b'Z', _) => {
                let v = version
                    .map(|v| format!(" (PostgreSQL {v})"))
                    .unwrap_or_default();
                return Finding::pass(format!(
                    "PostgreSQL answered: {user} logged in to {database} with the password from password_file ({method}){v}"
                ));
            }
            (b'E', _) => return pg_error(&body, user, database),
            _ => {}
        }
    }
    Finding::fail(
        "PostgreSQL's authentication did not finish",
        "see the server's log",
    )
}

/// Probes a non-PostgreSQL engine (or none) over one stream.
pub async fn probe_other<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    engine: &str,
    timeout: Duration,
) -> Finding {
    match engine {
        "mysql" | "mariadb" => {
            let b = read_some(s, timeout, 5).await;
            match mysql_greeting(&b) {
                Ok(v) => Finding::pass(format!("MySQL answered: server {v}")),
                Err(e) => wrong(&b, "MySQL", &e),
            }
        }
        "redis" => {
            let _ = s.write_all(b"PING\r\n").await;
            let b = read_some(s, timeout, 1).await;
            match redis_reply(&b) {
                Ok(v) => Finding::pass(format!("Redis answered: {v}")),
                Err(e) => wrong(&b, "Redis", &e),
            }
        }
        "mongodb" | "mongo" => {
            let _ = s.write_all(&mongo_hello()).await;
            let b = read_some(s, timeout, 21).await;
            match mongo_reply(&b) {
                Ok(v) => Finding::pass(format!("MongoDB {v}")),
                Err(e) => wrong(&b, "MongoDB", &e),
            }
        }
        "mssql" | "sqlserver" => {
            let _ = s.write_all(&mssql_prelogin()).await;
            let b = read_some(s, timeout, 8).await;
            match mssql_reply(&b) {
                Ok(v) => Finding::pass(format!("{v} answered")),
                Err(e) => wrong(&b, "SQL Server", &e),
            }
        }
        _ => {
            let b = read_some(s, Duration::from_secs(2).min(timeout), 1).await;
            match (b.is_empty(), name_protocol(&b)) {
                (true, _) => {
                    Finding::pass("the port is open (it waits for the client to speak first)")
                }
                (false, Some(p)) => Finding::pass(format!("the port speaks {p}")),
                (false, None) => Finding::pass(format!("the port answered {}", show_bytes(&b))),
            }
        }
    }
}

fn wrong(b: &[u8], want: &str, e: &str) -> Finding {
    match name_protocol(b) {
        Some(p) if p != want => Finding::fail(
            format!("this port speaks {p}, not {want}"),
            format!("the port is wrong: check the {want} port in the entry"),
        ),
        _ if b.is_empty() => Finding::fail(
            format!("{want} did not answer"),
            "the port accepts connections but says nothing: is this the right service?",
        ),
        _ => Finding::fail(
            format!("not a {want} answer ({e}): {}", show_bytes(b)),
            format!("check that {want} listens on this port"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from MySQL 8.0 (first packet of the handshake, auth data trimmed).
    const MYSQL_8: &[u8] = b"\x4a\x00\x00\x00\x0a8.0.36\x00\x08\x00\x00\x00\x3e\x32\x18\x45\x2b\x4c\x0e\x53\x00\xff\xff\xff\x02\x00\xff\xdf\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x4b\x0b\x12\x3d\x6d\x0c\x0c\x44\x7c\x7d\x1f\x5e\x00caching_sha2_password\x00";
    /// MariaDB refusing a host.
    const MYSQL_REFUSED: &[u8] = b"\x44\x00\x00\x00\xffj\x04Host '10.0.0.5' is not allowed to connect to this MariaDB server";
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
        let hello = mongo_hello();
        assert_eq!(
            i32::from_le_bytes([hello[0], hello[1], hello[2], hello[3]]) as usize,
            hello.len()
        );
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
        assert_eq!(mssql_prelogin()[0], 0x12);
        assert!(mssql_reply(b"+PONG\r\n").is_err());
    }

    #[test]
    fn postgres_replies() {
        let sasl = b"R\x00\x00\x00\x17\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00";
        let f = pg_startup_reply(sasl, "app", "orders");
        assert!(f.ok, "{f:?}");
        assert!(f.detail.contains("SCRAM-SHA-256"), "{f:?}");
        let err = b"E\x00\x00\x00\x5fSFATAL\x00C28000\x00Mno pg_hba.conf entry for host \"10.0.0.5\", user \"app\", database \"orders\"\x00\x00";
        let f = pg_startup_reply(err, "app", "orders");
        assert!(!f.ok);
        assert!(f.hint.unwrap_or_default().contains("pg_hba.conf"));
        let f = pg_startup_reply(b"SSH-2.0-OpenSSH_9.2p1\r\n", "app", "orders");
        assert_eq!(f.detail, "this port speaks SSH, not PostgreSQL");
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
