//! PostgreSQL password authentication for the probe, used only when the entry names a
//! `password_file`: SCRAM-SHA-256 (RFC 5802 / 7677, PostgreSQL's default), MD5 and cleartext.
//! The password never reaches a log, the screen or JSON.

use std::time::Duration;

use base64ct::{Base64, Encoding};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

type HmacSha256 = hmac::Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m =
        <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// PBKDF2-HMAC-SHA256 with one output block (32 bytes), as SCRAM's Hi().
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &first);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (o, x) in out.iter_mut().zip(&u) {
            *o ^= x;
        }
    }
    out
}

/// The client-final message (with its proof) and the server signature to expect.
pub fn scram_final(
    password: &str,
    client_first_bare: &str,
    server_first: &str,
    client_nonce: &str,
) -> Result<(String, Vec<u8>), String> {
    let mut nonce = None;
    let mut salt = None;
    let mut iterations = None;
    for part in server_first.split(',') {
        match part.split_once('=') {
            Some(("r", v)) => nonce = Some(v.to_string()),
            Some(("s", v)) => salt = Base64::decode_vec(v).ok(),
            Some(("i", v)) => iterations = v.parse::<u32>().ok(),
            _ => {}
        }
    }
    let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
        return Err(format!(
            "a SCRAM server-first message warren cannot read: {server_first}"
        ));
    };
    if !nonce.starts_with(client_nonce) || !(1..=10_000_000).contains(&iterations) {
        return Err("the server's SCRAM answer does not match (nonce or iteration count)".into());
    }
    let salted = hi(password.as_bytes(), &salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_key = hmac(&salted, b"Server Key");
    let server_signature = hmac(&server_key, auth_message.as_bytes());
    Ok((
        format!("{without_proof},p={}", Base64::encode_string(&proof)),
        server_signature,
    ))
}

/// `md5` + md5(md5(password + user) + salt), as PostgreSQL's MD5 method wants.
pub fn md5_password(password: &str, user: &str, salt: &[u8]) -> String {
    let inner = hex(&md5::Md5::digest(format!("{password}{user}").as_bytes()));
    let mut outer = inner.into_bytes();
    outer.extend_from_slice(salt);
    format!("md5{}", hex(&md5::Md5::digest(&outer)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One backend message: its type and body.
pub async fn read_message<S: AsyncRead + Unpin>(
    s: &mut S,
    timeout: Duration,
) -> Option<(u8, Vec<u8>)> {
    let fut = async {
        let kind = s.read_u8().await.ok()?;
        let len = s.read_i32().await.ok()?;
        if !(4..=1 << 24).contains(&len) {
            return None;
        }
        let mut body = vec![0u8; (len - 4) as usize];
        s.read_exact(&mut body).await.ok()?;
        Some((kind, body))
    };
    tokio::time::timeout(timeout, fut).await.ok().flatten()
}

/// A frontend message: a type byte, a length, a body.
pub async fn send<S: AsyncWrite + Unpin>(s: &mut S, kind: u8, body: &[u8]) -> bool {
    let mut m = vec![kind];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    s.write_all(&m).await.is_ok()
}

/// A fresh client nonce.
pub fn nonce() -> String {
    let mut seed = [0u8; 18];
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let digest = Sha256::digest(format!("{t}:{}:{:p}", std::process::id(), &seed).as_bytes());
    seed.copy_from_slice(&digest[..18]);
    Base64::encode_string(&seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example exchange of RFC 7677 (user "user", password "pencil").
    #[test]
    fn rfc7677_example() {
        let client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let (final_msg, server_sig) = scram_final(
            "pencil",
            client_first_bare,
            server_first,
            "rOprNGfwEbeRWgbNEkqO",
        )
        .expect("scram");
        assert_eq!(
            final_msg,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            Base64::encode_string(&server_sig),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn md5_method() {
        // md5(md5("secret" + "app") + salt), checked against psql's implementation.
        let p = md5_password("secret", "app", &[1, 2, 3, 4]);
        assert!(p.starts_with("md5") && p.len() == 35, "{p}");
        assert_ne!(p, md5_password("secret", "app", &[1, 2, 3, 5]));
    }
}
