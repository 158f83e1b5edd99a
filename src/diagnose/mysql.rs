//! The MySQL / MariaDB probe, as the `mysql` client connects: the server's greeting, TLS by the
//! entry's `sslmode` (an SSLRequest, then TLS on the same stream), the handshake response with
//! the entry's user, password and database, then every auth switch and extra round the server
//! asks for, until it says OK or refuses. Each read goes through the step's [`Budget`] and each
//! packet's length is checked against [`MESSAGE_CAP`] before it is read.
//!
//! The packets and the password scrambles (`mysql_native_password`, `caching_sha2_password`
//! with its fast and full paths, `sha256_password`, MariaDB's `client_ed25519`) come from
//! `mysql_common`, the protocol crate of the `mysql` and `mysql_async` drivers: warren writes
//! only the order of the exchange and what each refusal means.
//!
//! A password that a plugin would send whole (cleartext over TLS, or RSA-encrypted with a key
//! the server sends unauthenticated) goes only over TLS whose certificate was verified, or when
//! the user wrote `sslmode = "disable"`. Scrambles that never reveal the password may go over
//! any connection.

use std::future::Future;

use bytes::{Buf, BytesMut};
use mysql_common::auth::plugins::{AuthProc, ChallengeResponsePlugin, Context, Response};
use mysql_common::constants::CapabilityFlags;
use mysql_common::io::ParseBuf;
use mysql_common::packets::{
    AuthPlugin, AuthSwitchRequest, ErrPacket, HandshakePacket, HandshakeResponse, SslRequest,
};
use mysql_common::proto::{MyDeserialize, MySerialize};
use tokio::io::{AsyncRead, AsyncWrite};

use super::probe::{Finding, Frame, Target, mysql_frame, not_the_engine, show_bytes};
use super::tls;
use super::wire::{Budget, Cut};
use crate::config::model::SslMode;

/// Rounds of the login (auth switches and extra data) before warren stops: real servers need
/// at most three.
const MAX_ROUNDS: usize = 8;

/// What the greeting said about the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greeting {
    /// "MariaDB 10.11.19" or "MySQL 8.0.36": the product and its version as the server
    /// reports it, without MariaDB's `5.5.5-` prefix.
    pub server: String,
    pub capabilities: u32,
    pub nonce: Vec<u8>,
    /// The auth plugin the server starts with.
    pub plugin: Vec<u8>,
}

/// The server's version string as a user knows it: `5.5.5-10.11.19-MariaDB-0+deb12u1` is
/// "MariaDB 10.11.19", `8.0.36` is "MySQL 8.0.36".
pub fn server_name(version: &str) -> String {
    let v = version.strip_prefix("5.5.5-").unwrap_or(version);
    let number: String = v
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let number = if number.is_empty() {
        crate::text::escape(&v.chars().take(40).collect::<String>()).into_owned()
    } else {
        number
    };
    if v.to_ascii_lowercase().contains("mariadb") {
        format!("MariaDB {number}")
    } else {
        format!("MySQL {number}")
    }
}

/// Reads a greeting (the first packet's payload): what the server is and how it wants the
/// login, or the refusal it sent instead of a greeting.
pub fn greeting(payload: &[u8]) -> Result<Greeting, Refusal> {
    match payload.first() {
        Some(0xff) => Err(refusal(payload, CapabilityFlags::empty())),
        Some(10) => {
            let hs = HandshakePacket::deserialize((), &mut ParseBuf(payload))
                .map_err(|e| Refusal::Garbled(format!("a greeting warren cannot read: {e}")))?;
            Ok(Greeting {
                server: server_name(&hs.server_version_str()),
                capabilities: hs.capabilities().bits(),
                nonce: hs.nonce(),
                plugin: hs
                    .auth_plugin_name_ref()
                    .map(|p| p.strip_suffix(&[0]).unwrap_or(p).to_vec())
                    .unwrap_or_else(|| b"mysql_native_password".to_vec()),
            })
        }
        Some(v) => Err(Refusal::Garbled(format!("protocol version {v}"))),
        None => Err(Refusal::Garbled("an empty packet".into())),
    }
}

