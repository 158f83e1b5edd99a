//! Questions the engine asks a person: an unknown host key, a key passphrase,
//! keyboard-interactive prompts, a password. A question never blocks other tunnels: only the
//! connection that asked waits.
//!
//! Each question has its own answer timeout ([`Prompt::timeout`]), sent with it so a client
//! can show it. A question ends in exactly one way: answered, timed out, or withdrawn (its
//! connection attempt ended, or its tunnel was closed); then a `Withdrawn` notice goes out,
//! so every client showing it drops it, and an answer that arrives later does nothing.
//! With nobody to answer
//! (headless, BatchMode), every question is answered "no" at once.
//!
//! A host key accepted "once" holds for the prompter's life (the TUI's session, a `warren up`):
//! the prompter remembers it under the name known_hosts would file it under, so a reconnect
//! or a reopen of the same host does not ask again; nothing of it is written.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::config::Secret;

/// How long a host key, passphrase or password question waits for an answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// keyboard-interactive may wait on a second factor (a push to a phone): longer.
pub const KBD_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Prompt {
    /// The server's key is not in known_hosts.
    HostKey {
        host: String,
        key_type: String,
        fingerprint: String,
        /// Where else the same key is listed (`file:line: name`), as ssh shows them.
        #[serde(default)]
        other_names: Vec<String>,
    },
    /// A yes/no question about a host key (CheckHostIP: the IP address's key differs).
    Confirm {
        text: String,
    },
    /// A key file is encrypted and no passphrase was configured.
    Passphrase {
        key_file: String,
    },
    /// keyboard-interactive: `prompts` are `(text, echo)`.
    KeyboardInteractive {
        name: String,
        instructions: String,
        prompts: Vec<(String, bool)>,
    },
    Password {
        user: String,
        host: String,
    },
}

impl Prompt {
    /// What the question is about, in a few words for a tunnel's state ("needs you: ...").
    /// A server's own text (keyboard-interactive prompts) is escaped and cut short.
    pub fn summary(&self) -> String {
        match self {
            Prompt::HostKey { host, .. } => {
                format!("the host key of {}", crate::text::escape(host))
            }
            Prompt::Confirm { .. } => "a host key question".into(),
            Prompt::Passphrase { key_file } => {
                format!("the passphrase of {}", crate::text::escape(key_file))
            }
            Prompt::KeyboardInteractive { prompts, name, .. } => {
                let asked = prompts
                    .first()
                    .map(|(p, _)| p.trim())
                    .filter(|p| !p.is_empty())
                    .or(Some(name.trim()).filter(|n| !n.is_empty()));
                match asked {
                    Some(p) => {
                        let p: String = p.chars().take(60).collect();
                        format!(
                            "the bastion's keyboard-interactive question \"{}\"",
                            crate::text::escape(&p)
                        )
                    }
                    None => "the bastion's keyboard-interactive question".into(),
                }
            }
            Prompt::Password { user, host } => format!(
                "the password of {}@{}",
                crate::text::escape(user),
                crate::text::escape(host)
            ),
        }
    }

