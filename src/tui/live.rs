//! What the TUI keeps of each tunnel as the engine reports it: the counters, a throughput
//! history for the sparklines, the log, and a timeline of what happened to it (opened,
//! dropped, reconnected, failed, closed) with times. Everything is bounded: [`HISTORY`]
//! samples, `tunnel::LOG_LINES` log lines and [`TIMELINE`] moments per tunnel.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine::{Health, TunnelState, TunnelStats};

/// Throughput samples kept per tunnel for the sparkline.
pub const HISTORY: usize = 60;
/// Moments kept per tunnel in its timeline.
pub const TIMELINE: usize = 100;

/// What the TUI keeps of one tunnel: its latest counters and what the screen adds.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub stats: TunnelStats,
    /// Bytes a second, both ways, newest last.
    pub history: VecDeque<u64>,
    pub listening: Vec<String>,
    /// Log lines with the time they came, oldest first.
    pub log: VecDeque<(SystemTime, String)>,
    /// State changes with their times, oldest first.
    pub timeline: VecDeque<Moment>,
    /// The latest check of the database behind the tunnel.
    pub health: Option<Health>,
    /// When the reconnect it waits for starts (the engine says "in N s" once; the list
    /// counts down from here).
    pub retry_at: Option<SystemTime>,
}

impl Live {
    /// Seconds until the reconnect it waits for, at `now`.
    pub fn retry_in(&self, now: SystemTime) -> Option<f64> {
        self.retry_at.map(|at| {
            at.duration_since(now)
                .unwrap_or(Duration::ZERO)
                .as_secs_f64()
        })
    }

    /// The latest throughput sample (bytes a second, both ways).
    pub fn rate(&self) -> u64 {
        self.history.back().copied().unwrap_or(0)
    }

    pub fn push_log(&mut self, at: SystemTime, line: String) {
        if self.log.len() >= crate::tunnel::LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back((at, line));
    }

    /// Takes a health check's result; a change (or the first result) goes in the timeline.
    pub fn health(&mut self, at: SystemTime, h: Health) {
        if self.health.as_ref().map(|p| p.ok) != Some(h.ok) {
            self.push_log(at, format!("health: {}", h.short()));
            self.push_moment(
                at,
                Happened::Health {
                    ok: h.ok,
                    detail: h.short(),
                },
            );
        }
        self.health = Some(h);
    }

    fn push_moment(&mut self, at: SystemTime, what: Happened) {
        if self.timeline.len() >= TIMELINE {
            self.timeline.pop_front();
        }
        self.timeline.push_back(Moment { at, what });
    }

    /// Takes a new throughput sample from fresh counters.
    pub fn sample(&mut self, stats: TunnelStats) {
        let delta = (stats.bytes_in + stats.bytes_out)
            .saturating_sub(self.stats.bytes_in + self.stats.bytes_out);
        if self.history.len() >= HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(delta);
        let last_error = stats.last_error.clone().or(self.stats.last_error.take());
        self.stats = stats;
        self.stats.last_error = last_error;
    }
}

/// One moment of a tunnel's timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Moment {
    pub at: SystemTime,
    pub what: Happened,
}

/// What happened to a tunnel.
#[derive(Clone, Debug, PartialEq)]
pub enum Happened {
    Opening,
    Opened,
    /// It was up and lost its connection.
    Dropped,
    /// A reconnect attempt is scheduled.
    Retrying {
        attempt: u32,
        in_secs: f64,
    },
    Reconnected,
    Failed(String),
    /// Closed by its own time limit, and why.
    Expired(String),
    Closed,
    /// The database behind it started or stopped answering (`db ok 3 ms`, `db failing: …`).
    Health {
        ok: bool,
        detail: String,
    },
}

impl Happened {
    /// The words the timeline shows.
    pub fn text(&self) -> String {
        match self {
            Happened::Opening => "opening".into(),
            Happened::Opened => "opened".into(),
            Happened::Dropped => "dropped".into(),
            Happened::Retrying { attempt, in_secs } => {
                format!("reconnect attempt {attempt} in {in_secs:.0}s")
            }
            Happened::Reconnected => "reconnected".into(),
            Happened::Failed(e) => format!("failed: {e}"),
            Happened::Expired(r) => format!("closed: {r}"),
            Happened::Closed => "closed".into(),
            Happened::Health { detail, .. } => detail.clone(),
        }
    }

    /// The symbol the timeline shows (and what a state badge shows for the same state).
    pub fn symbol(&self) -> &'static str {
        match self {
            Happened::Opening | Happened::Retrying { .. } => "◌",
            Happened::Opened | Happened::Reconnected => "●",
            Happened::Dropped => "↯",
            Happened::Failed(_) => "✘",
            Happened::Expired(_) => "⊘",
            Happened::Closed => "○",
            Happened::Health { ok: true, .. } => "✓",
            Happened::Health { ok: false, .. } => "✗",
        }
    }
}

