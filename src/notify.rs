//! Notifications: which engine events are news to a person (a tunnel dropped, failed, came
//! back, reached its time limit; its database started or stopped answering), and the two
//! ways they are delivered: the TUI's terminal notification (OSC 777 / OSC 9, else the bell)
//! and the daemon's `notify_command`.
//!
//! [`Tracker`] turns the stream of [`Event`]s into [`Notice`]s; it keeps the last state and
//! health of each tunnel, so only a change is news. [`Runner`] runs the user's command for a
//! notice with the notice in its environment, one at a time, each bounded in time
//! ([`COMMAND_TIMEOUT`]), with at most [`QUEUE`] waiting (older ones are dropped and logged).
//! It imports the engine's types only, nothing of the TUI or the CLI.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::engine::{Event, TunnelState};

/// The daemon's desktop notification on macOS (`desktop = true` and no `command`): the
/// message is read from the environment inside AppleScript, never put into the script, so no
/// text of a tunnel's can change what runs.
pub const MACOS_DESKTOP: &str = r#"osascript -e 'display notification (system attribute "WARREN_MESSAGE") with title "warren"'"#;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Up for the first time since it was opened.
    Up,
    /// A tunnel that was up lost its connection (it reconnects by itself).
    Dropped,
    /// Up again after a drop.
    Reconnected,
    /// Failed for good (it will not reconnect by itself).
    Failed,
    /// Closed by its own time limit (max_duration, idle_timeout).
    Expired,
    /// Its database stopped answering (the tunnel may still be up).
    HealthFailing,
    /// Its database answers again.
    HealthOk,
    /// Getting its lost session back needs a person's answer (a second factor): it asks
    /// now, or it waits for someone to reconnect it.
    NeedsYou,
}

/// Every kind with the name it has in the settings file and in `WARREN_EVENT`.
pub const KINDS: [(&str, Kind); 8] = [
    ("up", Kind::Up),
    ("dropped", Kind::Dropped),
    ("reconnected", Kind::Reconnected),
    ("failed", Kind::Failed),
    ("expired", Kind::Expired),
    ("health-failing", Kind::HealthFailing),
    ("health-ok", Kind::HealthOk),
    ("needs-you", Kind::NeedsYou),
];

impl Kind {
    pub fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    pub fn parse(s: &str) -> Option<Kind> {
        KINDS.iter().find(|(n, _)| *n == s).map(|(_, k)| *k)
    }
}

/// One piece of news about one tunnel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub kind: Kind,
    pub tunnel: String,
    /// The reason or the database's answer, as the engine said it (not escaped).
    pub detail: String,
}

impl Notice {
    /// One line for a person: `orders dropped: keepalive timeout`.
    pub fn message(&self) -> String {
        let what = match self.kind {
            Kind::Up => "is up",
            Kind::Dropped => "dropped",
            Kind::Reconnected => "is up again",
            Kind::Failed => "failed",
            Kind::Expired => "closed",
            Kind::HealthFailing => "database failing",
            Kind::HealthOk => "database ok",
            Kind::NeedsYou => "needs you",
        };
        if self.detail.is_empty() {
            format!("{} {what}", self.tunnel)
        } else {
            format!("{} {what}: {}", self.tunnel, self.detail)
        }
    }
}

#[derive(Default)]
struct Seen {
    state: Option<TunnelState>,
    healthy: Option<bool>,
    /// Why it last went down (for the Dropped notice), from an error event.
    last_error: Option<String>,
    /// It dropped and has not been up since (the next up is a recovery, whatever states
    /// the reconnection went through).
    dropped: bool,
    /// A person was told it needs them, and it has not been up since.
    told_needs_you: bool,
}

/// Turns events into notices: only changes are news.
#[derive(Default)]
pub struct Tracker {
    seen: HashMap<String, Seen>,
}

impl Tracker {
    pub fn new() -> Self {
        Tracker::default()
    }

