//! The PostgreSQL probe, as libpq connects: the SSLRequest and TLS by `sslmode`, the startup
//! message, then the login (with the entry's password, if it has one) until the server is
//! ready, refuses, or breaks a bound. Every read goes through one [`Budget`] for the step.
//!
//! A password is never sent in cleartext or as MD5 outside TLS unless `sslmode = "disable"`
//! says so; SCRAM may go without TLS, since it never reveals the password.

use std::future::Future;

use bytes::BytesMut;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncWrite};

use super::pgauth::{Scram, md5_password};
use super::pgwire::{self, FrameError, PgError, SslAnswer};
use super::probe::{Finding, name_protocol, show_bytes};
use super::tls;
use super::wire::{Budget, Cut};
use crate::config::model::SslMode;

pub use super::probe::Target;

/// How the login travelled, for the diagnosis.
struct Transport {
    /// "TLS 1.3, certificate verified ...", "no TLS: the server does not offer it", ...
    said: String,
    encrypted: bool,
    /// TLS whose certificate was checked (a chain to sslrootcert at least).
    verified: bool,
    /// What the server answered to the SSLRequest, when one was sent.
    offered: Option<bool>,
}

/// Probes PostgreSQL over connections made by `open` (a second one only when `prefer` falls
/// back to no TLS, as libpq does).
pub async fn probe<S, F, Fut>(t: &Target, budget: &mut Budget, open: F) -> Finding
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: Future<Output = Option<S>>,
{
    let mode = t.sslmode.value;
    let client = match mode {
        SslMode::Disable => None,
        _ => match tls::client(mode, &t.sslrootcert, &t.host) {
            Ok(c) => Some(c),
            Err((d, h)) => return Finding::fail(d, h),
        },
    };
    let Ok(Some(mut s)) = budget.within(open()).await else {
        return Finding::fail(
            "could not open a connection for the probe",
            "the target stopped answering",
        );
    };
    let Some(client) = client else {
        let plain = Transport {
            said: "no TLS (sslmode = disable)".into(),
            encrypted: false,
            verified: false,
            offered: None,
        };
        return login(&mut s, t, budget, &plain).await.0;
    };
    let verified = client.checks != tls::Checks::Nothing;
    if let Err(cut) = budget.write(&mut s, &pgwire::ssl_request()).await {
        return Finding::fail(
            format!("the SSLRequest could not be sent: {cut}"),
            "the database closed the connection at once: check its logs",
        );
    }
    let mut answer = BytesMut::new();
    let mut cut = None;
    while !pgwire::ssl_answer_complete(&answer) {
        if let Err(c) = budget.read_more(&mut s, &mut answer).await {
            cut = Some(c);
            break;
        }
    }
    let fallback = |why: String| Transport {
        said: why,
        encrypted: false,
        verified: false,
        offered: Some(true),
    };
    match pgwire::ssl_answer(&answer) {
        SslAnswer::Yes => match client.handshake(s, budget).await {
            Ok((mut tls, said)) => {
                let over_tls = Transport {
                    said,
                    encrypted: true,
                    verified,
                    offered: Some(true),
                };
                let (f, retry) = login(&mut tls, t, budget, &over_tls).await;
                if !(retry && mode == SslMode::Prefer) {
                    return f;
                }
                let why = format!(
                    "no TLS: over TLS, {}; sslmode = prefer tried again without, as libpq does",
                    f.detail
                );
                plain_again(t, budget, &open, fallback(why)).await
            }
            Err((d, h)) if mode == SslMode::Prefer => {
                let why = format!("no TLS: {d} ({h}); sslmode = prefer went on without TLS");
                plain_again(t, budget, &open, fallback(why)).await
            }
            Err((d, h)) => Finding::fail(d, h),
        },
        SslAnswer::No if mode >= SslMode::Require => Finding::fail(
            format!(
                "the server does not offer TLS (it answered 'N' to the SSLRequest), and sslmode = {mode} needs it"
            ),
            format!(
                "turn TLS on in postgresql.conf (ssl = on, ssl_cert_file, ssl_key_file) and reload, or lower sslmode ({})",
                t.sslmode.origin
            ),
        ),
        SslAnswer::No => {
            let plain = Transport {
                said: "no TLS: the server does not offer it (sslmode = prefer)".into(),
                encrypted: false,
                verified: false,
                offered: Some(false),
            };
            login(&mut s, t, budget, &plain).await.0
        }
        SslAnswer::Refused(e) => {
            error_finding(
                &e,
                t,
                &Transport {
                    said: "before TLS".into(),
                    encrypted: false,
                    verified: false,
                    offered: None,
                },
            )
            .0
        }
        SslAnswer::Other => not_postgres(&answer, cut.as_ref(), "the SSLRequest"),
    }
}

