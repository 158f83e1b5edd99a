//! The `config` step: what can be checked without the network. Key files exist, are
//! readable and private, their format and whether they are encrypted with no passphrase; the
//! agent answers and how many keys it holds; the local port is free.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use russh::keys::agent::client::AgentClient;

use crate::config::Origin;
use crate::config::forward::{Endpoint, ForwardKind};
use crate::config::model::{Connection, Hop};

/// The outcome of the config checks for one hop.
pub struct ConfigFinding {
    pub fail: Vec<String>,
    pub warn: Vec<String>,
    pub info: Vec<String>,
    pub hints: Vec<String>,
}

/// The format of a private key file, from its first line.
pub fn key_format(text: &str) -> &'static str {
    let first = text.lines().next().unwrap_or_default();
    match first {
        "-----BEGIN OPENSSH PRIVATE KEY-----" => "OpenSSH",
        "-----BEGIN RSA PRIVATE KEY-----" => "PEM RSA",
        "-----BEGIN EC PRIVATE KEY-----" => "PEM EC",
        "-----BEGIN PRIVATE KEY-----" => "PKCS#8",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----" => "PKCS#8",
        f if f.starts_with("PuTTY-User-Key-File-") => "PuTTY",
        _ => "unknown",
    }
}

/// Whether a private key file is encrypted.
pub fn key_encrypted(text: &str) -> bool {
    match key_format(text) {
        "OpenSSH" => russh::keys::ssh_key::PrivateKey::from_openssh(text)
            .map(|k| k.is_encrypted())
            .unwrap_or(false),
        "PEM RSA" | "PEM EC" => text.contains("Proc-Type: 4,ENCRYPTED"),
        "PKCS#8" => text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "PuTTY" => text
            .lines()
            .any(|l| l.starts_with("Encryption:") && !l.ends_with("none")),
        _ => false,
    }
}