    /// The notice an event makes, if any.
    pub fn event(&mut self, ev: &Event) -> Option<Notice> {
        match ev {
            Event::State { name, state } => {
                let seen = self.seen.entry(name.clone()).or_default();
                let prev = seen.state.replace(state.clone());
                let notice = |kind, detail: String| Notice {
                    kind,
                    tunnel: name.clone(),
                    detail,
                };
                if *state == TunnelState::Up {
                    seen.told_needs_you = false;
                }
                match (prev, state) {
                    (Some(TunnelState::Up), TunnelState::Up) => None,
                    (_, TunnelState::Up) if std::mem::take(&mut seen.dropped) => {
                        Some(notice(Kind::Reconnected, String::new()))
                    }
                    (_, TunnelState::Up) => Some(notice(Kind::Up, String::new())),
                    (Some(TunnelState::Up), TunnelState::Reconnecting { .. }) => {
                        seen.dropped = true;
                        Some(notice(
                            Kind::Dropped,
                            seen.last_error.take().unwrap_or_default(),
                        ))
                    }
                    (_, TunnelState::Failed { error }) => Some(notice(Kind::Failed, error.clone())),
                    // On demand: a client's connection could not get its session.
                    (p, TunnelState::OnDemand { error: Some(e) }) if p.as_ref() != Some(state) => {
                        Some(notice(Kind::Failed, e.clone()))
                    }
                    // Once per wait for a person: asked, then (unanswered) waiting, is one.
                    (_, TunnelState::NeedsYou { what, asking })
                        if !std::mem::replace(&mut seen.told_needs_you, true) =>
                    {
                        Some(notice(
                            Kind::NeedsYou,
                            if *asking {
                                format!("answer {what} to reconnect")
                            } else {
                                format!("reconnecting needs {what}")
                            },
                        ))
                    }
                    (_, TunnelState::Expired { reason }) => {
                        Some(notice(Kind::Expired, reason.clone()))
                    }
                    (_, TunnelState::Down) => {
                        // Closed by the user: not news, and it starts afresh next time.
                        self.seen.remove(name);
                        None
                    }
                    _ => None,
                }
            }
            Event::Error { name, message } => {
                self.seen.entry(name.clone()).or_default().last_error = Some(message.clone());
                None
            }
            Event::Health { name, health } => {
                let seen = self.seen.entry(name.clone()).or_default();
                let prev = seen.healthy.replace(health.ok);
                let kind = match (prev, health.ok) {
                    (Some(a), b) if a == b => return None,
                    // The first check passing is not news; failing is.
                    (None, true) => return None,
                    (_, true) => Kind::HealthOk,
                    (_, false) => Kind::HealthFailing,
                };
                Some(Notice {
                    kind,
                    tunnel: name.clone(),
                    detail: health.detail.clone(),
                })
            }
            _ => None,
        }
    }
}

/// The longest a notify command may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// Notices waiting for the command; more are dropped (and logged).
pub const QUEUE: usize = 32;

/// Runs the user's notify command for each notice it is given, one at a time.
#[derive(Clone)]
pub struct Runner {
    queue: mpsc::Sender<Notice>,
}

impl Runner {
    /// Starts the runner on the current runtime. `command` runs with `sh -c`, and these in
    /// its environment: `WARREN_EVENT` (the kind, e.g. `dropped`), `WARREN_TUNNEL`,
    /// `WARREN_DETAIL` and `WARREN_MESSAGE` (one line for a person).
    pub fn start(command: String) -> Runner {
        let (tx, mut rx) = mpsc::channel::<Notice>(QUEUE);
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                run(&command, &n).await;
            }
        });
        Runner { queue: tx }
    }

    /// Hands a notice to the command (dropped, and logged, when too many wait).
    pub fn notify(&self, n: Notice) {
        if let Err(mpsc::error::TrySendError::Full(n)) = self.queue.try_send(n) {
            tracing::warn!(
                tunnel = %n.tunnel,
                "notify_command is behind ({QUEUE} waiting): {} not sent",
                n.kind.name()
            );
        }
    }
}

/// A value for the environment: no NUL (it would end the string), at most 4 KiB.
fn env_value(s: &str) -> String {
    let mut v: String = s.chars().filter(|c| *c != '\0').collect();
    if v.len() > 4096 {
        let mut cut = 4096;
        while !v.is_char_boundary(cut) {
            cut -= 1;
        }
        v.truncate(cut);
    }
    v
}

