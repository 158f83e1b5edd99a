//! known_hosts files, read and written as OpenSSH 9.2 does (`hostfile.c`): hashed `|1|`
//! entries, `[host]:port`, wildcard and negated patterns, tab-separated fields, `@revoked`,
//! `@cert-authority`. All the files of a hop (its user files, then the global ones) form one
//! pool: a matching key anywhere is known, a revocation anywhere wins, and another key for the
//! host (of any type) is a change only when no line matches.
//!
//! Appends are what `ssh` does, made safe: `O_APPEND` under an exclusive `flock` (two warrens
//! never interleave), following a symlinked file, keeping its owner and mode, creating only
//! `~/.ssh` (0700) when missing. A file whose last line has no newline gets one first (ssh
//! would glue the new entry onto that line). Lines that are not UTF-8 or do not parse are
//! skipped, as ssh skips them.
//!
//! Written here rather than taken from russh: its helpers miss tabs, patterns and markers and
//! misreport line numbers (measured on 0.65).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use hmac::{KeyInit, Mac};
use russh::keys::ssh_key::{Algorithm, HashAlg, PublicKey};

use crate::config::ssh_config::pattern::{ListMatch, pattern_list};

/// The name a host key is recorded under: `host`, or `[host]:port` when the port is not 22
/// (misc.c `put_host_port`).
pub fn host_key_name(host: &str, port: u16) -> String {
    if port == 22 || port == 0 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `SHA256:...` as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// `ED25519`, `RSA`, `ECDSA`: the type name ssh's messages use.
pub fn type_name(key: &PublicKey) -> &'static str {
    match key.algorithm() {
        Algorithm::Ed25519 => "ED25519",
        Algorithm::Rsa { .. } => "RSA",
        Algorithm::Ecdsa { .. } => "ECDSA",
        Algorithm::Dsa => "DSA",
        Algorithm::SkEd25519 => "ED25519-SK",
        Algorithm::SkEcdsaSha2NistP256 => "ECDSA-SK",
        _ => "UNKNOWN",
    }
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
    place: Place,
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

impl Place {
    /// A line of a KnownHostsCommand's output (its "file" is `KnownHostsCommand-...`).
    pub fn is_command(&self) -> bool {
        self.path
            .to_string_lossy()
            .starts_with("KnownHostsCommand-")
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// What the files say about a server's key under one name (hostfile.c
/// `check_hostkeys_by_key_or_type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Listed for this name at this line (a plain key, or the CA of a certificate).
    Known(Place),
    /// Nothing is listed for this name.
    New,
    /// Other keys are listed for this name, none of them this one: possibly an attack.
    /// The place is the last such line, as ssh reports it.
    Changed(Place),
    /// The key (or its CA) is marked `@revoked`.
    Revoked(Place),
}

/// The lines of the known_hosts files warren could read.
#[derive(Clone, Debug, Default)]
pub struct KnownHosts {
    lines: Vec<Line>,
    /// Lines that could not be used: `(place, why)`. They are skipped, as OpenSSH does.
    pub skipped: Vec<(Place, String)>,
}

impl KnownHosts {
    /// Reads the files that exist, in order; a missing or unreadable file is skipped (as ssh).
    pub fn read(paths: &[PathBuf]) -> Self {
        let mut kh = KnownHosts::default();
        for p in paths {
            if let Ok(bytes) = std::fs::read(p) {
                kh.add_bytes(p, &bytes);
            }
        }
        kh
    }

    /// Adds the lines of one file; a line that is not UTF-8 is skipped, not fatal.
    pub fn add_bytes(&mut self, path: &Path, bytes: &[u8]) {
        for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            let place = Place {
                path: path.to_path_buf(),
                line: i + 1,
            };
            match std::str::from_utf8(raw) {
                Ok(text) => self.add_line(place, text),
                Err(_) => self.skipped.push((place, "not UTF-8".into())),
            }
        }
    }

    pub fn add_text(&mut self, path: &Path, text: &str) {
        self.add_bytes(path, text.as_bytes());
    }

    /// Adds only the lines whose host field matches `name`, as ssh loads a
    /// KnownHostsCommand's output (hostfile.c `load_hostkeys_file` with a host).
    pub fn add_for_name(&mut self, path: &Path, bytes: &[u8], name: &str) {
        let mut all = KnownHosts::default();
        all.add_bytes(path, bytes);
        self.lines.extend(
            all.lines
                .into_iter()
                .filter(|l| host_matches(name, &l.patterns)),
        );
        self.skipped.extend(all.skipped);
    }

    /// Adds every line of `other` after these.
    pub fn extend(&mut self, other: &KnownHosts) {
        self.lines.extend(other.lines.iter().cloned());
        self.skipped.extend(other.skipped.iter().cloned());
    }

    /// How many key lines it holds.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn add_line(&mut self, place: Place, raw: &str) {
        let line = raw.trim_matches([' ', '\t', '\r']);
        if line.is_empty() || line.starts_with('#') {
            return;
        }
        let mut fields = line.split([' ', '\t']).filter(|f| !f.is_empty());
        let mut first = fields.next().unwrap_or_default();
        let marker = match first {
            "@revoked" => Marker::Revoked,
            "@cert-authority" => Marker::CertAuthority,
            m if m.starts_with('@') => {
                self.skipped.push((place, format!("unknown marker {m}")));
                return;
            }
            _ => Marker::None,
        };
        if marker != Marker::None {
            first = fields.next().unwrap_or_default();
        }
        let (Some(kind), Some(data)) = (fields.next(), fields.next()) else {
            self.skipped
                .push((place, "expected: hosts keytype key".into()));
            return;
        };
        match PublicKey::from_openssh(&format!("{kind} {data}")) {
            Ok(key) => self.lines.push(Line {
                place,
                marker,
                patterns: first.to_string(),
                key,
            }),
            Err(e) => self.skipped.push((place, format!("bad key: {e}"))),
        }
    }

    fn for_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Line> + 'a {
        self.lines
            .iter()
            .filter(move |l| host_matches(name, &l.patterns))
    }

    /// The verdict for a plain key presented under `name`.
    pub fn check(&self, name: &str, key: &PublicKey) -> Verdict {
        self.verdict(name, key, Marker::None)
    }

    /// The verdict for a host certificate under `name`, by its signing CA: `Known` when a
    /// `@cert-authority` line for the name lists it.
    pub fn check_ca(&self, name: &str, ca: &PublicKey) -> Verdict {
        self.verdict(name, ca, Marker::CertAuthority)
    }

    fn verdict(&self, name: &str, key: &PublicKey, kind: Marker) -> Verdict {
        let same = |a: &PublicKey| a.key_data() == key.key_data();
        let mut found = None;
        let mut changed = None;
        for l in self.for_name(name).filter(|l| l.marker == kind) {
            if same(&l.key) {
                found = Some(l.place.clone());
                break;
            }
            changed = Some(l.place.clone());
        }
        if let Some(l) = self
            .for_name(name)
            .find(|l| l.marker == Marker::Revoked && same(&l.key))
        {
            return Verdict::Revoked(l.place.clone());
        }
        match (found, changed) {
            (Some(p), _) => Verdict::Known(p),
            (None, Some(p)) => Verdict::Changed(p),
            (None, None) => Verdict::New,
        }
    }

    /// Whether `key` itself is marked `@revoked` for `name` (a certificate's plain key or CA).
    pub fn revoked(&self, name: &str, key: &PublicKey) -> Option<Place> {
        self.for_name(name)
            .find(|l| l.marker == Marker::Revoked && l.key.key_data() == key.key_data())
            .map(|l| l.place.clone())
    }

    /// The key algorithms of plain keys listed for `name`, and whether a `@cert-authority`
    /// line matches it: what ssh orders HostKeyAlgorithms by.
    pub fn known_types(&self, name: &str) -> (Vec<Algorithm>, bool) {
        let mut types = Vec::new();
        let mut ca = false;
        for l in self.for_name(name) {
            match l.marker {
                Marker::None => {
                    let a = l.key.algorithm();
                    if !types.contains(&a) {
                        types.push(a);
                    }
                }
                Marker::CertAuthority => ca = true,
                Marker::Revoked => {}
            }
        }
        (types, ca)
    }

    /// Hashed lines an earlier warren wrote corrupted (see [`is_corrupted_hash`]), with
    /// their keys as `TYPE SHA256:...`.
    pub fn corrupted(&self) -> Vec<(Place, String)> {
        self.lines
            .iter()
            .filter(|l| l.marker == Marker::None && is_corrupted_hash(&l.patterns))
            .map(|l| {
                (
                    l.place.clone(),
                    format!("{} {}", type_name(&l.key), fingerprint(&l.key)),
                )
            })
            .collect()
    }

    /// The corrupted hashed lines that hold `key`: where a key the user once accepted is
    /// recorded under a name nobody can match.
    pub fn corrupted_with(&self, key: &PublicKey) -> Vec<Place> {
        self.lines
            .iter()
            .filter(|l| {
                l.marker == Marker::None
                    && l.key.key_data() == key.key_data()
                    && is_corrupted_hash(&l.patterns)
            })
            .map(|l| l.place.clone())
            .collect()
    }

    /// Where else this key is listed (other names), for the question to the user.
    pub fn other_names(&self, key: &PublicKey) -> Vec<(Place, String)> {
        self.lines
            .iter()
            .filter(|l| l.marker == Marker::None && l.key.key_data() == key.key_data())
            .map(|l| {
                let shown = if l.patterns.starts_with("|1|") {
                    "[hashed name]".to_string()
                } else {
                    l.patterns.clone()
                };
                (l.place.clone(), shown)
            })
            .collect()
    }
}