    /// How long this question waits.
    pub fn timeout(&self) -> Duration {
        match self {
            Prompt::KeyboardInteractive { .. } => KBD_TIMEOUT,
            _ => ANSWER_TIMEOUT,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKeyAnswer {
    AcceptOnce,
    AcceptAndSave,
    Reject,
}

#[derive(Clone, Debug)]
pub enum Answer {
    HostKey(HostKeyAnswer),
    /// A passphrase or password.
    Secret(Secret),
    /// keyboard-interactive responses, in prompt order.
    Responses(Vec<Secret>),
    /// The user declined to answer.
    Cancel,
}

/// What the prompter tells the client.
#[derive(Clone, Debug)]
pub enum Notice {
    /// A question, to be answered with its id within `timeout`.
    Ask {
        id: u64,
        connection: String,
        prompt: Prompt,
        timeout: Duration,
    },
    /// The question is no longer asked: do not show it; an answer would do nothing.
    Withdrawn { id: u64, connection: String },
}

struct Pending {
    connection: String,
    /// [`Prompt::summary`] of the question.
    what: String,
    reply: oneshot::Sender<Answer>,
    cancel: CancellationToken,
}

/// Sends questions as notices and routes answers back to the connection that asked.
pub struct Prompter {
    /// Whether anyone answers a question of this connection, asked now.
    answerer: Box<dyn Fn(&str) -> bool + Send + Sync>,
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    send: Box<dyn Fn(Notice) + Send + Sync>,
    /// What to do when a question needed a person and nobody here answers.
    advice: &'static str,
    /// Host keys accepted "once" in this session: `(known_hosts name, key fingerprint)`.
    once: Mutex<HashSet<(String, String)>>,
    /// Bumped whenever a question is asked or ends ([`Prompter::changes`]).
    changed: tokio::sync::watch::Sender<u64>,
}

/// Where a question that needed a person can be answered, by default.
const ELSEWHERE: &str = "run warren up in a terminal, or open the tunnel in the TUI";

impl Prompter {
    /// `send` publishes notices; `interactive` says whether anyone will answer.
    pub fn new(interactive: bool, send: impl Fn(Notice) + Send + Sync + 'static) -> Self {
        Prompter::with_answerer(move |_| interactive, send)
    }

    /// `can_answer(connection)` says, when a question is asked, whether anyone will answer.
    pub fn with_answerer(
        can_answer: impl Fn(&str) -> bool + Send + Sync + 'static,
        send: impl Fn(Notice) + Send + Sync + 'static,
    ) -> Self {
        Prompter {
            answerer: Box::new(can_answer),
            next: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            send: Box::new(send),
            advice: ELSEWHERE,
            once: Mutex::new(HashSet::new()),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Remembers a host key a person accepted "once": for the rest of this session it is
    /// accepted for `name` (as known_hosts names a host: `[host]:port`, or its HostKeyAlias).
    pub fn accept_for_session(&self, name: &str, fingerprint: &str) {
        if let Ok(mut once) = self.once.lock() {
            once.insert((name.to_string(), fingerprint.to_string()));
        }
    }

    /// Whether this key was accepted "once" for `name` earlier in this session.
    pub fn accepted_for_session(&self, name: &str, fingerprint: &str) -> bool {
        self.once
            .lock()
            .is_ok_and(|once| once.contains(&(name.to_string(), fingerprint.to_string())))
    }

    /// Nobody answers: every question is "no".
    pub fn headless() -> Self {
        Prompter::new(false, |_| {})
    }

    /// Nobody answers the diagnostics run by the engine (the TUI's `d`): they say what a
    /// question would be about, and that opening the tunnel asks it.
    pub fn for_walk() -> Self {
        Prompter {
            advice: "open the tunnel (these diagnostics ask nobody), or run warren doctor on a \
                     terminal",
            ..Prompter::headless()
        }
    }

    /// What to do when a question needed a person and nobody here answered it.
    pub fn advice(&self) -> &'static str {
        self.advice
    }

    /// Whether a question of this connection would be answered by anyone now.
    pub fn can_ask(&self, connection: &str) -> bool {
        (self.answerer)(connection)
    }

    /// Asks and waits; `None` when headless, declined, timed out or withdrawn.
    pub async fn ask(&self, connection: &str, prompt: Prompt) -> Option<Answer> {
        if !self.can_ask(connection) {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let cancel = CancellationToken::new();
        let timeout = prompt.timeout();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(
                id,
                Pending {
                    connection: connection.to_string(),
                    what: prompt.summary(),
                    reply: tx,
                    cancel: cancel.clone(),
                },
            );
        }
        // If the asking future is dropped (its connection attempt ended), the question goes.
        let guard = Withdraw {
            prompter: self,
            id,
            connection: connection.to_string(),
        };
        (self.send)(Notice::Ask {
            id,
            connection: connection.to_string(),
            prompt,
            timeout,
        });
        self.bump();
        let answer = tokio::select! {
            a = rx => a.ok(),
            _ = tokio::time::sleep(timeout) => None,
            _ = cancel.cancelled() => None,
        };
        // Answered or not, the question is over: every client showing it drops it.
        drop(guard);
        match answer {
            Some(Answer::Cancel) | None => None,
            a => a,
        }
    }

    /// Delivers a client's answer; false if nobody waits for it (answered twice, timed out,
    /// withdrawn).
    pub fn answer(&self, id: u64, answer: Answer) -> bool {
        let p = self.pending.lock().ok().and_then(|mut p| p.remove(&id));
        p.is_some_and(|p| p.reply.send(answer).is_ok())
    }

    /// Withdraws every question of a connection (its tunnel closed or failed).
    pub fn withdraw_all(&self, connection: &str) {
        let ids: Vec<u64> = self
            .pending
            .lock()
            .map(|p| {
                p.iter()
                    .filter(|(_, q)| q.connection == connection)
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default();
        for id in ids {
            if let Some(p) = self.pending.lock().ok().and_then(|mut m| m.remove(&id)) {
                p.cancel.cancel();
                (self.send)(Notice::Withdrawn {
                    id,
                    connection: p.connection,
                });
            }
        }
        self.bump();
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes whenever a question is asked or ends: a watcher then reads [`Prompter::asking`].
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// What a question of this connection that waits for a person is about, if one does.
    pub fn asking(&self, connection: &str) -> Option<String> {
        self.pending.lock().ok().and_then(|p| {
            p.values()
                .find(|q| q.connection == connection)
                .map(|q| q.what.clone())
        })
    }

    /// Whether a question of this connection waits for a person (time spent waiting does not
    /// count against a connect timeout).
    pub fn waiting(&self, connection: &str) -> bool {
        self.pending
            .lock()
            .map(|p| p.values().any(|q| q.connection == connection))
            .unwrap_or(false)
    }
}

/// Removes a question when it ends (answered, timed out, withdrawn, or its asker gone) and
/// says so, so that every client showing it drops it.
struct Withdraw<'a> {
    prompter: &'a Prompter,
    id: u64,
    connection: String,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.prompter.pending.lock() {
            p.remove(&self.id);
        }
        (self.prompter.send)(Notice::Withdrawn {
            id: self.id,
            connection: std::mem::take(&mut self.connection),
        });
        self.prompter.bump();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_question_times_out_and_a_late_answer_does_nothing() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let p = Arc::new(Prompter::new(true, move |n| {
            if let Ok(mut v) = s.lock() {
                v.push(n);
            }
        }));
        let q = Arc::clone(&p);
        let asked = tokio::spawn(async move {
            q.ask(
                "db",
                Prompt::Password {
                    user: "u".into(),
                    host: "h".into(),
                },
            )
            .await
        });
        tokio::time::sleep(ANSWER_TIMEOUT + Duration::from_secs(1)).await;
        assert!(asked.await.ok().flatten().is_none());
        assert!(!p.answer(1, Answer::Cancel), "a late answer is refused");
        let notices = seen.lock().map(|v| v.clone()).unwrap_or_default();
        assert!(matches!(
            notices.last(),
            Some(Notice::Withdrawn { id: 1, .. })
        ));
    }

    #[test]
    fn a_key_accepted_once_holds_for_its_name_and_key_only() {
        let p = Prompter::new(true, |_| {});
        p.accept_for_session("[127.0.0.1]:2222", "SHA256:abc");
        assert!(p.accepted_for_session("[127.0.0.1]:2222", "SHA256:abc"));
        assert!(!p.accepted_for_session("[127.0.0.1]:2223", "SHA256:abc"));
        assert!(!p.accepted_for_session("[127.0.0.1]:2222", "SHA256:other"));
    }

    #[tokio::test]
    async fn withdrawing_a_connection_ends_its_questions() {
        let p = Arc::new(Prompter::new(true, |_| {}));
        let q = Arc::clone(&p);
        let asked = tokio::spawn(async move {
            q.ask(
                "db",
                Prompt::Passphrase {
                    key_file: "k".into(),
                },
            )
            .await
        });
        while !p.waiting("db") {
            tokio::task::yield_now().await;
        }
        p.withdraw_all("db");
        assert!(asked.await.ok().flatten().is_none());
        assert!(!p.waiting("db"));
    }
}
