//! The demo's database: enough of PostgreSQL's protocol (v3) for warren's probe and for a
//! user who presses `x` and types `select 1;` in psql. It logs in any user to any database
//! without a password, answers the simple query protocol for `SELECT` of constants
//! (integers, quoted strings, `version()`, `current_user`, `current_database()`), and says
//! plainly what it does not do for everything else, so psql never waits on it.
//!
//! Hand-written because no crate serves PostgreSQL's backend side at this size
//! (`postgres-protocol` parses backend messages and writes frontend ones, the other way
//! round). Every length the client sends is capped; a connection ends on anything else.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The largest message read from a client (a query, a startup packet).
const MAX_MESSAGE: usize = 64 << 10;
/// A client that sends nothing for this long is let go.
const IDLE: Duration = Duration::from_secs(3600);

const SSL_REQUEST: i32 = 80877103;
const GSSENC_REQUEST: i32 = 80877104;
const CANCEL_REQUEST: i32 = 80877102;
const PROTOCOL_3: i32 = 196608;

const INT4: u32 = 23;
const TEXT: u32 = 25;

/// Serves clients until `stop`.
pub(super) async fn serve(listener: TcpListener, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((s, _)) = accepted else { continue };
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = session(s) => {}
            }
        });
    }
}

async fn read_len(s: &mut TcpStream, minus: usize) -> std::io::Result<usize> {
    let mut head = [0u8; 4];
    tokio::time::timeout(IDLE, s.read_exact(&mut head))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)??;
    let len = u32::from_be_bytes(head) as usize;
    if !(minus..=MAX_MESSAGE).contains(&len) {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    Ok(len - minus)
}

async fn read_body(s: &mut TcpStream, len: usize) -> std::io::Result<Vec<u8>> {
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    Ok(body)
}

/// One client: the startup phase, then queries until it says goodbye.
async fn session(mut s: TcpStream) -> std::io::Result<()> {
    let params = loop {
        let len = read_len(&mut s, 8).await?;
        let mut code = [0u8; 4];
        s.read_exact(&mut code).await?;
        let body = read_body(&mut s, len).await?;
        match i32::from_be_bytes(code) {
            // No TLS and no GSSAPI here; the client goes on in the clear.
            SSL_REQUEST | GSSENC_REQUEST => s.write_all(b"N").await?,
            // Nothing here runs long enough to cancel.
            CANCEL_REQUEST => return Ok(()),
            PROTOCOL_3 => break startup_params(&body),
            _ => {
                let e = error("FATAL", "0A000", "unsupported frontend protocol");
                return s.write_all(&e).await;
            }
        }
    };
    let user = param(&params, "user").unwrap_or("demo").to_string();
    let database = param(&params, "database").unwrap_or(&user).to_string();
    let mut out = message(b'R', &0i32.to_be_bytes());
    for (k, v) in [
        ("server_version", "15.0 (warren demo)"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
    ] {
        out.extend(message(
            b'S',
            &[k.as_bytes(), b"\0", v.as_bytes(), b"\0"].concat(),
        ));
    }
    out.extend(message(b'K', &[0u8; 8]));
    out.extend(ready());
    s.write_all(&out).await?;
    // After an error in the extended protocol, messages are skipped until Sync.
    let mut skipping = false;
    loop {
        let mut kind = [0u8; 1];
        tokio::time::timeout(IDLE, s.read_exact(&mut kind))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
        let len = read_len(&mut s, 4).await?;
        let body = read_body(&mut s, len).await?;
        let reply = match kind[0] {
            b'Q' => {
                let text = String::from_utf8_lossy(body.strip_suffix(b"\0").unwrap_or(&body));
                let mut r = simple_query(&text, &user, &database);
                r.extend(ready());
                r
            }
            b'X' => return Ok(()),
            b'S' => {
                skipping = false;
                ready()
            }
            b'H' => Vec::new(),
            b'P' | b'B' | b'D' | b'E' | b'C' | b'F' if !skipping => {
                skipping = true;
                error(
                    "ERROR",
                    "0A000",
                    "the warren demo database speaks only the simple query protocol",
                )
            }
            b'P' | b'B' | b'D' | b'E' | b'C' | b'F' => Vec::new(),
            _ => {
                let e = error("FATAL", "08P01", "unexpected message from the client");
                return s.write_all(&e).await;
            }
        };
        s.write_all(&reply).await?;
    }
}

/// The startup packet's `key\0value\0` pairs.
fn startup_params(body: &[u8]) -> Vec<(String, String)> {
    let mut parts = body
        .split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        if k.is_empty() {
            break;
        }
        out.push((k, v));
    }
    out
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(body.len() + 5);
    m.push(kind);
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn ready() -> Vec<u8> {
    message(b'Z', b"I")
}

fn error(severity: &str, code: &str, text: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', text),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    message(b'E', &body)
}

/// The answers to one simple query: each `;`-separated statement in turn, stopping at the
/// first error as PostgreSQL does.
fn simple_query(text: &str, user: &str, database: &str) -> Vec<u8> {
    let statements = split_outside_quotes(text, ';');
    if statements.iter().all(|s| s.trim().is_empty()) {
        return message(b'I', b"");
    }
    let mut out = Vec::new();
    for statement in statements.iter().filter(|s| !s.trim().is_empty()) {
        match select(statement, user, database) {
            Ok(columns) => {
                let mut desc = (columns.len() as u16).to_be_bytes().to_vec();
                let mut row = (columns.len() as u16).to_be_bytes().to_vec();
                for (name, oid, value) in &columns {
                    desc.extend_from_slice(name.as_bytes());
                    desc.push(0);
                    desc.extend_from_slice(&0u32.to_be_bytes()); // no table
                    desc.extend_from_slice(&0u16.to_be_bytes()); // no column
                    desc.extend_from_slice(&oid.to_be_bytes());
                    let size: i16 = if *oid == INT4 { 4 } else { -1 };
                    desc.extend_from_slice(&size.to_be_bytes());
                    desc.extend_from_slice(&(-1i32).to_be_bytes()); // no modifier
                    desc.extend_from_slice(&0u16.to_be_bytes()); // text format
                    row.extend_from_slice(&(value.len() as u32).to_be_bytes());
                    row.extend_from_slice(value.as_bytes());
                }
                out.extend(message(b'T', &desc));
                out.extend(message(b'D', &row));
                out.extend(message(b'C', b"SELECT 1\0"));
            }
            Err(e) => {
                out.extend(error("ERROR", "0A000", &e));
                break;
            }
        }
    }
    out
}

type Column = (String, u32, String);

const WHAT_IT_ANSWERS: &str = "the warren demo database is not a real PostgreSQL: it answers \
     only SELECT of constants, e.g. select 1; select 'hello'; select version(); \
     select current_user, current_database()";

/// `SELECT expr [AS name], …` of constants, as columns of one row.
fn select(statement: &str, user: &str, database: &str) -> Result<Vec<Column>, String> {
    let s = statement.trim();
    let rest = match s.get(..6) {
        Some(head) if head.eq_ignore_ascii_case("select") => &s[6..],
        _ => return Err(WHAT_IT_ANSWERS.into()),
    };
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return Err(WHAT_IT_ANSWERS.into());
    }
    let mut columns = Vec::new();
    for item in split_outside_quotes(rest, ',') {
        let (expr, alias) = split_alias(item.trim());
        let (name, oid, value) = constant(expr, user, database).ok_or(WHAT_IT_ANSWERS)?;
        columns.push((alias.unwrap_or(name).to_string(), oid, value));
    }
    Ok(columns)
}

