//! A real terminal: tmux runs a command in a detached session; keys go in with send-keys and
//! the screen comes out with capture-pane. Waits have deadlines, not sleeps.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The host key question's answer line.
pub const HOST_KEY_QUESTION: &str = "y yes, trust and save    o once, for this session    n no";

pub struct Tmux {
    pub name: String,
}

impl Tmux {
    /// Starts `command` (a shell line) in a 120x36 terminal; it prints `EXITED <code>` at the end.
    pub fn start(command: &str) -> Tmux {
        let name = format!(
            "warren-test-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ rand_suffix()
        );
        let line = format!("{command}; echo EXITED $?; sleep 60");
        // A tmux server that is exiting (its last session, another test's, just ended) makes
        // new-session fail: a new server starts on the next try.
        let mut tries = 0;
        loop {
            let out = Command::new("tmux")
                .args([
                    "new-session",
                    "-d",
                    "-s",
                    &name,
                    "-x",
                    "120",
                    "-y",
                    "36",
                    &line,
                ])
                .output()
                .expect("tmux");
            tries += 1;
            if out.status.success() {
                break;
            }
            assert!(
                tries < 10,
                "tmux new-session failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Tmux { name }
    }

    /// Starts warren with `args` in `home`, isolated from the user's own files: HOME and the
    /// XDG state, runtime and config directories all under `home`. `env` (shell assignments,
    /// e.g. `XDG_RUNTIME_DIR=/x`) comes after them, so it can move any of them elsewhere.
    pub fn warren(home: &Path, env: &str, args: &str) -> Tmux {
        let d = home.display();
        Tmux::start(&format!(
            "cd {d} && HOME={d} XDG_STATE_HOME={d}/state XDG_RUNTIME_DIR={d}/run XDG_CONFIG_HOME={d}/.config {env} {} {args}",
            env!("CARGO_BIN_EXE_warren")
        ))
    }

    /// Waits for the host key question and answers it with `key`, after the guard that drops
    /// keys typed for what was on screen before it.
    pub fn answer_host_key(&self, key: &str) {
        self.wait_for(HOST_KEY_QUESTION);
        std::thread::sleep(warren::tui::app::PROMPT_GUARD + Duration::from_millis(200));
        self.keys(&[key]);
    }

    /// Quits the TUI with tunnels open (`q`, then `y` to the question that they will close)
    /// and waits for it to exit with 0.
    pub fn quit_closing_tunnels(&self) {
        self.keys(&["q"]);
        self.wait_for("Tunnels are open");
        self.keys(&["y"]);
        self.wait_for("EXITED 0");
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with its colours and attributes as escape sequences (`capture-pane -e`).
    pub fn styled_screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-e", "-t", &self.name])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text` (20 s at most), and returns it.
    pub fn wait_for(&self, text: &str) -> String {
        self.wait_until(text, |s| s.contains(text))
    }

    pub fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what:?}; it shows:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends keys (tmux names: Enter, Escape, Up...) one at a time, so that Escape and a
    /// following key are not read as Alt+key.
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            let _ = Command::new("tmux")
                .args(["send-keys", "-t", &self.name, k])
                .status();
            std::thread::sleep(Duration::from_millis(120));
        }
    }

    /// Lets programs in the sessions set tmux's paste buffer with OSC 52 (`set-clipboard on`,
    /// a server option), for [`Tmux::clipboard`].
    pub fn accept_clipboard(&self) {
        let st = Command::new("tmux")
            .args(["set-option", "-s", "set-clipboard", "on"])
            .status()
            .expect("tmux set-option");
        assert!(st.success(), "tmux set-option set-clipboard failed");
    }

    /// What a program last put on the clipboard with OSC 52 (tmux's newest paste buffer), once
    /// `ok` holds for it (20 s at most).
    pub fn clipboard(&self, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new("tmux")
                .args(["show-buffer"])
                .output()
                .expect("tmux show-buffer");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if ok(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the clipboard never held what was expected; it holds:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Gives the terminal another size (the TUI redraws for it).
    pub fn resize(&self, cols: u16, rows: u16) {
        let _ = Command::new("tmux")
            .args([
                "resize-window",
                "-t",
                &self.name,
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
            ])
            .status();
    }

    /// Types text literally.
    pub fn type_text(&self, text: &str) {
        let _ = Command::new("tmux")
            .args(["send-keys", "-t", &self.name, "-l", text])
            .status();
        std::thread::sleep(Duration::from_millis(120));
    }
}

/// The text of a screen with the boxes' borders taken out and every run of blanks (line ends
/// too) made one space: a text wrapped over lines reads as one, to look for it whole.
pub fn unwrapped(screen: &str) -> String {
    screen
        .chars()
        .map(|c| match c {
            '│' | '─' | '┌' | '┐' | '└' | '┘' | '├' | '┤' => ' ',
            c => c,
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}
