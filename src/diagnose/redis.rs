//! The Redis probe, as `redis-cli` logs in: `HELLO 2 AUTH user password` (Redis 6 and later;
//! `AUTH password` on older servers), `SELECT n` for the entry's database number, then `PING`.
//! Without a password it sends only `PING`, and a server that asks for one is a `warn`: the
//! login was not checked. TLS (`rediss`) with `sslmode = "require"` or above, from the first
//! byte (Redis has no STARTTLS). AUTH carries the password in cleartext, so it goes only over
//! TLS whose certificate was verified, or where the entry says `sslmode = "disable"`; else the
//! probe asks only `PING` and says the login was not checked.
//!
//! The replies are read by a RESP2 reader of warren's own, not by the `redis-protocol` crate:
//! that crate's decoder recurses once per nested array with no bound, so a reply of nested
//! one-element arrays (`*1\r\n` repeated, 4 bytes a level) overflows the stack within the
//! probe's 64 KiB reply cap (measured: 60,000 levels abort a release build on an 8 MiB
//! stack; a tokio worker has 2 MiB). This reader stops at [`MAX_DEPTH`] levels and
//! [`MAX_ITEMS`] elements, and checks every announced length against [`MESSAGE_CAP`].

use std::future::Future;

use tokio::io::{AsyncRead, AsyncWrite};

use super::probe::{Finding, Frame, Target, not_the_engine, read_whole, show_bytes};
use super::tls;
use super::wire::{Budget, MESSAGE_CAP};
use crate::config::model::SslMode;

/// Nesting of arrays a reply may have (HELLO's reply has two levels).
pub const MAX_DEPTH: usize = 4;
/// Elements one reply may have in all.
pub const MAX_ITEMS: usize = 512;

/// A RESP2 value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    fn text(&self) -> Option<String> {
        match self {
            Resp::Simple(s) => Some(s.clone()),
            Resp::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Resp::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }
}

/// One whole reply at the start of `b` and its length; `Ok(None)` when more bytes are needed.
pub fn parse(b: &[u8]) -> Result<Option<(Resp, usize)>, String> {
    let mut items = 0;
    value(b, 0, 0, &mut items)
}

fn line(b: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, String> {
    let rest = b.get(at..).unwrap_or_default();
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok(Some((&rest[..i], at + i + 2))),
        None if rest.len() > MESSAGE_CAP => Err(format!(
            "a reply line longer than {} KiB",
            MESSAGE_CAP >> 10
        )),
        None => Ok(None),
    }
}

fn number(l: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(l)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not a number: {}", show_bytes(l)))
}

fn value(
    b: &[u8],
    at: usize,
    depth: usize,
    items: &mut usize,
) -> Result<Option<(Resp, usize)>, String> {
    *items += 1;
    if *items > MAX_ITEMS {
        return Err(format!("a reply of more than {MAX_ITEMS} elements"));
    }
    let Some(&kind) = b.get(at) else {
        return Ok(None);
    };
    let Some((l, next)) = line(b, at + 1)? else {
        return Ok(None);
    };
    let text = || {
        String::from_utf8_lossy(l)
            .chars()
            .take(300)
            .collect::<String>()
    };
    Ok(Some(match kind {
        b'+' => (Resp::Simple(text()), next),
        b'-' => (Resp::Error(text()), next),
        b':' => (Resp::Int(number(l)?), next),
        b'$' => match number(l)? {
            -1 => (Resp::Bulk(None), next),
            n if n < 0 => return Err(format!("a string of length {n}")),
            n if n as u64 > MESSAGE_CAP as u64 => {
                return Err(format!(
                    "it announces {n} bytes; warren reads replies of up to {} KiB",
                    MESSAGE_CAP >> 10
                ));
            }
            n => {
                let n = n as usize;
                let Some(body) = b.get(next..next + n + 2) else {
                    return Ok(None);
                };
                if &body[n..] != b"\r\n" {
                    return Err("a string not ended by CRLF".into());
                }
                (Resp::Bulk(Some(body[..n].to_vec())), next + n + 2)
            }
        },
        b'*' => match number(l)? {
            -1 => (Resp::Array(None), next),
            n if n < 0 => return Err(format!("an array of length {n}")),
            _ if depth + 1 > MAX_DEPTH => {
                return Err(format!("arrays nested deeper than {MAX_DEPTH}"));
            }
            n if n as u64 > MAX_ITEMS as u64 => {
                return Err(format!("an array of {n} elements"));
            }
            n => {
                let mut v = Vec::new();
                let mut at = next;
                for _ in 0..n {
                    match value(b, at, depth + 1, items)? {
                        Some((x, end)) => {
                            v.push(x);
                            at = end;
                        }
                        None => return Ok(None),
                    }
                }
                (Resp::Array(Some(v)), at)
            }
        },
        _ => return Err(format!("not a Redis reply: {}", show_bytes(&b[at..]))),
    }))
}

