//! known_hosts: reading (hashed `|1|` entries, `[host]:port`, wildcard and negated patterns,
//! tab-separated fields, `@revoked`, `@cert-authority`), the verdict for a server's key, and
//! the atomic append of accept-new.
//!
//! Written here rather than taken from russh: its helpers miss tabs, patterns and markers and
//! misreport line numbers (measured on 0.65).

use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use hmac::{KeyInit, Mac};
use russh::keys::ssh_key::{HashAlg, PublicKey};

use crate::config::ssh_config::pattern::{ListMatch, pattern_list};

/// The name a host key is recorded under: `host`, or `[host]:port` when the port is not 22.
pub fn host_key_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `SHA256:...` as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

/// One key line of a known_hosts file.
#[derive(Clone, Debug)]
struct Line {
    path: PathBuf,
    number: usize,
    marker: Marker,
    patterns: String,
    key: PublicKey,
}

/// Where a line is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub path: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// What the known_hosts files say about a server's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Listed for this host at this line.
    Known(Place),
    /// Signed by a `@cert-authority` listed for this host.
    KnownByCa(Place),
    /// No key of this type is listed for this host (`other` names a line with a key of another
    /// type for it, if any).
    Unknown { other: Option<Place> },
    /// Another key of the same type is listed for this host: possibly an attack.
    Changed(Place),
    /// The key is marked `@revoked`.
    Revoked(Place),
}

/// The lines of known_hosts files that warren could read.
#[derive(Clone, Debug, Default)]
pub struct KnownHosts {
    lines: Vec<Line>,
    /// Lines that could not be parsed: `(place, why)`. They are skipped, as OpenSSH does.
    pub skipped: Vec<(Place, String)>,
}

