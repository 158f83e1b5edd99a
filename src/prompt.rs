//! Questions the engine asks its client: an unknown host key, a key passphrase,
//! keyboard-interactive prompts, a password. A prompt never blocks other tunnels: only the
//! connection that asked waits (bounded by [`ANSWER_TIMEOUT`]). Headless (no client answers),
//! every prompt is answered "no" at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::oneshot;

use crate::config::Secret;

/// How long a connection waits for an answer before giving up.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Prompt {
    /// The server's key is not in known_hosts.
    HostKey {
        host: String,
        key_type: String,
        fingerprint: String,
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

#[derive(Clone, Debug, PartialEq, Eq)]
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

/// Sends prompts as events and routes answers back to the connection that asked.
pub struct Prompter {
    interactive: bool,
    next: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    send: Box<dyn Fn(u64, String, Prompt) + Send + Sync>,
}

impl Prompter {
    /// `send(id, connection, prompt)` publishes a prompt; `interactive` says whether anyone
    /// will answer.
    pub fn new(
        interactive: bool,
        send: impl Fn(u64, String, Prompt) + Send + Sync + 'static,
    ) -> Self {
        Prompter {
            interactive,
            next: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            send: Box::new(send),
        }
    }

    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// Asks and waits; `None` when headless, cancelled, or unanswered in time.
    pub async fn ask(&self, connection: &str, prompt: Prompt) -> Option<Answer> {
        if !self.interactive {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, tx);
        }
        (self.send)(id, connection.to_string(), prompt);
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, rx)
            .await
            .ok()
            .and_then(Result::ok);
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&id);
        }
        match answer {
            Some(Answer::Cancel) | None => None,
            a => a,
        }
    }

    /// Delivers a client's answer; false if nobody waits for it (answered twice, timed out).
    pub fn answer(&self, id: u64, answer: Answer) -> bool {
        let tx = self.pending.lock().ok().and_then(|mut p| p.remove(&id));
        tx.is_some_and(|tx| tx.send(answer).is_ok())
    }
}
