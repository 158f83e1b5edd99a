//! russh's view of one hop (its `Handler`): the host key checked as the hop's rules say
//! (asking a person when the policy is `ask`, unless they accepted that key for that host
//! "once" earlier in the session; a "no" is marked final), the algorithms key exchange settled on, and
//! the only channels a server may open: the forwarded connections of remote forwards asked
//! for, handed to a [`Forwarded`] (the tunnel layer implements it; this module imports none
//! of it).

use std::sync::{Arc, Mutex};

use russh::client;
use russh::keys::PublicKeyOrCertificate;
use russh::keys::ssh_key::PublicKey;

use super::host_key::{self, Action, Found, FromCommand, Question, Rules, ssh_dir};
use super::hosts_command::{self, Invocation, KeyFacts, Ran};
use super::known_hosts;
use crate::config::model::{Hop, HostKeyPolicy};
use crate::prompt::{Answer, HostKeyAnswer, Prompt, Prompter};

/// Where connections a server forwards to us (remote forwards) go.
pub trait Forwarded: Send + Sync {
    /// Whether a connection to the server's `port` is one of ours.
    fn wants(&self, port: u32) -> bool;
    /// Serves an accepted forwarded connection (in its own task).
    fn serve(&self, port: u32, channel: russh::Channel<client::Msg>);
}

/// The outcome of the host key check, kept for the error message and the diagnostics.
#[derive(Clone, Debug, Default)]
pub struct HostKeySeen {
    pub key: Option<PublicKey>,
    /// The name looked up in known_hosts.
    pub name: String,
    pub found: Option<Found>,
    pub refused: Option<String>,
    /// A person answered no: the refusal is final (nothing retries it by itself).
    pub rejected: bool,
    pub warning: Option<String>,
    /// What was written to known_hosts.
    pub recorded: Option<String>,
    /// A key accepted to be recorded that could not be written (why; also in `warning`).
    pub not_recorded: Option<String>,
}

/// russh's view of one hop: it checks the host key as the hop's rules say.
pub struct Client {
    pub rules: Rules,
    pub seen: Arc<Mutex<HostKeySeen>>,
    /// Asks a person about an unknown key under `ask`.
    pub prompter: Arc<Prompter>,
    /// The connection this hop belongs to (for the prompt).
    pub connection: String,
    /// Write nothing by itself (the diagnostics look; only a person's "yes" records a key).
    pub dry_run: bool,
    /// The algorithms key exchange settled on, once it is done.
    pub negotiated: Arc<Mutex<Option<String>>>,
    /// Where connections the bastion forwards (remote forwards) go; `None`: refuse them.
    pub reverse: Option<Arc<dyn Forwarded>>,
    /// The key accepted at the first key exchange: a re-exchange with it is accepted.
    accepted: Option<PublicKey>,
    /// Why the session ended, in ssh's terms, once it has (keepalives unanswered, the
    /// bastion's own disconnect).
    pub ended: Arc<Mutex<Option<String>>>,
    /// The hop's keepalive settings, to say how many went unanswered in how long.
    keepalive: (std::time::Duration, u32),
}

impl Client {
    pub fn new(
        hop: &Hop,
        peer: Option<std::net::SocketAddr>,
        prompter: &Arc<Prompter>,
        connection: &str,
    ) -> Self {
        Client {
            rules: Rules::for_hop(hop, peer, ssh_dir()),
            seen: Arc::new(Mutex::new(HostKeySeen::default())),
            prompter: Arc::clone(prompter),
            connection: connection.to_string(),
            dry_run: false,
            negotiated: Arc::new(Mutex::new(None)),
            reverse: None,
            accepted: None,
            ended: Arc::new(Mutex::new(None)),
            keepalive: (
                hop.keepalive_interval.value.0,
                hop.keepalive_count_max.value,
            ),
        }
    }

    /// Appends lines to the first user known_hosts file. A failure is a warning, as in ssh.
    fn record(&self, lines: &[String], outcome: &mut HostKeySeen) {
        let Some(path) = self.rules.user_files.first() else {
            return;
        };
        match known_hosts::append(path, lines, &self.rules.ssh_dir) {
            Ok(()) => {
                outcome.recorded = Some(format!(
                    "permanently added '{}' ({}) to {}",
                    outcome.name,
                    outcome
                        .key
                        .as_ref()
                        .map(known_hosts::type_name)
                        .unwrap_or(""),
                    path.display()
                ))
            }
            Err(e) => {
                let why = format!(
                    "failed to add the host to the list of known hosts ({}): {e}; the file is unchanged",
                    path.display()
                );
                outcome.not_recorded = Some(why.clone());
                outcome.warning = Some(why);
            }
        }
    }

