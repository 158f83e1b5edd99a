//! Connecting one hop or a whole chain with russh: TCP (or a direct-tcpip channel of the
//! previous hop), key exchange, host key check, authentication. Every step is bounded by the
//! hop's connect_timeout: russh itself waits forever on a silent peer.

use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, Handle};

use super::algorithms::{self, Offer};
use super::auth;
pub use super::handler::{Client, Forwarded, HostKeySeen};
use super::host_key::{Rules, ssh_dir};
use super::known_hosts::KnownHosts;
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
