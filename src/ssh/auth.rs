//! Authentication as OpenSSH's client does it (sshconnect2.c): after `none`, the next
//! method is the first of PreferredAuthentications that the server allows and that is still
//! enabled; a method with nothing left to try (every key offered, NumberOfPasswordPrompts
//! used) is disabled for the session. Partial success (AuthenticationMethods
//! `publickey,keyboard-interactive`) is followed through: the server's new list starts the
//! choice over from the top, and keys may be offered again.
//!
//! keyboard-interactive and password need a person: with nobody to answer (headless,
//! BatchMode) they are not tried, and a failure says so. A server controls how long this
//! goes on only within bounds: at most [`MAX_ATTEMPTS`] method attempts and
//! [`MAX_ROUNDS`] keyboard-interactive rounds each.

use std::collections::HashSet;

use russh::client::{AuthResult, Handle, KeyboardInteractiveAuthResponse as Kbd};
use russh::keys::PrivateKeyWithHashAlg;
use russh::{MethodKind, MethodSet};

use super::algorithms::Offer;
use super::handler::Client;
use super::identity::{self, Identity};
use crate::config::model::Hop;
use crate::prompt::{Answer, Prompt, Prompter};

/// The most authentication requests one connection makes.
pub const MAX_ATTEMPTS: usize = 64;
/// The most keyboard-interactive rounds in one request.
pub const MAX_ROUNDS: usize = 16;

fn method_name(m: &MethodKind) -> &'static str {
    match m {
        MethodKind::None => "none",
        MethodKind::Password => "password",
        MethodKind::PublicKey => "publickey",
        MethodKind::HostBased => "hostbased",
        MethodKind::KeyboardInteractive => "keyboard-interactive",
        MethodKind::GssapiWithMic => "gssapi-with-mic",
    }
}

fn methods(set: &MethodSet) -> String {
    let names: Vec<&str> = set.iter().map(method_name).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    }
}

/// What authentication found: the methods the server offered, every identity tried with its
/// result, the methods that succeeded partially, and the one that completed it.
#[derive(Clone, Debug, Default)]
pub struct AuthReport {
    pub offered: String,
    pub tried: Vec<String>,
    /// Methods the server accepted as one step of several (AuthenticationMethods).
    pub partial: Vec<String>,
    /// What completed authentication.
    pub used: Option<String>,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// It failed where only a person's answer can get further: the server still wanted
    /// keyboard-interactive or a password, and the question went unanswered, its answers
    /// were refused, or nobody was there to ask. Says which, in a few words. Whoever
    /// reconnects by itself waits for the person rather than asking (and failing) again.
    pub needs_person: Option<String>,
}

/// The outcome of one request.
enum Step {
    Done,
    /// Accepted as one of several steps; the server's new list.
    Partial(MethodSet),
    Failed(MethodSet),
    /// Nothing was sent: the method has nothing left to try.
    Exhausted,
    /// The connection broke.
    Broken(String),
}

fn from_result(r: Result<AuthResult, russh::Error>) -> Step {
    match r {
        Ok(AuthResult::Success) => Step::Done,
        Ok(AuthResult::Failure {
            remaining_methods,
            partial_success: true,
        }) => Step::Partial(remaining_methods),
        Ok(AuthResult::Failure {
            remaining_methods, ..
        }) => Step::Failed(remaining_methods),
        Err(e) => Step::Broken(e.to_string()),
    }
}

struct Session<'a> {
    handle: &'a mut Handle<Client>,
    hop: &'a Hop,
    offer: &'a Offer,
    prompter: &'a Prompter,
    connection: &'a str,
    user: String,
    identities: Vec<Identity>,
    agent: Option<russh::keys::agent::client::AgentClient<tokio::net::UnixStream>>,
    /// Identities offered since the last partial success (indexes).
    offered: HashSet<usize>,
    kbd_attempts: u32,
    password_attempts: u32,
    tried: Vec<String>,
}

