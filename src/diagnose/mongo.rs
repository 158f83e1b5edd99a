//! The MongoDB probe, as a driver logs in: `hello` (asking which SASL mechanisms the user has),
//! then SCRAM-SHA-256, or SCRAM-SHA-1 where the server or the user has only that, with
//! `saslStart` / `saslContinue` against the entry's database (the driver's default
//! authSource: the URI's database, else `admin`). TLS by `sslmode`: MongoDB has no STARTTLS,
//! so `require` and above start with TLS and `prefer` goes without (SCRAM never reveals the
//! password, and it proves the server knows it).
//!
//! Written here rather than taken from crates, and why:
//! - BSON: the probe needs to write four small documents and read seven kinds of element at
//!   the top of a reply. The `bson` crate (3.x) brings eleven crates with it (a second `rand`,
//!   `time`, `bitvec`, `indexmap`, ...); this reader is one loop that never recurses, checks
//!   every length against the document's own, and stops at the first element it does not know.
//! - SCRAM: `postgres-protocol`'s client is PostgreSQL's: its first message carries an empty
//!   user name (`n=,`), which PostgreSQL ignores and MongoDB reads as the user, and it has no
//!   SHA-1. This one follows RFC 5802 / 7677 and MongoDB's auth spec (SHA-1 over
//!   `hex(md5("user:mongo:password"))`), is checked against the RFC 7677 and MongoDB test
//!   vectors, runs PBKDF2 on the blocking pool, and caps the iterations. Passwords are used as
//!   written (no SASLprep): a password that SASLprep would change fails with the server's
//!   "Authentication failed", and the README says so.

use std::future::Future;

use base64ct::{Base64, Encoding};
use hmac::{KeyInit, Mac};
use tokio::io::{AsyncRead, AsyncWrite};

use super::pgauth::MAX_SCRAM_ITERATIONS;
use super::probe::{Finding, Target, mongo_frame, not_the_engine, read_whole, show_bytes};
use super::tls;
use super::wire::Budget;
use crate::config::model::SslMode;

/// A BSON value the probe reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Double(f64),
    Str(String),
    Doc(Vec<u8>),
    Array(Vec<u8>),
    Binary(Vec<u8>),
    Bool(bool),
    Int32(i32),
    Int64(i64),
    Null,
}