    /// Runs the KnownHostsCommand for the host name (and the address, with CheckHostIP and
    /// a plain key), as ssh does while checking a key; with the message of a command ssh
    /// would skip.
    async fn run_command(
        &self,
        key: &PublicKey,
        cert: Option<&russh::keys::ssh_key::Certificate>,
    ) -> (FromCommand, Option<String>) {
        let mut from = FromCommand::default();
        let Some((cmd, _)) = &self.rules.command else {
            return (from, None);
        };
        let facts = KeyFacts::of(key, cert);
        let timeout = self.rules.command_timeout;
        let mut names = vec![(Invocation::Hostname, self.rules.lookup_name())];
        if cert.is_none()
            && let Some(ip) = self.rules.ip_name()
        {
            names.push((Invocation::Address, ip));
        }
        let mut skipped = None;
        for (inv, name) in names {
            match hosts_command::run(cmd, inv, &name, Some(&facts), timeout).await {
                Ok(Ran::Lines(lines)) if inv == Invocation::Hostname => from.host = lines,
                Ok(Ran::Lines(lines)) => from.address = lines,
                Ok(Ran::Skipped(why)) => skipped = Some(why),
                Err(e) => {
                    from.failed = Some(e);
                    break;
                }
            }
        }
        (from, skipped)
    }

    /// Asks a person, if one is there; `None` when nobody answers.
    async fn ask(&self, prompt: Prompt) -> Option<Answer> {
        if !self.prompter.can_ask(&self.connection) || self.rules.batch {
            return None;
        }
        self.prompter.ask(&self.connection, prompt).await
    }
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn disconnected(
        &mut self,
        reason: client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let (why, result) = match reason {
            client::DisconnectReason::ReceivedDisconnect(info) => (
                format!(
                    "the bastion closed the connection ({})",
                    crate::text::escape(&info.message.chars().take(200).collect::<String>())
                ),
                Ok(()),
            ),
            client::DisconnectReason::Error(russh::Error::KeepaliveTimeout) => {
                let (every, max) = self.keepalive;
                // As ssh's ServerAliveCountMax: `max` keepalives go unanswered, and the next
                // interval ends the connection.
                let silent = every.as_secs_f64() * f64::from(max.saturating_add(1));
                (
                    format!(
                        "no answer to {max} keepalives sent {} s apart: the bastion said nothing for {silent:.0} s (keepalive_interval, keepalive_count_max)",
                        every.as_secs_f64()
                    ),
                    Err(russh::Error::KeepaliveTimeout),
                )
            }
            client::DisconnectReason::Error(e) => (e.to_string(), Err(e)),
        };
        if let Ok(mut e) = self.ended.lock() {
            e.get_or_insert(why);
        }
        result
    }