impl Session<'_> {
    fn person(&self) -> bool {
        self.prompter.can_ask(self.connection) && !self.hop.batch_mode.value
    }

    async fn rsa_hash(&self) -> Option<russh::keys::HashAlg> {
        match self.handle.best_supported_rsa_hash().await {
            Ok(Some(h)) => h,
            // No server-sig-algs: modern servers still take rsa-sha2-256.
            _ => Some(russh::keys::HashAlg::Sha256),
        }
    }

    /// Offers the next identity not offered yet.
    async fn publickey(&mut self) -> Step {
        while let Some(i) = (0..self.identities.len()).find(|i| !self.offered.contains(i)) {
            self.offered.insert(i);
            let label = self.identities[i].label();
            let server_rsa = self.rsa_hash().await;
            let accepted = &self.offer.pubkey;
            let step = match &self.identities[i] {
                Identity::Agent { key, .. } => {
                    let Some(hash) =
                        identity::allowed(accepted, &key.algorithm(), false, server_rsa)
                    else {
                        self.tried.push(format!(
                            "{label}: its type is not in PubkeyAcceptedAlgorithms"
                        ));
                        continue;
                    };
                    let key = key.clone();
                    let Some(agent) = self.agent.as_mut() else {
                        continue;
                    };
                    match self
                        .handle
                        .authenticate_publickey_with(&self.user, key, hash, agent)
                        .await
                    {
                        Ok(r) => from_result(Ok(r)),
                        Err(e) => {
                            // The agent would not sign: the next identity.
                            self.tried.push(format!("{label}: {e}"));
                            continue;
                        }
                    }
                }
                Identity::Certificate { cert, key_file, .. } => {
                    let algorithm = cert.algorithm();
                    if identity::allowed(accepted, &algorithm, true, server_rsa).is_none() {
                        self.tried.push(format!(
                            "{label}: its type is not in PubkeyAcceptedAlgorithms"
                        ));
                        continue;
                    }
                    let (cert, key_file) = ((**cert).clone(), key_file.clone());
                    match identity::load(&key_file, self.hop, self.prompter, self.connection).await
                    {
                        Ok(key) => from_result(
                            self.handle
                                .authenticate_openssh_cert(&self.user, key, cert)
                                .await,
                        ),
                        Err(why) => {
                            self.tried.push(format!("{label}: {why}"));
                            continue;
                        }
                    }
                }
                Identity::File { path } => {
                    let path = path.clone();
                    let key = match identity::load(&path, self.hop, self.prompter, self.connection)
                        .await
                    {
                        Ok(k) => k,
                        Err(why) => {
                            self.tried.push(format!("{label}: {why}"));
                            continue;
                        }
                    };
                    let Some(hash) =
                        identity::allowed(accepted, &key.algorithm(), false, server_rsa)
                    else {
                        self.tried.push(format!(
                            "{label}: its type is not in PubkeyAcceptedAlgorithms"
                        ));
                        continue;
                    };
                    from_result(
                        self.handle
                            .authenticate_publickey(
                                &self.user,
                                PrivateKeyWithHashAlg::new(key, hash),
                            )
                            .await,
                    )
                }
            };
            match &step {
                Step::Failed(_) => self.tried.push(format!("{label}: refused")),
                Step::Partial(_) => self.tried.push(format!("{label}: accepted, more required")),
                Step::Done => self.tried.push(format!("{label}: accepted")),
                _ => {}
            }
            return step;
        }
        Step::Exhausted
    }

    async fn keyboard_interactive(&mut self) -> Step {
        if !self.hop.auth.kbd_interactive.value
            || !self.person()
            || self.kbd_attempts >= self.hop.auth.password_prompts.value
        {
            return Step::Exhausted;
        }
        self.kbd_attempts += 1;
        let mut reply = self
            .handle
            .authenticate_keyboard_interactive_start(&self.user, None::<String>)
            .await;
        for _ in 0..MAX_ROUNDS {
            match reply {
                Ok(Kbd::Success) => return Step::Done,
                Ok(Kbd::Failure {
                    remaining_methods,
                    partial_success,
                }) => {
                    self.tried.push(if partial_success {
                        "keyboard-interactive: accepted, more required".into()
                    } else {
                        "keyboard-interactive: refused".into()
                    });
                    return if partial_success {
                        Step::Partial(remaining_methods)
                    } else {
                        Step::Failed(remaining_methods)
                    };
                }
                Ok(Kbd::InfoRequest {
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
                        match self.prompter.ask(self.connection, prompt).await {
                            Some(Answer::Responses(r)) if r.len() == prompts.len() => {
                                r.iter().map(|s| s.expose().to_string()).collect()
                            }
                            _ => {
                                self.tried.push("keyboard-interactive: not answered".into());
                                // No answer: the method ends for this session.
                                self.kbd_attempts = u32::MAX;
                                return Step::Broken(
                                    "keyboard-interactive question not answered".into(),
                                );
                            }
                        }
                    };
                    reply = self
                        .handle
                        .authenticate_keyboard_interactive_respond(responses)
                        .await;
                }
                Err(e) => return Step::Broken(e.to_string()),
            }
        }
        Step::Broken(format!(
            "the server asked more than {MAX_ROUNDS} keyboard-interactive rounds"
        ))
    }

    async fn password(&mut self) -> Step {
        if !self.hop.auth.password.value
            || !self.person()
            || self.password_attempts >= self.hop.auth.password_prompts.value
        {
            return Step::Exhausted;
        }
        self.password_attempts += 1;
        let asked = self
            .prompter
            .ask(
                self.connection,
                Prompt::Password {
                    user: self.user.clone(),
                    host: self.hop.address(),
                },
            )
            .await;
        let Some(Answer::Secret(p)) = asked else {
            self.password_attempts = u32::MAX;
            self.tried.push("password: not answered".into());
            return Step::Exhausted;
        };
        let step = from_result(
            self.handle
                .authenticate_password(&self.user, p.expose())
                .await,
        );
        match &step {
            Step::Failed(_) => self.tried.push("password: refused".into()),
            Step::Partial(_) => self.tried.push("password: accepted, more required".into()),
            _ => {}
        }
        step
    }
}

