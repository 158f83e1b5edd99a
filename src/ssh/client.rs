//! Connecting one hop or a whole chain with russh: TCP (or a direct-tcpip channel of the
//! previous hop), key exchange, host key check, authentication. Every step is bounded by the
//! hop's connect_timeout: russh itself waits forever on a silent peer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::PublicKeyOrCertificate;
use russh::keys::ssh_key::PublicKey;

use super::algorithms::{self, Offer};
use super::auth;
use super::host_key::{self, Action, Found, Question, Rules};
use super::known_hosts::{self, KnownHosts};
use crate::config::model::{Hop, HostKeyPolicy};
use crate::prompt::{Answer, HostKeyAnswer, Prompt, Prompter};

/// What went wrong while connecting, with the hop it happened at.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("hop {hop} ({addr}): TCP connect failed: {source}")]
    Tcp {
        hop: usize,
        addr: String,
        source: std::io::Error,
    },
    #[error("hop {hop} ({addr}): timed out after {secs}s during {step}")]
    Timeout {
        hop: usize,
        addr: String,
        step: &'static str,
        secs: u64,
    },
    #[error("hop {hop} ({addr}): {message}")]
    HostKey {
        hop: usize,
        addr: String,
        message: String,
    },
    #[error("hop {hop} ({addr}): authentication failed for {user}: {detail}")]
    Auth {
        hop: usize,
        addr: String,
        user: String,
        detail: String,
    },
    #[error("hop {hop} ({addr}): opening the channel to the next hop failed: {message}")]
    Channel {
        hop: usize,
        addr: String,
        message: String,
    },
    #[error("hop {hop} ({addr}): {source}")]
    Algorithms {
        hop: usize,
        addr: String,
        source: algorithms::Unsatisfiable,
    },
    #[error("hop {hop} ({addr}): SSH error: {message}")]
    Ssh {
        hop: usize,
        addr: String,
        message: String,
    },
}

/// Tunables of every SSH connection warren makes, with the algorithms `offer` allows.
pub fn ssh_config(hop: &Hop, offer: &Offer) -> Arc<client::Config> {
    let keepalive = hop.keepalive_interval.value.0;
    Arc::new(client::Config {
        preferred: offer.preferred.clone(),
        // The default 2 MiB window is slow on long links (9.8 MiB/s at 100 ms RTT).
        window_size: 16 * 1024 * 1024,
        maximum_packet_size: 65535,
        nodelay: true,
        keepalive_interval: (!keepalive.is_zero()).then_some(keepalive),
        keepalive_max: hop.keepalive_count_max.value as usize,
        ..Default::default()
    })
}

/// `~/.ssh`: the one directory a known_hosts write may create.
pub fn ssh_dir() -> PathBuf {
    dirs::home_dir().unwrap_or_default().join(".ssh")
}

/// The algorithms to offer `hop`, host key types ordered by what known_hosts holds for it.
pub fn offer_for(hop: &Hop) -> Result<Offer, algorithms::Unsatisfiable> {
    let rules = Rules::for_hop(hop, None, ssh_dir());
    let known = if hop.algorithms.host_key_reorder {
        KnownHosts::read(&rules.files()).known_types(&rules.lookup_name())
    } else {
        (Vec::new(), false)
    };
    algorithms::offer(hop, (&known.0, known.1))
}

/// The outcome of the host key check, kept for the error message and the diagnostics.
#[derive(Clone, Debug, Default)]
pub struct HostKeySeen {
    pub key: Option<PublicKey>,
    /// The name looked up in known_hosts.
    pub name: String,
    pub found: Option<Found>,
    pub refused: Option<String>,
    pub warning: Option<String>,
    /// What was written to known_hosts.
    pub recorded: Option<String>,
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
    pub reverse: Option<Arc<crate::tunnel::Reverse>>,
    /// The key accepted at the first key exchange: a re-exchange with it is accepted.
    accepted: Option<PublicKey>,
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
                outcome.warning = Some(format!(
                    "failed to add the host to the list of known hosts ({}): {e}",
                    path.display()
                ))
            }
        }
    }

    /// Asks a person, if one is there; `None` when nobody answers.
    async fn ask(&self, prompt: Prompt) -> Option<Answer> {
        if !self.prompter.interactive() || self.rules.batch {
            return None;
        }
        self.prompter.ask(&self.connection, prompt).await
    }
}

