//! The supervisor of one SSH session: connects the chain, publishes the handle to the
//! tunnels' listeners, watches it, and reconnects with jittered exponential backoff. It
//! reports to the actor (tagged with its session id, so a report from a session already
//! replaced is dropped); the actor owns the tunnels and tells the clients.
//!
//! A host key a person rejected ends it (the tunnels fail) instead of a retry that asks again.
//!
//! On demand (with a [`Demand`]) it connects only when a client connection needs the session,
//! closes the session after the demand's idle time with no client, and goes back to waiting;
//! a session lost or not opened is not retried by itself either: the next client opens it
//! (after a pause that grows with each failure in a row, during which clients are told the
//! failure at once).
//!
//! A [`Kick`] makes it act at once: `Check` pings the live session and treats no answer
//! within [`CHECK_TIMEOUT`] as a lost connection (after a resume from sleep or a network
//! change); `Now` drops a live session and connects again, or ends a backoff wait.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::TunnelState;
use crate::config::model::{Hop, Policy};
use crate::prompt::Prompter;
use crate::ssh::client::{self, Chain};
use crate::tunnel::Demand;

/// How long a re-check waits for the server's answer to a ping.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What a supervisor tells the actor.
#[derive(Debug)]
pub(super) enum Report {
    State {
        session: u64,
        state: TunnelState,
        /// The session came back after a loss.
        reconnected: bool,
    },
    Error {
        session: u64,
        message: String,
    },
    Warning {
        session: u64,
        message: String,
    },
    /// A remote forward is listening on the bastion.
    Listening {
        session: u64,
        local: String,
        target: String,
    },
}

/// Act now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kick {
    /// Ping the live session; reconnect if it does not answer.
    Check,
    /// Reconnect now.
    Now,
}

/// Keeps one chain connected for the tunnels that share it.
pub(super) struct Supervisor {
    pub(super) id: u64,
    pub(super) hops: Vec<Hop>,
    pub(super) policy: Policy,
    /// The first tunnel's name: used in questions.
    pub(super) label: String,
    pub(super) current: watch::Sender<Option<Arc<russh::client::Handle<client::Client>>>>,
    pub(super) reports: mpsc::UnboundedSender<Report>,
    pub(super) kicks: mpsc::UnboundedReceiver<Kick>,
    pub(super) prompter: Arc<Prompter>,
    /// Remote forwards to request after every connect, and where their connections go.
    pub(super) remote: Vec<RemoteSpec>,
    pub(super) reverse: Option<Arc<crate::tunnel::Reverse>>,
    /// On demand: connect when a client needs the session, close it when idle.
    pub(super) demand: Option<Arc<Demand>>,
}

/// Why [`Supervisor::watch`] returned.
enum Ended {
    /// Stopped: the tunnels closed.
    Stopped,
    /// The connection was lost, or judged lost.
    Lost(String),
    /// On demand, and no client connection for the idle time.
    Idle,
}

/// A remote forward: the bastion listens on `bind:port` (0: it picks) for `target` here.
#[derive(Clone, Debug)]
pub(super) struct RemoteSpec {
    pub bind: String,
    pub port: u16,
    pub target: (String, u16),
}

impl Supervisor {
    fn report(&self, r: Report) {
        let _ = self.reports.send(r);
    }

    fn state(&self, state: TunnelState, reconnected: bool) {
        self.report(Report::State {
            session: self.id,
            state,
            reconnected,
        });
    }

