//! Health of the database behind a tunnel. While the tunnel's session is up, the probe that
//! `warren doctor` runs (the database's own protocol, a login for PostgreSQL) goes through
//! that session every `health_interval`, on a channel of its own: it is not a client
//! connection, so it moves neither the tunnel's counters nor its idle timer.
//!
//! Each result is sent as [`Event::Health`] and kept in a short history
//! ([`HISTORY`]); a change between ok and failing is written to the tunnel's log and to the
//! warren log. A check is bounded by the hop's connect_timeout (at most [`CHECK_CAP`]) and
//! the probe's byte caps, and checks never overlap: the next starts `interval` after the
//! last ended.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::Event;
use super::actor::Current;
use crate::config::model::Connection;
use crate::tunnel::Stats;

/// The interval when neither the entry nor the user's settings give one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Results kept per tunnel.
pub const HISTORY: usize = 20;
/// The longest one check may take, whatever the connect_timeout.
pub const CHECK_CAP: Duration = Duration::from_secs(10);

/// One check of the database behind a tunnel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub ok: bool,
    /// What answered, or why it failed (the server's words are in it: escape before printing).
    pub detail: String,
    /// How long the check took, when it passed.
    pub latency_ms: Option<u64>,
    /// A failure in a few words ("login refused (1045)"), when the probe has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brief: Option<String>,
    /// When it ended (RFC 3339, UTC).
    pub checked_at: String,
}

impl Health {
    /// As the list shows it: `db ok 3 ms`, `db failing: …`.
    pub fn short(&self) -> String {
        format!("db {}", self.verdict())
    }

    /// "ok 3 ms", "login refused (1045)", "failing: no pg_hba entry": [`Health::short`]
    /// where the column says "DB".
    pub fn verdict(&self) -> String {
        match (self.ok, self.latency_ms, &self.brief) {
            (true, Some(ms), _) => format!("ok {ms} ms"),
            (true, None, _) => "ok".into(),
            (false, _, Some(b)) => b.clone(),
            (false, _, None) => format!("failing: {}", self.detail),
        }
    }
}

/// The results of one tunnel, oldest first.
pub type History = Arc<Mutex<VecDeque<Health>>>;

/// What a tunnel's checker needs.
pub(super) struct Checker {
    pub name: String,
    pub conn: Arc<Connection>,
    pub interval: Duration,
    pub current: Current,
    pub events: broadcast::Sender<std::sync::Arc<Event>>,
    pub stats: Arc<Stats>,
    pub history: History,
    pub stop: CancellationToken,
}

/// The interval for a connection: its own, else `DEFAULT_INTERVAL`; `None` when it has no
/// database to check or the interval is zero.
pub fn interval(conn: &Connection) -> Option<Duration> {
    conn.database.as_ref()?;
    let i = conn
        .policy
        .health_interval
        .as_ref()
        .map(|s| s.value.0)
        .unwrap_or(DEFAULT_INTERVAL);
    (!i.is_zero()).then_some(i)
}

pub(super) async fn run(mut c: Checker) {
    let timeout = c
        .conn
        .hops
        .last()
        .map(|h| h.connect_timeout.value.0)
        .unwrap_or(CHECK_CAP)
        .min(CHECK_CAP);
    loop {
        // Wait for the session (none while connecting or reconnecting).
        let session = tokio::select! {
            _ = c.stop.cancelled() => return,
            s = c.current.wait_for(Option::is_some) => match s {
                Ok(s) => s.clone(),
                Err(_) => return,
            },
        };
        let Some(session) = session else { continue };
        let started = Instant::now();
        let finding = tokio::select! {
            _ = c.stop.cancelled() => return,
            f = tokio::time::timeout(
                timeout + Duration::from_secs(1),
                crate::diagnose::probe_through(&c.conn, &session, timeout),
            ) => f.unwrap_or_else(|_| crate::diagnose::probe::Finding::fail(
                format!("no answer within {}s", timeout.as_secs()),
                "the database accepts connections but does not answer",
            )),
        };
        drop(session);
        // A session that went while the check ran says nothing about the database.
        if c.current.borrow().is_none() {
            continue;
        }
        let health = Health {
            ok: finding.ok,
            detail: finding.detail,
            brief: finding.brief,
            latency_ms: finding
                .ok
                .then(|| u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
            checked_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        };
        record(&c, health);
        tokio::select! {
            _ = c.stop.cancelled() => return,
            _ = tokio::time::sleep(c.interval) => {}
        }
    }
}

/// Keeps a result, logs a change, and tells the clients.
fn record(c: &Checker, health: Health) {
    let changed = {
        let Ok(mut h) = c.history.lock() else {
            return;
        };
        let changed = h.back().is_none_or(|last| last.ok != health.ok);
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(health.clone());
        changed
    };
    if changed {
        let line = health.short();
        c.stats.log(line.clone());
        if health.ok {
            tracing::info!(tunnel = %c.name, "{line}");
        } else {
            tracing::warn!(tunnel = %c.name, "{line}");
        }
    }
    let _ = c.events.send(std::sync::Arc::new(Event::Health {
        name: c.name.clone(),
        health,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        let mut h = Health {
            ok: true,
            detail: "PostgreSQL 16 accepted app".into(),
            latency_ms: Some(3),
            brief: None,
            checked_at: "2026-11-30T12:00:00Z".into(),
        };
        assert_eq!(h.short(), "db ok 3 ms");
        h.ok = false;
        h.latency_ms = None;
        h.detail = "no pg_hba entry".into();
        assert_eq!(h.short(), "db failing: no pg_hba entry");
        h.brief = Some("login refused (1045)".into());
        assert_eq!(h.short(), "db login refused (1045)");
    }
}
