//! The setup form (`s`): every question of `warren setup` on one screen, each with its default
//! and a line saying what it is for; choices are lists (the engine; a new key, an existing one
//! or the agent). Tab and Shift-Tab (or ↑ ↓) move between fields, ← → choose, Enter goes on.
//! Each answer is checked as it is left, with the same checks as `warren setup`; then a
//! summary says what will be written, and only Enter there writes. An error from the files
//! (a key that exists, an entry that exists) keeps every answer and puts the cursor on the
//! field to change. State only: the loop does the checks that read files and the writing.

use crossterm::event::{KeyCode, KeyEvent};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use crate::config::Secret;
use crate::setup;

/// The engines to choose from (the first is the default).
pub const ENGINES: [&str; 5] = ["postgres", "mysql", "redis", "mongodb", "mssql"];

/// A field of the form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Field {
    #[default]
    Engine,
    Target,
    Name,
    Bastion,
    Jump,
    Key,
    KeyPath,
    Passphrase,
}

/// How the bastion will know it is you.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyKind {
    #[default]
    New,
    Existing,
    Agent,
}

pub const KEY_KINDS: [(KeyKind, &str); 3] = [
    (KeyKind::New, "a new key"),
    (KeyKind::Existing, "a key I have"),
    (KeyKind::Agent, "the agent's keys"),
];

/// Each field's step, label and one-line explanation, in order.
pub const FIELDS: [(Field, u8, &str, &str); 8] = [
    (
        Field::Engine,
        1,
        "engine",
        "what the database is: sets the default port and the probe",
    ),
    (
        Field::Target,
        1,
        "target",
        "the database's host:port, as the bastion sees it",
    ),
    (
        Field::Name,
        1,
        "name",
        "the entry's name in epoch.toml and in warren",
    ),
    (
        Field::Bastion,
        2,
        "bastion",
        "host, user@host:port, ssh://... or a ~/.ssh/config alias",
    ),
    (
        Field::Jump,
        2,
        "jump host",
        "a host to go through before the bastion (optional)",
    ),
    (Field::Key, 3, "key", "how the bastion will know it is you"),
    (
        Field::KeyPath,
        3,
        "key file",
        "where the key is (or will be written, 0600)",
    ),
    (
        Field::Passphrase,
        3,
        "passphrase",
        "encrypts the new key (optional; not shown)",
    ),
];

/// The form's steps' titles (then the summary: check, then write).
pub const STEPS: [&str; 3] = ["what to reach", "the way in", "the key"];

/// A saved entry: its name and what is left to do on the bastion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    pub name: String,
    /// The instructions, whole.
    pub text: String,
    /// The bastion's authorized_keys line (`c` copies it).
    pub authorized_keys: String,
}

/// An error from the files, and the field to fix it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub field: Option<Field>,
    pub message: String,
}

/// The answers, for the loop to check and carry out.
#[derive(Clone, Debug)]
pub struct Answers {
    pub engine: String,
    pub target: String,
    pub name: String,
    pub bastion: String,
    pub jump: Option<String>,
    pub key: KeyKind,
    /// As typed (`~` not yet expanded); empty for the agent.
    pub key_path: String,
    pub passphrase: Option<Secret>,
}

/// Where the form is.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Stage {
    #[default]
    Form,
    /// The answers are being checked against the files.
    Checking,
    /// What will be written; Enter writes it.
    Review(Vec<String>),
    Saving,
    /// Saved: the entry and the bastion's instructions; `said` is what `c` or `w` did.
    Done {
        saved: Saved,
        said: Option<String>,
    },
}

#[derive(Default)]
pub struct Wizard {
    pub engine: usize,
    pub target: Input,
    pub name: Input,
    pub bastion: Input,
    pub jump: Input,
    pub key: KeyKind,
    pub key_path: Input,
    /// Shown masked; leaves only as a `Secret`.
    pub passphrase: Input,
    pub focus: Field,
    /// Fields the user has left: their problems are shown.
    pub visited: Vec<Field>,
    pub stage: Stage,
    pub failure: Option<Failure>,
    /// How far the saved screen (the bastion's lines) is scrolled.
    pub scroll: usize,
}

/// What a key press means for the app.
pub enum Outcome {
    Stay,
    Close,
    Review(Answers),
    Save(Answers),
    /// Run the diagnostics of the saved entry.
    Test(String),
    /// Put the bastion's authorized_keys line on the clipboard.
    Copy(String),
    /// Write the instructions to a file: the entry's name and the text.
    Write(String, String),
}

impl Wizard {
    /// The fields shown for the current choices (no key file for the agent; a passphrase only
    /// for a new key).
    pub fn fields(&self) -> Vec<Field> {
        FIELDS
            .iter()
            .map(|f| f.0)
            .filter(|f| match f {
                Field::KeyPath => self.key != KeyKind::Agent,
                Field::Passphrase => self.key == KeyKind::New,
                _ => true,
            })
            .collect()
    }

