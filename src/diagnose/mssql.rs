//! The SQL Server probe, as a TDS 7.4 client logs in: PRELOGIN (asking for encryption), the
//! TLS handshake carried inside PRELOGIN packets as TDS wants it, then LOGIN7 with the entry's
//! user, password and database over that TLS, read until LOGINACK or an ERROR token.
//!
//! Written here rather than taken from `tiberius` (the maintained TDS driver): tiberius is a
//! whole client (query pipeline, its own TLS stack and version of rustls, `async-std`-style
//! I/O traits), none of whose reads can be bounded by the probe's [`Budget`]; the probe needs
//! five packet and token shapes, read with every length checked.
//!
//! LOGIN7's password is only obfuscated (a nibble swap and XOR), so it goes only inside TLS
//! whose certificate was verified, or when the entry says `sslmode = "disable"` (then in the
//! clear, to a server that offers no encryption). Windows (SSPI/Kerberos) logins are not
//! spoken. Tested against a fake server (`tests/mssql_fake.rs`), since no SQL Server is
//! packaged here.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::probe::{Finding, Target, mssql_frame, not_the_engine, read_whole, show_bytes};
use super::tls;
use super::wire::Budget;
use crate::config::model::SslMode;

/// PRELOGIN's ENCRYPTION values. A server that answers ENCRYPT_OFF to the probe's ENCRYPT_ON
/// encrypts the whole connection, as for ENCRYPT_ON (MS-TDS 2.2.6.5).
#[allow(dead_code)]
pub const ENCRYPT_OFF: u8 = 0;
pub const ENCRYPT_ON: u8 = 1;
pub const ENCRYPT_NOT_SUP: u8 = 2;
pub const ENCRYPT_REQ: u8 = 3;

/// A TDS packet of `kind` around `payload` (one packet: the probe's messages are small).
pub fn packet(kind: u8, id: u8, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut p = vec![kind, 0x01, (len >> 8) as u8, len as u8, 0, 0, id, 0];
    p.extend_from_slice(payload);
    p
}

/// PRELOGIN asking for `encryption`.
pub fn prelogin(encryption: u8) -> Vec<u8> {
    // VERSION (6) at 26, ENCRYPTION (1) at 32, INSTOPT (1) at 33, THREADID (4) at 34,
    // MARS (1) at 38; 5 options of 5 bytes and the terminator make 26.
    let mut p = vec![
        0x00, 0, 26, 0, 6, 0x01, 0, 32, 0, 1, 0x02, 0, 33, 0, 1, 0x03, 0, 34, 0, 4, 0x04, 0, 38, 0,
        1, 0xff,
    ];
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    p.push(encryption);
    p.push(0);
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.push(0);
    packet(0x12, 1, &p)
}

/// What a PRELOGIN answer says: the server's version and its ENCRYPTION value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prelogin {
    pub version: Option<String>,
    pub encryption: Option<u8>,
}

/// Reads a PRELOGIN answer (the whole message, headers included).
pub fn prelogin_answer(b: &[u8]) -> Result<Prelogin, String> {
    if b.len() < 8 || b[0] != 0x04 {
        return Err(format!("not a SQL Server answer: {}", show_bytes(b)));
    }
    let payload = payloads(b)?;
    let mut out = Prelogin {
        version: None,
        encryption: None,
    };
    let mut i = 0;
    while i + 5 <= payload.len() && payload[i] != 0xff && i < 5 * 32 {
        let token = payload[i];
        let off = usize::from(payload[i + 1]) << 8 | usize::from(payload[i + 2]);
        let len = usize::from(payload[i + 3]) << 8 | usize::from(payload[i + 4]);
        if let Some(v) = payload.get(off..off + len) {
            match token {
                0 if len >= 4 => {
                    out.version = Some(format!(
                        "{}.{}.{}",
                        v[0],
                        v[1],
                        u16::from(v[2]) << 8 | u16::from(v[3])
                    ));
                }
                1 if len >= 1 => out.encryption = Some(v[0]),
                _ => {}
            }
        }
        i += 5;
    }
    Ok(out)
}