/// OpenSSH's host matching for known_hosts: a hashed `|1|salt|hash` entry, or a
/// comma-separated pattern list with `*`, `?` and `!`, case-insensitive.
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

/// `|1|salt|hash` for a name, with a fresh 20-byte salt from the OS (hostfile.c
/// `host_hash`).
pub fn hashed_name(name: &str) -> std::io::Result<String> {
    let mut salt = [0u8; 20];
    getrandom::fill(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&salt)
        .map_err(std::io::Error::other)?;
    mac.update(name.to_ascii_lowercase().as_bytes());
    let hash = mac.finalize().into_bytes();
    Ok(format!(
        "|1|{}|{}",
        Base64::encode_string(&salt),
        Base64::encode_string(&hash)
    ))
}

/// A known_hosts line: `HOSTS KEYTYPE BASE64`, no comment, as ssh writes it. Plain names
/// are lowercased (ssh lowercases the host before it records it); a hashed `|1|salt|hash`
/// name is kept byte for byte, since its base64 is case-sensitive.
pub fn entry(hosts: &str, key: &PublicKey) -> std::io::Result<String> {
    let openssh = key.to_openssh().map_err(std::io::Error::other)?;
    let mut parts = openssh.split_whitespace();
    let (kind, data) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let hosts = hosts
        .split(',')
        .map(|h| {
            if h.starts_with("|1|") {
                h.to_string()
            } else {
                h.to_ascii_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    Ok(format!("{hosts} {kind} {data}"))
}

/// Whether a host field is a hashed name that an earlier warren wrote lowercased:
/// `|1|salt|hash` whose salt and hash have the shape of 20 bytes each in base64 and hold no
/// capital letter. Such a name can never match (its HMAC key and digest were changed). A real salt
/// and hash hold 54 random base64 digits; the odds that none is a capital are below 1e-12.
pub fn is_corrupted_hash(patterns: &str) -> bool {
    let Some(rest) = patterns.strip_prefix("|1|") else {
        return false;
    };
    let Some((salt, hash)) = rest.split_once('|') else {
        return false;
    };
    // The shape of 20 bytes in base64 (lowercasing may leave the last digit non-canonical,
    // so it is not decoded).
    let twenty = |s: &str| {
        s.len() == 28
            && s.ends_with('=')
            && s[..27]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    twenty(salt) && twenty(hash) && !rest.bytes().any(|b| b.is_ascii_uppercase())
}

/// Opens `path` (created when missing) and holds an exclusive `flock` on it. When the file
/// was replaced while this waited for the lock (a repair renames a new file into place), the
/// new one is opened and locked instead, so no line goes into a file that is gone.
fn open_locked(path: &Path, create: bool) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    for _ in 0..100 {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(create)
            .mode(0o666)
            .open(path)?;
        // SAFETY: flock on a file descriptor we own; released when `f` is closed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let held = f.metadata()?;
        match std::fs::metadata(path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok(f),
            _ => continue,
        }
    }
    Err(std::io::Error::other(format!(
        "{} keeps being replaced while warren waits to write it",
        path.display()
    )))
}

/// authorized_keys option words that take no value: a host field that is one of these
/// would be read by sshd as options if the line ever reached an authorized_keys file.
const OPTION_WORDS: &[&str] = &[
    "agent-forwarding",
    "cert-authority",
    "no-agent-forwarding",
    "no-port-forwarding",
    "no-pty",
    "no-touch-required",
    "no-user-rc",
    "no-x11-forwarding",
    "port-forwarding",
    "pty",
    "restrict",
    "user-rc",
    "verify-required",
    "x11-forwarding",
];

/// Whether `name` is one concrete host name that a known_hosts line may be written under:
/// `host` or `[host]:port`, where host is a DNS name or an address (letters, digits, `.`,
/// `-`, `_`, `:` and `%`), not starting with `-`, and not an authorized_keys option word. A
/// pattern (`*`, `?`, `!`), a list, a `@marker`, a `|` hash, spaces and quotes are refused:
/// such a name (from HostKeyAlias or a file someone else wrote) would match other hosts, or
/// turn the line into something else.
pub fn concrete_name(name: &str) -> Result<(), String> {
    let host = match name.strip_prefix('[') {
        Some(rest) => {
            let Some((host, port)) = rest.split_once("]:") else {
                return Err(format!(
                    "'{}' is not host or [host]:port",
                    crate::text::escape(name)
                ));
            };
            if port.parse::<u16>().is_err() {
                return Err(format!("'{}' has no valid port", crate::text::escape(name)));
            }
            host
        }
        None => name,
    };
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%');
    if host.is_empty() || host.starts_with('-') || !host.chars().all(ok_char) {
        return Err(format!(
            "'{}' is not a concrete host name (only letters, digits and . - _ : % are written, and no leading -)",
            crate::text::escape(name)
        ));
    }
    if OPTION_WORDS.contains(&host.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "'{host}' is an authorized_keys option word, not written as a host name"
        ));
    }
    Ok(())
}

/// Why `path` must not receive host keys, or None: a file named `authorized_keys*` (as
/// given, or where a symlink leads), or one whose lines read as authorized_keys (a key type
/// or options where a known_hosts line has its host names). sshd would read such a line as
/// a key allowed to log in as the user.
pub fn not_a_known_hosts_file(path: &Path) -> Option<String> {
    use std::io::Read;
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    for p in [path, real.as_path()] {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase());
        if name.is_some_and(|n| n.starts_with("authorized_keys")) {
            return Some(format!(
                "{} is an authorized_keys file, not a known_hosts file: sshd would let the holder of the host's key log in",
                p.display()
            ));
        }
    }
    let mut head = Vec::new();
    if let Ok(f) = std::fs::File::open(&real) {
        let _ = f.take(1 << 20).read_to_end(&mut head);
    }
    let text = String::from_utf8_lossy(&head);
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split([' ', '\t']).next().unwrap_or_default();
        let key_type = ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-"]
            .iter()
            .any(|t| first.starts_with(t));
        let options = !first.starts_with("|1|")
            && (first.contains(['=', '"'])
                || first
                    .split(',')
                    .any(|w| OPTION_WORDS.contains(&w.to_ascii_lowercase().as_str())));
        if key_type || options {
            return Some(format!(
                "{}:{} reads as an authorized_keys line ({}), not a known_hosts line: warren writes no host key into it",
                real.display(),
                i + 1,
                if key_type {
                    "a key type where the host names go"
                } else {
                    "key options where the host names go"
                }
            ));
        }
    }
    None
}