/// Splits at `at` outside single-quoted strings.
fn split_outside_quotes(text: &str, at: char) -> Vec<&str> {
    let (mut out, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in text.char_indices() {
        if c == '\'' {
            quoted = !quoted;
        } else if c == at && !quoted {
            out.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&text[start..]);
    out
}

/// `expr AS name` / `expr name` (a plain identifier after the expression).
fn split_alias(item: &str) -> (&str, Option<&str>) {
    if item.ends_with('\'') {
        return (item, None);
    }
    let Some((expr, name)) = item.rsplit_once(char::is_whitespace) else {
        return (item, None);
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return (item, None);
    }
    let expr = expr.trim_end();
    let expr = match expr.len().checked_sub(3) {
        Some(i) if expr[i..].eq_ignore_ascii_case(" as") => expr[..i].trim_end(),
        _ => expr,
    };
    (expr, Some(name))
}

fn constant<'a>(expr: &str, user: &'a str, database: &'a str) -> Option<(&'a str, u32, String)> {
    let lower = expr.to_ascii_lowercase();
    if let Ok(n) = expr.parse::<i32>() {
        return Some(("?column?", INT4, n.to_string()));
    }
    if let Some(inner) = expr
        .strip_prefix('\'')
        .and_then(|e| e.strip_suffix('\''))
        .filter(|_| expr.len() >= 2)
    {
        // '' inside a literal is one quote; a lone quote would have ended it.
        if inner.replace("''", "").contains('\'') {
            return None;
        }
        return Some(("?column?", TEXT, inner.replace("''", "'")));
    }
    match lower.as_str() {
        "version()" => Some((
            "version",
            TEXT,
            format!(
                "PostgreSQL 15.0 (warren demo {}), not a real PostgreSQL",
                env!("CARGO_PKG_VERSION")
            ),
        )),
        "current_user" | "user" | "session_user" => Some(("current_user", TEXT, user.into())),
        "current_database()" => Some(("current_database", TEXT, database.into())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_protocol::message::backend::{DataRowBody, Message};
    use postgres_protocol::message::frontend;

    /// The messages of one reply, in order.
    fn parse(mut bytes: bytes::BytesMut) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(m) = Message::parse(&mut bytes).expect("a valid backend message") {
            out.push(m);
        }
        assert!(bytes.is_empty(), "trailing bytes");
        out
    }

    fn values(row: &DataRowBody) -> Vec<String> {
        use fallible_iterator::FallibleIterator;
        let buf = row.buffer();
        row.ranges()
            .map(|r| Ok(r.map(|r| String::from_utf8_lossy(&buf[r]).into_owned())))
            .collect::<Vec<_>>()
            .expect("ranges")
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect()
    }

    #[test]
    fn constants_come_back_as_one_row() {
        let reply = simple_query(
            "select 1, 'it''s; fine' as greeting, current_user, current_database();",
            "alice",
            "orders",
        );
        let msgs = parse(bytes::BytesMut::from(&reply[..]));
        assert_eq!(msgs.len(), 3, "RowDescription, DataRow, CommandComplete");
        let Message::RowDescription(desc) = &msgs[0] else {
            panic!("no RowDescription");
        };
        use fallible_iterator::FallibleIterator;
        let names: Vec<String> = desc
            .fields()
            .map(|f| Ok(f.name().to_string()))
            .collect()
            .expect("fields");
        assert_eq!(
            names,
            ["?column?", "greeting", "current_user", "current_database"]
        );
        let Message::DataRow(row) = &msgs[1] else {
            panic!("no DataRow");
        };
        assert_eq!(values(row), ["1", "it's; fine", "alice", "orders"]);
        let Message::CommandComplete(c) = &msgs[2] else {
            panic!("no CommandComplete");
        };
        assert_eq!(c.tag().expect("tag"), "SELECT 1");
    }

    #[test]
    fn anything_else_is_an_error_that_says_what_it_answers() {
        for q in [
            "select * from users",
            "insert into t values (1)",
            "select 1; drop table t",
            "select 'unterminated",
            "selectx 1",
        ] {
            let msgs = parse(bytes::BytesMut::from(&simple_query(q, "u", "d")[..]));
            let Some(Message::ErrorResponse(e)) = msgs.last() else {
                panic!("{q}: no error");
            };
            use fallible_iterator::FallibleIterator;
            let text: Vec<String> = e
                .fields()
                .map(|f| Ok(String::from_utf8_lossy(f.value_bytes()).into_owned()))
                .collect()
                .expect("fields");
            assert!(
                text.iter().any(|t| t.contains("only SELECT of constants")),
                "{q}: {text:?}"
            );
        }
        let msgs = parse(bytes::BytesMut::from(&simple_query(" ; ", "u", "d")[..]));
        assert!(matches!(msgs[..], [Message::EmptyQueryResponse]));
    }

    /// A whole session over TCP, as a client library sends it: SSLRequest, startup, a query,
    /// an extended-protocol query (refused, then Sync), terminate.
    /// The database serving on loopback, and a client connected to it.
    async fn served() -> (TcpStream, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, stop.clone()));
        let c = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        (c, stop)
    }

    #[tokio::test]
    async fn a_client_logs_in_queries_and_leaves() {
        let (mut c, stop) = served().await;
        c.write_all(&[0, 0, 0, 8, 4, 210, 22, 47])
            .await
            .expect("ssl");
        let mut n = [0u8; 1];
        c.read_exact(&mut n).await.expect("N");
        assert_eq!(&n, b"N");
        let mut buf = bytes::BytesMut::new();
        frontend::startup_message([("user", "bob"), ("database", "demo")], &mut buf)
            .expect("startup");
        frontend::query("select 42 as answer", &mut buf).expect("query");
        frontend::parse("", "select 1", [], &mut buf).expect("parse");
        frontend::sync(&mut buf);
        frontend::terminate(&mut buf);
        c.write_all(&buf).await.expect("send");
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got))
            .await
            .expect("the server closes after Terminate")
            .expect("read");
        let msgs = parse(bytes::BytesMut::from(&got[..]));
        let kinds: Vec<&str> = msgs
            .iter()
            .map(|m| match m {
                Message::AuthenticationOk => "auth ok",
                Message::ParameterStatus(_) => "param",
                Message::BackendKeyData(_) => "key",
                Message::ReadyForQuery(_) => "ready",
                Message::RowDescription(_) => "columns",
                Message::DataRow(_) => "row",
                Message::CommandComplete(_) => "complete",
                Message::ErrorResponse(_) => "error",
                _ => "other",
            })
            .filter(|k| *k != "param")
            .collect();
        assert_eq!(
            kinds,
            [
                "auth ok", "key", "ready", "columns", "row", "complete", "ready", "error", "ready"
            ]
        );
        let row = msgs.iter().find_map(|m| match m {
            Message::DataRow(r) => Some(values(r)),
            _ => None,
        });
        assert_eq!(row, Some(vec!["42".to_string()]));
        stop.cancel();
    }

    #[tokio::test]
    async fn an_oversized_length_ends_the_connection() {
        let (mut c, stop) = served().await;
        c.write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0])
            .await
            .expect("send");
        let mut got = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got))
            .await
            .expect("closed at once");
        assert!(n.is_err() || got.is_empty(), "nothing answered: {got:?}");
        stop.cancel();
    }
}