/// The payloads of a whole TDS message, joined.
fn payloads(b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 8 <= b.len() {
        let len = usize::from(b[i + 2]) << 8 | usize::from(b[i + 3]);
        if len < 8 || i + len > b.len() {
            return Err(format!("a packet of length {len}"));
        }
        out.extend_from_slice(&b[i + 8..i + len]);
        i += len;
    }
    Ok(out)
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// LOGIN7's password encoding: UTF-16LE, each byte's nibbles swapped, then XOR 0xA5.
pub fn obfuscate(password: &str) -> Vec<u8> {
    utf16(password)
        .into_iter()
        .map(|b| b.rotate_left(4) ^ 0xa5)
        .collect()
}

/// A LOGIN7 message (TDS 7.4) for `user` with `password` into `database` on `server`.
pub fn login7(user: &str, password: &str, database: &str, server: &str) -> Vec<u8> {
    let fields: [Vec<u8>; 9] = [
        utf16("warren"),        // HostName
        utf16(user),            // UserName
        obfuscate(password),    // Password
        utf16("warren doctor"), // AppName
        utf16(server),          // ServerName
        Vec::new(),             // Extension
        utf16("warren"),        // CltIntName
        Vec::new(),             // Language
        utf16(database),        // Database
    ];
    let mut head = Vec::with_capacity(94);
    head.extend_from_slice(&0u32.to_le_bytes()); // length, set below
    head.extend_from_slice(&0x7400_0004u32.to_le_bytes());
    head.extend_from_slice(&4096u32.to_le_bytes());
    head.extend_from_slice(&7u32.to_le_bytes());
    head.extend_from_slice(&std::process::id().to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.extend_from_slice(&[0xe0, 0x03, 0x00, 0x00]);
    head.extend_from_slice(&0i32.to_le_bytes());
    head.extend_from_slice(&0x0409u32.to_le_bytes());
    let mut data = Vec::new();
    let mut off = 94u16;
    for f in &fields {
        head.extend_from_slice(&off.to_le_bytes());
        head.extend_from_slice(&((f.len() / 2) as u16).to_le_bytes());
        data.extend_from_slice(f);
        off += f.len() as u16;
    }
    head.extend_from_slice(&[0u8; 6]); // ClientID
    for _ in 0..3 {
        // SSPI, AtchDBFile, ChangePassword: empty.
        head.extend_from_slice(&off.to_le_bytes());
        head.extend_from_slice(&0u16.to_le_bytes());
    }
    head.extend_from_slice(&0u32.to_le_bytes()); // cbSSPILong
    let total = (head.len() + data.len()) as u32;
    head[..4].copy_from_slice(&total.to_le_bytes());
    head.extend_from_slice(&data);
    packet(0x10, 1, &head)
}

/// What LOGIN7's answer said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// LOGINACK: the program and its version.
    Ack(String),
    /// An ERROR token: its number and text.
    Error(i32, String),
}

fn b_varchar(b: &[u8], at: usize) -> Option<(String, usize)> {
    let n = usize::from(*b.get(at)?);
    let raw = b.get(at + 1..at + 1 + 2 * n)?;
    Some((utf16_text(raw), at + 1 + 2 * n))
}

fn utf16_text(raw: &[u8]) -> String {
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units).chars().take(400).collect()
}

/// Reads LOGIN7's answer (a whole message): the first ERROR, else LOGINACK.
pub fn login_answer(b: &[u8]) -> Result<Answer, String> {
    if b.first() != Some(&0x04) {
        return Err(format!("not a SQL Server answer: {}", show_bytes(b)));
    }
    let t = payloads(b)?;
    let mut i = 0;
    let mut ack = None;
    let mut tokens = 0;
    while i < t.len() && tokens < 256 {
        tokens += 1;
        let kind = t[i];
        let sized = |at: usize| -> Result<usize, String> {
            let l = t
                .get(at..at + 2)
                .map(|l| usize::from(u16::from_le_bytes([l[0], l[1]])))
                .ok_or("a token cut short")?;
            if at + 2 + l > t.len() {
                return Err(format!("token 0x{kind:02x} runs past the answer"));
            }
            Ok(l)
        };
        match kind {
            0xaa => {
                let l = sized(i + 1)?;
                let body = &t[i + 3..i + 3 + l];
                let number = body
                    .get(..4)
                    .map(|n| i32::from_le_bytes([n[0], n[1], n[2], n[3]]))
                    .unwrap_or(0);
                let msg = body
                    .get(6..8)
                    .map(|n| usize::from(u16::from_le_bytes([n[0], n[1]])))
                    .and_then(|n| body.get(8..8 + 2 * n))
                    .map(utf16_text)
                    .unwrap_or_default();
                return Ok(Answer::Error(number, msg));
            }
            0xad => {
                let l = sized(i + 1)?;
                let body = &t[i + 3..i + 3 + l];
                // interface (1), TDS version (4), program name (B_VARCHAR), version (4).
                let (name, at) = b_varchar(body, 5).unwrap_or_default();
                let v = body.get(at..at + 4).map(|v| {
                    format!(
                        "{}.{}.{}",
                        v[0],
                        v[1],
                        u16::from(v[2]) << 8 | u16::from(v[3])
                    )
                });
                ack = Some(match v {
                    Some(v) => format!("{name} {v}"),
                    None => name,
                });
                i += 3 + l;
            }
            0xab | 0xe3 | 0xed => i += 3 + sized(i + 1)?,
            0xfd..=0xff => i += 13,
            0xae => {
                // FEATUREEXTACK: (id, u32 length, data) until 0xff.
                i += 1;
                while i < t.len() && t[i] != 0xff {
                    let l = t
                        .get(i + 1..i + 5)
                        .map(|l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)
                        .ok_or("FEATUREEXTACK cut short")?;
                    i += 5 + l;
                }
                i += 1;
            }
            k => return Err(format!("a token warren does not read (0x{k:02x})")),
        }
    }
    ack.map(Answer::Ack)
        .ok_or_else(|| "the answer has neither LOGINACK nor an error".into())
}

