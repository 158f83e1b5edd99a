//! `RevokedHostKeys`: a file of revoked keys, read as OpenSSH does (authfile.c
//! `sshkey_check_revoked`): first as a binary KRL (`ssh-keygen -k`, PROTOCOL.krl), else as a
//! list of public keys, one a line. It fails closed: a missing or unreadable file, or a line
//! that does not parse, refuses the key, as ssh does.
//!
//! No crate reads KRLs; the format is small and only its revocation sections matter here
//! (explicit keys, SHA1/SHA256 fingerprints, certificates by serial or key id). Every length
//! is checked before use: the file may be anything.

use std::path::Path;

use russh::keys::ssh_key::{Certificate, PublicKey};
use sha2::Digest;

const MAGIC: &[u8; 8] = b"SSHKRL\n\0";

/// Why a key is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Revocation {
    /// Listed in the file.
    Revoked,
    /// The file could not be used: refuse, as ssh does.
    Error(String),
}

/// A cursor over SSH wire data; every read checks the length first.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_be_bytes(a))
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a KRL revokes.
#[derive(Default, Debug)]
struct Krl {
    blobs: Vec<Vec<u8>>,
    sha1: Vec<Vec<u8>>,
    sha256: Vec<Vec<u8>>,
    certs: Vec<CertRevocations>,
}

/// The certificates one CA (an empty blob: any CA) revokes: serial ranges and key ids.
type CertRevocations = (Vec<u8>, Vec<(u64, u64)>, Vec<Vec<u8>>);

fn parse_krl(data: &[u8]) -> Result<Krl, String> {
    let bad = || "not a valid KRL".to_string();
    let mut w = Wire(data);
    if w.take(8) != Some(&MAGIC[..]) {
        return Err(bad());
    }
    let version = w.u32().ok_or_else(bad)?;
    if version != 1 {
        return Err(format!("KRL format version {version} is not supported"));
    }
    w.u64().ok_or_else(bad)?; // krl_version
    w.u64().ok_or_else(bad)?; // generated_date
    w.u64().ok_or_else(bad)?; // flags
    w.string().ok_or_else(bad)?; // reserved
    w.string().ok_or_else(bad)?; // comment
    let mut krl = Krl::default();
    while !w.done() {
        let kind = w.u8().ok_or_else(bad)?;
        let body = w.string().ok_or_else(bad)?;
        let mut s = Wire(body);
        match kind {
            1 => {
                let ca = s.string().ok_or_else(bad)?.to_vec();
                s.string().ok_or_else(bad)?; // reserved
                let (mut ranges, mut ids) = (Vec::new(), Vec::new());
                while !s.done() {
                    let sub = s.u8().ok_or_else(bad)?;
                    let mut d = Wire(s.string().ok_or_else(bad)?);
                    match sub {
                        0x20 => {
                            while !d.done() {
                                let n = d.u64().ok_or_else(bad)?;
                                ranges.push((n, n));
                            }
                        }
                        0x21 => {
                            let lo = d.u64().ok_or_else(bad)?;
                            let hi = d.u64().ok_or_else(bad)?;
                            ranges.push((lo, hi));
                        }
                        0x22 => {
                            let offset = d.u64().ok_or_else(bad)?;
                            let bitmap = d.string().ok_or_else(bad)?;
                            // An mpint, most significant byte first: bit i is serial offset+i.
                            let bits = bitmap.len().saturating_mul(8);
                            for i in 0..bits {
                                let byte = bitmap[bitmap.len() - 1 - i / 8];
                                if byte & (1 << (i % 8)) != 0 {
                                    let n = offset.saturating_add(i as u64);
                                    ranges.push((n, n));
                                }
                            }
                        }
                        0x23 => {
                            while !d.done() {
                                ids.push(d.string().ok_or_else(bad)?.to_vec());
                            }
                        }
                        _ => return Err(format!("unknown KRL certificate section {sub:#x}")),
                    }
                }
                krl.certs.push((ca, ranges, ids));
            }
            2 | 3 | 5 => {
                while !s.done() {
                    let v = s.string().ok_or_else(bad)?.to_vec();
                    match kind {
                        2 => krl.blobs.push(v),
                        3 => krl.sha1.push(v),
                        _ => krl.sha256.push(v),
                    }
                }
            }
            // Signatures end the revocation data.
            4 => break,
            _ => return Err(format!("unknown KRL section {kind}")),
        }
    }
    Ok(krl)
}

