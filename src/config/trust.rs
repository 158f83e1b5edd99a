//! Project files are untrusted until the user trusts them, as direnv (`direnv allow`) and mise
//! (`mise trust`) do it. An epoch.toml that came with a directory (`./epoch.toml`), or one
//! that another user owns or others may write to, is listed, but until `warren trust-config
//! PATH` records its path and the SHA-256 of its bytes, none of its entries may run a command
//! (a cloud bastion, `host = "ssm:..."` or `"iap:..."`, is one: it runs aws or gcloud),
//! read a file outside the file's own directory, or change how a host key is checked or
//! recorded: such an entry is refused when it is opened or diagnosed, naming each setting and
//! its line. A file whose bytes changed needs trusting again.
//!
//! The record is `<config dir>/warren/trusted-configs`, one `SHA256 PATH` line per file,
//! written through [`crate::fsutil::edit_locked`] (locked, re-read before the rename).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::context::Context;
use super::model::{Connection, HostKeyPolicy, RootCert};
use super::origin::Origin;

/// Why a file needs the user's trust before its entries act.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Untrusted {
    pub path: PathBuf,
    pub why: String,
}

/// Where warren keeps the files the user trusted.
pub fn store_path(ctx: &Context) -> PathBuf {
    let base = ctx
        .var("XDG_CONFIG_HOME")
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .unwrap_or_else(|| ctx.home.join(".config"));
    base.join("warren").join("trusted-configs")
}

/// The file's bytes' SHA-256, in hex.
pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The absolute path a record names (the file itself may be reached through `./`).
pub fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    })
}

/// Whether the user trusted these bytes at this path.
pub fn is_trusted(ctx: &Context, path: &Path, bytes: &[u8]) -> bool {
    let Ok(text) = std::fs::read_to_string(store_path(ctx)) else {
        return false;
    };
    let want = format!("{} {}", digest(bytes), absolute(path).display());
    text.lines().any(|l| l == want)
}

/// Records the file's bytes as trusted (replacing an earlier record of the same path); the
/// digest recorded.
pub fn trust(ctx: &Context, path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    trust_bytes(ctx, path, &bytes)
}

/// Records `bytes` as the trusted content of `path` (what warren itself just wrote there:
/// if the file holds anything else by the time it is read, it is not trusted).
pub fn trust_bytes(ctx: &Context, path: &Path, bytes: &[u8]) -> Result<String, String> {
    let abs = absolute(path);
    let hash = digest(bytes);
    let line = format!("{hash} {}", abs.display());
    let store = store_path(ctx);
    if let Some(dir) = store.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let suffix = format!(" {}", abs.display());
    edit(&store, |old| {
        let mut out: String = old
            .lines()
            .filter(|l| !l.ends_with(&suffix))
            .map(|l| format!("{l}\n"))
            .collect();
        out.push_str(&line);
        out.push('\n');
        out
    })?;
    Ok(hash)
}

/// Forgets a file; whether it was trusted.
pub fn revoke(ctx: &Context, path: &Path) -> Result<bool, String> {
    let store = store_path(ctx);
    if !store.exists() {
        return Ok(false);
    }
    let suffix = format!(" {}", absolute(path).display());
    let mut found = false;
    edit(&store, |old| {
        found = old.lines().any(|l| l.ends_with(&suffix));
        old.lines()
            .filter(|l| !l.ends_with(&suffix))
            .map(|l| format!("{l}\n"))
            .collect()
    })?;
    Ok(found)
}

/// The record rewritten by `apply` (old text to new), under the lock, mode 0600.
fn edit(store: &Path, mut apply: impl FnMut(&str) -> String) -> Result<(), String> {
    crate::fsutil::edit_locked::<std::convert::Infallible>(store, 0o600, None, |old| {
        let old = String::from_utf8_lossy(old.unwrap_or_default()).into_owned();
        Ok(apply(&old).into_bytes())
    })
    .map(|_| ())
    .map_err(|e| match e {
        crate::fsutil::EditError::Io(e) => {
            format!("cannot write {}: {e}; it is unchanged", store.display())
        }
        crate::fsutil::EditError::Edit(never) => match never {},
    })
}

/// Why the epoch.toml at `path` needs trust before it acts, if it does: it is the current
/// directory's (`local`), or another user owns it, or others may write to it.
pub fn needs_trust(ctx: &Context, path: &Path, local: bool) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.uid() != ctx.uid && meta.uid() != 0 {
        return Some(format!("it belongs to another user (uid {})", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "others may write to it (mode {:o}: chmod go-w {})",
            meta.mode() & 0o7777,
            path.display()
        ));
    }
    local.then(|| {
        "it is the current directory's epoch.toml, which came with the directory, not from you"
            .to_string()
    })
}

fn in_file(origin: &Origin, file: &Path) -> bool {
    match origin {
        Origin::File { path, .. } => absolute(path) == absolute(file),
        _ => false,
    }
}

fn outside(p: &Path, dir: &Path) -> bool {
    let p = absolute(p);
    !p.starts_with(dir)
}

/// What an entry of an untrusted file asks for that only a trusted file may: the file, why
/// it is not trusted, and each setting with its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub file: PathBuf,
    pub why: String,
    pub uses: Vec<(String, Origin)>,
}

impl Held {
    /// How to lift it.
    pub fn fix(&self) -> String {
        format!(
            "read {} and, if you trust it, run `warren trust-config {}`",
            self.file.display(),
            self.file.display()
        )
    }
}

