//! Connecting one hop or a whole chain with russh: TCP (or a direct-tcpip channel of the
//! previous hop, or the pipes of the hop's ProxyCommand, or the socket it passes back with
//! ProxyUseFdpass), key exchange, host key check, authentication (with a fresh certificate
//! first when the hop has a certificate_command, see [`super::certificate`]). Every step is
//! bounded by the hop's connect_timeout: russh itself waits forever on a silent peer. A hop
//! warren must not connect ([`Hop::refusal`]: `--no-exec`, `ProxyCommand -`) is refused before anything
//! runs or is dialled.

use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, Handle};
use tokio::sync::mpsc;

use super::algorithms::{self, Offer};
use super::auth;
pub use super::handler::{Client, Forwarded, HostKeySeen};
use super::host_key::{Rules, ssh_dir};
use super::hosts_command::{self, Invocation, Ran};
use super::known_hosts::KnownHosts;
use super::proxy::Proxy;
use crate::config::model::Hop;
use crate::prompt::Prompter;

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
    /// A person answered no to the host key question: final, nothing retries it by itself.
    #[error("hop {hop} ({addr}): {message}")]
    HostKeyRejected {
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
        /// Host keys of the hops before (or this one) accepted but not written.
        not_recorded: Vec<String>,
        /// Only a person's answer gets further ([`auth::AuthReport::needs_person`]).
        needs_person: Option<String>,
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
    /// The hop's ProxyCommand could not start, or ended before the session was up.
    #[error("hop {hop} ({addr}): the ProxyCommand `{command}` {ending}")]
    Proxy {
        hop: usize,
        addr: String,
        command: String,
        ending: String,
    },
    /// The hop's certificate_command gave no certificate that can work (see
    /// [`super::certificate`]); nothing was dialled.
    #[error("hop {hop} ({addr}): {failure}")]
    Certificate {
        hop: usize,
        addr: String,
        failure: Box<super::certificate::Failure>,
    },
    /// warren will not connect this hop (see [`Hop::refusal`]).
    #[error("hop {hop} ({addr}): {message}")]
    Refused {
        hop: usize,
        addr: String,
        message: String,
    },
}

impl ConnectError {
    /// What only a person can give to get further, when that is why it failed: a second
    /// factor not answered (or its answer refused), or a certificate_command that did not
    /// finish (it waits for a login in a browser or on a terminal it does not have).
    pub fn needs_person(&self) -> Option<String> {
        match self {
            ConnectError::Auth { needs_person, .. } => needs_person.clone(),
            ConnectError::Certificate { failure, .. } => match failure.reason {
                super::certificate::Reason::TimedOut(secs) => Some(format!(
                    "a fresh certificate (certificate_command did not finish within {secs}s: it waits for a login; log in to the CA first, e.g. vault login or step ssh login)"
                )),
                _ => None,
            },
            _ => None,
        }
    }
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

/// The algorithms to offer `hop`, host key types ordered by what known_hosts holds for it
/// and what its KnownHostsCommand printed for the order (see [`order_lines`]).
pub fn offer_for(hop: &Hop, from_command: &KnownHosts) -> Result<Offer, algorithms::Unsatisfiable> {
    let rules = Rules::for_hop(hop, None, ssh_dir());
    let known = if hop.algorithms.host_key_reorder {
        let (mut types, mut ca) =
            KnownHosts::read(&rules.files()).known_types(&rules.lookup_name());
        let (more, more_ca) = from_command.known_types(&rules.hostname);
        for t in more {
            if !types.contains(&t) {
                types.push(t);
            }
        }
        ca |= more_ca;
        (types, ca)
    } else {
        (Vec::new(), false)
    };
    algorithms::offer(hop, (&known.0, known.1))
}

/// The KnownHostsCommand's lines for the host-key algorithm order (`%I` = `ORDER`, `%H` the
/// bare host name, as ssh runs it), when the order is taken from known_hosts. `Err`: the
/// command failed, which is fatal.
pub async fn order_lines(hop: &Hop) -> Result<KnownHosts, String> {
    let (Some(cmd), true) = (&hop.known_hosts_command, hop.algorithms.host_key_reorder) else {
        return Ok(KnownHosts::default());
    };
    let rules = Rules::for_hop(hop, None, ssh_dir());
    match hosts_command::run(
        &cmd.value,
        Invocation::Order,
        &rules.hostname,
        None,
        hop.connect_timeout.value.0,
    )
    .await?
    {
        Ran::Lines(l) => Ok(l),
        Ran::Skipped(why) => {
            tracing::warn!("{why}");
            Ok(KnownHosts::default())
        }
    }
}

/// A connected, authenticated chain: the last handle carries the forwards; the earlier ones
/// are kept alive underneath it, and so are the ProxyCommands (stopped when it is dropped).
pub struct Chain {
    pub handles: Vec<Arc<Handle<Client>>>,
    /// Why each hop's session ended, once it has (see [`Client::ended`]).
    endings: Vec<Arc<std::sync::Mutex<Option<String>>>>,
    pub warnings: Vec<String>,
    /// Host keys accepted to be recorded that could not be written, and why.
    pub not_recorded: Vec<String>,
    /// The ProxyCommands under the chain, with the hop each carries.
    pub proxies: Vec<(usize, Proxy)>,
    /// What they write to stderr, a line at a time (for the tunnel's log).
    proxy_lines: Option<mpsc::Receiver<String>>,
}

/// How many ProxyCommand stderr lines wait for the tunnel's log; more are only logged.
const PROXY_LINES: usize = 64;

impl Chain {
    pub fn last(&self) -> &Arc<Handle<Client>> {
        &self.handles[self.handles.len() - 1]
    }