/// Why the server did not let the probe in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// An error packet: the server's code and words.
    Server { code: u16, message: String },
    /// Bytes that are not a MySQL packet of the kind expected.
    Garbled(String),
}

fn refusal(payload: &[u8], caps: CapabilityFlags) -> Refusal {
    // Before the handshake a server sends no SQL state; after it, with CLIENT_PROTOCOL_41.
    match ErrPacket::deserialize(caps, &mut ParseBuf(payload)) {
        Ok(ErrPacket::Error(e)) => Refusal::Server {
            code: e.error_code(),
            message: e.message_str().chars().take(300).collect(),
        },
        Ok(ErrPacket::Progress(_)) => Refusal::Garbled("a progress report during the login".into()),
        Err(_) => {
            let code = match payload {
                [_, a, b, ..] => u16::from_le_bytes([*a, *b]),
                _ => 0,
            };
            let text = String::from_utf8_lossy(payload.get(3..).unwrap_or_default());
            let text = text
                .strip_prefix('#')
                .map(|t| t.get(5..).unwrap_or(t))
                .unwrap_or(&text);
            Refusal::Server {
                code,
                message: text.chars().take(300).collect(),
            }
        }
    }
}

/// The address in `'user'@'10.0.0.5'` or `Host '10.0.0.5'` of a server's message: where the
/// database sees the connection come from (through a tunnel, the bastion).
pub fn seen_from(message: &str) -> Option<String> {
    let after = match (message.find("'@'"), message.find("Host '")) {
        (Some(i), _) => &message[i + 3..],
        (None, Some(i)) => &message[i + 6..],
        (None, None) => return None,
    };
    let end = after.find('\'')?;
    Some(after[..end].to_string()).filter(|h| !h.is_empty())
}

/// A server error as the step reports it: what happened, and the likely cause and fix.
pub fn explain(code: u16, message: &str, t: &Target, server: &str) -> Finding {
    let said = crate::text::escape(message);
    let from = seen_from(message);
    let user = &t.user;
    let at = from
        .clone()
        .unwrap_or_else(|| "the bastion's address".into());
    let grant = format!(
        "CREATE USER '{user}'@'{at}' IDENTIFIED BY '…'; GRANT ALL ON {}.* TO '{user}'@'{at}' (or '%' for any host)",
        if t.database.is_empty() {
            "db"
        } else {
            &t.database
        }
    );
    let seen = match &from {
        Some(f) => format!(
            " (the database sees the connection from {f}: through a tunnel, that is the bastion)"
        ),
        None => String::new(),
    };
    let (what, hint) = match code {
        1045 => (
            format!("{server} refused the login of {user} ({code}: {said})"),
            format!(
                "the password or the user is wrong, or no account {user}@{at} exists{seen}: check password_file, or on the server {grant}"
            ),
        ),
        1698 => (
            format!("{server} refused {user} ({code}: {said})"),
            format!("{user} logs in through a plugin such as unix_socket, which works only on the database's own machine: give the account a password (ALTER USER '{user}'@'{at}' IDENTIFIED BY '…')"),
        ),
        1044 => (
            format!("{server} let {user} in but not into {} ({code}: {said})", t.database),
            format!("either there is no database {0}, or the account has no rights on it (the server does not tell an account without rights which): check `database` in the entry, and on the server GRANT ALL ON {0}.* TO '{user}'@'{at}'", t.database),
        ),
        1049 => (
            format!("{server} has no database {} ({code}: {said})", t.database),
            format!("the database name is wrong: check `database` in the entry (SHOW DATABASES lists them), or CREATE DATABASE {}", t.database),
        ),
        1130 => (
            format!("{server} does not let connections from {at} in ({code}: {said})"),
            format!("no account for {user} allows the host the database sees{seen}: on the server {grant}"),
        ),
        1040 => (
            format!("{server} has too many connections ({code}: {said})"),
            "the server is at max_connections: close idle clients, or raise max_connections (SET GLOBAL max_connections = …)".into(),
        ),
        1129 => (
            format!("{server} blocks {at} ({code}: {said})"),
            format!("too many failed connections came from {at} (max_connect_errors): run `mysqladmin flush-hosts` (or FLUSH HOSTS) on the server, then fix what failed"),
        ),
        1251 => (
            format!("{server} asks for an authentication method warren does not offer ({code}: {said})"),
            format!("change the account's plugin: ALTER USER '{user}'@'{at}' IDENTIFIED WITH caching_sha2_password BY '…' (or mysql_native_password)"),
        ),
        3159 | 4036 => (
            format!("{server} accepts this account only over TLS ({code}: {said})"),
            "the server has require_secure_transport on: set sslmode to require or verify-ca in the entry (not disable)".into(),
        ),
        1820 | 1862 => (
            format!("{server} let {user} in, but the password has expired ({code}: {said})"),
            format!("set a new password: ALTER USER '{user}'@'{at}' IDENTIFIED BY '…'"),
        ),
        _ => (
            format!("{server} refused the login ({code}: {said})"),
            "see the server's error log for the code".into(),
        ),
    };
    let brief = match code {
        1045 | 1698 | 1130 | 1129 | 1251 | 3159 | 4036 | 1820 | 1862 => "login refused",
        1044 | 1049 => "no database",
        1040 => "too many connections",
        _ => "refused",
    };
    Finding::fail(what, hint).brief(format!("{brief} ({code})"))
}