/// A command as Redis reads it: an array of bulk strings.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What HELLO's reply says of the server: "Redis 7.0.15" (or the product it names).
pub fn hello_server(r: &Resp) -> Option<String> {
    let Resp::Array(Some(v)) = r else {
        return None;
    };
    let field = |k: &str| {
        v.chunks(2)
            .find(|p| p.first().and_then(Resp::text).as_deref() == Some(k))
            .and_then(|p| p.get(1).and_then(Resp::text))
    };
    let version = field("version")?;
    let product = match field("server").as_deref() {
        Some("valkey") => "Valkey",
        _ => "Redis",
    };
    Some(format!(
        "{product} {}",
        crate::text::escape(&version.chars().take(40).collect::<String>())
    ))
}

/// Sends one command and reads its reply.
pub(crate) async fn ask<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    budget: &mut Budget,
    args: &[&[u8]],
) -> Result<Resp, (Vec<u8>, String)> {
    if let Err(cut) = budget.write(s, &command(args)).await {
        return Err((Vec::new(), cut.to_string()));
    }
    let frame = |b: &[u8]| match parse(b) {
        Ok(Some((_, n))) => Frame::Whole(n),
        Ok(None) => Frame::More,
        Err(why) => Frame::Bad(why),
    };
    let bytes = read_whole(s, budget, frame).await?;
    match parse(&bytes) {
        Ok(Some((r, _))) => Ok(r),
        Ok(None) => Err((bytes, "the reply is not whole".into())),
        Err(why) => Err((bytes, why)),
    }
}

/// An error reply as the step reports it.
pub fn explain(error: &str, t: &Target, server: &str) -> Finding {
    let said = crate::text::escape(error).into_owned();
    let word = error.split_whitespace().next().unwrap_or_default();
    let user = if t.user.is_empty() {
        "default"
    } else {
        &t.user
    };
    let f = match word {
        "WRONGPASS" => Finding::fail(
            format!("{server} refused the login of {user} (WRONGPASS: {said})"),
            format!(
                "the password or the user is wrong: check password_file and username in the entry; on the server, ACL GETUSER {user} shows the account (a user that is not 'default' needs its own password: ACL SETUSER {user} on >…)"
            ),
        ),
        "NOAUTH" => Finding::fail(
            format!("{server} asks for a password ({said})"),
            "set password_file in the entry (the server's requirepass, or the ACL user's password)",
        ),
        "NOPERM" => Finding::fail(
            format!("{server} let {user} in, but not to run what the probe asked ({said})"),
            format!(
                "the ACL user lacks a permission: ACL SETUSER {user} +@connection (for PING and SELECT), and the database's key patterns it needs"
            ),
        ),
        "DENIED" => Finding::fail(
            format!("{server} refuses connections from other hosts (protected mode: {said})"),
            "Redis in protected mode takes only loopback clients when it has no password; the bastion is not loopback to it: set requirepass (and password_file in the entry), or bind it and set protected-mode no on a private network",
        ),
        _ if error.contains("DB index is out of range") => Finding::fail(
            format!("{server} has no database {} ({said})", t.database),
            "the database number is wrong: it must be below the server's `databases` setting (16 by default); check `database` in the entry",
        ),
        _ if error.contains("invalid password") || error.contains("invalid username-password") => {
            Finding::fail(
                format!("{server} refused the password ({said})"),
                "the password is wrong: check password_file (the server's requirepass)",
            )
        }
        _ => Finding::fail(format!("{server} refused: {said}"), "see the server's log"),
    };
    let brief = match word {
        "WRONGPASS" | "NOAUTH" => format!("login refused ({word})"),
        "NOPERM" => "no permission (NOPERM)".into(),
        "DENIED" => "refused (protected mode)".into(),
        _ if error.contains("DB index is out of range") => "no database".into(),
        _ if error.contains("invalid password") => "login refused".into(),
        _ => "refused".into(),
    };
    f.brief(brief)
}