    fn input(&self, f: Field) -> Option<&Input> {
        match f {
            Field::Target => Some(&self.target),
            Field::Name => Some(&self.name),
            Field::Bastion => Some(&self.bastion),
            Field::Jump => Some(&self.jump),
            Field::KeyPath => Some(&self.key_path),
            Field::Passphrase => Some(&self.passphrase),
            Field::Engine | Field::Key => None,
        }
    }

    pub fn input_mut(&mut self, f: Field) -> Option<&mut Input> {
        match f {
            Field::Target => Some(&mut self.target),
            Field::Name => Some(&mut self.name),
            Field::Bastion => Some(&mut self.bastion),
            Field::Jump => Some(&mut self.jump),
            Field::KeyPath => Some(&mut self.key_path),
            Field::Passphrase => Some(&mut self.passphrase),
            Field::Engine | Field::Key => None,
        }
    }

    /// What a field holds as typed ("" for choices).
    pub fn typed(&self, f: Field) -> &str {
        self.input(f).map(Input::value).unwrap_or("")
    }

    /// What an empty field means: the name from the target's host, a key file from the name.
    pub fn default_of(&self, f: Field) -> Option<String> {
        match f {
            Field::Name => {
                let target = self.typed(Field::Target).trim();
                let host = target.rsplit('@').next().unwrap_or(target);
                let label: String = host
                    .split(['.', ':'])
                    .next()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                (!label.is_empty()).then_some(label)
            }
            Field::KeyPath => Some(match self.key {
                KeyKind::New => format!("~/.ssh/id_ed25519_{}", self.value(Field::Name)),
                _ => "~/.ssh/id_ed25519".to_string(),
            }),
            _ => None,
        }
    }

    /// The answer a field gives: what was typed (trimmed, but a passphrase as typed), else its
    /// default.
    pub fn value(&self, f: Field) -> String {
        match f {
            Field::Engine => ENGINES[self.engine % ENGINES.len()].to_string(),
            Field::Key => KEY_KINDS
                .iter()
                .find(|(k, _)| *k == self.key)
                .map(|(_, n)| n.to_string())
                .unwrap_or_default(),
            Field::Passphrase => self.typed(f).to_string(),
            _ => {
                let t = self.typed(f).trim();
                if t.is_empty() {
                    self.default_of(f).unwrap_or_default()
                } else {
                    t.to_string()
                }
            }
        }
    }

    /// The problem with a field's answer, by the checks `warren setup` makes.
    pub fn problem(&self, f: Field) -> Option<String> {
        let v = self.value(f);
        let r = match f {
            Field::Target if v.is_empty() => Err("needed: e.g. db.internal:5432".into()),
            Field::Target => setup::check_target(&self.value(Field::Engine), &v).map(|_| ()),
            Field::Name if v.is_empty() => Err("needed: e.g. orders".into()),
            Field::Name => setup::check_name(&v),
            Field::Bastion if v.is_empty() => Err("needed: e.g. ops@bastion.example.com".into()),
            Field::Bastion | Field::Jump if !v.is_empty() => setup::check_hop(&v).map(|_| ()),
            Field::KeyPath if v.is_empty() => Err("needed: a path".into()),
            _ => Ok(()),
        };
        r.err()
    }

    /// The step (1-3) the form is at; `None` past the form.
    pub fn step(&self) -> Option<usize> {
        match self.stage {
            Stage::Form => Some(
                FIELDS
                    .iter()
                    .find(|x| x.0 == self.focus)
                    .map(|x| usize::from(x.1))
                    .unwrap_or(1),
            ),
            _ => None,
        }
    }

    /// The keys of the stage the form is at, for its footer and the screen's.
    pub fn footer(&self) -> &'static str {
        match self.stage {
            Stage::Form => "Tab / Shift-Tab: fields    ← →: choose    Enter: next    Esc: cancel",
            Stage::Checking | Stage::Saving => "Esc: cancel",
            Stage::Review(_) => "Enter: write it    Esc: back to the form",
            Stage::Done { .. } => {
                "Enter: test it    c: copy the authorized_keys line    w: write these lines to a file    ↑↓: scroll    Esc: close"
            }
        }
    }

    /// What `c` or `w` did, shown on the saved screen.
    pub fn said(&mut self, text: String) {
        if let Stage::Done { said, .. } = &mut self.stage {
            *said = Some(text);
        }
    }

    fn answers(&self) -> Answers {
        let jump = self.value(Field::Jump);
        let pass = self.value(Field::Passphrase);
        Answers {
            engine: self.value(Field::Engine),
            target: self.value(Field::Target),
            name: self.value(Field::Name),
            bastion: self.value(Field::Bastion),
            jump: (!jump.is_empty()).then_some(jump),
            key: self.key,
            key_path: if self.key == KeyKind::Agent {
                String::new()
            } else {
                self.value(Field::KeyPath)
            },
            passphrase: (self.key == KeyKind::New && !pass.is_empty()).then(|| Secret::new(pass)),
        }
    }

    fn leave(&mut self) {
        if !self.visited.contains(&self.focus) {
            self.visited.push(self.focus);
        }
    }

    fn move_focus(&mut self, d: i64) {
        self.leave();
        let fields = self.fields();
        let i = fields.iter().position(|f| *f == self.focus).unwrap_or(0) as i64;
        let n = fields.len() as i64;
        self.focus = fields[(i + d).rem_euclid(n) as usize];
    }

    fn choose(&mut self, d: i64) {
        match self.focus {
            Field::Engine => {
                self.engine = (self.engine as i64 + d).rem_euclid(ENGINES.len() as i64) as usize
            }
            Field::Key => {
                let i = KEY_KINDS
                    .iter()
                    .position(|(k, _)| *k == self.key)
                    .unwrap_or(0) as i64;
                self.key = KEY_KINDS[(i + d).rem_euclid(KEY_KINDS.len() as i64) as usize].0;
            }
            _ => {}
        }
    }
}