impl Value {
    fn number(&self) -> Option<f64> {
        match self {
            Value::Double(d) => Some(*d),
            Value::Int32(i) => Some(f64::from(*i)),
            Value::Int64(i) => Some(*i as f64),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }
}

fn le_i32(b: &[u8], at: usize) -> Option<i32> {
    let s = b.get(at..at + 4)?;
    Some(i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The top-level elements of one BSON document, in order; stops (with what it read) at the
/// first element it cannot read or does not know.
pub fn elements(doc: &[u8]) -> Result<Vec<(String, Value)>, String> {
    let len = le_i32(doc, 0).ok_or("a document shorter than its length")?;
    let len = usize::try_from(len).map_err(|_| format!("a document of length {len}"))?;
    if len < 5 || len > doc.len() || doc[len - 1] != 0 {
        return Err(format!("a document of length {len} in {} bytes", doc.len()));
    }
    let doc = &doc[..len];
    let mut at = 4;
    let mut out = Vec::new();
    while at < len - 1 && out.len() < 256 {
        let kind = doc[at];
        let name_end = doc[at + 1..]
            .iter()
            .position(|&c| c == 0)
            .map(|p| at + 1 + p)
            .ok_or("an element name without its end")?;
        let name = String::from_utf8_lossy(&doc[at + 1..name_end]).into_owned();
        let v = name_end + 1;
        let fixed = |n: usize| -> Result<&[u8], String> {
            doc.get(v..v + n)
                .ok_or_else(|| format!("element '{name}' runs past the document"))
        };
        let sized = |extra: usize| -> Result<usize, String> {
            let n = le_i32(doc, v).ok_or_else(|| format!("element '{name}' has no length"))?;
            let n = usize::try_from(n).map_err(|_| format!("element '{name}' has length {n}"))?;
            if v + 4 + extra + n > len {
                return Err(format!("element '{name}' runs past the document"));
            }
            Ok(n)
        };
        let (value, next) = match kind {
            0x01 => {
                let b = fixed(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (Value::Double(f64::from_le_bytes(a)), v + 8)
            }
            0x02 => {
                let n = sized(0)?;
                if n == 0 {
                    return Err(format!("string '{name}' of length 0"));
                }
                let s = &doc[v + 4..v + 4 + n - 1];
                (
                    Value::Str(String::from_utf8_lossy(s).chars().take(500).collect()),
                    v + 4 + n,
                )
            }
            0x03 | 0x04 => {
                // A document's length counts its own four bytes.
                let n = le_i32(doc, v)
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| v + n < len)
                    .ok_or_else(|| format!("document '{name}' runs past the document"))?;
                if n < 5 {
                    return Err(format!("document '{name}' of length {n}"));
                }
                let sub = doc[v..v + n].to_vec();
                let val = if kind == 0x03 {
                    Value::Doc(sub)
                } else {
                    Value::Array(sub)
                };
                (val, v + n)
            }
            0x05 => {
                let n = sized(1)?;
                (Value::Binary(doc[v + 5..v + 5 + n].to_vec()), v + 5 + n)
            }
            0x07 => (Value::Null, v + fixed(12)?.len()),
            0x08 => (Value::Bool(fixed(1)?[0] != 0), v + 1),
            0x09 | 0x11 => (Value::Null, v + fixed(8)?.len()),
            0x0A => (Value::Null, v),
            0x10 => {
                let b = fixed(4)?;
                (
                    Value::Int32(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    v + 4,
                )
            }
            0x12 => {
                let b = fixed(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (Value::Int64(i64::from_le_bytes(a)), v + 8)
            }
            _ => break,
        };
        out.push((name, value));
        at = next;
    }
    Ok(out)
}

/// A BSON document being written.
#[derive(Default)]
pub struct Doc(Vec<u8>);

impl Doc {
    fn key(&mut self, kind: u8, k: &str) {
        self.0.push(kind);
        self.0.extend_from_slice(k.as_bytes());
        self.0.push(0);
    }
    pub fn int(mut self, k: &str, v: i32) -> Self {
        self.key(0x10, k);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn str(mut self, k: &str, v: &str) -> Self {
        self.key(0x02, k);
        self.0
            .extend_from_slice(&((v.len() + 1) as i32).to_le_bytes());
        self.0.extend_from_slice(v.as_bytes());
        self.0.push(0);
        self
    }
    pub fn bin(mut self, k: &str, v: &[u8]) -> Self {
        self.key(0x05, k);
        self.0.extend_from_slice(&(v.len() as i32).to_le_bytes());
        self.0.push(0);
        self.0.extend_from_slice(v);
        self
    }
    pub fn bool(mut self, k: &str, v: bool) -> Self {
        self.key(0x08, k);
        self.0.push(u8::from(v));
        self
    }
    pub fn doc(mut self, k: &str, v: Doc) -> Self {
        self.key(0x03, k);
        self.0.extend_from_slice(&v.bytes());
        self
    }
    /// An array: `v`'s keys are "0", "1", ... (what a server sends; the probe's tests and
    /// fakes write it).
    #[cfg(test)]
    pub fn array(mut self, k: &str, v: Doc) -> Self {
        self.key(0x04, k);
        self.0.extend_from_slice(&v.bytes());
        self
    }
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = ((self.0.len() + 5) as i32).to_le_bytes().to_vec();
        out.extend_from_slice(&self.0);
        out.push(0);
        out
    }
}

/// An OP_MSG (opcode 2013) carrying `doc` as its body.
pub fn op_msg(id: i32, doc: &Doc) -> Vec<u8> {
    let body = doc.bytes();
    let mut msg = Vec::with_capacity(21 + body.len());
    msg.extend_from_slice(&((21 + body.len()) as i32).to_le_bytes());
    msg.extend_from_slice(&id.to_le_bytes());
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(&2013i32.to_le_bytes());
    msg.extend_from_slice(&0u32.to_le_bytes());
    msg.push(0);
    msg.extend_from_slice(&body);
    msg
}

/// The body document of an OP_MSG reply, read.
pub fn reply(msg: &[u8]) -> Result<Vec<(String, Value)>, String> {
    if msg.len() < 21 {
        return Err(format!("not a MongoDB reply: {}", show_bytes(msg)));
    }
    let opcode = i32::from_le_bytes([msg[12], msg[13], msg[14], msg[15]]);
    match opcode {
        2013 if msg[20] == 0 => elements(&msg[21..]),
        2013 => Err("a reply whose first section is not its body".into()),
        1 => Err("the server answered with OP_REPLY: MongoDB older than 3.6, which warren's probe does not log in to".into()),
        o => Err(format!("not a MongoDB reply (opcode {o})")),
    }
}

fn get<'a>(d: &'a [(String, Value)], k: &str) -> Option<&'a Value> {
    d.iter().find(|(n, _)| n == k).map(|(_, v)| v)
}

fn text(d: &[(String, Value)], k: &str) -> Option<String> {
    match get(d, k) {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    }
}

/// The SCRAM variant: its hash and what it does to the password first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Sha1,
    Sha256,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha1 => "SCRAM-SHA-1",
            Mechanism::Sha256 => "SCRAM-SHA-256",
        }
    }
}