/// Probes Redis over a connection made by `open`.
pub async fn probe<S, F, Fut>(t: &Target, budget: &mut Budget, open: F) -> Finding
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: Future<Output = Option<S>>,
{
    let Ok(Some(s)) = budget.within(open()).await else {
        return Finding::fail(
            "could not open a connection for the probe",
            "the target stopped answering",
        );
    };
    let mode = t.sslmode.value;
    if mode < SslMode::Require {
        let mut s = s;
        let how = Transport {
            said: format!("no TLS (sslmode = {mode}; Redis has no STARTTLS)"),
            verified: false,
        };
        return on(&how, login(&mut s, t, budget, &how).await);
    }
    let client = match tls::client(mode, &t.sslrootcert, &t.host) {
        Ok(c) => c.for_engine(tls::Engine::Redis),
        Err((d, h)) => return Finding::fail(d, h),
    };
    let verified = client.checks != tls::Checks::Nothing;
    match client.handshake(s, budget).await {
        Ok((mut tls, said)) => {
            let how = Transport { said, verified };
            let f = login(&mut tls, t, budget, &how).await;
            on(&how, f)
        }
        Err((d, h)) => Finding::fail(d, h),
    }
}

/// How the login travels.
struct Transport {
    said: String,
    /// TLS whose certificate was checked: only then does AUTH's cleartext password go
    /// (or under sslmode = "disable").
    verified: bool,
}

fn on(how: &Transport, f: Finding) -> Finding {
    Finding {
        detail: format!("{}; {}", how.said, f.detail),
        ..f
    }
}

async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    t: &Target,
    budget: &mut Budget,
    how: &Transport,
) -> Finding {
    let db = t.database.trim();
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Finding::fail(
            format!(
                "the entry's database '{}' is not a Redis database number",
                crate::text::escape(db)
            ),
            "Redis databases are numbers (0 to 15 by default): write database = \"0\"",
        );
    }
    let user = if t.user.is_empty() {
        "default"
    } else {
        t.user.as_str()
    };
    let mut server = "Redis".to_string();
    let as_whom;
    let may_send = how.verified || t.sslmode.value == SslMode::Disable;
    match t.password.as_deref() {
        Some(_) if !may_send => match ask(s, budget, &[b"PING"]).await {
            Ok(Resp::Error(e)) if e.starts_with("NOAUTH") => {
                return Finding::warn(
                    "Redis answered and asks for a password; login not checked: AUTH sends the password in cleartext, and the server's certificate was not verified, so warren did not send it",
                    format!(
                        "set sslmode = \"disable\" in the entry ({}) to let doctor send it as your client does, or serve Redis over TLS (tls-port) and set sslmode = \"verify-full\" with sslrootcert",
                        t.sslmode.origin
                    ),
                );
            }
            Ok(Resp::Simple(p)) if p == "PONG" => {
                return Finding::warn(
                    "Redis answered PONG without a password: the server asks for none, so the entry's password was not needed (and not sent)",
                    "remove password_file from the entry, or set requirepass on the server",
                );
            }
            Ok(Resp::Error(e)) => return explain(&e, t, &server),
            Ok(other) => return odd(&other),
            Err((b, why)) => return not_redis(&b, &why),
        },
        Some(pass) => {
            match ask(
                s,
                budget,
                &[b"HELLO", b"2", b"AUTH", user.as_bytes(), pass.as_bytes()],
            )
            .await
            {
                Ok(r @ Resp::Array(_)) => {
                    server = hello_server(&r).unwrap_or(server);
                    as_whom = format!("{user} logged in with the password from password_file");
                }
                Ok(Resp::Error(e))
                    if e.contains("unknown command")
                        || e.contains("unknown or disabled command") =>
                {
                    // Redis before 6: no HELLO, no ACL users.
                    if user != "default" {
                        return Finding::fail(
                            format!(
                                "Redis answered, but it is older than 6 and has no ACL users, so it cannot log in {user} ({})",
                                crate::text::escape(&e)
                            ),
                            "remove username from the entry (Redis 5 and older know only the requirepass password)",
                        );
                    }
                    match ask(s, budget, &[b"AUTH", pass.as_bytes()]).await {
                        Ok(Resp::Simple(ok)) if ok == "OK" => {}
                        Ok(Resp::Error(e)) if e.contains("no password is set") => {
                            return Finding::warn(
                                format!(
                                    "Redis answered and asks for no password; the entry's password was not needed ({})",
                                    crate::text::escape(&e)
                                ),
                                "remove password_file from the entry, or set requirepass on the server",
                            );
                        }
                        Ok(Resp::Error(e)) => return explain(&e, t, &server),
                        Ok(other) => return odd(&other),
                        Err((b, why)) => return not_redis(&b, &why),
                    }
                    as_whom = "the password from password_file was accepted (AUTH)".into();
                }
                Ok(Resp::Error(e)) if e.contains("without any password configured") => {
                    return Finding::warn(
                        format!(
                            "Redis answered and asks for no password; the entry's password was not needed ({})",
                            crate::text::escape(&e)
                        ),
                        "remove password_file from the entry, or set requirepass on the server",
                    );
                }
                Ok(Resp::Error(e)) => return explain(&e, t, &server),
                Ok(other) => return odd(&other),
                Err((b, why)) => return not_redis(&b, &why),
            }
        }
        None => match ask(s, budget, &[b"PING"]).await {
            Ok(Resp::Simple(p)) if p == "PONG" => {
                as_whom = "it asks for no password (anyone who reaches it can use it)".into();
            }
            Ok(Resp::Error(e)) if e.starts_with("NOAUTH") => {
                return Finding::warn(
                    "Redis answered and asks for a password; login not checked: no password configured",
                    "set password_file in the entry (and username for an ACL user) so that doctor logs in",
                );
            }
            Ok(Resp::Error(e)) => return explain(&e, t, &server),
            Ok(other) => return odd(&other),
            Err((b, why)) => return not_redis(&b, &why),
        },
    }
    let mut into = String::new();
    if !db.is_empty() {
        match ask(s, budget, &[b"SELECT", db.as_bytes()]).await {
            Ok(Resp::Simple(ok)) if ok == "OK" => into = format!(", database {db}"),
            Ok(Resp::Error(e)) => return explain(&e, t, &server),
            Ok(other) => return odd(&other),
            Err((b, why)) => return not_redis(&b, &why),
        }
    }
    match ask(s, budget, &[b"PING"]).await {
        Ok(Resp::Simple(p)) if p == "PONG" => {}
        Ok(Resp::Error(e)) => return explain(&e, t, &server),
        Ok(other) => return odd(&other),
        Err((b, why)) => return not_redis(&b, &why),
    }
    Finding::pass(format!(
        "{server} answered: {as_whom}{into}; PING answered PONG"
    ))
}