/// Packets off one stream, with what arrived beyond the last one kept for the next.
struct Packets {
    buf: BytesMut,
    /// The sequence number of the last packet read or written.
    seq: u8,
}

impl Packets {
    fn new() -> Self {
        Packets {
            buf: BytesMut::new(),
            seq: 0,
        }
    }

    /// The next packet's payload.
    async fn read<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
        budget: &mut Budget,
    ) -> Result<Vec<u8>, (Vec<u8>, String)> {
        loop {
            match mysql_frame(&self.buf) {
                Frame::Whole(n) => {
                    self.seq = self.buf[3];
                    let mut p = self.buf.split_to(n);
                    p.advance(4);
                    return Ok(p.to_vec());
                }
                Frame::Bad(why) => return Err((self.buf.to_vec(), why)),
                Frame::More => {}
            }
            if let Err(cut) = budget.read_more(s, &mut self.buf).await {
                let why = match cut {
                    Cut::Closed if !self.buf.is_empty() => {
                        format!("the reply was cut short after {} bytes", self.buf.len())
                    }
                    c => c.to_string(),
                };
                return Err((self.buf.to_vec(), why));
            }
        }
    }

    /// Writes one packet with the next sequence number.
    async fn write<S: AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        budget: &Budget,
        payload: &[u8],
    ) -> Result<(), Cut> {
        self.seq = self.seq.wrapping_add(1);
        let len = payload.len().min(0xff_ffff);
        let mut p = Vec::with_capacity(4 + len);
        p.extend_from_slice(&(len as u32).to_le_bytes()[..3]);
        p.push(self.seq);
        p.extend_from_slice(&payload[..len]);
        budget.write(s, &p).await
    }
}

/// What the plugins need to know of the connection.
struct Ctx<'a> {
    pass: &'a [u8],
    tls: bool,
    scramble: &'a [u8],
}

impl Context for &Ctx<'_> {
    fn pass(&self) -> &[u8] {
        self.pass
    }
    fn is_ipc_transport(&self) -> bool {
        false
    }
    fn is_tls_transport(&self) -> bool {
        self.tls
    }
    fn scramble(&self) -> &[u8] {
        self.scramble
    }
    fn server_key_pem(&self) -> Option<&[u8]> {
        None
    }
}

/// How the login travels, for the diagnosis and the cleartext rule.
struct Transport {
    said: String,
    tls: bool,
    /// The server's certificate was checked (a chain to sslrootcert at least).
    verified: bool,
}