/// Appends `lines` to a known_hosts file (see the module docs). `ssh_dir` is the user's
/// `~/.ssh`: the only directory created when missing. Refused (nothing written) when the
/// file is not a known_hosts file ([`not_a_known_hosts_file`]) or a line's host field is not
/// a hashed name or a list of concrete names ([`concrete_name`]).
pub fn append(path: &Path, lines: &[String], ssh_dir: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::DirBuilderExt;
    for l in lines {
        let hosts = l.split(' ').next().unwrap_or_default();
        if !hosts.starts_with("|1|") {
            for name in hosts.split(',') {
                concrete_name(name)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            }
        }
    }
    if let Some(why) = not_a_known_hosts_file(path) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            why,
        ));
    }
    if let Some(dir) = path.parent()
        && dir == ssh_dir
        && !dir.exists()
    {
        std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    }
    let mut f = open_locked(path, true)?;
    let mut text = String::new();
    let len = f.metadata()?.len();
    if len > 0 {
        f.seek(SeekFrom::Start(len - 1))?;
        let mut last = [0u8; 1];
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            text.push('\n');
        }
    }
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    // Written and on disk, or not at all: a full disk can take part of the lines (or fail
    // only when the data is flushed), and what went in is cut off again, still under the
    // lock, so the file is as it was.
    if let Err(e) = f.write_all(text.as_bytes()).and_then(|()| f.sync_data()) {
        let _ = f.set_len(len);
        return Err(e);
    }
    Ok(())
}