    pub fn is_closed(&self) -> bool {
        self.handles.iter().any(|h| h.is_closed())
    }

    /// The next line a ProxyCommand wrote to stderr; never ready when there is none.
    pub async fn proxy_line(&mut self) -> String {
        match self.proxy_lines.as_mut() {
            Some(rx) => match rx.recv().await {
                Some(l) => l,
                None => {
                    self.proxy_lines = None;
                    std::future::pending().await
                }
            },
            None => std::future::pending().await,
        }
    }

    /// Why the chain was lost: a ProxyCommand that ended, with its last words, or the
    /// connection.
    pub async fn why_lost(&mut self) -> String {
        for (hop, p) in &mut self.proxies {
            if p.exited(std::time::Duration::from_millis(200))
                .await
                .is_some()
                && let Some(ending) = p.ending()
            {
                return format!(
                    "the SSH connection was lost: the ProxyCommand of hop {hop} {ending}"
                );
            }
        }
        for (hop, e) in self.endings.iter().enumerate() {
            if let Some(why) = e.lock().ok().and_then(|e| e.clone()) {
                return format!("the SSH connection was lost (hop {hop}): {why}");
            }
        }
        "the SSH connection was lost".into()
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
    reverse: Option<&Arc<dyn Forwarded>>,
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
    reverse: Option<&Arc<dyn Forwarded>>,
) -> Result<Chain, ConnectError> {
    let mut handles: Vec<Arc<Handle<Client>>> = Vec::with_capacity(hops.len());
    let mut endings = Vec::with_capacity(hops.len());
    let mut warnings = Vec::new();
    let mut not_recorded = Vec::new();
    let mut proxies: Vec<(usize, Proxy)> = Vec::new();
    let (lines_tx, lines_rx) = mpsc::channel(PROXY_LINES);
    let asking = Some((&**prompter, connection));
    for (i, hop) in hops.iter().enumerate() {
        let addr = hop.address();
        if let Some(message) = hop.refusal() {
            return Err(ConnectError::Refused {
                hop: i,
                addr,
                message,
            });
        }
        // A fresh certificate first, when the hop has a certificate_command: offered first.
        let certified = match super::certificate::ensure(hop).await {
            Ok(got) => got,
            Err(failure) => {
                return Err(ConnectError::Certificate {
                    hop: i,
                    addr,
                    failure,
                });
            }
        };
        let certified = certified.map(|got| {
            if let Some(ran) = &got.ran {
                warnings.extend(
                    ran.stderr
                        .iter()
                        .map(|l| format!("certificate_command (hop {i}): {l}")),
                );
            }
            got.apply(hop)
        });
        let hop = certified.as_ref().unwrap_or(hop);
        let ordered = order_lines(hop)
            .await
            .map_err(|message| ConnectError::HostKey {
                hop: i,
                addr: addr.clone(),
                message,
            })?;
        let offer = offer_for(hop, &ordered).map_err(|source| ConnectError::Algorithms {
            hop: i,
            addr: addr.clone(),
            source,
        })?;
        let config = ssh_config(hop, &offer);
        let last = i + 1 == hops.len();
        let ended = Arc::new(std::sync::Mutex::new(None));
        let client = |peer| {
            let mut c = Client::new(hop, peer, prompter, connection);
            c.ended = Arc::clone(&ended);
            if last {
                c.reverse = reverse.cloned();
            }
            c
        };
        let (result, seen) = if hop.proxy_command.is_some() {
            // Its stdin and stdout are the connection; no address is known (CheckHostIP off,
            // as ssh turns it off for a ProxyCommand).
            let (p, stream) =
                Proxy::start(hop, i, connection, Some(lines_tx.clone())).map_err(|e| {
                    ConnectError::Proxy {
                        hop: i,
                        addr: addr.clone(),
                        command: hop
                            .proxy_command
                            .as_ref()
                            .map(|c| c.value.clone())
                            .unwrap_or_default(),
                        ending: format!("could not be started: {e}"),
                    }
                })?;
            proxies.push((i, p));
            let client = client(None);
            let seen = Arc::clone(&client.seen);
            let r = bounded(
                i,
                hop,
                "SSH handshake",
                asking,
                client::connect_stream(config, stream, client),
            )
            .await;
            let r = match r {
                Ok(r) => r,
                Err(timeout) => {
                    return Err(proxy_ended(&mut proxies, i, &addr).await.unwrap_or(timeout));
                }
            };
            (r, seen)
        } else {
            match handles.last() {
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
                    let client = client(tcp.peer_addr().ok());
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
                    let client = client(None);
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
            }
        };
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        let mut handle = match result {
            Ok(h) => h,
            Err(e) => {
                if seen.rejected
                    && let Some(msg) = seen.refused.clone()
                {
                    return Err(ConnectError::HostKeyRejected {
                        hop: i,
                        addr,
                        message: msg,
                    });
                }
                if let Some(msg) = seen.refused {
                    return Err(ConnectError::HostKey {
                        hop: i,
                        addr,
                        message: msg,
                    });
                }
                if let Some(ended) = proxy_ended(&mut proxies, i, &addr).await {
                    return Err(ended);
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
        not_recorded.extend(seen.not_recorded);
        let report = bounded(
            i,
            hop,
            "authentication",
            asking,
            auth::authenticate(&mut handle, hop, &offer, prompter, connection),
        )
        .await;
        let report = match report {
            Ok(r) => r,
            Err(timeout) => {
                return Err(proxy_ended(&mut proxies, i, &addr).await.unwrap_or(timeout));
            }
        };
        if let Some(detail) = report.failure {
            if let Some(ended) = proxy_ended(&mut proxies, i, &addr).await {
                return Err(ended);
            }
            return Err(ConnectError::Auth {
                hop: i,
                addr: addr.clone(),
                user: hop.user.value.clone(),
                detail,
                not_recorded,
                needs_person: report.needs_person,
            });
        }
        crate::audit::record(
            connection,
            crate::audit::Kind::authenticated(i, hop, report.used.as_deref()),
        );
        handles.push(Arc::new(handle));
        endings.push(ended);
    }
    let proxy_lines = (!proxies.is_empty()).then_some(lines_rx);
    Ok(Chain {
        handles,
        endings,
        warnings,
        not_recorded,
        proxies,
        proxy_lines,
    })
}

/// The error for hop `hop` when its ProxyCommand has ended (it is given a moment to): how it
/// ended and what it said. `None` when the hop has no ProxyCommand or it still runs.
async fn proxy_ended(
    proxies: &mut [(usize, Proxy)],
    hop: usize,
    addr: &str,
) -> Option<ConnectError> {
    let (_, p) = proxies.iter_mut().find(|(h, _)| *h == hop)?;
    p.exited(std::time::Duration::from_millis(500)).await?;
    Some(ConnectError::Proxy {
        hop,
        addr: addr.to_string(),
        command: p.command.clone(),
        ending: p.ending()?,
    })
}