/// The moments a state change makes, given the state before it.
pub fn moments(before: &TunnelState, after: &TunnelState) -> Vec<Happened> {
    use TunnelState as S;
    match (before, after) {
        (S::Down | S::Failed { .. }, S::Connecting) => vec![Happened::Opening],
        (S::Connecting, S::Up) | (S::Down | S::Failed { .. }, S::Up) => vec![Happened::Opened],
        (S::Reconnecting { .. }, S::Up) => vec![Happened::Reconnected],
        (S::Up, S::Reconnecting { attempt, in_secs }) => vec![
            Happened::Dropped,
            Happened::Retrying {
                attempt: *attempt,
                in_secs: *in_secs,
            },
        ],
        (S::Reconnecting { attempt: a, .. }, S::Reconnecting { attempt, in_secs })
            if a != attempt =>
        {
            vec![Happened::Retrying {
                attempt: *attempt,
                in_secs: *in_secs,
            }]
        }
        (S::Connecting, S::Reconnecting { attempt, in_secs }) => vec![Happened::Retrying {
            attempt: *attempt,
            in_secs: *in_secs,
        }],
        (_, S::Failed { error }) if !matches!(before, S::Failed { .. }) => {
            vec![Happened::Failed(error.clone())]
        }
        (_, S::Expired { reason }) if !matches!(before, S::Expired { .. }) => {
            vec![Happened::Expired(reason.clone())]
        }
        (S::Up | S::Connecting | S::Reconnecting { .. }, S::Down) => vec![Happened::Closed],
        _ => Vec::new(),
    }
}

/// Records a state change in the timeline; returns what happened.
pub fn record(
    live: &mut Live,
    before: &TunnelState,
    after: &TunnelState,
    at: SystemTime,
) -> Vec<Happened> {
    live.retry_at = match after {
        // The wait comes over the daemon's wire: a value no Duration holds is no wait.
        TunnelState::Reconnecting { in_secs, .. } => Duration::try_from_secs_f64(*in_secs)
            .ok()
            .and_then(|d| at.checked_add(d))
            .or(Some(at)),
        _ => None,
    };
    let happened = moments(before, after);
    for h in &happened {
        live.push_moment(at, h.clone());
    }
    happened
}

/// `HH:MM:SS` of a time, `offset` seconds east of UTC.
pub fn clock(t: SystemTime, offset: i64) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64
        + offset;
    let day = secs.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

/// This machine's offset from UTC now, in seconds (0 when it cannot be told).
pub fn local_offset() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: an all-zero tm is a valid out-parameter; localtime_r is thread-safe.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    let ok = unsafe { !libc::localtime_r(&now, &mut tm).is_null() };
    if ok { tm.tm_gmtoff } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drop_and_a_reconnect_make_a_story() {
        let mut live = Live::default();
        let t = UNIX_EPOCH + Duration::from_secs(3600 * 5 + 61);
        let states = [
            TunnelState::Down,
            TunnelState::Connecting,
            TunnelState::Up,
            TunnelState::Reconnecting {
                in_secs: 1.0,
                attempt: 1,
            },
            TunnelState::Reconnecting {
                in_secs: 0.5,
                attempt: 1,
            },
            TunnelState::Reconnecting {
                in_secs: 2.0,
                attempt: 2,
            },
            TunnelState::Up,
            TunnelState::Down,
        ];
        for w in states.windows(2) {
            record(&mut live, &w[0], &w[1], t);
        }
        let told: Vec<String> = live.timeline.iter().map(|m| m.what.text()).collect();
        assert_eq!(
            told,
            [
                "opening",
                "opened",
                "dropped",
                "reconnect attempt 1 in 1s",
                "reconnect attempt 2 in 2s",
                "reconnected",
                "closed"
            ]
        );
        assert_eq!(clock(t, 0), "05:01:01");
        assert_eq!(clock(t, 3600), "06:01:01");
    }

    #[test]
    fn the_timeline_and_the_log_are_bounded() {
        let mut live = Live::default();
        for _ in 0..TIMELINE * 3 {
            record(
                &mut live,
                &TunnelState::Down,
                &TunnelState::Connecting,
                UNIX_EPOCH,
            );
            live.push_log(UNIX_EPOCH, "x".into());
        }
        assert_eq!(live.timeline.len(), TIMELINE);
        assert_eq!(live.log.len(), crate::tunnel::LOG_LINES);
    }
}
