//! Authentication in OpenSSH's order: agent identities, certificates with their key, key
//! files (OpenSSH, PEM RSA, PKCS#8; RSA signed with rsa-sha2-256/512 when the server allows).
//! A failure says which methods the server offered and what was tried.

use std::path::Path;
use std::sync::Arc;

use russh::client::{AuthResult, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::ssh_key::{Certificate, PrivateKey, PublicKey};
use russh::keys::{PrivateKeyWithHashAlg, load_secret_key};
use russh::{MethodKind, MethodSet};

use super::client::Client;
use crate::config::model::Hop;
use crate::prompt::{Answer, Prompt, Prompter};

fn methods(set: &MethodSet) -> String {
    let names: Vec<&str> = set
        .iter()
        .map(|m| match m {
            MethodKind::None => "none",
            MethodKind::Password => "password",
            MethodKind::PublicKey => "publickey",
            MethodKind::HostBased => "hostbased",
            MethodKind::KeyboardInteractive => "keyboard-interactive",
            MethodKind::GssapiWithMic => "gssapi-with-mic",
        })
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    }
}

/// The public half of a key file: `FILE.pub`, or derived from the private key.
fn public_of(path: &Path) -> Option<PublicKey> {
    let pubfile = format!("{}.pub", path.display());
    russh::keys::load_public_key(&pubfile).ok()
}

/// Authenticates `handle` as the hop's user. `Err` carries the report for the user.
pub async fn authenticate(
    handle: &mut Handle<Client>,
    hop: &Hop,
    prompter: &Prompter,
    connection: &str,
) -> AuthReport {
    let user = hop.user.value.clone();
    let mut tried: Vec<String> = Vec::new();
    let offered = match handle.authenticate_none(&user).await {
        Ok(AuthResult::Success) => {
            return AuthReport::success(
                &MethodSet::empty(),
                tried,
                "none (the server asked for nothing)",
            );
        }
        Ok(AuthResult::Failure {
            remaining_methods, ..
        }) => remaining_methods,
        Err(e) => {
            return AuthReport::failure(
                &MethodSet::empty(),
                tried,
                format!("the server closed the connection: {e}"),
            );
        }
    };
    if handle.is_closed() {
        return AuthReport::failure(
            &offered,
            tried,
            "the server closed the connection before authentication".into(),
        );
    }
    let configured: Vec<PublicKey> = hop
        .identity_files
        .iter()
        .filter_map(|f| public_of(&f.value))
        .collect();

    // 1. Agent identities.
    if hop.use_agent.value && offered.contains(&MethodKind::PublicKey) {
        let socket = hop
            .identity_agent
            .as_ref()
            .map(|a| a.value.clone())
            .or_else(|| std::env::var("SSH_AUTH_SOCK").ok());
        match socket {
            None => tried.push("agent: no SSH_AUTH_SOCK".into()),
            Some(sock) => match AgentClient::connect_uds(&sock).await {
                Err(e) => tried.push(format!("agent at {sock}: {e}")),
                Ok(mut agent) => {
                    let ids = agent.request_identities().await.unwrap_or_default();
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
                        let hash = if key.algorithm().is_rsa() {
                            handle_rsa_hash(handle).await
                        } else {
                            None
                        };
                        match handle
                            .authenticate_publickey_with(&user, key, hash, &mut agent)
                            .await
                        {
                            Ok(r) if r.success() => {
                                return AuthReport::success(
                                    &offered,
                                    tried,
                                    &format!("agent key {comment}"),
                                );
                            }
                            Ok(_) => tried.push(format!("agent key {comment}: refused")),
                            Err(e) => tried.push(format!("agent key {comment}: {e}")),
                        }
                    }
                }
            },
        }
    }

    // 2 and 3: load each key file once; certificates first, then the plain keys.
    let passphrase = hop
        .key_passphrase
        .as_ref()
        .map(|p| p.value.expose().to_string());
    let mut keys: Vec<(String, Arc<PrivateKey>)> = Vec::new();
    for f in &hop.identity_files {
        let path = &f.value;
        if !path.exists() {
            if f.origin != crate::config::Origin::Default {
                tried.push(format!("{}: no such file", path.display()));
            }
            continue;
        }
        match load_secret_key(path, passphrase.as_deref()) {
            Ok(k) => keys.push((path.display().to_string(), Arc::new(k))),
            Err(russh::keys::Error::KeyIsEncrypted) => {
                let asked = prompter
                    .ask(
                        connection,
                        Prompt::Passphrase {
                            key_file: path.display().to_string(),
                        },
                    )
                    .await;
                match asked {
                    Some(Answer::Secret(p)) => match load_secret_key(path, Some(p.expose())) {
                        Ok(k) => keys.push((path.display().to_string(), Arc::new(k))),
                        Err(_) => tried.push(format!(
                            "{}: the passphrase given did not open it",
                            path.display()
                        )),
                    },
                    _ => tried.push(format!(
                        "{}: encrypted, and no key_passphrase is set",
                        path.display()
                    )),
                }
            }
            Err(e) => tried.push(format!(
                "{}: cannot load ({e}; wrong passphrase?)",
                path.display()
            )),
        }
    }
    if offered.contains(&MethodKind::PublicKey) {
        for c in &hop.certificate_files {
            let cert = match Certificate::read_file(&c.value) {
                Ok(cert) => cert,
                Err(e) => {
                    tried.push(format!(
                        "certificate {}: cannot read ({e})",
                        c.value.display()
                    ));
                    continue;
                }
            };
            let Some((name, key)) = keys
                .iter()
                .find(|(_, k)| k.public_key().key_data() == cert.public_key())
            else {
                tried.push(format!(
                    "certificate {}: no key file matches it",
                    c.value.display()
                ));
                continue;
            };
            match handle.authenticate_openssh_cert(&user, Arc::clone(key), cert).await {
                Ok(r) if r.success() => return AuthReport::success(&offered, tried, &format!("certificate {} with {name}", c.value.display())),
                Ok(_) => tried.push(format!("certificate {} with {name}: refused (expired, or principal '{user}' not in it?)", c.value.display())),
                Err(e) => tried.push(format!("certificate {}: {e}", c.value.display())),
            }
        }
        for (name, key) in &keys {
            let hash = if key.algorithm().is_rsa() {
                handle_rsa_hash(handle).await
            } else {
                None
            };
            match handle
                .authenticate_publickey(&user, PrivateKeyWithHashAlg::new(Arc::clone(key), hash))
                .await
            {
                Ok(r) if r.success() => return AuthReport::success(&offered, tried, name),
                Ok(_) => tried.push(format!("{name}: refused")),
                Err(e) => tried.push(format!("{name}: {e}")),
            }
        }
    }
    // keyboard-interactive and password only when someone is there to answer.
    if prompter.interactive()
        && offered.contains(&MethodKind::KeyboardInteractive)
        && keyboard_interactive(handle, &user, prompter, connection).await
    {
        return AuthReport::success(&offered, tried, "keyboard-interactive");
    }
    if prompter.interactive() && offered.contains(&MethodKind::Password) {
        let asked = prompter
            .ask(
                connection,
                Prompt::Password {
                    user: user.clone(),
                    host: hop.address(),
                },
            )
            .await;
        if let Some(Answer::Secret(p)) = asked {
            match handle.authenticate_password(&user, p.expose()).await {
                Ok(r) if r.success() => return AuthReport::success(&offered, tried, "password"),
                _ => tried.push("password: refused".into()),
            }
        }
    }
    if handle.is_closed() {
        let msg = format!(
            "the server closed the connection (offered: {}; tried: {})",
            methods(&offered),
            tried.join("; ")
        );
        return AuthReport::failure(&offered, tried, msg);
    }
    if tried.is_empty() {
        tried.push("no identity (no agent key, no key file)".into());
    }
    let msg = format!(
        "server offered {}; tried: {}",
        methods(&offered),
        tried.join("; ")
    );
    AuthReport::failure(&offered, tried, msg)
}