impl client::Handler for Client {
    type Error = russh::Error;

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
            && let Some(target) = reverse.target(connected_port)
        {
            reply.accept().await;
            reverse.serve(target, channel);
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
        let d = host_key::decide(&self.rules, &public, cert);
        let fp = known_hosts::fingerprint(&public);
        let kind = known_hosts::type_name(&public);
        let mut outcome = HostKeySeen {
            key: Some(public.clone()),
            name: d.name.clone(),
            found: Some(d.found.clone()),
            refused: None,
            warning: d.warning.clone(),
            recorded: None,
        };
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
            Action::Ask(Question::UnknownKey { lines, other_names }) => {
                let prompt = Prompt::HostKey {
                    host: d.name.clone(),
                    key_type: kind.to_string(),
                    fingerprint: fp.clone(),
                    other_names,
                };
                match self.ask(prompt).await {
                    Some(Answer::HostKey(HostKeyAnswer::AcceptOnce)) => {}
                    Some(Answer::HostKey(HostKeyAnswer::AcceptAndSave)) => {
                        self.record(&lines, &mut outcome)
                    }
                    Some(_) => {
                        outcome.refused = Some(format!(
                            "the {kind} host key of {} ({fp}) was rejected",
                            d.name
                        ))
                    }
                    None => {
                        outcome.refused = Some(format!(
                            "Host key verification failed: the {kind} key of {} ({fp}) is not known and nobody confirmed it; answer the question in a terminal (warren up) or in the TUI, or add it after checking the fingerprint: warren trust {}",
                            d.name, self.connection
                        ))
                    }
                }
            }
            Action::Ask(Question::IpChanged { text }) => {
                match self.ask(Prompt::Confirm { text: text.clone() }).await {
                    Some(Answer::HostKey(HostKeyAnswer::AcceptOnce))
                    | Some(Answer::HostKey(HostKeyAnswer::AcceptAndSave)) => {}
                    _ => outcome.refused = Some(format!("{text}; not confirmed")),
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
        if let Ok(mut s) = self.seen.lock() {
            *s = outcome;
        }
        Ok(ok)
    }
}

/// A connected, authenticated chain: the last handle carries the forwards; the earlier ones
/// are kept alive underneath it.
pub struct Chain {
    pub handles: Vec<Arc<Handle<Client>>>,
    pub warnings: Vec<String>,
}

impl Chain {
    pub fn last(&self) -> &Arc<Handle<Client>> {
        &self.handles[self.handles.len() - 1]
    }

    pub fn is_closed(&self) -> bool {
        self.handles.iter().any(|h| h.is_closed())
    }
}

/// Bounds a step by the hop's connect_timeout; time spent waiting for a person to answer a
/// question of this connection does not count (the question has its own timeout).
async fn bounded<T>(
    hop: usize,
    h: &Hop,
    step: &'static str,
    asking: Option<(&Prompter, &str)>,
    f: impl std::future::Future<Output = T>,
) -> Result<T, ConnectError> {
    let d: Duration = h.connect_timeout.value.0;
    tokio::pin!(f);
    let mut deadline = tokio::time::Instant::now() + d;
    loop {
        tokio::select! {
            r = &mut f => return Ok(r),
            _ = tokio::time::sleep_until(deadline) => {
                if asking.is_some_and(|(p, c)| p.waiting(c)) {
                    deadline = tokio::time::Instant::now() + d;
                    continue;
                }
                return Err(ConnectError::Timeout {
                    hop,
                    addr: h.address(),
                    step,
                    secs: d.as_secs(),
                });
            }
        }
    }
}

/// Connects every hop in order, each through the one before. Questions this attempt asked
/// and left open are withdrawn when it fails.
pub async fn connect(
    hops: &[Hop],
    prompter: &Arc<Prompter>,
    connection: &str,
    reverse: Option<&Arc<crate::tunnel::Reverse>>,
) -> Result<Chain, ConnectError> {
    let result = connect_hops(hops, prompter, connection, reverse).await;
    if result.is_err() {
        prompter.withdraw_all(connection);
    }
    result
}

async fn connect_hops(
    hops: &[Hop],
    prompter: &Arc<Prompter>,
    connection: &str,
    reverse: Option<&Arc<crate::tunnel::Reverse>>,
) -> Result<Chain, ConnectError> {
    let mut handles: Vec<Arc<Handle<Client>>> = Vec::with_capacity(hops.len());
    let mut warnings = Vec::new();
    let asking = Some((&**prompter, connection));
    for (i, hop) in hops.iter().enumerate() {
        let addr = hop.address();
        let offer = offer_for(hop).map_err(|source| ConnectError::Algorithms {
            hop: i,
            addr: addr.clone(),
            source,
        })?;
        let config = ssh_config(hop, &offer);
        let (result, seen) = match handles.last() {
            None => {
                let tcp = bounded(
                    i,
                    hop,
                    "TCP connect",
                    None,
                    tokio::net::TcpStream::connect((hop.host.value.as_str(), hop.port.value)),
                )
                .await?
                .map_err(|source| ConnectError::Tcp {
                    hop: i,
                    addr: addr.clone(),
                    source,
                })?;
                let _ = tcp.set_nodelay(true);
                let mut client = Client::new(hop, tcp.peer_addr().ok(), prompter, connection);
                if i + 1 == hops.len() {
                    client.reverse = reverse.cloned();
                }
                let seen = Arc::clone(&client.seen);
                let r = bounded(
                    i,
                    hop,
                    "SSH handshake",
                    asking,
                    client::connect_stream(config, tcp, client),
                )
                .await?;
                (r, seen)
            }
            Some(prev) => {
                let channel = bounded(
                    i,
                    hop,
                    "opening the channel to the next hop",
                    None,
                    prev.channel_open_direct_tcpip(
                        hop.host.value.clone(),
                        u32::from(hop.port.value),
                        "127.0.0.1",
                        0,
                    ),
                )
                .await?
                .map_err(|e| ConnectError::Channel {
                    hop: i - 1,
                    addr: hops[i - 1].address(),
                    message: format!("to {addr}: {e}"),
                })?;
                let mut client = Client::new(hop, None, prompter, connection);
                if i + 1 == hops.len() {
                    client.reverse = reverse.cloned();
                }
                let seen = Arc::clone(&client.seen);
                let r = bounded(
                    i,
                    hop,
                    "SSH handshake",
                    asking,
                    client::connect_stream(config, channel.into_stream(), client),
                )
                .await?;
                (r, seen)
            }
        };
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        let mut handle = match result {
            Ok(h) => h,
            Err(e) => {
                if let Some(msg) = seen.refused {
                    return Err(ConnectError::HostKey {
                        hop: i,
                        addr,
                        message: msg,
                    });
                }
                return Err(ConnectError::Ssh {
                    hop: i,
                    addr,
                    message: e.to_string(),
                });
            }
        };
        warnings.extend(seen.warning);
        warnings.extend(seen.recorded);
        let report = bounded(
            i,
            hop,
            "authentication",
            asking,
            auth::authenticate(&mut handle, hop, &offer, prompter, connection),
        )
        .await?;
        if let Some(detail) = report.failure {
            return Err(ConnectError::Auth {
                hop: i,
                addr: addr.clone(),
                user: hop.user.value.clone(),
                detail,
            });
        }
        handles.push(Arc::new(handle));
    }
    Ok(Chain { handles, warnings })
}