async fn plain_again<S, F, Fut>(
    t: &Target,
    budget: &mut Budget,
    open: &F,
    how: Transport,
) -> Finding
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: Future<Output = Option<S>>,
{
    match budget.within(open()).await {
        Ok(Some(mut s)) => login(&mut s, t, budget, &how).await.0,
        _ => Finding::fail(
            format!("{}; but a second connection could not be opened", how.said),
            "the target stopped answering",
        ),
    }
}

/// What a reply that is not PostgreSQL's looks like.
fn not_postgres(b: &[u8], cut: Option<&Cut>, to: &str) -> Finding {
    match (name_protocol(b), cut) {
        (Some(p), _) => Finding::fail(
            format!("this port speaks {p}, not PostgreSQL"),
            "the port is wrong: PostgreSQL usually listens on 5432",
        ),
        (None, Some(c)) if b.is_empty() => Finding::fail(
            format!("PostgreSQL did not answer {to}: {c}"),
            "the port accepts connections but says nothing: is this PostgreSQL, and is it hung?",
        ),
        (None, _) => Finding::fail(
            format!("not a PostgreSQL answer to {to}: {}", show_bytes(b)),
            "check the database port",
        ),
    }
}

/// The startup message and the login; the flag asks `prefer` to try again without TLS.
async fn login<T: AsyncRead + AsyncWrite + Unpin>(
    s: &mut T,
    t: &Target,
    budget: &mut Budget,
    how: &Transport,
) -> (Finding, bool) {
    let (user, database) = (&t.user, &t.database);
    let on = |f: Finding| Finding {
        detail: format!("{}; {}", how.said, f.detail),
        ..f
    };
    let startup = match pgwire::startup(user, database) {
        Ok(m) => m,
        Err(e) => {
            return (
                on(Finding::fail(e, "fix username / database in the entry")),
                false,
            );
        }
    };
    if let Err(cut) = budget.write(s, &startup).await {
        return (
            on(Finding::fail(
                format!("the startup message could not be sent: {cut}"),
                "the database closed the connection: check its logs",
            )),
            false,
        );
    }
    let mut buf = BytesMut::new();
    let mut first: Vec<u8> = Vec::new();
    let mut version = None;
    let mut scram: Option<Scram> = None;
    let mut signed = false;
    let mut method = "no password";
    let mut seen = 0usize;
    loop {
        let msg = match pgwire::next_message(&mut buf) {
            Ok(Some(m)) => m,
            Ok(None) => {
                let before = buf.len();
                if let Err(cut) = budget.read_more(s, &mut buf).await {
                    return (on(cut_finding(&cut, &first, seen, budget)), false);
                }
                if first.len() < 64 {
                    let take = (64 - first.len()).min(buf.len() - before);
                    first.extend_from_slice(&buf[before..before + take]);
                }
                continue;
            }
            Err(e) => return (on(frame_finding(&e, &first, seen)), false),
        };
        seen += 1;
        let asks = |how_: &str| {
            Finding::warn(
                format!(
                    "PostgreSQL answered: it asks {user} for {how_} to open {database}; login not checked: no password configured"
                ),
                "set password_file in the entry so that doctor logs in as the user",
            )
        };
        let reply: Result<Option<Vec<u8>>, Finding> = match msg {
            Message::AuthenticationOk if scram.is_some() && !signed => Err(Finding::fail(
                "PostgreSQL accepted the SCRAM login without proving it knows the password (no server signature)",
                "something other than PostgreSQL answers, or stands in between: check what listens on this port",
            )),
            Message::AuthenticationOk => Ok(None),
            Message::AuthenticationCleartextPassword | Message::AuthenticationMd5Password(_) => {
                let (how_, md5) = match &msg {
                    Message::AuthenticationMd5Password(b) => ("an MD5 password", Some(b.salt())),
                    _ => ("a cleartext password", None),
                };
                match &t.password {
                    None => return (on(asks(how_)), false),
                    Some(_) if !how.verified && t.sslmode.value != SslMode::Disable => {
                        let why = if how.encrypted {
                            "the server's certificate was not verified"
                        } else {
                            "the connection is not encrypted"
                        };
                        return (
                            on(Finding::fail(
                                format!(
                                    "PostgreSQL asks for {how_}, and {why}: warren did not send the password"
                                ),
                                if how.encrypted {
                                    format!(
                                        "{how_} sent to a server whose certificate was not checked can be read (an MD5 one replayed) by whoever stands in between: set sslmode = \"verify-ca\" or \"verify-full\" with sslrootcert (now {}), or move the role to SCRAM-SHA-256 (password_encryption = scram-sha-256, then set the password again)",
                                        t.sslmode.origin
                                    )
                                } else {
                                    format!(
                                        "{how_} without TLS can be read (an MD5 one replayed) on the way: turn TLS on on the server (ssl = on) and verify its certificate (sslmode = \"verify-full\"), or move the role to SCRAM-SHA-256 (password_encryption = scram-sha-256, then set the password again); sslmode = \"disable\" ({}) sends it anyway",
                                        t.sslmode.origin
                                    )
                                },
                            )),
                            false,
                        );
                    }
                    Some(p) => {
                        method = how_;
                        let answer = zeroize::Zeroizing::new(match md5 {
                            Some(salt) => md5_password(p, user, salt),
                            None => p.to_string(),
                        });
                        let mut m = BytesMut::new();
                        frontend::password_message(answer.as_bytes(), &mut m)
                            .map(|_| Some(m.to_vec()))
                            .map_err(|e| {
                                Finding::fail(
                                    format!("the password cannot be sent: {e}"),
                                    "the password may not contain a NUL byte",
                                )
                            })
                    }
                }
            }
            Message::AuthenticationSasl(body) => {
                let mechs = pgwire::mechanisms(&body);
                match &t.password {
                    None => return (on(asks(&format!("a {} password", mechs.join("/")))), false),
                    Some(_) if !mechs.iter().any(|m| m == "SCRAM-SHA-256") => Err(Finding::fail(
                        format!(
                            "PostgreSQL asks for SASL mechanisms warren does not speak ({})",
                            mechs.join(" ")
                        ),
                        "use SCRAM-SHA-256 for this role",
                    )),
                    Some(p) => {
                        method = "SCRAM-SHA-256";
                        let (sc, first_msg) = Scram::start(p);
                        scram = Some(sc);
                        let mut m = BytesMut::new();
                        frontend::sasl_initial_response("SCRAM-SHA-256", &first_msg, &mut m)
                            .map(|_| Some(m.to_vec()))
                            .map_err(|e| Finding::fail(e.to_string(), "see the server's log"))
                    }
                }
            }
            Message::AuthenticationSaslContinue(body) => match scram.take() {
                None => Err(Finding::fail(
                    "PostgreSQL sent a SCRAM challenge nobody asked for",
                    "check what listens on this port",
                )),
                Some(sc) => match sc.answer(body.data(), budget).await {
                    Ok((sc, reply)) => {
                        scram = Some(sc);
                        let mut m = BytesMut::new();
                        frontend::sasl_response(&reply, &mut m)
                            .map(|_| Some(m.to_vec()))
                            .map_err(|e| Finding::fail(e.to_string(), "see the server's log"))
                    }
                    Err(e) => Err(Finding::fail(
                        e,
                        "the server (or something posing as it) sent a SCRAM challenge warren will not answer: check what listens on this port",
                    )),
                },
            },
            Message::AuthenticationSaslFinal(body) => match scram.take() {
                Some(sc) => match sc.finish(body.data()) {
                    Ok(()) => {
                        signed = true;
                        scram = None;
                        Ok(None)
                    }
                    Err(e) => Err(Finding::fail(
                        e,
                        "check that nothing intercepts the connection (sslmode = \"verify-full\" proves who answers)",
                    )),
                },
                None => Err(Finding::fail(
                    "PostgreSQL ended a SCRAM exchange that was not started",
                    "check what listens on this port",
                )),
            },
            Message::AuthenticationGss
            | Message::AuthenticationSspi
            | Message::AuthenticationKerberosV5
            | Message::AuthenticationScmCredential
            | Message::AuthenticationGssContinue(_) => match &t.password {
                None => return (on(asks("GSSAPI/SSPI (Kerberos) authentication")), false),
                Some(_) => Err(Finding::fail(
                    "PostgreSQL asks for GSSAPI/SSPI (Kerberos) authentication, which warren's probe does not speak",
                    "check the role's pg_hba.conf method; the probe logs in with a password only",
                )),
            },
            Message::ParameterStatus(b) => {
                if b.name().ok() == Some("server_version") {
                    version = b.value().ok().map(str::to_string);
                }
                Ok(None)
            }
            Message::ReadyForQuery(_) => {
                let v = version
                    .map(|v| format!(" (PostgreSQL {v})"))
                    .unwrap_or_default();
                let done = match &t.password {
                    Some(_) => format!(
                        "PostgreSQL answered: {user} logged in to {database} with the password from password_file ({method}){v}"
                    ),
                    None => format!(
                        "PostgreSQL answered: {user} is logged in to {database} without a password{v}"
                    ),
                };
                return (on(Finding::pass(done)), false);
            }
            Message::ErrorResponse(body) => {
                let (f, retry) = error_finding(&pgwire::error_fields(body.fields()), t, how);
                return (f, retry);
            }
            _ => Ok(None),
        };
        match reply {
            Err(f) => return (on(f), false),
            Ok(Some(bytes)) => {
                if let Err(cut) = budget.write(s, &bytes).await {
                    return (
                        on(Finding::fail(
                            format!("the login could not go on: {cut}"),
                            "the database closed the connection: check its logs",
                        )),
                        false,
                    );
                }
            }
            Ok(None) => {}
        }
    }
}