/// What an entry of the untrusted file `u` may not do until it is trusted; `None` when it
/// asks for nothing of that kind.
pub fn refusals(conn: &Connection, u: &Untrusted) -> Option<Held> {
    let dir = absolute(&u.path)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let file = u.path.as_path();
    let mut uses = Vec::new();
    let mut no = |origin: &Origin, what: String| uses.push((what, origin.clone()));
    for h in &conn.hops {
        if let Some(p) = &h.proxy_command
            && in_file(&p.origin, file)
        {
            // A cloud bastion is a command too: it runs aws or gcloud.
            let what = match &h.preset {
                Some(c) => format!(
                    "{}: host = \"{}\" runs a command (`{}`)",
                    h.name,
                    c.value,
                    p.value.split(' ').take(3).collect::<Vec<_>>().join(" ")
                ),
                None => format!("{}: proxy_command runs a command", h.name),
            };
            no(&p.origin, what);
        }
        if let Some(c) = &h.certificate_command
            && in_file(&c.origin, file)
        {
            no(
                &c.origin,
                format!("{}: certificate_command runs a command", h.name),
            );
        }
        if let Some(k) = &h.known_hosts_command
            && in_file(&k.origin, file)
        {
            no(
                &k.origin,
                format!("{}: a known-hosts command runs a command", h.name),
            );
        }
        if in_file(&h.known_hosts_files.origin, file) {
            no(
                &h.known_hosts_files.origin,
                format!(
                    "{}: known_hosts_file changes where host keys are checked and written",
                    h.name
                ),
            );
        }
        if in_file(&h.global_known_hosts_files.origin, file) {
            no(
                &h.global_known_hosts_files.origin,
                format!(
                    "{}: the global known_hosts files change where host keys are checked",
                    h.name
                ),
            );
        }
        if let Some(a) = &h.host_key_alias
            && in_file(&a.origin, file)
        {
            no(
                &a.origin,
                format!(
                    "{}: host_key_alias changes the name a host key is recorded under",
                    h.name
                ),
            );
        }
        if in_file(&h.host_key_policy.origin, file)
            && !matches!(
                h.host_key_policy.value,
                HostKeyPolicy::Strict | HostKeyPolicy::Ask
            )
        {
            no(
                &h.host_key_policy.origin,
                format!(
                    "{}: strict_host_key_checking = {} weakens the host-key check",
                    h.name, h.host_key_policy.value
                ),
            );
        }
        if let Some(r) = &h.revoked_host_keys
            && in_file(&r.origin, file)
            && outside(&r.value, &dir)
        {
            no(
                &r.origin,
                format!(
                    "{}: revoked_host_keys reads {}, outside the file's directory",
                    h.name,
                    r.value.display()
                ),
            );
        }
        for f in h.identity_files.iter().chain(&h.certificate_files) {
            if in_file(&f.origin, file) && outside(&f.value, &dir) {
                no(
                    &f.origin,
                    format!(
                        "{}: key_file reads {}, outside the file's directory",
                        h.name,
                        f.value.display()
                    ),
                );
            }
        }
    }
    for fw in &conn.forwards {
        if let super::forward::Endpoint::Tcp { host: Some(h), .. } = &fw.value.listen
            && in_file(&fw.origin, file)
            && !matches!(h.as_str(), "" | "localhost")
            && !h
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
        {
            no(
                &fw.origin,
                format!("local_bind {h} lets other hosts use the tunnel"),
            );
        }
    }
    if let Some(db) = &conn.database {
        if let Some(p) = &db.password_file
            && in_file(&p.origin, file)
            && outside(&p.value, &dir)
        {
            no(
                &p.origin,
                format!(
                    "password_file reads {}, outside the file's directory, and sends it to the database",
                    p.value.display()
                ),
            );
        }
        if let RootCert::File(p) = &db.sslrootcert.value
            && in_file(&db.sslrootcert.origin, file)
            && outside(p, &dir)
        {
            no(
                &db.sslrootcert.origin,
                format!(
                    "sslrootcert reads {}, outside the file's directory",
                    p.display()
                ),
            );
        }
    }
    (!uses.is_empty()).then(|| Held {
        file: u.path.clone(),
        why: u.why.clone(),
        uses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_record_holds_for_these_bytes_at_this_path_only() {
        let dir = tempfile::tempdir().expect("dir");
        let ctx = Context::new(dir.path().join("home"), "me", HashMap::new());
        let f = dir.path().join("epoch.toml");
        std::fs::write(&f, "[storage.postgres.a]\nhost = \"h\"\n").expect("write");
        assert!(!is_trusted(&ctx, &f, &std::fs::read(&f).expect("read")));
        trust(&ctx, &f).expect("trust");
        assert!(is_trusted(&ctx, &f, &std::fs::read(&f).expect("read")));
        // One byte more: not the bytes trusted.
        std::fs::write(&f, "[storage.postgres.a]\nhost = \"h\"\n ").expect("write");
        assert!(!is_trusted(&ctx, &f, &std::fs::read(&f).expect("read")));
        // Trusting again replaces the record; revoking forgets it.
        trust(&ctx, &f).expect("trust");
        let text = std::fs::read_to_string(store_path(&ctx)).expect("store");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(revoke(&ctx, &f), Ok(true));
        assert!(!is_trusted(&ctx, &f, &std::fs::read(&f).expect("read")));
    }
}