/// Probes MySQL or MariaDB over a connection made by `open`.
pub async fn probe<S, F, Fut>(t: &Target, budget: &mut Budget, open: F) -> Finding
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: Future<Output = Option<S>>,
{
    let Ok(Some(mut s)) = budget.within(open()).await else {
        return Finding::fail(
            "could not open a connection for the probe",
            "the target stopped answering",
        );
    };
    let mut packets = Packets::new();
    let first = match packets.read(&mut s, budget).await {
        Ok(p) => p,
        Err((b, why)) => return not_mysql(&b, &why),
    };
    let g = match greeting(&first) {
        Ok(g) => g,
        Err(Refusal::Server { code, message }) => return explain(code, &message, t, "the server"),
        Err(Refusal::Garbled(why)) => {
            let mut raw = vec![0u8; 4];
            raw.extend_from_slice(&first);
            return not_mysql(&raw, &why);
        }
    };
    let Some(password) = t.password.as_deref() else {
        return Finding::warn(
            format!(
                "{} answered; login not checked: no password configured",
                g.server
            ),
            "set password_file in the entry so that doctor logs in as the user",
        );
    };
    let caps = CapabilityFlags::from_bits_truncate(g.capabilities);
    let offered = caps.contains(CapabilityFlags::CLIENT_SSL);
    let mode = t.sslmode.value;
    let ours = CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_DEPRECATE_EOF;
    let ours = ours & (caps | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA);
    if mode == SslMode::Disable || (!offered && mode == SslMode::Prefer) {
        let how = Transport {
            said: if mode == SslMode::Disable {
                "no TLS (sslmode = disable)".into()
            } else {
                "no TLS: the server does not offer it (sslmode = prefer)".into()
            },
            tls: false,
            verified: false,
        };
        return login(&mut s, &mut packets, t, budget, &g, ours, password, &how).await;
    }
    if !offered {
        return Finding::fail(
            format!(
                "{} does not offer TLS, and sslmode = {mode} needs it",
                g.server
            ),
            format!(
                "turn TLS on on the server (ssl_cert, ssl_key in my.cnf) and restart it, or lower sslmode ({})",
                t.sslmode.origin
            ),
        );
    }
    let client = match tls::client(mode, &t.sslrootcert, &t.host) {
        Ok(c) => c.for_engine(tls::Engine::Mysql),
        Err((d, h)) => return Finding::fail(d, h),
    };
    let verified = client.checks != tls::Checks::Nothing;
    let ours = ours | CapabilityFlags::CLIENT_SSL;
    let request = SslRequest::new(ours, 1 << 24, 45);
    let mut bytes = Vec::new();
    request.serialize(&mut bytes);
    if let Err(cut) = packets.write(&mut s, budget, &bytes).await {
        return Finding::fail(
            format!("the TLS request could not be sent: {cut}"),
            "the database closed the connection at once: check its error log",
        );
    }
    match client.handshake(s, budget).await {
        Ok((mut tls, said)) => {
            let how = Transport {
                said,
                tls: true,
                verified,
            };
            login(&mut tls, &mut packets, t, budget, &g, ours, password, &how).await
        }
        Err((d, h)) => Finding::fail(d, h),
    }
}

