//! The PostgreSQL probe, as libpq connects: the SSLRequest and TLS by `sslmode`, the startup
//! message, then the login (with the entry's password, if it has one) until the server is
//! ready, refuses, or breaks a bound. Every read goes through one [`Budget`] for the step.
//!
//! A password is never sent in cleartext or as MD5 outside TLS unless `sslmode = "disable"`
//! says so; SCRAM may go without TLS, since it never reveals the password.
//!
//! Over TLS, SCRAM is bound to the connection as libpq's `channel_binding` says (default
//! `prefer`): SCRAM-SHA-256-PLUS with `tls-server-end-point` ([`chanbind`]) when the server
//! offers it, so that a server in between with a certificate of its own (which an unverified
//! certificate cannot rule out) makes the real server refuse the proof; SCRAM-SHA-256 with the
//! `y` flag when it does not (a server whose offer was stripped on the way refuses that);
//! `require` fails the step when the login cannot be bound.

use std::future::Future;

use bytes::BytesMut;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncWrite};

use super::chanbind::{self, EndPoint};
use super::pgauth::{ChannelBinding, Scram, md5_password};
use super::pgwire::{self, FrameError, PgError, SslAnswer};
use super::probe::{Finding, name_protocol, show_bytes};
use super::tls;
use super::wire::{Budget, Cut};
use crate::config::Sourced;
use crate::config::model::{ChannelBindingMode, SslMode};

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
    /// Over TLS: the `tls-server-end-point` binding of the server's certificate, or why it
    /// has none; `None` without TLS.
    binding: Option<Result<EndPoint, String>>,
}

/// Probes PostgreSQL over connections made by `open` (a second one only when `prefer` falls
/// back to no TLS, as libpq does), binding a SCRAM login to TLS as `cb` says.
pub async fn probe<S, F, Fut>(
    t: &Target,
    cb: &Sourced<ChannelBindingMode>,
    budget: &mut Budget,
    open: F,
) -> Finding
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
            binding: None,
        };
        return login(&mut s, t, cb, budget, &plain).await.0;
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
        binding: None,
    };
    match pgwire::ssl_answer(&answer) {
        SslAnswer::Yes => match client.handshake(s, budget).await {
            Ok((mut tls, said)) => {
                let binding = match tls::peer_certificate(&tls) {
                    Some(cert) => chanbind::server_end_point(&cert),
                    None => Err("the server sent no certificate".into()),
                };
                let over_tls = Transport {
                    said,
                    encrypted: true,
                    verified,
                    offered: Some(true),
                    binding: Some(binding),
                };
                let (f, retry) = login(&mut tls, t, cb, budget, &over_tls).await;
                if !(retry && mode == SslMode::Prefer) {
                    return f;
                }
                let why = format!(
                    "no TLS: over TLS, {}; sslmode = prefer tried again without, as libpq does",
                    f.detail
                );
                plain_again(t, cb, budget, &open, fallback(why)).await
            }
            Err((d, h)) if mode == SslMode::Prefer => {
                let why = format!("no TLS: {d} ({h}); sslmode = prefer went on without TLS");
                plain_again(t, cb, budget, &open, fallback(why)).await
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
                binding: None,
            };
            login(&mut s, t, cb, budget, &plain).await.0
        }
        SslAnswer::Refused(e) => {
            error_finding(
                &e,
                t,
                cb,
                &Transport {
                    said: "before TLS".into(),
                    encrypted: false,
                    verified: false,
                    offered: None,
                    binding: None,
                },
            )
            .0
        }
        SslAnswer::Other => not_postgres(&answer, cut.as_ref(), "the SSLRequest"),
    }
}