fn blob(key: &PublicKey) -> Vec<u8> {
    key.to_bytes().unwrap_or_default()
}

impl Krl {
    fn key_revoked(&self, key: &PublicKey) -> bool {
        let b = blob(key);
        self.blobs.contains(&b)
            || self
                .sha1
                .iter()
                .any(|h| *h == sha1::Sha1::digest(&b).to_vec())
            || self
                .sha256
                .iter()
                .any(|h| *h == sha2::Sha256::digest(&b).to_vec())
    }

    fn cert_revoked(&self, cert: &Certificate) -> bool {
        let ca = blob(&PublicKey::from(cert.signature_key().clone()));
        self.certs.iter().any(|(c, ranges, ids)| {
            (c.is_empty() || *c == ca)
                && (ranges
                    .iter()
                    .any(|(lo, hi)| (*lo..=*hi).contains(&cert.serial()))
                    || ids.iter().any(|id| id == cert.key_id().as_bytes()))
        })
    }
}

/// Whether the file revokes `key` (with `cert` when the server showed a certificate).
pub fn check(path: &Path, key: &PublicKey, cert: Option<&Certificate>) -> Option<Revocation> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => return Some(Revocation::Error(e.to_string())),
    };
    let ca = cert.map(|c| PublicKey::from(c.signature_key().clone()));
    if data.starts_with(MAGIC) {
        let krl = match parse_krl(&data) {
            Ok(k) => k,
            Err(e) => return Some(Revocation::Error(e)),
        };
        let hit = krl.key_revoked(key)
            || ca.as_ref().is_some_and(|c| krl.key_revoked(c))
            || cert.is_some_and(|c| krl.cert_revoked(c));
        return hit.then_some(Revocation::Revoked);
    }
    let Ok(text) = std::str::from_utf8(&data) else {
        return Some(Revocation::Error("invalid format".into()));
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Ok(listed) = PublicKey::from_openssh(line) else {
            return Some(Revocation::Error("invalid format".into()));
        };
        let same = |k: &PublicKey| k.key_data() == listed.key_data();
        if same(key) || ca.as_ref().is_some_and(same) {
            return Some(Revocation::Revoked);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB4bdo+KERt2qV2rEDnmk1LyJ5kqnSCsLkbbpBMa1K2a";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).expect("key")
    }

    fn string(v: &[u8]) -> Vec<u8> {
        let mut out = (v.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(v);
        out
    }

    #[test]
    fn plain_list_missing_file_and_garbage() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("revoked");
        std::fs::write(&p, format!("# old keys\n{ED} old\n")).expect("write");
        assert_eq!(check(&p, &key(ED), None), Some(Revocation::Revoked));
        assert_eq!(check(&p, &key(ED2), None), None);
        std::fs::write(&p, "not a key\n").expect("write");
        assert!(matches!(
            check(&p, &key(ED2), None),
            Some(Revocation::Error(_))
        ));
        let missing = dir.path().join("missing");
        assert!(matches!(
            check(&missing, &key(ED), None),
            Some(Revocation::Error(_))
        ));
    }

    #[test]
    fn krl_by_blob_and_fingerprint_and_truncated() {
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&1u32.to_be_bytes());
        data.extend_from_slice(&[0u8; 24]);
        data.extend(string(b""));
        data.extend(string(b"test"));
        let mut section = Vec::new();
        section.extend(string(&blob(&key(ED))));
        data.push(2);
        data.extend(string(&section));
        let sha = sha2::Sha256::digest(blob(&key(ED2))).to_vec();
        data.push(5);
        data.extend(string(&string(&sha)));
        let krl = parse_krl(&data).expect("krl");
        assert!(krl.key_revoked(&key(ED)));
        assert!(krl.key_revoked(&key(ED2)));
        for cut in 0..data.len() {
            // Any prefix is either a shorter valid KRL or an error, never a panic.
            let _ = parse_krl(&data[..cut]);
        }
    }
}