/// The handshake response and every round after it.
#[allow(clippy::too_many_arguments)]
async fn login<T: AsyncRead + AsyncWrite + Unpin>(
    s: &mut T,
    packets: &mut Packets,
    t: &Target,
    budget: &mut Budget,
    g: &Greeting,
    caps: CapabilityFlags,
    password: &str,
    how: &Transport,
) -> Finding {
    let on = |f: Finding| Finding {
        detail: format!("{}; {}", how.said, f.detail),
        ..f
    };
    let server = &g.server;
    let mut plugin = AuthPlugin::from_bytes(&g.plugin).into_owned();
    if matches!(plugin, AuthPlugin::Other(_)) {
        // Start with the usual scramble; the server switches to its own plugin if it must.
        plugin = AuthPlugin::MysqlNativePassword;
    }
    let mut nonce = g.nonce.clone();
    let mut proc = match plugin.init() {
        Ok(p) => p,
        Err(e) => return on(Finding::warn(e.to_string(), "")),
    };
    let first = {
        let ctx = Ctx {
            pass: password.as_bytes(),
            tls: how.tls,
            scramble: &nonce,
        };
        match run(&mut proc, &ctx, &nonce, &plugin, how, t) {
            Ok(r) => r.data().map(<[u8]>::to_vec).unwrap_or_default(),
            Err(f) => return on(f),
        }
    };
    let db = (!t.database.is_empty()).then_some(t.database.as_bytes());
    let response = HandshakeResponse::new(
        Some(first.as_slice()),
        (8, 0, 0),
        Some(t.user.as_bytes()),
        db,
        Some(plugin.clone()),
        caps,
        None,
        1 << 24,
    );
    let mut bytes = Vec::new();
    response.serialize(&mut bytes);
    if let Err(cut) = packets.write(s, budget, &bytes).await {
        return on(Finding::fail(
            format!("the login could not be sent: {cut}"),
            "the database closed the connection: check its error log",
        ));
    }
    let full_caps = caps | CapabilityFlags::CLIENT_PROTOCOL_41;
    for _ in 0..MAX_ROUNDS {
        let p = match packets.read(s, budget).await {
            Ok(p) => p,
            Err((_, why)) => {
                return on(Finding::fail(
                    format!("{server} did not finish the login: {why}"),
                    "the server stopped answering halfway: check its error log",
                ));
            }
        };
        let reply = match p.first() {
            Some(0x00) => {
                let into = if t.database.is_empty() {
                    String::new()
                } else {
                    format!(" to {}", t.database)
                };
                let name = String::from_utf8_lossy(plugin.as_bytes()).into_owned();
                return on(Finding::pass(format!(
                    "{server} answered: {} logged in{into} with the password from password_file ({name})",
                    t.user
                )));
            }
            Some(0xff) => {
                return on(match refusal(&p, full_caps) {
                    Refusal::Server { code, message } => explain(code, &message, t, server),
                    Refusal::Garbled(w) => Finding::fail(w, "check what listens on this port"),
                });
            }
            Some(0xfe) => {
                let switch = match AuthSwitchRequest::deserialize((), &mut ParseBuf(&p)) {
                    Ok(sw) => sw,
                    Err(e) => {
                        return on(Finding::fail(
                            format!("{server} sent an auth switch warren cannot read: {e}"),
                            "check what listens on this port",
                        ));
                    }
                };
                plugin = switch.auth_plugin().into_owned();
                let data = switch.plugin_data();
                nonce = data.strip_suffix(&[0]).unwrap_or(data).to_vec();
                proc = match plugin.init() {
                    Ok(p) => p,
                    Err(_) => {
                        let name = crate::text::escape(&String::from_utf8_lossy(plugin.as_bytes()))
                            .into_owned();
                        return on(Finding::warn(
                            format!(
                                "{server} answered and asks {} to log in with the plugin '{name}', which warren's probe does not speak; login not checked",
                                t.user
                            ),
                            format!(
                                "doctor logs in with passwords (mysql_native_password, caching_sha2_password, ed25519); check this account with the mysql client: warren exec NAME -- mysql -u {}",
                                t.user
                            ),
                        ));
                    }
                };
                let ctx = Ctx {
                    pass: password.as_bytes(),
                    tls: how.tls,
                    scramble: &nonce,
                };
                match run(&mut proc, &ctx, &nonce, &plugin, how, t) {
                    Ok(r) => r,
                    Err(f) => return on(f),
                }
            }
            Some(0x01) => {
                let ctx = Ctx {
                    pass: password.as_bytes(),
                    tls: how.tls,
                    scramble: &nonce,
                };
                // caching_sha2_password's "fast auth failed": the next answer sends the
                // password whole (over TLS) or under the server's RSA key.
                if p.get(1..) == Some(&[4u8][..]) && !may_send_whole(t, how) {
                    return on(whole_password_refused(server, &plugin, t));
                }
                match run(&mut proc, &ctx, &p[1..], &plugin, how, t) {
                    Ok(r) => r,
                    Err(f) => return on(f),
                }
            }
            _ => {
                return on(Finding::fail(
                    format!(
                        "{server} sent a packet warren does not expect during the login: {}",
                        show_bytes(&p)
                    ),
                    "check what listens on this port",
                ));
            }
        };
        if let Some(data) = reply.data()
            && let Err(cut) = packets.write(s, budget, data).await
        {
            return on(Finding::fail(
                format!("the login could not go on: {cut}"),
                "the database closed the connection: check its error log",
            ));
        }
    }
    on(Finding::fail(
        format!("{server} asked for more than {MAX_ROUNDS} rounds of login"),
        "the server (or something posing as it) does not end the login: check what listens on this port",
    ))
}

