//! The supervisor of one shared SSH session: connects the chain, publishes the handle to the
//! tunnels' listeners, watches it, and reconnects with jittered exponential backoff.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::{Event, Members, TunnelState};
use crate::config::model::{Hop, Policy};
use crate::prompt::Prompter;
use crate::ssh::client::{self, Chain};
use crate::tunnel::Stats;

/// Keeps one chain connected for the tunnels that share it: connects, publishes the handle,
/// watches it, reconnects. Its events are sent for every member tunnel.
pub(super) struct Supervisor {
    pub(super) hops: Vec<Hop>,
    pub(super) policy: Policy,
    /// The first tunnel's name: used in prompts.
    pub(super) label: String,
    pub(super) current: watch::Sender<Option<Arc<russh::client::Handle<client::Client>>>>,
    pub(super) events: broadcast::Sender<Event>,
    pub(super) members: Members,
    pub(super) prompter: Arc<Prompter>,
    /// Remote forwards to request after every connect, and where their connections go.
    pub(super) remote: Vec<RemoteSpec>,
    pub(super) reverse: Option<Arc<crate::tunnel::Reverse>>,
}

/// A remote forward: the bastion listens on `bind:port` (0: it picks) for `target` here.
#[derive(Clone, Debug)]
pub(super) struct RemoteSpec {
    pub bind: String,
    pub port: u16,
    pub target: (String, u16),
}

impl Supervisor {
    fn members(&self) -> Vec<(String, Arc<Stats>)> {
        self.members.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn state(&self, state: TunnelState) {
        for (name, stats) in self.members() {
            stats.log(state.to_string());
            if let Ok(mut u) = stats.up_since.lock() {
                *u = (state == TunnelState::Up).then(std::time::Instant::now);
            }
            let _ = self.events.send(Event::State {
                name,
                state: state.clone(),
            });
        }
    }

    fn error(&self, message: &str) {
        for (name, stats) in self.members() {
            stats.log(format!("error: {message}"));
            if let Ok(mut e) = stats.last_error.lock() {
                *e = Some(message.to_string());
            }
            let _ = self.events.send(Event::Error {
                name,
                message: message.to_string(),
            });
        }
    }

    fn warning(&self, message: &str) {
        for (name, stats) in self.members() {
            stats.log(format!("warning: {message}"));
            let _ = self.events.send(Event::Warning {
                name,
                message: message.to_string(),
            });
        }
    }

    /// Asks the bastion to listen for every remote forward (again, after a reconnect).
    async fn request_remote(&self, chain: &Chain) {
        let Some(reverse) = &self.reverse else { return };
        reverse.clear();
        let last = chain.last();
        let timeout = self
            .hops
            .last()
            .map(|h| h.connect_timeout.value.0)
            .unwrap_or(Duration::from_secs(15));
        let via = self
            .hops
            .iter()
            .map(|h| h.name.clone())
            .collect::<Vec<_>>()
            .join(" -> ");
        for spec in &self.remote {
            let asked = tokio::time::timeout(
                timeout,
                last.tcpip_forward(spec.bind.clone(), u32::from(spec.port)),
            )
            .await;
            let target =
                crate::config::forward::Endpoint::tcp(spec.target.0.clone(), spec.target.1)
                    .to_string();
            match asked {
                Ok(Ok(bound)) => {
                    let port = if spec.port == 0 { bound } else { u32::from(spec.port) };
                    reverse.add(port, spec.target.clone());
                    for (name, _) in self.members() {
                        let _ = self.events.send(Event::Listening { name, local: format!("{}:{port} on the bastion", spec.bind), target: target.clone(), via: via.clone() });
                    }
                }
                Ok(Err(e)) => self.error(&format!(
                    "the bastion refused to listen on {}:{} ({e}): the port is in use there, or sshd forbids it (AllowTcpForwarding, GatewayPorts for a non-loopback address, PermitListen)",
                    spec.bind, spec.port
                )),
                Err(_) => self.error(&format!("the bastion did not answer the request to listen on {}:{}", spec.bind, spec.port)),
            }
        }
    }

    pub(super) async fn run(self, stop: CancellationToken) {
        let mut attempt: u32 = 0;
        let mut ever_up = false;
        loop {
            self.state(TunnelState::Connecting);
            let forwarded = self
                .reverse
                .clone()
                .map(|r| r as Arc<dyn client::Forwarded>);
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = client::connect(&self.hops, &self.prompter, &self.label, forwarded.as_ref()) => r,
            };
            match result {
                Ok(chain) => {
                    for w in &chain.warnings {
                        self.warning(w);
                    }
                    if ever_up {
                        for (_, stats) in self.members() {
                            stats.reconnects.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    ever_up = true;
                    attempt = 0;
                    self.request_remote(&chain).await;
                    let _ = self.current.send(Some(Arc::clone(chain.last())));
                    self.state(TunnelState::Up);
                    let lost = wait_closed(&chain, &stop).await;
                    let _ = self.current.send(None);
                    if !lost {
                        disconnect(&chain).await;
                        return;
                    }
                    self.error("the SSH connection was lost");
                }
                Err(e) => {
                    self.error(&e.to_string());
                    // A first attempt that fails is reported, like ssh; only a tunnel that was
                    // up is re-established by itself.
                    if !ever_up {
                        self.state(TunnelState::Failed {
                            error: e.to_string(),
                        });
                        return;
                    }
                }
            }
            if !self.policy.auto_reconnect.value {
                self.state(TunnelState::Failed {
                    error: "the connection was lost and auto_reconnect is off".into(),
                });
                return;
            }
            attempt += 1;
            let max = self.policy.max_reconnect_attempts.value;
            if max > 0 && attempt > max {
                self.state(TunnelState::Failed {
                    error: format!("gave up after {max} reconnect attempts"),
                });
                return;
            }
            let delay = backoff(self.policy.reconnect_delay.value.0, attempt);
            self.state(TunnelState::Reconnecting {
                in_secs: delay.as_secs_f64(),
                attempt,
            });
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}

/// Exponential backoff from `base`, capped at 30 s, with ±20% jitter.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(16) as i32);
    let capped = exp.clamp(0.05, 30.0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.8 + 0.4 * (f64::from(nanos % 1000) / 1000.0);
    Duration::from_secs_f64(capped * jitter)
}

/// Waits until the chain drops (true) or the session is stopped (false).
async fn wait_closed(chain: &Chain, stop: &CancellationToken) -> bool {
    loop {
        if chain.is_closed() {
            return true;
        }
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

async fn disconnect(chain: &Chain) {
    for h in chain.handles.iter().rev() {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            h.disconnect(russh::Disconnect::ByApplication, "", "en"),
        )
        .await;
    }
}