async fn plain_again<S, F, Fut>(
    t: &Target,
    cb: &Sourced<ChannelBindingMode>,
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
        Ok(Some(mut s)) => login(&mut s, t, cb, budget, &how).await.0,
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
    cb: &Sourced<ChannelBindingMode>,
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
    // SCRAM-SHA-256-PLUS was chosen (with `signed`: and the server proved it).
    let mut bound = false;
    let require = cb.value == ChannelBindingMode::Require;
    let mut method = String::from("no password");
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
        // What libpq's channel_binding = require refuses: a login that is not SCRAM.
        let unbindable = |how_: &str| {
            Finding::fail(
                format!(
                    "PostgreSQL asks for {how_}, which cannot be bound to TLS, and channel_binding = require ({}) asks for a bound login",
                    cb.origin
                ),
                format!(
                    "give {user} a SCRAM password (password_encryption = scram-sha-256, then set it again) and the scram-sha-256 method on a hostssl line in pg_hba.conf, or lower channel_binding ({})",
                    cb.origin
                ),
            )
        };
        let reply: Result<Option<Vec<u8>>, Finding> = match msg {
            Message::AuthenticationOk if scram.is_some() && !signed => Err(Finding::fail(
                "PostgreSQL accepted the SCRAM login without proving it knows the password (no server signature)",
                "something other than PostgreSQL answers, or stands in between: check what listens on this port",
            )),
            Message::AuthenticationOk if require && !(bound && signed) => Err(Finding::fail(
                format!(
                    "PostgreSQL let {user} in without a SCRAM login (pg_hba.conf's method for this client is trust?), so nothing was bound to TLS, and channel_binding = require ({}) asks for a bound login",
                    cb.origin
                ),
                format!(
                    "use the scram-sha-256 method on a hostssl line in pg_hba.conf for {user} (with password_file in the entry), or lower channel_binding ({})",
                    cb.origin
                ),
            )),
            Message::AuthenticationOk => Ok(None),
            Message::AuthenticationCleartextPassword | Message::AuthenticationMd5Password(_)
                if require =>
            {
                let how_ = match &msg {
                    Message::AuthenticationMd5Password(_) => "an MD5 password",
                    _ => "a cleartext password",
                };
                return (on(unbindable(how_)), false);
            }
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
                        method = how_.to_string();
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
                match (choose(cb, &t.sslmode, how, &mechs), &t.password) {
                    (Err((d, h)), _) if require => return (on(Finding::fail(d, h)), false),
                    (_, None) => {
                        return (on(asks(&format!("a {} password", mechs.join("/")))), false);
                    }
                    (Err((d, h)), Some(_)) => Err(Finding::fail(d, h)),
                    (Ok(c), Some(p)) => {
                        method = c.said;
                        bound = c.mechanism == PLUS;
                        let (sc, first_msg) = Scram::start(p, c.binding);
                        scram = Some(sc);
                        let mut m = BytesMut::new();
                        frontend::sasl_initial_response(c.mechanism, &first_msg, &mut m)
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
            | Message::AuthenticationGssContinue(_)
                if require =>
            {
                return (
                    on(unbindable("GSSAPI/SSPI (Kerberos) authentication")),
                    false,
                );
            }
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
                let (f, retry) = error_finding(&pgwire::error_fields(body.fields()), t, cb, how);
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

const PLUS: &str = "SCRAM-SHA-256-PLUS";
const SCRAM: &str = "SCRAM-SHA-256";

/// The SASL mechanism a login uses, bound to TLS or not.
struct Choice {
    mechanism: &'static str,
    binding: ChannelBinding,
    /// For the finding: "SCRAM-SHA-256-PLUS (channel binding tls-server-end-point, SHA-256)".
    said: String,
}

/// Which SCRAM, with which GS2 flag, for a server that offers `mechs` over `how`, as libpq
/// chooses under `channel_binding`; or why none will do (what happened, what to do).
fn choose(
    cb: &Sourced<ChannelBindingMode>,
    sslmode: &Sourced<SslMode>,
    how: &Transport,
    mechs: &[String],
) -> Result<Choice, (String, String)> {
    let offers = |m: &str| mechs.iter().any(|x| x == m);
    let (plus, plain) = (offers(PLUS), offers(SCRAM));
    let list = mechs.join(" ");
    let origin = &cb.origin;
    let unbound = |binding: ChannelBinding, said: String| -> Result<Choice, (String, String)> {
        if plain {
            Ok(Choice {
                mechanism: SCRAM,
                binding,
                said,
            })
        } else if plus {
            Err((
                format!(
                    "PostgreSQL offers only {PLUS} (channel binding), and warren cannot bind this login: {said}"
                ),
                "offer SCRAM-SHA-256 too (a PostgreSQL server always does), or fix what keeps the login from being bound"
                    .to_string(),
            ))
        } else {
            Err((
                format!("PostgreSQL asks for SASL mechanisms warren does not speak ({list})"),
                "use SCRAM-SHA-256 for this role".to_string(),
            ))
        }
    };
    match (cb.value, &how.binding) {
        (ChannelBindingMode::Disable, _) => unbound(
            ChannelBinding::unsupported(),
            if how.encrypted {
                format!("{SCRAM} (no channel binding: channel_binding = disable at {origin})")
            } else {
                SCRAM.to_string()
            },
        ),
        (ChannelBindingMode::Require, None) => Err((
            format!(
                "channel_binding = require ({origin}) binds the login to TLS, and there is none: {}",
                how.said
            ),
            match how.offered {
                _ if sslmode.value == SslMode::Disable => format!(
                    "remove sslmode = \"disable\" ({}) so that the probe uses TLS, or lower channel_binding",
                    sslmode.origin
                ),
                Some(false) => "turn TLS on in postgresql.conf (ssl = on, ssl_cert_file, ssl_key_file) and reload, or lower channel_binding".to_string(),
                _ => "make TLS work (what kept it off is above), or lower channel_binding".to_string(),
            },
        )),
        (ChannelBindingMode::Prefer, None) => unbound(ChannelBinding::unsupported(), SCRAM.into()),
        (_, Some(Ok(ep))) if plus => Ok(Choice {
            mechanism: PLUS,
            binding: ChannelBinding::tls_server_end_point(ep.data.clone()),
            said: format!("{PLUS} (channel binding tls-server-end-point, {})", ep.hash),
        }),
        (ChannelBindingMode::Require, Some(Ok(_))) => Err((
            format!(
                "PostgreSQL does not offer {PLUS} over TLS (it offers: {list}), and channel_binding = require ({origin}) needs it"
            ),
            "PostgreSQL 11 and later offer it over TLS: something between warren and the server that ends TLS itself (a pooler such as PgBouncer before 1.21, a proxy, or an attacker) stands in the way; connect to PostgreSQL itself, or lower channel_binding".to_string(),
        )),
        // libpq's `y`: warren could bind, the server did not offer to. A server that does
        // offer it (its offer removed on the way) refuses the login.
        (ChannelBindingMode::Prefer, Some(Ok(_))) => unbound(
            ChannelBinding::unrequested(),
            format!("{SCRAM} (no channel binding: the server does not offer {PLUS})"),
        ),
        (ChannelBindingMode::Require, Some(Err(why))) => Err((
            format!("{why}; channel_binding = require ({origin}) cannot be met"),
            "give the server a certificate signed with ECDSA or RSA (PKCS #1 v1.5) and SHA-256, -384 or -512, or lower channel_binding".to_string(),
        )),
        // Not `y`: the server offered binding and would refuse that; warren just cannot.
        (ChannelBindingMode::Prefer, Some(Err(why))) => unbound(
            ChannelBinding::unsupported(),
            format!("{SCRAM} (no channel binding: {why})"),
        ),
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
fn error_finding(
    e: &PgError,
    t: &Target,
    cb: &Sourced<ChannelBindingMode>,
    how: &Transport,
) -> (Finding, bool) {
    let (user, database, code, msg) = (&t.user, &t.database, e.code.as_str(), e.message.as_str());
    let hba = code == "28000" && msg.contains("pg_hba.conf");
    let refused_plain = msg.contains("no encryption") || msg.contains("SSL off");
    let refused_tls = msg.contains("SSL encryption") || msg.contains("SSL on");
    let mut retry = false;
    // PostgreSQL's own words when the binding is wrong (auth-scram.c).
    let binding_failed = msg.contains("channel binding check failed");
    let binding_stripped = msg.contains("channel binding negotiation error");
    let hint = match code {
        _ if binding_failed => format!(
            "the login was bound to the certificate warren was shown, and PostgreSQL's own certificate is another: something between warren and the server ends TLS with a certificate of its own (an attacker, or a TLS-terminating proxy){}; if that proxy is yours, channel_binding = \"disable\" in the entry logs in through it (now {}, {})",
            if how.verified { "" } else { ", which an unverified certificate cannot rule out: verify it (sslmode = \"verify-full\" with sslrootcert)" },
            cb.value,
            cb.origin
        ),
        _ if binding_stripped => format!(
            "PostgreSQL offered SCRAM-SHA-256-PLUS, but the offer warren received had no such mechanism: something between warren and the server ends TLS and rewrote the login (an attacker, or a proxy); verify the server's certificate (sslmode = \"verify-full\" with sslrootcert), or if that proxy is yours, channel_binding = \"disable\" in the entry logs in through it (now {}, {})",
            cb.value,
            cb.origin
        ),
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
    let more = match &e.detail {
        Some(d) if binding_failed || binding_stripped => format!(" ({d})"),
        _ => String::new(),
    };
    let detail = format!(
        "{}; PostgreSQL answered with error {code}: {msg}{more}",
        how.said
    );
    let brief = match code {
        _ if hba => format!("refused by pg_hba.conf ({code})"),
        _ if binding_failed || binding_stripped => format!("channel binding refused ({code})"),
        "28P01" | "28000" => format!("login refused ({code})"),
        "3D000" => format!("no database ({code})"),
        "53300" => format!("too many connections ({code})"),
        _ => format!("refused ({code})"),
    };
    (Finding::fail(detail, hint).brief(brief), retry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;

    fn over(binding: Option<Result<EndPoint, String>>) -> Transport {
        Transport {
            said: match binding {
                Some(_) => "TLS 1.3, certificate not verified (sslmode = prefer)".into(),
                None => "no TLS (sslmode = disable)".into(),
            },
            encrypted: binding.is_some(),
            verified: false,
            offered: binding.as_ref().map(|_| true),
            binding,
        }
    }

    fn tls() -> Transport {
        over(Some(Ok(EndPoint {
            data: vec![7; 32],
            hash: "SHA-256",
        })))
    }

    fn mechs(m: &[&str]) -> Vec<String> {
        m.iter().map(|s| s.to_string()).collect()
    }

    fn mode(m: ChannelBindingMode) -> Sourced<ChannelBindingMode> {
        Sourced::new(m, Origin::Flag("test"))
    }

    fn pick(
        m: ChannelBindingMode,
        how: &Transport,
        offered: &[&str],
    ) -> Result<(&'static str, String, String), (String, String)> {
        let sslmode = Sourced::new(SslMode::Disable, Origin::Flag("test-sslmode"));
        choose(&mode(m), &sslmode, how, &mechs(offered)).map(|c| {
            let mut first = BytesMut::new();
            first.extend_from_slice(Scram::start("x", c.binding).1.get(..3).unwrap_or_default());
            (
                c.mechanism,
                String::from_utf8_lossy(&first).into_owned(),
                c.said,
            )
        })
    }

    const BOTH: [&str; 2] = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"];
    use ChannelBindingMode::{Disable, Prefer, Require};

    #[test]
    fn over_tls_prefer_and_require_bind_when_the_server_offers_plus() {
        for m in [Prefer, Require] {
            let (mech, gs2, said) = pick(m, &tls(), &BOTH).expect("binds");
            assert_eq!((mech, gs2.as_str()), (PLUS, "p=t"), "{m}");
            assert_eq!(
                said,
                "SCRAM-SHA-256-PLUS (channel binding tls-server-end-point, SHA-256)"
            );
        }
    }

    #[test]
    fn over_tls_without_plus_prefer_says_y_and_require_fails() {
        let (mech, gs2, said) = pick(Prefer, &tls(), &["SCRAM-SHA-256"]).expect("logs in");
        assert_eq!((mech, gs2.as_str()), (SCRAM, "y,,"));
        assert!(said.contains("does not offer SCRAM-SHA-256-PLUS"), "{said}");
        let (d, h) = pick(Require, &tls(), &["SCRAM-SHA-256"])
            .err()
            .unwrap_or_default();
        assert!(
            d.contains("does not offer SCRAM-SHA-256-PLUS") && d.contains("(flag test)"),
            "{d}"
        );
        assert!(
            h.contains("PgBouncer") && h.contains("lower channel_binding"),
            "{h}"
        );
    }

    #[test]
    fn without_tls_prefer_says_n_and_require_fails_naming_sslmode() {
        let plain = over(None);
        let (mech, gs2, said) = pick(Prefer, &plain, &["SCRAM-SHA-256"]).expect("logs in");
        assert_eq!((mech, gs2.as_str(), said.as_str()), (SCRAM, "n,,", SCRAM));
        let (d, h) = pick(Require, &plain, &["SCRAM-SHA-256"])
            .err()
            .unwrap_or_default();
        assert!(
            d.contains("channel_binding = require (flag test)")
                && d.contains("no TLS (sslmode = disable)"),
            "{d}"
        );
        assert!(
            h.contains("remove sslmode = \"disable\" (flag test-sslmode)"),
            "{h}"
        );
    }

    #[test]
    fn disable_never_binds_and_a_certificate_without_a_hash_binds_nothing() {
        let (mech, gs2, said) = pick(Disable, &tls(), &BOTH).expect("logs in");
        assert_eq!((mech, gs2.as_str()), (SCRAM, "n,,"));
        assert!(said.contains("channel_binding = disable"), "{said}");
        assert!(pick(Disable, &tls(), &["SCRAM-SHA-256-PLUS"]).is_err());

        let ed = over(Some(Err("signed with Ed25519".into())));
        let (mech, gs2, said) = pick(Prefer, &ed, &BOTH).expect("logs in");
        // Not `y`: the server offered binding and would take `y` for a downgrade.
        assert_eq!((mech, gs2.as_str()), (SCRAM, "n,,"));
        assert!(said.contains("Ed25519"), "{said}");
        let (d, h) = pick(Require, &ed, &BOTH).err().unwrap_or_default();
        assert!(d.contains("Ed25519") && d.contains("cannot be met"), "{d}");
        assert!(h.contains("ECDSA or RSA"), "{h}");
    }

    /// PostgreSQL's words for a binding that does not match (auth-scram.c) name what stands
    /// in between, and how to verify the certificate when it was not.
    #[test]
    fn a_refused_binding_names_what_stands_in_between() {
        use crate::config::model::RootCert;
        let t = Target {
            host: "db.internal".into(),
            user: "app".into(),
            database: "orders".into(),
            password: Some(String::from("x").into()),
            sslmode: Sourced::default_value(SslMode::Prefer),
            sslrootcert: Sourced::default_value(RootCert::System),
        };
        let failed = PgError {
            code: "28000".into(),
            message: "SCRAM channel binding check failed".into(),
            ..PgError::default()
        };
        let (f, retry) = error_finding(&failed, &t, &mode(Prefer), &tls());
        let hint = f.hint.unwrap_or_default();
        assert!(!f.ok && !retry);
        assert_eq!(f.brief.as_deref(), Some("channel binding refused (28000)"));
        assert!(
            f.detail
                .contains("error 28000: SCRAM channel binding check failed"),
            "{}",
            f.detail
        );
        assert!(
            hint.contains("ends TLS with a certificate of its own")
                && hint.contains("verify-full")
                && hint.contains("(now prefer, flag test)"),
            "{hint}"
        );
        let stripped = PgError {
            code: "08P01".into(),
            message: "SCRAM channel binding negotiation error".into(),
            detail: Some(
                "The client supports SCRAM channel binding but thinks the server does not.".into(),
            ),
            ..PgError::default()
        };
        let (f, _) = error_finding(&stripped, &t, &mode(Prefer), &tls());
        assert!(
            f.detail.ends_with(
                "(The client supports SCRAM channel binding but thinks the server does not.)"
            ),
            "{}",
            f.detail
        );
        let hint = f.hint.unwrap_or_default();
        assert!(hint.contains("rewrote the login"), "{hint}");
    }

    #[test]
    fn mechanisms_warren_does_not_speak_are_named() {
        let (d, _) = pick(Prefer, &tls(), &["SCRAM-SHA-1"])
            .err()
            .unwrap_or_default();
        assert!(d.contains("does not speak (SCRAM-SHA-1)"), "{d}");
    }
}