/// One step of a plugin, refusing the plugins that would send the password whole where the
/// rule above forbids it.
fn run(
    proc: &mut AuthProc,
    ctx: &Ctx<'_>,
    challenge: &[u8],
    plugin: &AuthPlugin<'_>,
    how: &Transport,
    t: &Target,
) -> Result<Response, Finding> {
    let whole = matches!(
        plugin,
        AuthPlugin::MysqlClearPassword | AuthPlugin::Sha256Password
    );
    if whole && !may_send_whole(t, how) {
        let name = String::from_utf8_lossy(plugin.as_bytes()).into_owned();
        return Err(Finding::fail(
            format!(
                "the server asks for the password whole ({name}), and {}: warren did not send it",
                if how.tls {
                    "its certificate was not verified"
                } else {
                    "the connection is not encrypted"
                }
            ),
            "a password sent whole to a server whose certificate was not checked can be read by whoever stands in between: set sslmode = \"verify-ca\" (or verify-full) with sslrootcert, or move the account to caching_sha2_password or ed25519",
        ));
    }
    proc.run(ctx, challenge).map_err(|e| {
        Finding::fail(
            format!("the login could not go on: {e}"),
            "the server sent a challenge warren cannot answer: check what listens on this port",
        )
    })
}

/// Whether a password may go whole: over TLS whose certificate was checked, or where the user
/// turned TLS off (then caching_sha2_password and sha256_password encrypt it with the key the
/// server sends, as `mysql --get-server-public-key` does).
fn may_send_whole(t: &Target, how: &Transport) -> bool {
    how.verified || (!how.tls && t.sslmode.value == SslMode::Disable)
}

fn whole_password_refused(server: &str, plugin: &AuthPlugin<'_>, t: &Target) -> Finding {
    let name = String::from_utf8_lossy(plugin.as_bytes()).into_owned();
    Finding::fail(
        format!(
            "{server} asks for the whole password ({name}: not in the server's cache), and the server's certificate was not verified: warren did not send it"
        ),
        format!(
            "set sslmode = \"verify-ca\" or \"verify-full\" with sslrootcert so that the password goes only to the real server ({}); or log in once with the mysql client to fill the server's cache",
            t.sslmode.origin
        ),
    )
}