fn cut_finding(cut: &Cut, first: &[u8], seen: usize, budget: &Budget) -> Finding {
    match cut {
        Cut::Spent => Finding::fail(
            format!(
                "PostgreSQL sent {} KiB ({seen} messages) without finishing the login: warren stops reading there",
                budget.spent() >> 10
            ),
            "the server (or something posing as it) streams messages without end: check what listens on this port",
        ),
        _ if first.is_empty() => not_postgres(first, Some(cut), "the startup message"),
        Cut::Timeout(_) => Finding::fail(
            format!("the login did not finish: {cut} ({seen} messages so far)"),
            "the server stopped answering halfway: check its load and its log",
        ),
        _ => Finding::fail(
            format!("PostgreSQL's answer broke off: {cut} ({seen} messages so far)"),
            "the server closed the connection during the login: check its log",
        ),
    }
}

fn frame_finding(e: &FrameError, first: &[u8], seen: usize) -> Finding {
    if seen == 0
        && let Some(p) = name_protocol(first)
    {
        return Finding::fail(
            format!("this port speaks {p}, not PostgreSQL"),
            "the port is wrong: PostgreSQL usually listens on 5432",
        );
    }
    Finding::fail(
        format!(
            "not a PostgreSQL answer: {e}, after {seen} good messages (first bytes {})",
            show_bytes(first)
        ),
        "the server breaks PostgreSQL's protocol: check that PostgreSQL (and nothing posing as it) listens on this port",
    )
}