/// Carries a TLS handshake inside TDS PRELOGIN packets (what TDS 7.x asks for); once
/// [`Wrapped::done`] is called, bytes pass through as they are.
pub struct Wrapped<S> {
    inner: S,
    wrap: bool,
    /// Handshake bytes written and not yet sent as a packet.
    pending: Vec<u8>,
    /// A packet being sent, and how much of it is gone.
    out: Vec<u8>,
    sent: usize,
    /// The header of the packet being read, and the payload bytes of it still to read.
    header: [u8; 8],
    have: usize,
    left: usize,
}

impl<S> Wrapped<S> {
    pub fn new(inner: S) -> Self {
        Wrapped {
            inner,
            wrap: true,
            pending: Vec::new(),
            out: Vec::new(),
            sent: 0,
            header: [0; 8],
            have: 0,
            left: 0,
        }
    }
    /// The handshake is over: from now on TLS records travel bare (what the handshake wrote
    /// last still goes wrapped, first).
    pub fn done(&mut self) {
        self.wrap = false;
    }
}

impl<S: AsyncWrite + Unpin> Wrapped<S> {
    /// Sends what is pending as one PRELOGIN packet.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.out.is_empty() && !self.pending.is_empty() {
            let data = std::mem::take(&mut self.pending);
            self.out = packet(0x12, 1, &data);
            self.sent = 0;
        }
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.out.clear();
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Wrapped<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        // What the handshake wrote goes before it waits for an answer.
        ready!(me.poll_send(cx))?;
        if !me.wrap {
            return Pin::new(&mut me.inner).poll_read(cx, buf);
        }
        while me.left == 0 {
            let mut h = ReadBuf::new(&mut me.header[me.have..]);
            ready!(Pin::new(&mut me.inner).poll_read(cx, &mut h))?;
            let n = h.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
            me.have += n;
            if me.have == 8 {
                let len = usize::from(me.header[2]) << 8 | usize::from(me.header[3]);
                if me.header[0] != 0x12 && me.header[0] != 0x04 || len < 8 {
                    return Poll::Ready(Err(std::io::Error::other(format!(
                        "the server sent a packet of kind 0x{:02x} and length {len} during the TLS handshake",
                        me.header[0]
                    ))));
                }
                me.left = len - 8;
                me.have = 0;
            }
        }
        let mut chunk = vec![0u8; me.left.min(buf.remaining()).min(16 << 10)];
        let mut part = ReadBuf::new(&mut chunk);
        ready!(Pin::new(&mut me.inner).poll_read(cx, &mut part))?;
        let n = part.filled().len();
        buf.put_slice(&chunk[..n]);
        me.left -= n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Wrapped<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        if !me.wrap {
            // The handshake's last flight goes first, still wrapped.
            ready!(me.poll_send(cx))?;
            return Pin::new(&mut me.inner).poll_write(cx, data);
        }
        me.pending.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_send(cx))?;
        Pin::new(&mut me.inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_send(cx))?;
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