fn not_mysql(b: &[u8], why: &str) -> Finding {
    not_the_engine(
        b,
        why,
        "MySQL",
        3306,
        "the port accepts connections but says nothing: is this MySQL, and is it hung?",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from MySQL 8.0 (first packet of the handshake).
    const MYSQL_8: &[u8] = b"\x0a8.0.36\x00\x08\x00\x00\x00\x3e\x32\x18\x45\x2b\x4c\x0e\x53\x00\xff\xff\xff\x02\x00\xff\xdf\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x4b\x0b\x12\x3d\x6d\x0c\x0c\x44\x7c\x7d\x1f\x5e\x00caching_sha2_password\x00";

    #[test]
    fn names_as_the_server_reports_them() {
        assert_eq!(
            server_name("5.5.5-10.11.19-MariaDB-0+deb12u1"),
            "MariaDB 10.11.19"
        );
        assert_eq!(server_name("11.4.2-MariaDB"), "MariaDB 11.4.2");
        assert_eq!(server_name("8.0.36"), "MySQL 8.0.36");
        let g = greeting(MYSQL_8).expect("greeting");
        assert_eq!(g.server, "MySQL 8.0.36");
        assert_eq!(g.plugin, b"caching_sha2_password");
        assert_eq!(g.nonce.len(), 20);
    }

    /// A MySQL 8 server's side of caching_sha2_password for `app` / `right`: the fast path
    /// when `cached`, else "perform full authentication"; checks the scramble as the server
    /// does (SHA256(SHA256(pw)) is what it stores).
    async fn caching_sha2_server(mut s: tokio::io::DuplexStream, cached: bool) {
        use sha2::{Digest, Sha256};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let nonce = *b"abcdefghijklmnopqrst";
        let mut g = vec![0x0a];
        g.extend_from_slice(b"8.0.36\0");
        g.extend_from_slice(&7u32.to_le_bytes());
        g.extend_from_slice(&nonce[..8]);
        g.push(0);
        g.extend_from_slice(&0xa209u16.to_le_bytes());
        g.push(0xff);
        g.extend_from_slice(&2u16.to_le_bytes());
        g.extend_from_slice(&0x0128u16.to_le_bytes());
        g.push(21);
        g.extend_from_slice(&[0; 10]);
        g.extend_from_slice(&nonce[8..]);
        g.push(0);
        g.extend_from_slice(b"caching_sha2_password\0");
        let packet = |seq: u8, p: &[u8]| {
            let mut v = (p.len() as u32).to_le_bytes()[..3].to_vec();
            v.push(seq);
            v.extend_from_slice(p);
            v
        };
        if s.write_all(&packet(0, &g)).await.is_err() {
            return;
        }
        let mut head = [0u8; 4];
        if s.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
        let mut body = vec![0u8; len];
        if s.read_exact(&mut body).await.is_err() {
            return;
        }
        // caps, max packet, charset, 23 reserved; then the user, NUL, the scramble (lenenc).
        let rest = &body[32..];
        let user_end = rest.iter().position(|&c| c == 0).unwrap_or(0);
        let n = usize::from(rest[user_end + 1]);
        let scramble = &rest[user_end + 2..user_end + 2 + n];
        let h1 = Sha256::digest(b"right");
        let stored = Sha256::digest(h1);
        let mask = Sha256::new()
            .chain_update(stored)
            .chain_update(nonce)
            .finalize();
        let claimed: Vec<u8> = scramble
            .iter()
            .zip(mask.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        let reply = if n == 32 && Sha256::digest(&claimed) == stored {
            if cached {
                let mut r = packet(2, &[0x01, 0x03]);
                r.extend_from_slice(&packet(3, &[0x00, 0, 0, 2, 0, 0, 0]));
                r
            } else {
                packet(2, &[0x01, 0x04])
            }
        } else {
            let mut e = vec![0xff, 0x15, 0x04, b'#'];
            e.extend_from_slice(
                b"28000Access denied for user 'app'@'10.1.2.3' (using password: YES)",
            );
            packet(2, &e)
        };
        let _ = s.write_all(&reply).await;
        let mut sink = [0u8; 512];
        while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
    }

    async fn login_with(password: &str, cached: bool) -> Finding {
        let t = super::super::probe::test_target(Some(password), SslMode::Prefer);
        super::super::probe::against("mysql", &t, move |s| caching_sha2_server(s, cached)).await
    }

    #[tokio::test]
    async fn caching_sha2_password_fast_path_full_path_and_a_wrong_password() {
        let f = login_with("right", true).await;
        assert!(f.ok && !f.unchecked, "{f:?}");
        assert!(
            f.detail
                .contains("MySQL 8.0.36 answered: app logged in to orders")
                && f.detail.contains("(caching_sha2_password)"),
            "{}",
            f.detail
        );
        // Not in the server's cache, no TLS: the whole password stays here.
        let f = login_with("right", false).await;
        assert!(!f.ok, "{f:?}");
        assert!(
            f.detail.contains("not in the server's cache") && f.detail.contains("did not send it"),
            "{}",
            f.detail
        );
        let f = login_with("wrong", true).await;
        assert!(!f.ok, "{f:?}");
        assert!(f.detail.contains("1045"), "{}", f.detail);
        assert!(
            f.hint.unwrap_or_default().contains("'app'@'10.1.2.3'"),
            "the fix names the address the database saw"
        );
    }

    #[test]
    fn refusals_name_the_address_the_database_sees() {
        let p = b"\xffj\x04Host '10.0.0.5' is not allowed to connect to this MariaDB server";
        let Err(Refusal::Server { code, message }) = greeting(p) else {
            panic!("not a refusal");
        };
        assert_eq!(code, 1130);
        assert_eq!(seen_from(&message).as_deref(), Some("10.0.0.5"));
        assert_eq!(
            seen_from("Access denied for user 'app'@'172.17.0.1' (using password: YES)").as_deref(),
            Some("172.17.0.1")
        );
        assert_eq!(seen_from("Unknown database 'x'"), None);
    }
}