/// An ErrorResponse during login, with the fix for the usual codes; the flag is true when
/// pg_hba refused a TLS connection (libpq's prefer then tries without).
fn error_finding(e: &PgError, t: &Target, how: &Transport) -> (Finding, bool) {
    let (user, database, code, msg) = (&t.user, &t.database, e.code.as_str(), e.message.as_str());
    let hba = code == "28000" && msg.contains("pg_hba.conf");
    let refused_plain = msg.contains("no encryption") || msg.contains("SSL off");
    let refused_tls = msg.contains("SSL encryption") || msg.contains("SSL on");
    let mut retry = false;
    let hint = match code {
        _ if hba && refused_plain && !how.encrypted && t.sslmode.value == SslMode::Disable => format!("pg_hba.conf admits this client only over TLS (a hostssl line): remove sslmode = \"disable\" ({}) so that the probe uses TLS", t.sslmode.origin),
        _ if hba && refused_plain && how.offered == Some(false) => "pg_hba.conf admits this client only over TLS (a hostssl line), but the server does not offer TLS: set ssl = on (with ssl_cert_file and ssl_key_file) in postgresql.conf and reload, or add a `host` line".into(),
        _ if hba && refused_tls && how.encrypted => {
            retry = true;
            "pg_hba.conf has no line for this client over TLS (a hostnossl line only?): add a hostssl (or host) line for the bastion's address".into()
        }
        _ if hba => "PostgreSQL has no pg_hba.conf entry for the bastion's address: add a `host` line for the bastion's IP (or its subnet) and reload".into(),
        "28000" => format!("the role {user} may not log in: check the role exists and has LOGIN"),
        "28P01" => "the password was wrong: check password_file".into(),
        "3D000" => format!("there is no database {database}: check `database` in epoch.toml"),
        "53300" => "too many connections: the server's max_connections is reached".into(),
        _ => match &e.hint {
            Some(h) => format!("the server says: {h}"),
            None => "see the server's message".into(),
        },
    };
    // Reaching PostgreSQL at all is the probe's question: an access rule is a failure with
    // its own fix.
    let detail = format!("{}; PostgreSQL answered with error {code}: {msg}", how.said);
    let brief = match code {
        _ if hba => format!("refused by pg_hba.conf ({code})"),
        "28P01" | "28000" => format!("login refused ({code})"),
        "3D000" => format!("no database ({code})"),
        "53300" => format!("too many connections ({code})"),
        _ => format!("refused ({code})"),
    };
    (Finding::fail(detail, hint).brief(brief), retry)
}