/// Authenticates `handle` as the hop's user.
pub async fn authenticate(
    handle: &mut Handle<Client>,
    hop: &Hop,
    offer: &Offer,
    prompter: &Prompter,
    connection: &str,
) -> AuthReport {
    let user = hop.user.value.clone();
    let mut report = AuthReport::default();
    let mut allowed = match handle.authenticate_none(&user).await {
        Ok(AuthResult::Success) => {
            report.offered = "none".into();
            report.used = Some("none (the server asked for nothing)".into());
            return report;
        }
        Ok(AuthResult::Failure {
            remaining_methods, ..
        }) => remaining_methods,
        Err(e) => {
            report.failure = Some(format!("the server closed the connection: {e}"));
            return report;
        }
    };
    report.offered = methods(&allowed);
    let mut tried = Vec::new();
    let (identities, agent) = identity::list(hop, &mut tried).await;
    let mut s = Session {
        handle,
        hop,
        offer,
        prompter,
        connection,
        user,
        identities,
        agent,
        offered: HashSet::new(),
        kbd_attempts: 0,
        password_attempts: 0,
        tried,
    };
    let preferred = &hop.auth.preferred.value;
    let mut disabled: HashSet<&'static str> = HashSet::new();
    for _ in 0..MAX_ATTEMPTS {
        // The first preferred method the server allows that still has something to try.
        let next = preferred.iter().find_map(|p| {
            allowed
                .iter()
                .find(|m| method_name(m) == p && !disabled.contains(method_name(m)))
                .cloned()
        });
        let Some(method) = next else { break };
        let step = match method {
            MethodKind::PublicKey => s.publickey().await,
            MethodKind::KeyboardInteractive => s.keyboard_interactive().await,
            MethodKind::Password => s.password().await,
            // gssapi-with-mic and hostbased: warren has neither.
            _ => Step::Exhausted,
        };
        match step {
            Step::Done => {
                report.used = Some(match method {
                    MethodKind::PublicKey => s
                        .tried
                        .iter()
                        .rev()
                        .find_map(|t| t.strip_suffix(": accepted"))
                        .unwrap_or("publickey")
                        .to_string(),
                    m => method_name(&m).to_string(),
                });
                report.tried = s.tried;
                return report;
            }
            Step::Partial(list) => {
                report.partial.push(method_name(&method).to_string());
                // pubkey_reset: every key may be offered again.
                s.offered.clear();
                allowed = list;
            }
            Step::Failed(list) => allowed = list,
            Step::Exhausted => {
                disabled.insert(method_name(&method));
            }
            Step::Broken(why) => {
                if s.handle.is_closed() {
                    report.tried = s.tried;
                    report.failure = Some(format!("the server closed the connection: {why}"));
                    return report;
                }
                disabled.insert(method_name(&method));
            }
        }
    }
    report.tried = std::mem::take(&mut s.tried);
    if report.tried.is_empty() {
        report
            .tried
            .push("no identity (no agent key, no key file)".into());
    }
    let needs_person: Vec<&str> = allowed
        .iter()
        .map(method_name)
        .filter(|m| matches!(*m, "keyboard-interactive" | "password"))
        .collect();
    let mut msg = format!(
        "server offered {}; tried: {}",
        report.offered,
        report.tried.join("; ")
    );
    if !report.partial.is_empty() {
        msg.push_str(&format!(
            "; succeeded partially: {}; still required: {}",
            report.partial.join(", "),
            methods(&allowed)
        ));
    }
    if !needs_person.is_empty() && !s.person() {
        msg.push_str(&format!(
            "; {} needs a person to answer: {}",
            needs_person.join(" or "),
            s.prompter.advice()
        ));
    }
    if !needs_person.is_empty() {
        // An unanswered question ends its method for the session (the count goes to MAX).
        let unanswered = s.kbd_attempts == u32::MAX || s.password_attempts == u32::MAX;
        let refused = s.kbd_attempts > 0 || s.password_attempts > 0;
        let why = if !s.person() {
            "nobody here to answer it"
        } else if unanswered {
            "the question was not answered"
        } else if refused {
            "the answer was refused"
        } else {
            "no answer was given"
        };
        report.needs_person = Some(format!("{} ({why})", needs_person.join(" or ")));
    }
    report.failure = Some(msg);
    report
}