/// `open`: the connection's tunnel is open in this engine, so its local ports are its own.
pub async fn hop(conn: &Connection, hop: &Hop, first: bool, open: bool) -> ConfigFinding {
    let mut f = ConfigFinding {
        fail: Vec::new(),
        warn: Vec::new(),
        info: Vec::new(),
        hints: Vec::new(),
    };
    let mut usable_keys = 0;
    for id in &hop.identity_files {
        let path = &id.value;
        let explicit = id.origin != Origin::Default;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(_) if !explicit => continue,
            Err(e) => {
                f.fail.push(format!("key {}: {e}", path.display()));
                f.hints.push(format!("the key file named at {} does not exist: fix the path, or create a key with ssh-keygen -t ed25519 -f {}", id.origin, path.display()));
                continue;
            }
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                f.fail
                    .push(format!("key {}: cannot read it ({e})", path.display()));
                f.hints.push(format!(
                    "make the key readable by you: chmod 600 {}",
                    path.display()
                ));
                continue;
            }
        };
        let format = key_format(&text);
        let encrypted = key_encrypted(&text);
        let mode = meta.permissions().mode() & 0o777;
        let mut line = format!(
            "key {} ({format}{})",
            path.display(),
            if encrypted { ", encrypted" } else { "" }
        );
        if mode & 0o077 != 0 {
            f.warn.push(format!(
                "key {} is readable by others (mode {mode:04o})",
                path.display()
            ));
            f.hints.push(format!(
                "UNPROTECTED PRIVATE KEY FILE: OpenSSH refuses such keys; run chmod 600 {}",
                path.display()
            ));
        }
        if format == "unknown" {
            f.warn.push(format!(
                "{} is not a private key warren can read",
                path.display()
            ));
        } else if format == "PuTTY" {
            f.warn.push(format!("{} is a PuTTY key", path.display()));
            f.hints.push(format!(
                "convert it: puttygen {} -O private-openssh -o {}.openssh",
                path.display(),
                path.display()
            ));
        }
        if encrypted && hop.key_passphrase.is_none() {
            f.warn.push(format!(
                "key {} is encrypted and no key_passphrase is set",
                path.display()
            ));
            f.hints.push(format!("set key_passphrase (e.g. \"${{KEY_PASS}}\") or load the key into the agent: ssh-add {}", path.display()));
        } else {
            usable_keys += 1;
        }
        line.push_str(&format!(", mode {mode:04o}"));
        f.info.push(line);
    }
    for c in &hop.certificate_files {
        if !c.value.exists() {
            f.fail
                .push(format!("certificate {} does not exist", c.value.display()));
            f.hints
                .push(format!("fix cert_file / CertificateFile at {}", c.origin));
        }
    }
    if hop.use_agent.value {
        let sock = hop
            .identity_agent
            .as_ref()
            .map(|a| a.value.clone())
            .or_else(|| std::env::var("SSH_AUTH_SOCK").ok());
        match sock {
            None => f.info.push("no agent (SSH_AUTH_SOCK is not set)".into()),
            Some(sock) => match agent_keys(&sock).await {
                Ok(0) => {
                    f.info.push(format!("the agent at {sock} holds no keys"));
                    if usable_keys == 0 {
                        f.hints.push("the agent is empty: ssh-add your key".into());
                    }
                }
                Ok(n) => {
                    usable_keys += n;
                    f.info.push(format!("the agent at {sock} holds {n} key(s)"));
                }
                Err(e) => f
                    .warn
                    .push(format!("the agent at {sock} does not answer: {e}")),
            },
        }
    }
    if usable_keys == 0 && hop.certificate_files.is_empty() && f.fail.is_empty() {
        f.warn
            .push("no usable identity: no key file, nothing in the agent".into());
        f.hints
            .push("name a key (key_file / IdentityFile) or load one into ssh-agent".into());
    }
    if first {
        for fw in &conn.forwards {
            if fw.value.kind != ForwardKind::Local {
                continue;
            }
            if let Endpoint::Tcp { host, port } = &fw.value.listen
                && *port != 0
            {
                let bind = match host.as_deref() {
                    None | Some("") | Some("localhost") => "127.0.0.1",
                    Some("*") => "0.0.0.0",
                    Some(h) => h,
                };
                match std::net::TcpListener::bind((bind, *port)) {
                    Ok(_) => f.info.push(format!("local port {bind}:{port} is free")),
                    Err(_) if open => f.info.push(format!(
                        "local port {bind}:{port} is held by this open tunnel"
                    )),
                    Err(e) => {
                        // The tunnel cannot open, but the path behind it can still be walked.
                        let who = match crate::tunnel::owner::of_port(*port) {
                            Some(o) => format!("in use by {}", o.describe()),
                            None => format!(
                                "{e} (`{}` shows who holds it)",
                                crate::tunnel::owner::find_command(*port)
                            ),
                        };
                        f.warn
                            .push(format!("local port {bind}:{port} is not free: {who}"));
                        let free = crate::tunnel::owner::next_free(bind, *port)
                            .map(|p| format!(" ({p} is free; warren up --port-fallback takes the next free one)"))
                            .unwrap_or_default();
                        f.hints.push(format!(
                            "stop that program, or choose another local_port{free}"
                        ));
                    }
                }
            }
        }
    }
    f
}

async fn agent_keys(sock: &str) -> Result<usize, String> {
    let fut = async {
        let mut a = AgentClient::connect_uds(Path::new(sock))
            .await
            .map_err(|e| e.to_string())?;
        a.request_identities()
            .await
            .map(|v| v.len())
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(std::time::Duration::from_secs(3), fut)
        .await
        .map_err(|_| "timed out".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            key_format("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"),
            "PEM RSA"
        );
        assert!(key_encrypted(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
        ));
        assert_eq!(
            key_format("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: aes256-cbc\n"),
            "PuTTY"
        );
        assert!(key_encrypted(
            "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: aes256-cbc\n"
        ));
        assert!(!key_encrypted(
            "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n"
        ));
        assert!(key_encrypted("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert_eq!(key_format("hello"), "unknown");
    }
}