    // A tunnel client opens channels; the server may open only the forwarded connections of
    // remote forwards it was asked for. Everything else it tries is refused (dropping the
    // reply refuses), where russh would accept by default.
    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        _connected_address: &str,
        connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        if let Some(reverse) = &self.reverse
            && reverse.wants(connected_port)
        {
            reply.accept().await;
            reverse.serve(connected_port, channel);
        }
        Ok(())
    }

    async fn server_channel_open_session(
        &mut self,
        _c: russh::Channel<client::Msg>,
        _reply: client::ChannelOpenHandle,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_direct_tcpip(
        &mut self,
        _c: russh::Channel<client::Msg>,
        _h: &str,
        _p: u32,
        _oa: &str,
        _op: u32,
        _reply: client::ChannelOpenHandle,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_direct_streamlocal(
        &mut self,
        _c: russh::Channel<client::Msg>,
        _p: &str,
        _reply: client::ChannelOpenHandle,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        _c: russh::Channel<client::Msg>,
        _p: &str,
        _reply: client::ChannelOpenHandle,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        _c: russh::Channel<client::Msg>,
        _oa: &str,
        _op: u32,
        _reply: client::ChannelOpenHandle,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        _c: russh::Channel<client::Msg>,
        _reply: client::ChannelOpenHandle,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn kex_done(
        &mut self,
        _secret: Option<&[u8]>,
        names: &russh::Names,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let mac = if names.cipher.as_ref().contains("gcm")
            || names.cipher.as_ref().contains("poly1305")
        {
            "implicit (AEAD)".to_string()
        } else {
            names.client_mac.as_ref().to_string()
        };
        let text = format!(
            "kex {}, host key {}, cipher {}, MAC {mac}",
            names.kex.as_ref(),
            names.key.as_str(),
            names.cipher.as_ref()
        );
        if let Ok(mut n) = self.negotiated.lock() {
            *n = Some(text);
        }
        Ok(())
    }

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let (public, cert) = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => (key.clone(), None),
            PublicKeyOrCertificate::Certificate(c) => (key.public_key(), Some(c)),
        };
        // A re-exchange with the key accepted before (sshconnect.c previous_host_key).
        if self
            .accepted
            .as_ref()
            .is_some_and(|a| a.key_data() == public.key_data())
        {
            return Ok(true);
        }
        let (from_command, skipped) = self.run_command(&public, cert).await;
        let d = host_key::decide(&self.rules, &public, cert, &from_command);
        let fp = known_hosts::fingerprint(&public);
        let kind = known_hosts::type_name(&public);
        let mut outcome = HostKeySeen {
            key: Some(public.clone()),
            name: d.name.clone(),
            found: Some(d.found.clone()),
            refused: None,
            rejected: false,
            warning: d.warning.clone().or(skipped),
            recorded: None,
            not_recorded: None,
        };
        let mut once = false;
        if !d.also_record.is_empty() && !self.dry_run {
            self.record(&d.also_record, &mut outcome);
        }
        match d.action.clone() {
            Action::Accept => {}
            Action::Refuse(msg) => outcome.refused = Some(msg),
            Action::Record(lines) => {
                if self.dry_run {
                    outcome.warning = Some(format!(
                        "not in known_hosts yet; {} will add it on the first connection ({fp})",
                        self.rules.policy
                    ));
                } else {
                    self.record(&lines, &mut outcome);
                }
                if self.rules.policy == HostKeyPolicy::Off && outcome.warning.is_none() {
                    outcome.warning = Some(format!(
                        "host key for {} not checked ({kind} {fp}): host key checking is off",
                        d.name
                    ));
                }
            }
            // Accepted "once" earlier in this session (a reconnect, a reopen): not asked again.
            Action::Ask(Question::UnknownKey { .. })
                if self.prompter.accepted_for_session(&d.name, &fp) => {}
            Action::Ask(Question::UnknownKey { lines, other_names }) => {
                let prompt = Prompt::HostKey {
                    host: d.name.clone(),
                    key_type: kind.to_string(),
                    fingerprint: fp.clone(),
                    other_names,
                };
                match self.ask(prompt).await {
                    // Remembered in memory only: even a dry run may (it writes nothing).
                    Some(Answer::HostKey(HostKeyAnswer::AcceptOnce)) => {
                        once = true;
                        self.prompter.accept_for_session(&d.name, &fp)
                    }
                    Some(Answer::HostKey(HostKeyAnswer::AcceptAndSave)) => {
                        self.record(&lines, &mut outcome)
                    }
                    Some(_) => {
                        outcome.rejected = true;
                        outcome.refused = Some(format!(
                            "host key rejected: the {kind} key of {} ({fp}) was not accepted; open the tunnel again to be asked again",
                            d.name
                        ))
                    }
                    None => {
                        outcome.refused = Some(format!(
                            "Host key verification failed: the {kind} key of {} ({fp}) is not known and nobody confirmed it; to be asked, {}; or add it after checking the fingerprint: warren trust {}",
                            d.name,
                            self.prompter.advice(),
                            self.connection
                        ))
                    }
                }
            }
            Action::Ask(Question::IpChanged { text }) => {
                match self.ask(Prompt::Confirm { text: text.clone() }).await {
                    Some(Answer::HostKey(HostKeyAnswer::AcceptOnce))
                    | Some(Answer::HostKey(HostKeyAnswer::AcceptAndSave)) => {}
                    Some(_) => {
                        outcome.rejected = true;
                        outcome.refused = Some(format!("host key rejected: {text}; not confirmed"))
                    }
                    None => outcome.refused = Some(format!("{text}; not confirmed")),
                }
            }
        }
        if let (Some(msg), Some(note)) = (outcome.refused.as_mut(), &d.note) {
            msg.push_str(&format!("; {note}"));
        }
        let ok = outcome.refused.is_none();
        if ok {
            self.accepted = Some(public);
        }
        let decision = crate::audit::HostKeyDecision::of(
            outcome.recorded.is_some(),
            once,
            outcome.rejected,
            matches!(outcome.found, Some(Found::Changed(_))),
            !ok,
        );
        if let Some(decision) = decision.filter(|_| !self.dry_run) {
            crate::audit::record(
                &self.connection,
                crate::audit::Kind::HostKey {
                    host: d.name.clone(),
                    key_type: kind.to_string(),
                    fingerprint: fp.clone(),
                    decision,
                },
            );
        }
        if let Ok(mut s) = self.seen.lock() {
            *s = outcome;
        }
        Ok(ok)
    }
}
