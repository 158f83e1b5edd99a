//! The identities publickey authentication offers, in OpenSSH's order: agent keys, then
//! certificates with their key files, then key files. Key files are loaded when first
//! offered (an encrypted one asks for its passphrase then, at most NumberOfPasswordPrompts
//! times, never under BatchMode or with nobody to answer), and only algorithms that
//! PubkeyAcceptedAlgorithms allows are offered.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::load_secret_key;
use russh::keys::ssh_key::{Algorithm, Certificate, HashAlg, PrivateKey, PublicKey};

use crate::config::model::Hop;
use crate::prompt::{Answer, Prompt, Prompter};

/// One thing publickey authentication can offer.
pub enum Identity {
    Agent {
        key: PublicKey,
        comment: String,
    },
    Certificate {
        path: PathBuf,
        cert: Box<Certificate>,
        key_file: PathBuf,
    },
    File {
        path: PathBuf,
    },
}

impl Identity {
    pub fn label(&self) -> String {
        match self {
            Identity::Agent { comment, .. } => format!("agent key {comment}"),
            Identity::Certificate { path, key_file, .. } => {
                format!("certificate {} with {}", path.display(), key_file.display())
            }
            Identity::File { path } => path.display().to_string(),
        }
    }
}

/// The public half of a key file: `FILE.pub`.
pub fn public_of(path: &Path) -> Option<PublicKey> {
    russh::keys::load_public_key(format!("{}.pub", path.display())).ok()
}

/// The signature algorithm names a key may use, most preferred first.
fn algorithm_names(a: &Algorithm, cert: bool) -> Vec<String> {
    let base: Vec<String> = match a {
        Algorithm::Rsa { .. } => vec![
            "rsa-sha2-512".into(),
            "rsa-sha2-256".into(),
            "ssh-rsa".into(),
        ],
        other => vec![other.as_str().to_string()],
    };
    if cert {
        base.into_iter()
            .map(|n| format!("{n}-cert-v01@openssh.com"))
            .collect()
    } else {
        base
    }
}

/// Whether PubkeyAcceptedAlgorithms allows a key, and the RSA hash to sign with (from the
/// list and the server's `server-sig-algs`).
pub fn allowed(
    accepted: &[String],
    key: &Algorithm,
    cert: bool,
    server_rsa: Option<HashAlg>,
) -> Option<Option<HashAlg>> {
    let names = algorithm_names(key, cert);
    let ok: Vec<&String> = names.iter().filter(|n| accepted.contains(n)).collect();
    if ok.is_empty() {
        return None;
    }
    if !matches!(key, Algorithm::Rsa { .. }) {
        return Some(None);
    }
    let has = |prefix: &str| ok.iter().any(|n| n.starts_with(prefix));
    Some(match server_rsa {
        Some(HashAlg::Sha512) if has("rsa-sha2-512") => Some(HashAlg::Sha512),
        Some(_) if has("rsa-sha2-256") => Some(HashAlg::Sha256),
        _ if has("rsa-sha2-512") => Some(HashAlg::Sha512),
        _ if has("rsa-sha2-256") => Some(HashAlg::Sha256),
        _ => None,
    })
}

