//! The engine's questions (an unknown host key, a passphrase, a password, keyboard-interactive
//! prompts) as dialogs, with their safety rules: a question waits while the user types in a
//! field, keys within [`PROMPT_GUARD`] of it appearing are dropped (they were typed for what
//! was on screen before), each has a deadline shown as a countdown, and a withdrawn one goes;
//! keys within [`PROMPT_GUARD`] of a question on screen going unanswered (withdrawn, timed
//! out) are dropped too (they were typed for it: `wrong⏎` must not toggle a grouping and open
//! a tunnel).

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent};
use tui_input::backend::crossterm::EventHandler;

use super::app::{App, Effect, Mode};
use crate::config::Secret;
use crate::engine::Command;
use crate::prompt::{Answer, HostKeyAnswer, Prompt};

/// Keys that arrive this soon after a question appears are dropped: they were typed for
/// what was on screen before it.
pub const PROMPT_GUARD: Duration = Duration::from_millis(500);

/// A question from the engine, waiting for an answer.
#[derive(Clone, Debug)]
pub struct Question {
    pub id: u64,
    /// The connection that asks.
    pub name: String,
    pub prompt: Prompt,
    /// After this the engine withdraws it.
    pub deadline: Instant,
}

/// Queues a question and shows it if nothing is in the way.
pub fn ask(app: &mut App, id: u64, name: String, prompt: Prompt, timeout_secs: u64) {
    app.prompts.push_back(Question {
        id,
        name,
        prompt,
        deadline: Instant::now() + Duration::from_secs(timeout_secs),
    });
    show_question(app);
}

/// Puts the front question on screen, unless the user is typing or one is shown.
pub fn show_question(app: &mut App) {
    if app.prompts.is_empty() || app.typing() || app.mode == Mode::Prompt {
        return;
    }
    app.mode = Mode::Prompt;
    app.prompt_shown_at = Some(Instant::now());
    app.prompt_input.reset();
    app.prompt_answers.clear();
}

pub fn prompt_key(app: &mut App, k: KeyEvent) -> Vec<Effect> {
    let Some(q) = app.prompts.front().cloned() else {
        app.mode = Mode::Normal;
        return Vec::new();
    };
    // A key typed for what was on screen before the question must not answer it.
    if app
        .prompt_shown_at
        .is_some_and(|t| t.elapsed() < PROMPT_GUARD)
    {
        return Vec::new();
    }
    let answer = match &q.prompt {
        Prompt::HostKey { .. } => match k.code {
            KeyCode::Char('y') => Some(Answer::HostKey(HostKeyAnswer::AcceptAndSave)),
            KeyCode::Char('o') => Some(Answer::HostKey(HostKeyAnswer::AcceptOnce)),
            KeyCode::Char('n') | KeyCode::Esc => Some(Answer::HostKey(HostKeyAnswer::Reject)),
            _ => None,
        },
        Prompt::Confirm { .. } => match k.code {
            KeyCode::Char('y') => Some(Answer::HostKey(HostKeyAnswer::AcceptOnce)),
            KeyCode::Char('n') | KeyCode::Esc => Some(Answer::HostKey(HostKeyAnswer::Reject)),
            _ => None,
        },
        Prompt::Passphrase { .. } | Prompt::Password { .. } => match k.code {
            KeyCode::Enter => Some(Answer::Secret(Secret::new(
                app.prompt_input.value_and_reset(),
            ))),
            KeyCode::Esc => Some(Answer::Cancel),
            _ => {
                app.prompt_input
                    .handle_event(&crossterm::event::Event::Key(k));
                None
            }
        },
        Prompt::KeyboardInteractive { prompts, .. } => match k.code {
            KeyCode::Enter => {
                app.prompt_answers
                    .push(Secret::new(app.prompt_input.value_and_reset()));
                (app.prompt_answers.len() >= prompts.len())
                    .then(|| Answer::Responses(std::mem::take(&mut app.prompt_answers)))
            }
            KeyCode::Esc => Some(Answer::Cancel),
            _ => {
                app.prompt_input
                    .handle_event(&crossterm::event::Event::Key(k));
                None
            }
        },
    };
    match answer {
        Some(answer) => {
            app.prompts.pop_front();
            app.prompt_input.reset();
            app.prompt_answers.clear();
            app.prompt_shown_at = None;
            app.mode = Mode::Normal;
            vec![Effect::Engine(Command::Answer { id: q.id, answer })]
        }
        None => Vec::new(),
    }
}

/// Removes a question the engine no longer asks.
pub fn withdraw(app: &mut App, id: u64) {
    let was_front = app.prompts.front().is_some_and(|q| q.id == id);
    let Some(pos) = app.prompts.iter().position(|q| q.id == id) else {
        return;
    };
    if let Some(q) = app.prompts.remove(pos) {
        app.message = Some(format!(
            "the question for {} was withdrawn (not answered in time, or its tunnel stopped)",
            q.name
        ));
    }
    if was_front && app.mode == Mode::Prompt {
        app.prompt_input.reset();
        app.prompt_answers.clear();
        app.prompt_shown_at = None;
        app.prompt_gone_at = Some(Instant::now());
        app.mode = Mode::Normal;
    }
}

/// Whether a question on screen went unanswered less than [`PROMPT_GUARD`] ago.
pub fn just_gone(app: &App) -> bool {
    app.prompt_gone_at
        .is_some_and(|t| t.elapsed() < PROMPT_GUARD)
}