fn odd(r: &Resp) -> Finding {
    Finding::fail(
        format!(
            "Redis answered something unexpected: {}",
            crate::text::escape(&format!("{r:?}").chars().take(120).collect::<String>())
        ),
        "check what listens on this port",
    )
}

fn not_redis(b: &[u8], why: &str) -> Finding {
    not_the_engine(
        b,
        why,
        "Redis",
        6379,
        "the port accepts connections but says nothing: is this Redis (TLS-only Redis waits for a TLS handshake: sslmode = \"require\")?",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_whole_or_ask_for_more() {
        assert_eq!(
            parse(b"+PONG\r\n"),
            Ok(Some((Resp::Simple("PONG".into()), 7)))
        );
        assert_eq!(parse(b"+PON"), Ok(None));
        assert_eq!(parse(b"$5\r\nhel"), Ok(None));
        assert_eq!(
            parse(b"*2\r\n$1\r\na\r\n:7\r\n"),
            Ok(Some((
                Resp::Array(Some(vec![Resp::Bulk(Some(b"a".to_vec())), Resp::Int(7)])),
                15
            )))
        );
        assert_eq!(parse(b"$-1\r\n"), Ok(Some((Resp::Bulk(None), 5))));
    }

    #[test]
    fn hostile_replies_are_refused_not_followed() {
        let deep = b"*1\r\n".repeat(16_000);
        assert!(parse(&deep).is_err());
        assert!(parse(b"*99999999\r\n").is_err());
        assert!(parse(b"$99999999\r\n").is_err());
        assert!(parse(b"$3\r\nabcXY").is_err());
        assert!(parse(b"SSH-2.0-OpenSSH_9.2\r\n").is_err());
        let wide = format!("*500\r\n{}", "*1\r\n:1\r\n".repeat(500));
        assert!(parse(wide.as_bytes()).is_err());
    }

    #[test]
    fn hello_names_the_server() {
        // Recorded from Redis 7.0.15: HELLO 2 AUTH default secret.
        let reply = b"*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:3\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
        let (r, n) = parse(reply).ok().flatten().expect("whole");
        assert_eq!(n, reply.len());
        assert_eq!(hello_server(&r).as_deref(), Some("Redis 7.0.15"));
        assert_eq!(
            command(&[b"AUTH", b"pw"]),
            b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"
        );
    }
}