fn hmac_of(m: Mechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match m {
        Mechanism::Sha1 => match hmac::Hmac::<sha1::Sha1>::new_from_slice(key) {
            Ok(mut h) => {
                h.update(data);
                h.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
        Mechanism::Sha256 => match hmac::Hmac::<sha2::Sha256>::new_from_slice(key) {
            Ok(mut h) => {
                h.update(data);
                h.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
    }
}

fn hash_of(m: Mechanism, data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    match m {
        Mechanism::Sha1 => sha1::Sha1::digest(data).to_vec(),
        Mechanism::Sha256 => sha2::Sha256::digest(data).to_vec(),
    }
}

/// PBKDF2 (RFC 8018) with the mechanism's HMAC, one block: SCRAM's `Hi`.
fn hi(m: Mechanism, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac_of(m, password, &first);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac_of(m, password, &u);
        for (o, x) in out.iter_mut().zip(&u) {
            *o ^= x;
        }
    }
    out
}

/// The password as the mechanism uses it: MongoDB's SCRAM-SHA-1 hashes `user:mongo:password`
/// with MD5 first (hex), as MONGODB-CR did.
/// Zeroized when dropped, as every copy of the password is.
fn prepared(m: Mechanism, user: &str, password: &str) -> zeroize::Zeroizing<Vec<u8>> {
    zeroize::Zeroizing::new(match m {
        Mechanism::Sha256 => password.as_bytes().to_vec(),
        Mechanism::Sha1 => {
            use md5::Digest;
            let joined = zeroize::Zeroizing::new(format!("{user}:mongo:{password}"));
            let d = md5::Md5::digest(joined.as_bytes());
            d.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes()
        }
    })
}

/// `=` and `,` in a SCRAM user name, as RFC 5802 writes them.
fn scram_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// One SCRAM exchange from the client's side.
pub struct Scram {
    m: Mechanism,
    user: String,
    password: zeroize::Zeroizing<String>,
    client_nonce: String,
    first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl Scram {
    /// With a client nonce of 24 random bytes (base64), from the operating system.
    pub fn new(m: Mechanism, user: &str, password: &str) -> Result<Scram, String> {
        let mut raw = [0u8; 24];
        getrandom::fill(&mut raw).map_err(|e| format!("no random bytes for the nonce: {e}"))?;
        Ok(Scram::with_nonce(
            m,
            user,
            password,
            &Base64::encode_string(&raw),
        ))
    }

    pub fn with_nonce(m: Mechanism, user: &str, password: &str, nonce: &str) -> Scram {
        let first_bare = format!("n={},r={nonce}", scram_name(user));
        Scram {
            m,
            user: user.to_string(),
            password: zeroize::Zeroizing::new(password.to_string()),
            client_nonce: nonce.to_string(),
            first_bare,
            server_signature: None,
        }
    }

    /// The client's first message.
    pub fn first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// The client's final message for the server's first (PBKDF2 on the blocking pool,
    /// within the step's time).
    pub async fn answer(&mut self, server_first: &[u8], budget: &Budget) -> Result<String, String> {
        let sf = super::pgauth::server_first(server_first)?;
        if !sf.nonce.starts_with(&self.client_nonce) || sf.nonce.len() <= self.client_nonce.len() {
            return Err("the server's SCRAM nonce does not extend warren's: something other than the server answers".into());
        }
        if sf.iterations > MAX_SCRAM_ITERATIONS {
            return Err(format!("the server asks for {} iterations", sf.iterations));
        }
        let (m, password, salt, iterations) = (
            self.m,
            prepared(self.m, &self.user, &self.password),
            sf.salt.clone(),
            sf.iterations,
        );
        let salted = budget
            .within(tokio::task::spawn_blocking(move || {
                hi(m, &password, &salt, iterations)
            }))
            .await
            .map_err(|c| format!("SCRAM did not finish: {c}"))?
            .map_err(|e| format!("SCRAM did not finish: {e}"))?;
        let server_first = String::from_utf8_lossy(server_first);
        let without_proof = format!("c=biws,r={}", sf.nonce);
        let auth = format!("{},{server_first},{without_proof}", self.first_bare);
        let client_key = hmac_of(m, &salted, b"Client Key");
        let stored = hash_of(m, &client_key);
        let signature = hmac_of(m, &stored, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac_of(m, &salted, b"Server Key");
        self.server_signature = Some(hmac_of(m, &server_key, auth.as_bytes()));
        Ok(format!(
            "{without_proof},p={}",
            Base64::encode_string(&proof)
        ))
    }

    /// Checks the server's final message (`v=...`): the server knows the password.
    pub fn finish(&self, server_final: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(server_final);
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!(
                "the server ended SCRAM with an error: {}",
                crate::text::escape(e)
            ));
        }
        let v = text
            .strip_prefix("v=")
            .and_then(|v| Base64::decode_vec(v.trim()).ok())
            .ok_or("the server's last SCRAM message has no signature")?;
        match &self.server_signature {
            Some(s) if *s == v => Ok(()),
            _ => Err("the server's SCRAM signature is wrong: it does not know the password (something stands in between)".into()),
        }
    }
}

/// Sends one command and reads its reply document.
async fn ask<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    budget: &mut Budget,
    id: i32,
    doc: &Doc,
) -> Result<Vec<(String, Value)>, (Vec<u8>, String)> {
    if let Err(cut) = budget.write(s, &op_msg(id, doc)).await {
        return Err((Vec::new(), cut.to_string()));
    }
    let msg = read_whole(s, budget, mongo_frame).await?;
    reply(&msg).map_err(|e| (msg, e))
}

/// A refusal (`ok: 0`) as the step reports it.
fn refused(d: &[(String, Value)], t: &Target, db: &str, mech: &str) -> Finding {
    let code = match get(d, "code") {
        Some(v) => v.number().unwrap_or(0.0) as i64,
        None => 0,
    };
    let msg = crate::text::escape(&text(d, "errmsg").unwrap_or_default()).into_owned();
    let f = match code {
        18 => Finding::fail(
            format!(
                "MongoDB refused the login of {} on {db} ({mech}: {code} {msg})",
                t.user
            ),
            format!(
                "the password or the user is wrong, or the user is defined in another database: check password_file, and that {} exists in {db} (db.getUsers() there); a user made in admin needs database = \"admin\"",
                t.user
            ),
        ),
        334 | 2 if msg.contains("mechanism") => Finding::fail(
            format!(
                "MongoDB does not offer {mech} for {} ({code} {msg})",
                t.user
            ),
            "check the user's mechanisms (db.getUser(...).mechanisms) and the server's authenticationMechanisms",
        ),
        _ => Finding::fail(
            format!("MongoDB refused: {code} {msg}"),
            "see the server's log",
        ),
    };
    f.brief(if code == 18 {
        "login refused (18)".to_string()
    } else {
        format!("refused ({code})")
    })
}

/// Probes MongoDB over a connection made by `open`.
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
    if mode >= SslMode::Require {
        let client = match tls::client(mode, &t.sslrootcert, &t.host) {
            Ok(c) => c.for_engine(tls::Engine::Mongo),
            Err((d, h)) => return Finding::fail(d, h),
        };
        match client.handshake(s, budget).await {
            Ok((mut tls, said)) => {
                let f = login(&mut tls, t, budget).await;
                Finding {
                    detail: format!("{said}; {}", f.detail),
                    ..f
                }
            }
            Err((d, h)) => Finding::fail(d, h),
        }
    } else {
        let mut s = s;
        let f = login(&mut s, t, budget).await;
        Finding {
            detail: format!(
                "no TLS (sslmode = {mode}; MongoDB has no STARTTLS); {}",
                f.detail
            ),
            ..f
        }
    }
}

async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    t: &Target,
    budget: &mut Budget,
) -> Finding {
    let db = if t.database.is_empty() {
        "admin"
    } else {
        t.database.as_str()
    };
    let mut hello = Doc::default().int("hello", 1).str("$db", "admin");
    if !t.user.is_empty() {
        hello = hello.str("saslSupportedMechs", &format!("{db}.{}", t.user));
    }
    let h = match ask(s, budget, 1, &hello).await {
        Ok(h) => h,
        Err((b, why)) => return not_mongo(&b, &why),
    };
    if get(&h, "ok").and_then(Value::number) != Some(1.0) {
        return refused(&h, t, db, "hello");
    }
    let wire = get(&h, "maxWireVersion")
        .and_then(Value::number)
        .unwrap_or(0.0) as i64;
    let answered = format!("MongoDB answered hello (wire version {wire})");
    let Some(password) = t.password.as_deref() else {
        return Finding::warn(
            format!("{answered}; login not checked: no password configured"),
            "set username and password_file in the entry so that doctor logs in",
        );
    };
    if t.user.is_empty() {
        return Finding::warn(
            format!("{answered}; login not checked: the entry names no username"),
            "set username in the entry (the password alone names no MongoDB user)",
        );
    }
    let offered: Vec<String> = match get(&h, "saslSupportedMechs") {
        Some(Value::Array(a)) => elements(a)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(_, v)| match v {
                Value::Str(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let m = if offered.iter().any(|m| m == "SCRAM-SHA-256") || (offered.is_empty() && wire >= 7) {
        Mechanism::Sha256
    } else if offered.is_empty() || offered.iter().any(|m| m == "SCRAM-SHA-1") {
        Mechanism::Sha1
    } else {
        return Finding::warn(
            format!(
                "{answered}; the user logs in with {}, which warren's probe does not speak; login not checked",
                crate::text::escape(&offered.join(", "))
            ),
            "doctor logs in with SCRAM-SHA-256 or SCRAM-SHA-1; check this user with mongosh: warren connect NAME",
        );
    };
    let mut scram = match Scram::new(m, &t.user, password) {
        Ok(sc) => sc,
        Err(e) => return Finding::fail(e, "the system has no random source"),
    };
    let start = Doc::default()
        .int("saslStart", 1)
        .str("mechanism", m.name())
        .bin("payload", scram.first().as_bytes())
        .bool("autoAuthorize", true)
        .doc("options", Doc::default().bool("skipEmptyExchange", true))
        .str("$db", db);
    let r = match ask(s, budget, 2, &start).await {
        Ok(r) => r,
        Err((b, why)) => return not_mongo(&b, &why),
    };
    if get(&r, "ok").and_then(Value::number) != Some(1.0) {
        return refused(&r, t, db, m.name());
    }
    let conversation = get(&r, "conversationId")
        .and_then(Value::number)
        .unwrap_or(1.0) as i32;
    let Some(Value::Binary(server_first)) = get(&r, "payload") else {
        return Finding::fail(
            "MongoDB's answer to saslStart has no payload",
            "check what listens on this port",
        );
    };
    let client_final = match scram.answer(server_first, budget).await {
        Ok(c) => c,
        Err(e) => return Finding::fail(e, "check what listens on this port"),
    };
    let mut next = Doc::default()
        .int("saslContinue", 1)
        .int("conversationId", conversation)
        .bin("payload", client_final.as_bytes())
        .str("$db", db);
    let mut signed = false;
    for id in 3..6 {
        let r = match ask(s, budget, id, &next).await {
            Ok(r) => r,
            Err((b, why)) => return not_mongo(&b, &why),
        };
        if get(&r, "ok").and_then(Value::number) != Some(1.0) {
            return refused(&r, t, db, m.name());
        }
        if let Some(Value::Binary(p)) = get(&r, "payload")
            && !p.is_empty()
        {
            if let Err(e) = scram.finish(p) {
                return Finding::fail(
                    e,
                    "check that nothing intercepts the connection (sslmode = \"verify-full\" proves who answers)",
                );
            }
            signed = true;
        }
        if get(&r, "done") == Some(&Value::Bool(true)) {
            if !signed {
                return Finding::fail(
                    "MongoDB accepted the login without proving it knows the password (no server signature)",
                    "something other than MongoDB answers, or stands in between: check what listens on this port",
                );
            }
            return Finding::pass(format!(
                "{answered}: {} logged in to {db} ({})",
                t.user,
                m.name()
            ));
        }
        next = Doc::default()
            .int("saslContinue", 1)
            .int("conversationId", conversation)
            .bin("payload", b"")
            .str("$db", db);
    }
    Finding::fail(
        "MongoDB did not end the SCRAM exchange",
        "check what listens on this port",
    )
}

fn not_mongo(b: &[u8], why: &str) -> Finding {
    not_the_engine(
        b,
        why,
        "MongoDB",
        27017,
        "the port accepts connections but says nothing: is this MongoDB (a TLS-only server waits for TLS: sslmode = \"require\")?",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scram_matches_the_published_vectors() {
        let budget = Budget::new(std::time::Duration::from_secs(10));
        // RFC 7677, section 3.
        let mut sc = Scram::with_nonce(Mechanism::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(sc.first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let fin = sc
            .answer(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                &budget,
            )
            .await;
        assert_eq!(
            fin.as_deref(),
            Ok(
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
            )
        );
        assert_eq!(
            sc.finish(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Ok(())
        );
        assert!(sc.finish(b"v=AAAA").is_err());
        // MongoDB's auth spec: SCRAM-SHA-1 over md5("user:mongo:pencil").
        let mut sc = Scram::with_nonce(
            Mechanism::Sha1,
            "user",
            "pencil",
            "fyko+d2lbbFgONRv9qkxdawL",
        );
        let fin = sc
            .answer(
                b"r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,s=rQ9ZY3MntBeuP3E1TDVC4w==,i=10000",
                &budget,
            )
            .await;
        assert_eq!(
            fin.as_deref(),
            Ok(
                "c=biws,r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,p=MC2T8BvbmWRckDw8oWl5IVghwCY="
            )
        );
        assert_eq!(sc.finish(b"v=UMWeI25JD1yNYZRMpZ4VHvhZ9e0="), Ok(()));
        // A server nonce that does not extend ours is refused.
        let mut sc = Scram::with_nonce(Mechanism::Sha256, "user", "pencil", "abc");
        assert!(
            sc.answer(b"r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", &budget)
                .await
                .is_err()
        );
    }

    /// A MongoDB server's side of hello and SCRAM-SHA-256 (as RFC 5802 has the server check
    /// the proof) for user `app` with `password`, over a pipe.
    async fn fake_server(mut s: tokio::io::DuplexStream, password: &'static str) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let salt = b"0123456789abcdef";
        let salt64 = Base64::encode_string(salt);
        let mut first_bare = String::new();
        let mut server_first = String::new();
        loop {
            let mut head = [0u8; 4];
            if s.read_exact(&mut head).await.is_err() {
                return;
            }
            let len = i32::from_le_bytes(head) as usize;
            let mut rest = vec![0u8; len - 4];
            if s.read_exact(&mut rest).await.is_err() {
                return;
            }
            let mut msg = head.to_vec();
            msg.extend_from_slice(&rest);
            let Ok(d) = reply(&msg) else { return };
            let payload = match get(&d, "payload") {
                Some(Value::Binary(p)) => String::from_utf8_lossy(p).into_owned(),
                _ => String::new(),
            };
            let answer = if get(&d, "hello").is_some() {
                Doc::default()
                    .bool("isWritablePrimary", true)
                    .int("maxWireVersion", 21)
                    .array(
                        "saslSupportedMechs",
                        Doc::default().str("0", "SCRAM-SHA-256"),
                    )
                    .int("ok", 1)
            } else if get(&d, "saslStart").is_some() {
                first_bare = payload.trim_start_matches("n,,").to_string();
                let nonce = first_bare.split("r=").nth(1).unwrap_or_default();
                server_first = format!("r={nonce}srv,s={salt64},i=4096");
                Doc::default()
                    .int("conversationId", 1)
                    .bool("done", false)
                    .bin("payload", server_first.as_bytes())
                    .int("ok", 1)
            } else {
                let (without, proof) = payload.rsplit_once(",p=").unwrap_or_default();
                let m = Mechanism::Sha256;
                let salted = hi(m, password.as_bytes(), salt, 4096);
                let stored = hash_of(m, &hmac_of(m, &salted, b"Client Key"));
                let auth = format!("{first_bare},{server_first},{without}");
                let sig = hmac_of(m, &stored, auth.as_bytes());
                let key: Vec<u8> = Base64::decode_vec(proof)
                    .unwrap_or_default()
                    .iter()
                    .zip(&sig)
                    .map(|(a, b)| a ^ b)
                    .collect();
                if hash_of(m, &key) == stored {
                    let v = hmac_of(m, &hmac_of(m, &salted, b"Server Key"), auth.as_bytes());
                    Doc::default()
                        .int("conversationId", 1)
                        .bool("done", true)
                        .bin(
                            "payload",
                            format!("v={}", Base64::encode_string(&v)).as_bytes(),
                        )
                        .int("ok", 1)
                } else {
                    Doc::default()
                        .int("ok", 0)
                        .str("errmsg", "Authentication failed.")
                        .int("code", 18)
                        .str("codeName", "AuthenticationFailed")
                }
            };
            if s.write_all(&op_msg(9, &answer)).await.is_err() {
                return;
            }
        }
    }

    async fn login_with(password: Option<&str>) -> Finding {
        let t = crate::diagnose::probe::test_target(password, SslMode::Prefer);
        crate::diagnose::probe::against("mongodb", &t, |s| fake_server(s, "right")).await
    }

    #[tokio::test]
    async fn logs_in_with_scram_sha_256_and_names_a_wrong_password() {
        let f = login_with(Some("right")).await;
        assert_eq!(f.status(), super::super::Status::Pass, "{f:?}");
        assert!(
            f.detail.contains("app logged in to orders (SCRAM-SHA-256)")
                && f.detail.contains("wire version 21"),
            "{}",
            f.detail
        );
        let f = login_with(Some("wrong")).await;
        assert_eq!(f.status(), super::super::Status::Fail, "{f:?}");
        assert!(
            f.detail.contains("18 Authentication failed."),
            "{}",
            f.detail
        );
        assert!(f.hint.unwrap_or_default().contains("password_file"));
        let f = login_with(None).await;
        assert_eq!(f.status(), super::super::Status::Warn, "{f:?}");
        assert!(
            f.detail
                .contains("login not checked: no password configured")
        );
    }

    #[test]
    fn bson_reads_what_it_wrote_and_refuses_what_runs_over() {
        let d = Doc::default()
            .int("ok", 1)
            .str("errmsg", "no")
            .bin("payload", b"r=1")
            .bool("done", true)
            .doc("sub", Doc::default().int("x", 2))
            .bytes();
        let e = elements(&d).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(get(&e, "ok"), Some(&Value::Int32(1)));
        assert_eq!(text(&e, "errmsg").as_deref(), Some("no"));
        assert_eq!(get(&e, "payload"), Some(&Value::Binary(b"r=1".to_vec())));
        assert_eq!(get(&e, "done"), Some(&Value::Bool(true)));
        let mut bad = d.clone();
        bad[0] = 0xff;
        assert!(elements(&bad).is_err());
        // A string that claims more bytes than the document has.
        let mut long = Doc::default().str("k", "v").bytes();
        long[7] = 0x7f;
        assert!(elements(&long).is_err());
    }
}