/// Removes the corrupted hashed lines ([`KnownHosts::corrupted`]) from a known_hosts file and
/// returns their line numbers with their keys as `TYPE SHA256:...` (none: the file is not
/// touched). The file is locked as [`append`] locks it, the rest is kept byte for byte in a
/// new file with the old one's owner and mode, and that is renamed into place (a symlink is
/// followed) by [`crate::fsutil`]: a failure (a full disk) leaves the old file as it was.
pub fn repair(path: &Path) -> std::io::Result<Vec<(usize, String)>> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let real = std::fs::canonicalize(path)?;
    let mut f = open_locked(&real, false)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let mut kh = KnownHosts::default();
    kh.add_bytes(&real, &bytes);
    let removed: Vec<(usize, String)> = kh
        .corrupted()
        .into_iter()
        .map(|(place, key)| (place.line, key))
        .collect();
    if removed.is_empty() {
        return Ok(removed);
    }
    // Numbered as `add_bytes` numbers them.
    let kept: Vec<u8> = bytes
        .split_inclusive(|b| *b == b'\n')
        .enumerate()
        .filter(|(i, _)| !removed.iter().any(|(n, _)| *n == i + 1))
        .flat_map(|(_, line)| line.iter().copied())
        .collect();
    let meta = f.metadata()?;
    let tmp = crate::fsutil::prepare(&real, &kept, 0o600)?;
    // Not being root keeps our own owner: the file's owner in every case where we may
    // rename over it.
    let _ = std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()));
    let mode = std::fs::Permissions::from_mode(meta.mode() & 0o7777);
    if let Err(e) = std::fs::set_permissions(&tmp, mode) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    crate::fsutil::commit(&tmp, &real)?;
    drop(f);
    Ok(removed)
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

    fn at(line: usize) -> Place {
        Place {
            path: "/kh".into(),
            line,
        }
    }

    #[test]
    fn plain_port_and_tab_separated_entries() {
        let k = kh(&format!(
            "# comment\n\nother.example {ED2}\n[db.example]:2222\t{}\t{} comment\n",
            "ssh-ed25519",
            ED.split(' ').nth(1).unwrap_or_default()
        ));
        assert_eq!(
            k.check("[db.example]:2222", &key(ED)),
            Verdict::Known(at(4))
        );
        assert_eq!(k.check("db.example", &key(ED)), Verdict::New);
    }

    #[test]
    fn wildcards_and_negation() {
        let k = kh(&format!("*.prod,!bad.prod {ED}\n"));
        assert!(matches!(k.check("db.prod", &key(ED)), Verdict::Known(_)));
        assert_eq!(k.check("bad.prod", &key(ED)), Verdict::New);
    }

    #[test]
    fn any_match_wins_and_a_mismatch_is_a_change() {
        let k = kh(&format!("db {ED2}\n"));
        assert_eq!(k.check("db", &key(ED)), Verdict::Changed(at(1)));
        // The right key anywhere in the pool wins over a wrong one.
        let k = kh(&format!("db {ED2}\ndb {ED}\n"));
        assert_eq!(k.check("db", &key(ED)), Verdict::Known(at(2)));
        let k = kh(&format!("db {ED}\n@revoked * {ED}\n"));
        assert_eq!(k.check("db", &key(ED)), Verdict::Revoked(at(2)));
    }

    #[test]
    fn a_line_that_is_not_utf8_is_skipped() {
        let mut k = KnownHosts::default();
        let mut bytes = b"bad \xff\xfe\n".to_vec();
        bytes.extend_from_slice(format!("db {ED}\n").as_bytes());
        k.add_bytes(Path::new("/kh"), &bytes);
        assert_eq!(k.check("db", &key(ED)), Verdict::Known(at(2)));
        assert_eq!(k.skipped.len(), 1);
    }

    #[test]
    fn hashed_entries() {
        let name = hashed_name("db.example").expect("hash");
        let k = kh(&format!("{name} {ED}\n"));
        assert!(matches!(k.check("db.example", &key(ED)), Verdict::Known(_)));
        assert_eq!(k.check("other", &key(ED)), Verdict::New);
    }

    #[test]
    fn a_hashed_entry_is_written_as_hashed_and_matches() {
        // Capitals in the salt and hash are what the earlier bug destroyed.
        for _ in 0..20 {
            let line = entry(&hashed_name("DB.Example").expect("hash"), &key(ED)).expect("entry");
            let k = kh(&format!("{line}\n"));
            assert!(
                matches!(k.check("db.example", &key(ED)), Verdict::Known(_)),
                "{line}"
            );
            assert!(!is_corrupted_hash(
                line.split(' ').next().unwrap_or_default()
            ));
        }
        let plain = entry("DB.Example,[Other]:2222", &key(ED)).expect("entry");
        assert!(plain.starts_with("db.example,[other]:2222 ssh-ed25519 "));
    }

    #[test]
    fn a_corrupted_hashed_line_is_found_and_repaired() {
        let good = entry(&hashed_name("db").expect("hash"), &key(ED2)).expect("entry");
        let broken = {
            let h = hashed_name("db").expect("hash").to_ascii_lowercase();
            entry(&h, &key(ED)).expect("entry")
        };
        let k = kh(&format!("{good}\n{broken}\n"));
        assert_eq!(k.check("db", &key(ED)), Verdict::Changed(at(1)));
        assert_eq!(k.corrupted_with(&key(ED)), vec![at(2)]);
        assert_eq!(k.corrupted().len(), 1);

        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("known_hosts");
        let text = format!("# mine\n{broken}\n{good}\n{broken}\nlast {ED2}");
        std::fs::write(&p, &text).expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let removed: Vec<usize> = repair(&p)
            .expect("repair")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(removed, vec![2, 4]);
        let after = std::fs::read_to_string(&p).expect("read");
        assert_eq!(after, format!("# mine\n{good}\nlast {ED2}"));
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // Nothing to repair: the file is not rewritten.
        assert!(repair(&p).expect("repair").is_empty());
    }

    #[test]
    fn host_keys_go_only_into_known_hosts_files_under_concrete_names() {
        for ok in [
            "db.example",
            "[db.example]:2222",
            "10.0.0.1",
            "[::1]:22",
            "fe80::1%eth0",
            "db_1",
        ] {
            assert!(concrete_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "*",
            "*.example",
            "db?",
            "!db",
            "@revoked",
            "|1|x",
            "a b",
            "restrict",
            "PTY",
            "-oProxyCommand",
            "db\"x",
            "[db]:port",
            "",
            "a=b",
        ] {
            assert!(concrete_name(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().expect("dir");
        let ssh = dir.path().join(".ssh");
        std::fs::create_dir(&ssh).expect("mkdir");
        let line = |h: &str| format!("{h} {ED}");
        // By name, directly or through a symlink.
        let ak = ssh.join("authorized_keys");
        std::fs::write(&ak, "").expect("write");
        assert!(append(&ak, &[line("db")], &ssh).is_err());
        let link = ssh.join("my_hosts");
        std::os::unix::fs::symlink(&ak, &link).expect("symlink");
        assert!(append(&link, &[line("db")], &ssh).is_err());
        assert_eq!(std::fs::read_to_string(&ak).expect("read"), "");
        // By content.
        for content in [
            format!("{ED} me@laptop\n"),
            format!("restrict,command=\"x\" {ED}\n"),
            format!("from=\"10.*\" {ED}\n"),
        ] {
            let f = ssh.join("keys");
            std::fs::write(&f, &content).expect("write");
            assert!(append(&f, &[line("db")], &ssh).is_err(), "{content}");
            assert_eq!(std::fs::read_to_string(&f).expect("read"), content);
        }
        // Names.
        let kh = ssh.join("known_hosts");
        assert!(append(&kh, &[line("*")], &ssh).is_err());
        assert!(append(&kh, &[line("restrict")], &ssh).is_err());
        assert!(!kh.exists());
        let hashed = entry(&hashed_name("db").expect("hash"), &key(ED)).expect("entry");
        append(&kh, &[line("db,10.0.0.1"), hashed], &ssh).expect("a known_hosts file");
        assert!(
            append(&kh, &[line("db2")], &ssh).is_ok(),
            "its own lines do not look like authorized_keys"
        );
    }

    #[test]
    fn cert_authority() {
        let k = kh(&format!("@cert-authority *.example {ED2}\n"));
        assert!(matches!(
            k.check_ca("db.example", &key(ED2)),
            Verdict::Known(_)
        ));
        assert_eq!(k.check("db.example", &key(ED)), Verdict::New);
    }

    #[test]
    fn append_keeps_every_line_and_mends_a_missing_newline() {
        let dir = tempfile::tempdir().expect("dir");
        let ssh = dir.path().join(".ssh");
        let p = ssh.join("known_hosts");
        let line = entry("[a]:2", &key(ED)).expect("entry");
        append(&p, std::slice::from_ref(&line), &ssh).expect("append");
        std::fs::write(&p, format!("# mine\n{line}\nb {ED2}")).expect("write");
        append(&p, &[entry("C", &key(ED)).expect("entry")], &ssh).expect("append");
        let text = std::fs::read_to_string(&p).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "# mine");
        assert_eq!(lines[2], format!("b {ED2}"));
        assert!(lines[3].starts_with("c ssh-ed25519 "));
        // Only ~/.ssh is ever created.
        let other = dir.path().join("elsewhere/known_hosts");
        assert!(append(&other, &[line], &ssh).is_err());
    }
}