/// An ERROR token as the step reports it.
pub fn explain(number: i32, message: &str, t: &Target, server: &str) -> Finding {
    let said = crate::text::escape(message).into_owned();
    let user = &t.user;
    let f = match number {
        18456 => Finding::fail(
            format!("{server} refused the login of {user} ({number}: {said})"),
            format!(
                "the password or the user is wrong, or {user} is not a SQL login (Windows logins are not spoken by the probe), or SQL logins are off (server authentication \"SQL Server and Windows\"): check password_file; the server's error log has the state that says which"
            ),
        ),
        4060 => Finding::fail(
            format!(
                "{server} let {user} in but cannot open {} ({number}: {said})",
                t.database
            ),
            format!(
                "the database name is wrong or {user} has no user in it: check `database` in the entry; on the server CREATE USER [{user}] FOR LOGIN [{user}] in that database"
            ),
        ),
        18486 => Finding::fail(
            format!("{server}: the login {user} is locked ({number}: {said})"),
            format!("too many failed logins: ALTER LOGIN [{user}] WITH PASSWORD = '…' UNLOCK"),
        ),
        18487 | 18488 => Finding::fail(
            format!("{server}: the password of {user} has expired ({number}: {said})"),
            format!("set a new one: ALTER LOGIN [{user}] WITH PASSWORD = '…'"),
        ),
        40615 => Finding::fail(
            format!("{server} does not let the bastion's address in ({number}: {said})"),
            "Azure SQL's firewall: add the bastion's address to the server's firewall rules",
        ),
        _ => Finding::fail(
            format!("{server} refused the login ({number}: {said})"),
            "see the server's error log",
        ),
    };
    f.brief(match number {
        18456 | 18486 | 18487 | 18488 | 40615 => format!("login refused ({number})"),
        4060 => "no database (4060)".into(),
        _ => format!("refused ({number})"),
    })
}

/// Probes SQL Server over a connection made by `open`.
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
    let mode = t.sslmode.value;
    let ask = if mode == SslMode::Disable {
        ENCRYPT_NOT_SUP
    } else {
        ENCRYPT_ON
    };
    if let Err(cut) = budget.write(&mut s, &prelogin(ask)).await {
        return Finding::fail(
            format!("SQL Server did not take PRELOGIN: {cut}"),
            "the port accepts connections but closes them: is this the right service?",
        );
    }
    let answer = match read_whole(&mut s, budget, mssql_frame).await {
        Ok(a) => a,
        Err((b, why)) => return not_mssql(&b, &why),
    };
    let pre = match prelogin_answer(&answer) {
        Ok(p) => p,
        Err(e) => return not_mssql(&answer, &e),
    };
    let server = match &pre.version {
        Some(v) => format!("SQL Server {v}"),
        None => "SQL Server".to_string(),
    };
    let Some(password) = t.password.as_deref() else {
        return Finding::warn(
            format!("{server} answered; login not checked: no password configured"),
            "set username and password_file in the entry so that doctor logs in",
        );
    };
    if t.user.is_empty() {
        return Finding::warn(
            format!("{server} answered; login not checked: the entry names no username"),
            "set username in the entry (a SQL login)",
        );
    }
    let encryption = pre.encryption.unwrap_or(ENCRYPT_NOT_SUP);
    if mode == SslMode::Disable || encryption == ENCRYPT_NOT_SUP {
        if mode != SslMode::Disable {
            return Finding::fail(
                format!(
                    "{server} offers no encryption, and LOGIN7 carries the password almost in the clear: warren did not send it"
                ),
                format!(
                    "install a certificate on the server (SQL Server Configuration Manager, Force Encryption), or set sslmode = \"disable\" ({}) to send it anyway",
                    t.sslmode.origin
                ),
            );
        }
        if encryption == ENCRYPT_REQ {
            return Finding::fail(
                format!("{server} requires encryption, and sslmode = disable turns it off"),
                "remove sslmode = \"disable\" from the entry",
            );
        }
        let f = login(&mut s, t, budget, password, &server).await;
        return Finding {
            detail: format!("no TLS (sslmode = disable); {}", f.detail),
            ..f
        };
    }
    let client = match tls::client(mode, &t.sslrootcert, &t.host) {
        Ok(c) => c.for_engine(tls::Engine::Mssql),
        Err((d, h)) => return Finding::fail(d, h),
    };
    let verified = client.checks != tls::Checks::Nothing;
    match client.handshake(Wrapped::new(s), budget).await {
        Ok((mut tls, said)) => {
            tls.get_mut().0.done();
            if !verified {
                return Finding::fail(
                    format!(
                        "{said}; LOGIN7 carries the password almost in the clear, and the server's certificate was not verified: warren did not send it"
                    ),
                    format!(
                        "set sslmode = \"verify-ca\" or \"verify-full\" with sslrootcert (now {}) so that the password goes only to the real server",
                        t.sslmode.origin
                    ),
                );
            }
            let f = login(&mut tls, t, budget, password, &server).await;
            Finding {
                detail: format!("{said}; {}", f.detail),
                ..f
            }
        }
        Err((d, h)) => Finding::fail(d, h),
    }
}