/// A key press in the form.
pub fn key(w: &mut Wizard, k: KeyEvent) -> Outcome {
    match &w.stage {
        Stage::Done { saved, .. } => {
            return match k.code {
                KeyCode::Enter => Outcome::Test(saved.name.clone()),
                KeyCode::Char('c') => Outcome::Copy(saved.authorized_keys.clone()),
                KeyCode::Char('w') => Outcome::Write(saved.name.clone(), saved.text.clone()),
                KeyCode::Esc => Outcome::Close,
                KeyCode::Down | KeyCode::Char('j') => {
                    w.scroll += 1;
                    Outcome::Stay
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    w.scroll = w.scroll.saturating_sub(1);
                    Outcome::Stay
                }
                KeyCode::PageDown | KeyCode::Char(' ') => {
                    w.scroll += 10;
                    Outcome::Stay
                }
                KeyCode::PageUp => {
                    w.scroll = w.scroll.saturating_sub(10);
                    Outcome::Stay
                }
                _ => Outcome::Stay,
            };
        }
        Stage::Review(_) => {
            return match k.code {
                KeyCode::Enter => {
                    w.stage = Stage::Saving;
                    Outcome::Save(w.answers())
                }
                KeyCode::Esc | KeyCode::Backspace | KeyCode::BackTab => {
                    w.stage = Stage::Form;
                    Outcome::Stay
                }
                _ => Outcome::Stay,
            };
        }
        // Waiting for the loop: Esc still closes.
        Stage::Checking | Stage::Saving => {
            return if k.code == KeyCode::Esc {
                Outcome::Close
            } else {
                Outcome::Stay
            };
        }
        Stage::Form => {}
    }
    match k.code {
        KeyCode::Esc => return Outcome::Close,
        KeyCode::Tab | KeyCode::Down => w.move_focus(1),
        KeyCode::BackTab | KeyCode::Up => w.move_focus(-1),
        KeyCode::Left if w.input(w.focus).is_none() => w.choose(-1),
        KeyCode::Right | KeyCode::Char(' ') if w.input(w.focus).is_none() => w.choose(1),
        KeyCode::Enter => {
            let fields = w.fields();
            if fields.last() != Some(&w.focus) {
                w.move_focus(1);
                return Outcome::Stay;
            }
            // The last field: every answer is checked; the first with a problem gets the cursor.
            w.leave();
            w.visited = fields.clone();
            if let Some(bad) = fields.iter().find(|f| w.problem(**f).is_some()) {
                w.focus = *bad;
                return Outcome::Stay;
            }
            w.failure = None;
            w.stage = Stage::Checking;
            return Outcome::Review(w.answers());
        }
        _ => {
            let focus = w.focus;
            if let Some(input) = w.input_mut(focus) {
                input.handle_event(&crossterm::event::Event::Key(k));
                if w.failure.as_ref().is_some_and(|f| f.field == Some(focus)) {
                    w.failure = None;
                }
            }
        }
    }
    Outcome::Stay
}

/// The loop's check of the answers against the files.
pub fn reviewed(w: &mut Wizard, r: Result<Vec<String>, Failure>) {
    if w.stage != Stage::Checking {
        return;
    }
    match r {
        Ok(summary) => w.stage = Stage::Review(summary),
        Err(f) => fail(w, f),
    }
}

/// The loop's result of writing.
pub fn set_up(w: &mut Wizard, r: Result<Saved, Failure>) {
    if w.stage != Stage::Saving {
        return;
    }
    match r {
        Ok(saved) => w.stage = Stage::Done { saved, said: None },
        Err(f) => fail(w, f),
    }
}

/// Back to the form, every answer kept, the cursor on the field to fix.
fn fail(w: &mut Wizard, f: Failure) {
    w.stage = Stage::Form;
    if let Some(field) = f.field.filter(|x| w.fields().contains(x)) {
        w.focus = field;
    }
    w.failure = Some(f);
}

/// The form's field for a question of `warren setup`.
pub fn field_of(q: setup::Question) -> Field {
    match q {
        setup::Question::Engine => Field::Engine,
        setup::Question::Target => Field::Target,
        setup::Question::Name => Field::Name,
        setup::Question::Bastion => Field::Bastion,
        setup::Question::Jump => Field::Jump,
        setup::Question::Key => Field::KeyPath,
        setup::Question::Passphrase => Field::Passphrase,
    }
}