impl KnownHosts {
    /// Reads the files that exist; a missing file is an empty one.
    pub fn read(paths: &[PathBuf]) -> std::io::Result<Self> {
        let mut kh = KnownHosts::default();
        for p in paths {
            match std::fs::read_to_string(p) {
                Ok(text) => kh.add_text(p, &text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(kh)
    }

    pub fn add_text(&mut self, path: &Path, text: &str) {
        for (i, raw) in text.lines().enumerate() {
            let place = || Place {
                path: path.to_path_buf(),
                line: i + 1,
            };
            let line = raw.trim_matches([' ', '\t', '\r']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split([' ', '\t']).filter(|f| !f.is_empty());
            let mut first = fields.next().unwrap_or_default();
            let marker = match first {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                m if m.starts_with('@') => {
                    self.skipped.push((place(), format!("unknown marker {m}")));
                    continue;
                }
                _ => Marker::None,
            };
            if marker != Marker::None {
                first = fields.next().unwrap_or_default();
            }
            let (Some(kind), Some(data)) = (fields.next(), fields.next()) else {
                self.skipped
                    .push((place(), "expected: hosts keytype key".into()));
                continue;
            };
            match PublicKey::from_openssh(&format!("{kind} {data}")) {
                Ok(key) => self.lines.push(Line {
                    path: path.to_path_buf(),
                    number: i + 1,
                    marker,
                    patterns: first.to_string(),
                    key,
                }),
                Err(e) => self.skipped.push((place(), format!("bad key: {e}"))),
            }
        }
    }

    /// The verdict for `key` presented by `name` (see [`host_key_name`]). `ca` is the
    /// certificate's signing key when the server presented a host certificate.
    pub fn check(&self, name: &str, key: &PublicKey, ca: Option<&PublicKey>) -> Verdict {
        let lines: Vec<&Line> = self
            .lines
            .iter()
            .filter(|l| host_matches(name, &l.patterns))
            .collect();
        let place = |l: &Line| Place {
            path: l.path.clone(),
            line: l.number,
        };
        let same = |a: &PublicKey, b: &PublicKey| a.key_data() == b.key_data();
        if let Some(l) = lines.iter().find(|l| {
            l.marker == Marker::Revoked
                && (same(&l.key, key) || ca.is_some_and(|c| same(&l.key, c)))
        }) {
            return Verdict::Revoked(place(l));
        }
        if let Some(ca) = ca
            && let Some(l) = lines
                .iter()
                .find(|l| l.marker == Marker::CertAuthority && same(&l.key, ca))
        {
            return Verdict::KnownByCa(place(l));
        }
        let plain: Vec<&&Line> = lines.iter().filter(|l| l.marker == Marker::None).collect();
        if let Some(l) = plain.iter().find(|l| same(&l.key, key)) {
            return Verdict::Known(place(l));
        }
        if let Some(l) = plain.iter().find(|l| l.key.algorithm() == key.algorithm()) {
            return Verdict::Changed(place(l));
        }
        Verdict::Unknown {
            other: plain.first().map(|l| place(l)),
        }
    }
}

/// OpenSSH's host matching for known_hosts: a hashed `|1|salt|hash` entry, or a
/// comma-separated pattern list with `*`, `?` and `!`.
fn host_matches(name: &str, patterns: &str) -> bool {
    if let Some(rest) = patterns.strip_prefix("|1|") {
        return hashed_matches(name, rest);
    }
    pattern_list(&name.to_ascii_lowercase(), patterns, true) == ListMatch::Positive
}

fn hashed_matches(name: &str, rest: &str) -> bool {
    let Some((salt, hash)) = rest.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (Base64::decode_vec(salt), Base64::decode_vec(hash)) else {
        return false;
    };
    let Ok(mut mac) = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.to_ascii_lowercase().as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// Appends `name key` to a known_hosts file atomically: the file is rewritten to a temp file
/// in the same directory (fsynced), then renamed over the original, so every existing line
/// is kept and a crash leaves the old file or the new one, never half of one.
pub fn append(path: &Path, name: &str, key: &PublicKey) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        set_mode(dir, 0o700)?;
    }
    let mut text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let openssh = key.to_openssh().map_err(std::io::Error::other)?;
    let mut parts = openssh.split_whitespace();
    let (kind, data) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    text.push_str(&format!("{name} {kind} {data}\n"));
    let mode = std::fs::metadata(path)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap_or(0o644);
    crate::fsutil::write_atomic(path, text.as_bytes(), mode)
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
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

    fn kh(text: &str) -> KnownHosts {
        let mut k = KnownHosts::default();
        k.add_text(Path::new("/kh"), text);
        k
    }

    #[test]
    fn plain_port_and_tab_separated_entries() {
        let k = kh(&format!(
            "# comment\n\nother.example {ED2}\n[db.example]:2222\t{}\t{} comment\n",
            "ssh-ed25519",
            ED.split(' ').nth(1).unwrap_or_default()
        ));
        assert_eq!(
            k.check("[db.example]:2222", &key(ED), None),
            Verdict::Known(Place {
                path: "/kh".into(),
                line: 4
            })
        );
        assert!(matches!(
            k.check("db.example", &key(ED), None),
            Verdict::Unknown { .. }
        ));
    }

    #[test]
    fn wildcards_and_negation() {
        let k = kh(&format!("*.prod,!bad.prod {ED}\n"));
        assert!(matches!(
            k.check("db.prod", &key(ED), None),
            Verdict::Known(_)
        ));
        assert!(matches!(
            k.check("bad.prod", &key(ED), None),
            Verdict::Unknown { .. }
        ));
    }

    #[test]
    fn changed_and_revoked() {
        let k = kh(&format!("db {ED2}\n"));
        assert_eq!(
            k.check("db", &key(ED), None),
            Verdict::Changed(Place {
                path: "/kh".into(),
                line: 1
            })
        );
        let k = kh(&format!("db {ED}\n@revoked * {ED}\n"));
        assert!(matches!(k.check("db", &key(ED), None), Verdict::Revoked(_)));
    }

    #[test]
    fn hashed_entries() {
        // |1|salt|HMAC-SHA1(salt, "db.example"), as `ssh-keygen -H` writes it.
        let salt = [7u8; 20];
        let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&salt).expect("mac");
        mac.update(b"db.example");
        let hash = mac.finalize().into_bytes();
        let line = format!(
            "|1|{}|{} {ED}\n",
            Base64::encode_string(&salt),
            Base64::encode_string(&hash)
        );
        let k = kh(&line);
        assert!(matches!(
            k.check("db.example", &key(ED), None),
            Verdict::Known(_)
        ));
        assert!(matches!(
            k.check("other", &key(ED), None),
            Verdict::Unknown { .. }
        ));
    }

    #[test]
    fn cert_authority() {
        let k = kh(&format!("@cert-authority *.example {ED2}\n"));
        assert!(matches!(
            k.check("db.example", &key(ED), Some(&key(ED2))),
            Verdict::KnownByCa(_)
        ));
        assert!(matches!(
            k.check("db.example", &key(ED), None),
            Verdict::Unknown { .. }
        ));
    }

    #[test]
    fn append_keeps_every_line() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("sub/known_hosts");
        append(&p, "[a]:2", &key(ED)).expect("append");
        std::fs::write(
            &p,
            format!(
                "# mine\n{}\nb {ED2}",
                std::fs::read_to_string(&p).expect("read").trim_end()
            ),
        )
        .expect("write");
        append(&p, "c", &key(ED)).expect("append");
        let text = std::fs::read_to_string(&p).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "# mine");
        assert!(lines[3].starts_with("c ssh-ed25519 "));
    }
}