/// The identities of a hop, and what went wrong finding them (for the report).
pub async fn list(
    hop: &Hop,
    tried: &mut Vec<String>,
) -> (Vec<Identity>, Option<AgentClient<tokio::net::UnixStream>>) {
    let mut out = Vec::new();
    let configured: Vec<PublicKey> = hop
        .identity_files
        .iter()
        .filter_map(|f| public_of(&f.value))
        .collect();
    let mut agent = None;
    if hop.use_agent.value {
        let socket = hop
            .identity_agent
            .as_ref()
            .map(|a| a.value.clone())
            .or_else(|| std::env::var("SSH_AUTH_SOCK").ok());
        match socket {
            None => tried.push("agent: no SSH_AUTH_SOCK".into()),
            Some(sock) => match AgentClient::connect_uds(&sock).await {
                Err(e) => tried.push(format!("agent at {sock}: {e}")),
                Ok(mut a) => {
                    let ids = a.request_identities().await.unwrap_or_default();
                    if ids.is_empty() {
                        tried.push("agent: holds no keys".into());
                    }
                    for id in ids {
                        let AgentIdentity::PublicKey { key, comment } = id else {
                            continue;
                        };
                        if hop.identities_only.value
                            && !configured.iter().any(|c| c.key_data() == key.key_data())
                        {
                            continue;
                        }
                        out.push(Identity::Agent { key, comment });
                    }
                    agent = Some(a);
                }
            },
        }
    }
    for c in &hop.certificate_files {
        match Certificate::read_file(&c.value) {
            Ok(cert) => {
                let key_file = hop.identity_files.iter().find(|f| {
                    public_of(&f.value).is_some_and(|p| p.key_data() == cert.public_key())
                });
                match key_file {
                    Some(f) => out.push(Identity::Certificate {
                        path: c.value.clone(),
                        cert: Box::new(cert),
                        key_file: f.value.clone(),
                    }),
                    None => tried.push(format!(
                        "certificate {}: no key file (with its .pub) matches it",
                        c.value.display()
                    )),
                }
            }
            Err(e) => tried.push(format!(
                "certificate {}: cannot read ({e})",
                c.value.display()
            )),
        }
    }
    for f in &hop.identity_files {
        if !f.value.exists() {
            if f.origin != crate::config::Origin::Default {
                tried.push(format!("{}: no such file", f.value.display()));
            }
            continue;
        }
        out.push(Identity::File {
            path: f.value.clone(),
        });
    }
    (out, agent)
}

/// OpenSSH's `sshkey_perm_ok`: a private key file of the user's own that group or others may
/// read or write is not used ("This private key will be ignored"), in ssh's words.
pub fn too_open(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    (meta.uid() == uid && meta.mode() & 0o077 != 0).then(|| {
        format!(
            "UNPROTECTED PRIVATE KEY FILE: Permissions 0{:03o} for '{}' are too open. It is required that your private key files are NOT accessible by others. This private key will be ignored (chmod 600 {})",
            meta.mode() & 0o777,
            path.display(),
            path.display()
        )
    })
}

/// Loads a private key, asking for its passphrase when it is encrypted and none is set.
/// `Err` says why it cannot be used.
pub async fn load(
    path: &Path,
    hop: &Hop,
    prompter: &Prompter,
    connection: &str,
) -> Result<Arc<PrivateKey>, String> {
    if let Some(why) = too_open(path) {
        return Err(why);
    }
    let configured = hop.key_passphrase.as_ref().map(|p| p.value.copied());
    match load_secret_key(path, configured.as_ref().map(|p| p.as_str())) {
        Ok(k) => return Ok(Arc::new(k)),
        Err(russh::keys::Error::KeyIsEncrypted) => {}
        Err(e) if configured.is_some() => {
            return Err(format!("cannot load ({e}; wrong key_passphrase?)"));
        }
        Err(e) => return Err(format!("cannot load ({e})")),
    }
    if hop.batch_mode.value || !prompter.can_ask(connection) {
        return Err("encrypted, and no key_passphrase is set (nobody to ask)".into());
    }
    for _ in 0..hop.auth.password_prompts.value.max(1) {
        let asked = prompter
            .ask(
                connection,
                Prompt::Passphrase {
                    key_file: path.display().to_string(),
                },
            )
            .await;
        match asked {
            Some(Answer::Secret(p)) if !p.expose().is_empty() => {
                if let Ok(k) = load_secret_key(path, Some(p.expose())) {
                    return Ok(Arc::new(k));
                }
            }
            // An empty answer (or none) moves on to the next key, as ssh does.
            _ => return Err("encrypted; no passphrase given".into()),
        }
    }
    Err("the passphrases given did not open it".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pubkey_accepted_algorithms_choose_keys_and_rsa_hashes() {
        let rsa = Algorithm::Rsa { hash: None };
        let only256 = names(&["rsa-sha2-256", "ssh-ed25519"]);
        assert_eq!(
            allowed(&only256, &rsa, false, Some(HashAlg::Sha512)),
            Some(Some(HashAlg::Sha256))
        );
        assert_eq!(allowed(&names(&["ssh-ed25519"]), &rsa, false, None), None);
        assert_eq!(
            allowed(&only256, &Algorithm::Ed25519, false, None),
            Some(None)
        );
        assert_eq!(allowed(&only256, &Algorithm::Ed25519, true, None), None);
    }
}