    fn error(&self, message: String) {
        self.report(Report::Error {
            session: self.id,
            message,
        });
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
                    self.report(Report::Listening {
                        session: self.id,
                        local: format!("{}:{port} on the bastion", spec.bind),
                        target,
                    });
                }
                Ok(Err(e)) => self.error(format!(
                    "the bastion refused to listen on {}:{} ({e}): the port is in use there, or sshd forbids it (AllowTcpForwarding, GatewayPorts for a non-loopback address, PermitListen)",
                    spec.bind, spec.port
                )),
                Err(_) => self.error(format!(
                    "the bastion did not answer the request to listen on {}:{}",
                    spec.bind, spec.port
                )),
            }
        }
    }

    /// Says it is connecting and connects the chain; `None` when stopped meanwhile. On a
    /// reconnect, while a question waits for a person the tunnel says it needs you.
    async fn connect(
        &self,
        stop: &CancellationToken,
        reconnect: bool,
    ) -> Option<Result<Chain, client::ConnectError>> {
        self.state(TunnelState::Connecting, false);
        let forwarded = self
            .reverse
            .clone()
            .map(|r| r as Arc<dyn client::Forwarded>);
        let mut questions = self.prompter.changes();
        let mut shown = None;
        let connecting =
            client::connect(&self.hops, &self.prompter, &self.label, forwarded.as_ref());
        tokio::pin!(connecting);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return None,
                r = &mut connecting => return Some(r),
                Ok(()) = questions.changed(), if reconnect => {
                    let asking = self.prompter.asking(&self.label);
                    if asking != shown {
                        self.state(
                            match &asking {
                                Some(what) => TunnelState::NeedsYou { what: what.clone(), asking: true },
                                None => TunnelState::Connecting,
                            },
                            false,
                        );
                        shown = asking;
                    }
                }
            }
        }
    }

    /// After a reconnect that only a person can get further: waits, asking nothing, until
    /// someone asks for a reconnect (or the tunnel is closed). False when stopped.
    async fn wait_for_person(&mut self, what: &str, stop: &CancellationToken) -> bool {
        self.state(
            TunnelState::NeedsYou {
                what: what.to_string(),
                asking: false,
            },
            false,
        );
        loop {
            tokio::select! {
                _ = stop.cancelled() => return false,
                kick = self.kicks.recv() => match kick {
                    Some(Kick::Now) => return true,
                    // A re-check (after a resume or a network change) is not a person.
                    Some(Kick::Check) => {}
                    None => return false,
                },
            }
        }
    }

    pub(super) async fn run(mut self, stop: CancellationToken) {
        if let Some(demand) = self.demand.clone() {
            return self.on_demand(&demand, stop).await;
        }
        let mut attempt: u32 = 0;
        let mut ever_up = false;
        loop {
            let Some(result) = self.connect(&stop, ever_up).await else {
                return;
            };
            match result {
                Ok(mut chain) => {
                    for w in &chain.warnings {
                        self.report(Report::Warning {
                            session: self.id,
                            message: w.clone(),
                        });
                    }
                    attempt = 0;
                    self.request_remote(&chain).await;
                    let _ = self.current.send(Some(Arc::clone(chain.last())));
                    self.state(TunnelState::Up, ever_up);
                    ever_up = true;
                    let lost = self.watch(&mut chain, &stop).await;
                    let _ = self.current.send(None);
                    match lost {
                        Ended::Stopped | Ended::Idle => {
                            disconnect(&chain).await;
                            return;
                        }
                        Ended::Lost(why) => {
                            // Said goodbye in the background: a frozen server must not delay
                            // the reconnect. The chain (and its ProxyCommands) go with it.
                            tokio::spawn(async move { disconnect(&chain).await });
                            self.error(why);
                        }
                    }
                }
                Err(e) => {
                    self.error(e.to_string());
                    // Only a person gets it back (a second factor): no attempt is made until
                    // one asks, so nothing loops on a question or locks the account.
                    if ever_up && let Some(what) = e.needs_person() {
                        if !self.wait_for_person(&what, &stop).await {
                            return;
                        }
                        attempt = 0;
                        continue;
                    }
                    // A first attempt that fails is reported, like ssh; only a tunnel that was
                    // up is re-established by itself. A host key a person rejected stays
                    // rejected: retrying would only ask again.
                    if !ever_up || matches!(e, client::ConnectError::HostKeyRejected { .. }) {
                        self.state(
                            TunnelState::Failed {
                                error: e.to_string(),
                            },
                            false,
                        );
                        return;
                    }
                }
            }
            if !self.policy.auto_reconnect.value {
                self.state(
                    TunnelState::Failed {
                        error: "the connection was lost and auto_reconnect is off".into(),
                    },
                    false,
                );
                return;
            }
            attempt += 1;
            let max = self.policy.max_reconnect_attempts.value;
            if max > 0 && attempt > max {
                self.state(
                    TunnelState::Failed {
                        error: format!("gave up after {max} reconnect attempts"),
                    },
                    false,
                );
                return;
            }
            let delay = backoff(self.policy.reconnect_delay.value.0, attempt);
            self.state(
                TunnelState::Reconnecting {
                    in_secs: delay.as_secs_f64(),
                    attempt,
                },
                false,
            );
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
                // Any kick ends the wait: try now.
                Some(_) = self.kicks.recv() => {}
            }
        }
    }

    /// The on-demand loop: wait for a client, connect, serve until idle or lost, again.
    async fn on_demand(mut self, demand: &Demand, stop: CancellationToken) {
        let mut failures: u32 = 0;
        let mut last: Option<String> = None;
        let mut pause = Duration::ZERO;
        loop {
            self.state(
                TunnelState::OnDemand {
                    error: last.clone(),
                },
                false,
            );
            // After a failure, clients are told it at once for a while (see Demand::failed).
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(std::mem::take(&mut pause)) => {}
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = demand.wanted() => {}
            }
            let Some(result) = self.connect(&stop, false).await else {
                return;
            };
            let mut chain = match result {
                Ok(chain) => chain,
                Err(e) => {
                    let why = e.to_string();
                    self.error(format!("could not open the session on demand: {why}"));
                    if matches!(e, client::ConnectError::HostKeyRejected { .. }) {
                        demand.failed(&why, Duration::from_secs(365 * 24 * 3600));
                        self.state(TunnelState::Failed { error: why }, false);
                        return;
                    }
                    failures += 1;
                    pause = backoff(self.policy.reconnect_delay.value.0, failures);
                    demand.failed(&why, pause);
                    last = Some(why);
                    continue;
                }
            };
            for w in &chain.warnings {
                self.report(Report::Warning {
                    session: self.id,
                    message: w.clone(),
                });
            }
            failures = 0;
            last = None;
            demand.opened();
            self.request_remote(&chain).await;
            let _ = self.current.send(Some(Arc::clone(chain.last())));
            self.state(TunnelState::Up, false);
            let ended = self.watch(&mut chain, &stop).await;
            let _ = self.current.send(None);
            match ended {
                Ended::Stopped => {
                    disconnect(&chain).await;
                    return;
                }
                Ended::Idle => {
                    self.report(Report::Warning {
                        session: self.id,
                        message: format!(
                            "no client connection for {}: the SSH session is closed until the next one",
                            crate::config::model::Seconds(demand.idle)
                        ),
                    });
                    disconnect(&chain).await;
                }
                Ended::Lost(why) => {
                    tokio::spawn(async move { disconnect(&chain).await });
                    self.error(format!("{why}; the next client connection opens it again"));
                }
            }
        }
    }

    /// Waits until the chain drops or is judged lost, the session is stopped, or (on demand)
    /// no client has used it for the idle time.
    async fn watch(&mut self, chain: &mut Chain, stop: &CancellationToken) -> Ended {
        loop {
            if chain.is_closed() {
                return Ended::Lost(chain.why_lost().await);
            }
            if let Some(d) = &self.demand
                && d.idle_for().is_some_and(|t| t >= d.idle)
            {
                return Ended::Idle;
            }
            tokio::select! {
                _ = stop.cancelled() => return Ended::Stopped,
                // What a ProxyCommand writes to stderr goes to the tunnel's log.
                line = chain.proxy_line() => self.report(Report::Warning {
                    session: self.id,
                    message: line,
                }),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                kick = self.kicks.recv() => match kick {
                    Some(Kick::Check) => {
                        let answered =
                            tokio::time::timeout(CHECK_TIMEOUT, chain.last().send_ping()).await;
                        if !matches!(answered, Ok(Ok(()))) {
                            return Ended::Lost(format!(
                                "the SSH connection did not answer within {}s after a re-check",
                                CHECK_TIMEOUT.as_secs()
                            ));
                        }
                    }
                    Some(Kick::Now) => return Ended::Lost("reconnecting, as asked".into()),
                    None => {}
                },
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

async fn disconnect(chain: &Chain) {
    for h in chain.handles.iter().rev() {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            h.disconnect(russh::Disconnect::ByApplication, "", "en"),
        )
        .await;
    }
}