async fn run(command: &str, n: &Notice) {
    use tokio::io::AsyncReadExt;
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("WARREN_EVENT", n.kind.name())
        .env("WARREN_TUNNEL", env_value(&n.tunnel))
        .env("WARREN_DETAIL", env_value(&n.detail))
        .env("WARREN_MESSAGE", env_value(&n.message()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("notify_command could not start: {e}");
            return;
        }
    };
    let mut stderr = child.stderr.take();
    let waited = tokio::time::timeout(COMMAND_TIMEOUT, async {
        // At most 4 KiB of what it says is kept for the log; the rest is read and dropped.
        let mut kept = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let mut buf = [0u8; 4096];
            while let Ok(k) = s.read(&mut buf).await {
                if k == 0 {
                    break;
                }
                let room = 4096usize.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..k.min(room)]);
            }
        }
        (child.wait().await, kept)
    })
    .await;
    match waited {
        Ok((Ok(status), _)) if status.success() => {
            tracing::debug!(tunnel = %n.tunnel, "notify_command ran for {}", n.kind.name());
        }
        Ok((Ok(status), said)) => tracing::warn!(
            tunnel = %n.tunnel,
            "notify_command {status}: {}",
            crate::text::escape(String::from_utf8_lossy(&said).trim())
        ),
        Ok((Err(e), _)) => tracing::warn!("notify_command: {e}"),
        Err(_) => {
            // kill_on_drop ends it; say so.
            tracing::warn!(
                "notify_command ran longer than {}s and was killed",
                COMMAND_TIMEOUT.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Health;

    fn state(name: &str, state: TunnelState) -> Event {
        Event::State {
            name: name.into(),
            state,
        }
    }

    fn health(ok: bool) -> Event {
        Event::Health {
            name: "db".into(),
            health: Health {
                ok,
                detail: if ok { "PostgreSQL answered" } else { "refused" }.into(),
                latency_ms: ok.then_some(3),
                brief: None,
                checked_at: "2026-11-30T12:00:00Z".into(),
            },
        }
    }

    #[test]
    fn only_changes_are_news() {
        let mut t = Tracker::new();
        let kinds: Vec<Option<Kind>> = [
            state("db", TunnelState::Connecting),
            state("db", TunnelState::Up),
            health(true),
            health(true),
            Event::Error {
                name: "db".into(),
                message: "keepalive timeout".into(),
            },
            state(
                "db",
                TunnelState::Reconnecting {
                    in_secs: 1.0,
                    attempt: 1,
                },
            ),
            state(
                "db",
                TunnelState::Reconnecting {
                    in_secs: 2.0,
                    attempt: 2,
                },
            ),
            // The engine may say it is connecting before it is up again.
            state("db", TunnelState::Connecting),
            state("db", TunnelState::Up),
            health(false),
            health(false),
            health(true),
            state(
                "db",
                TunnelState::Expired {
                    reason: "its time limit (1h) was reached".into(),
                },
            ),
        ]
        .iter()
        .map(|e| t.event(e).map(|n| n.kind))
        .collect();
        use Kind::*;
        assert_eq!(
            kinds,
            [
                None,
                Some(Up),
                None,
                None,
                None,
                Some(Dropped),
                None,
                None,
                Some(Reconnected),
                Some(HealthFailing),
                None,
                Some(HealthOk),
                Some(Expired),
            ]
        );
    }

    #[test]
    fn a_person_is_told_once_per_wait_that_the_tunnel_needs_them() {
        let mut t = Tracker::new();
        let needs = |asking| {
            state(
                "db",
                TunnelState::NeedsYou {
                    what: "the bastion's keyboard-interactive question \"Code:\"".into(),
                    asking,
                },
            )
        };
        let lost = || {
            state(
                "db",
                TunnelState::Reconnecting {
                    in_secs: 1.0,
                    attempt: 1,
                },
            )
        };
        let said: Vec<Option<String>> = [
            state("db", TunnelState::Up),
            lost(),
            state("db", TunnelState::Connecting),
            needs(true),
            // Not answered: it waits. The person was told already.
            state("db", TunnelState::Connecting),
            needs(false),
            // Reconnected by hand, asked again, answered.
            state("db", TunnelState::Connecting),
            needs(true),
            state("db", TunnelState::Connecting),
            state("db", TunnelState::Up),
            // The next drop that needs them is news again.
            lost(),
            state("db", TunnelState::Connecting),
            needs(true),
        ]
        .iter()
        .map(|e| t.event(e).map(|n| n.message()))
        .collect();
        let ask = Some(
            "db needs you: answer the bastion's keyboard-interactive question \"Code:\" to reconnect"
                .to_string(),
        );
        let dropped = Some("db dropped".to_string());
        assert_eq!(
            said,
            [
                Some("db is up".to_string()),
                dropped.clone(),
                None,
                ask.clone(),
                None,
                None,
                None,
                None,
                None,
                Some("db is up again".to_string()),
                dropped,
                None,
                ask
            ]
        );
        assert_eq!(Kind::parse("needs-you"), Some(Kind::NeedsYou));
    }

    #[test]
    fn a_drop_says_why_and_a_close_is_not_news() {
        let mut t = Tracker::new();
        t.event(&state("db", TunnelState::Up));
        t.event(&Event::Error {
            name: "db".into(),
            message: "keepalive timeout".into(),
        });
        let n = t.event(&state(
            "db",
            TunnelState::Reconnecting {
                in_secs: 1.0,
                attempt: 1,
            },
        ));
        assert_eq!(
            n.map(|n| n.message()).as_deref(),
            Some("db dropped: keepalive timeout")
        );
        assert_eq!(t.event(&state("db", TunnelState::Down)), None);
        // Opened again: up is news again.
        assert_eq!(
            t.event(&state("db", TunnelState::Up)).map(|n| n.kind),
            Some(Kind::Up)
        );
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for (n, k) in KINDS {
            assert_eq!(Kind::parse(n), Some(k));
            assert_eq!(k.name(), n);
        }
    }

    #[tokio::test]
    async fn the_command_gets_the_notice_in_its_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("got");
        let r = Runner::start(format!(
            "printf '%s|%s|%s\\n' \"$WARREN_EVENT\" \"$WARREN_TUNNEL\" \"$WARREN_MESSAGE\" >> {}",
            out.display()
        ));
        r.notify(Notice {
            kind: Kind::Dropped,
            tunnel: "db".into(),
            detail: "keepalive\0 timeout".into(),
        });
        let mut got = String::new();
        for _ in 0..100 {
            got = std::fs::read_to_string(&out).unwrap_or_default();
            if !got.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(got, "dropped|db|db dropped: keepalive timeout\n");
    }
}