/// What authentication found: the methods the server offered, every identity tried with its
/// result, and the one that worked.
#[derive(Clone, Debug, Default)]
pub struct AuthReport {
    pub offered: String,
    pub tried: Vec<String>,
    /// The identity that was accepted.
    pub used: Option<String>,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

impl AuthReport {
    fn success(offered: &MethodSet, tried: Vec<String>, used: &str) -> Self {
        AuthReport {
            offered: methods(offered),
            tried,
            used: Some(used.to_string()),
            failure: None,
        }
    }

    fn failure(offered: &MethodSet, tried: Vec<String>, why: String) -> Self {
        AuthReport {
            offered: methods(offered),
            tried,
            used: None,
            failure: Some(why),
        }
    }
}

async fn keyboard_interactive(
    handle: &mut Handle<Client>,
    user: &str,
    prompter: &Prompter,
    connection: &str,
) -> bool {
    use russh::client::KeyboardInteractiveAuthResponse as R;
    let mut reply = handle
        .authenticate_keyboard_interactive_start(user, None::<String>)
        .await;
    // A server may ask several rounds; a bounded number is enough for any real one.
    for _ in 0..8 {
        match reply {
            Ok(R::Success) => return true,
            Ok(R::InfoRequest {
                name,
                instructions,
                prompts,
            }) => {
                let responses = if prompts.is_empty() {
                    Vec::new()
                } else {
                    let prompt = Prompt::KeyboardInteractive {
                        name,
                        instructions,
                        prompts: prompts.iter().map(|p| (p.prompt.clone(), p.echo)).collect(),
                    };
                    match prompter.ask(connection, prompt).await {
                        Some(Answer::Responses(r)) => {
                            r.iter().map(|s| s.expose().to_string()).collect()
                        }
                        _ => return false,
                    }
                };
                reply = handle
                    .authenticate_keyboard_interactive_respond(responses)
                    .await;
            }
            _ => return false,
        }
    }
    false
}

async fn handle_rsa_hash(handle: &Handle<Client>) -> Option<russh::keys::HashAlg> {
    match handle.best_supported_rsa_hash().await {
        Ok(Some(h)) => h,
        // No server-sig-algs: modern servers still take rsa-sha2-256.
        _ => Some(russh::keys::HashAlg::Sha256),
    }
}