async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    t: &Target,
    budget: &mut Budget,
    password: &str,
    server: &str,
) -> Finding {
    let db = if t.database.is_empty() {
        "master"
    } else {
        t.database.as_str()
    };
    if let Err(cut) = budget
        .write(s, &login7(&t.user, password, db, &t.host))
        .await
    {
        return Finding::fail(
            format!("the login could not be sent: {cut}"),
            "the server closed the connection: check its error log",
        );
    }
    let answer = match read_whole(s, budget, mssql_frame).await {
        Ok(a) => a,
        Err((_, why)) => {
            return Finding::fail(
                format!("{server} did not answer the login: {why}"),
                "the server stopped answering halfway: check its error log",
            );
        }
    };
    match login_answer(&answer) {
        Ok(Answer::Ack(program)) => Finding::pass(format!(
            "{server} answered: {} logged in to {db} ({})",
            t.user,
            crate::text::escape(&program)
        )),
        Ok(Answer::Error(n, msg)) => explain(n, &msg, t, server),
        Err(e) => Finding::fail(
            format!("{server} answered the login with something warren cannot read: {e}"),
            "check what listens on this port",
        ),
    }
}

fn not_mssql(b: &[u8], why: &str) -> Finding {
    not_the_engine(
        b,
        why,
        "SQL Server",
        1433,
        "the port accepts connections but says nothing: is this SQL Server?",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login7_is_laid_out_as_ms_tds_says() {
        // MS-TDS 2.2.6.4's example obfuscation of "pass" is not given; check the rule on a
        // byte: 'a' (0x61) -> nibbles swapped 0x16 -> XOR 0xA5 = 0xB3; its high byte 0x00 ->
        // 0xA5.
        assert_eq!(obfuscate("a"), vec![0xb3, 0xa5]);
        let p = login7("app", "pw", "orders", "sql.internal");
        assert_eq!(p[0], 0x10);
        let body = &p[8..];
        assert_eq!(
            u32::from_le_bytes([body[0], body[1], body[2], body[3]]) as usize,
            body.len()
        );
        // UserName's offset and length (in characters) point at "app" in UTF-16LE.
        let off = usize::from(u16::from_le_bytes([body[40], body[41]]));
        let len = usize::from(u16::from_le_bytes([body[42], body[43]]));
        assert_eq!(len, 3);
        assert_eq!(utf16_text(&body[off..off + 2 * len]), "app");
    }

    #[test]
    fn prelogin_and_login_answers_are_read() {
        // Recorded PRELOGIN response of SQL Server 2019 (15.0.2000), without a certificate.
        const MSSQL_2019: &[u8] = b"\x04\x01\x00\x25\x00\x00\x01\x00\x00\x00\x15\x00\x06\x01\x00\x1b\x00\x01\x02\x00\x1c\x00\x01\x03\x00\x1d\x00\x00\xff\x0f\x00\x07\xd0\x00\x00\x02\x00";
        let p = prelogin_answer(MSSQL_2019).expect("prelogin");
        assert_eq!(p.version.as_deref(), Some("15.0.2000"));
        assert_eq!(p.encryption, Some(ENCRYPT_NOT_SUP));
        // An ERROR token 18456 then DONE.
        let msg = utf16("Login failed for user 'app'.");
        let mut e = 18456i32.to_le_bytes().to_vec();
        e.extend_from_slice(&[1, 14]);
        e.extend_from_slice(&((msg.len() / 2) as u16).to_le_bytes());
        e.extend_from_slice(&msg);
        e.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut t = vec![0xaa];
        t.extend_from_slice(&(e.len() as u16).to_le_bytes());
        t.extend_from_slice(&e);
        t.push(0xfd);
        t.extend_from_slice(&[0; 12]);
        assert_eq!(
            login_answer(&packet(0x04, 1, &t)),
            Ok(Answer::Error(18456, "Login failed for user 'app'.".into()))
        );
        assert!(login_answer(&packet(0x04, 1, &[0xad, 0xff, 0xff])).is_err());
    }
}
