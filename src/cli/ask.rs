//! Questions asked on the terminal, as ssh asks them: on `/dev/tty` (so a pipe on stdout does
//! not hide them), one at a time, passphrases, passwords and hidden keyboard-interactive
//! answers never echoed. A question the engine withdraws (timed out, tunnel stopped) is
//! abandoned at once and the terminal restored; so is one in progress when warren exits.
//!
//! Server text (keyboard-interactive instructions and prompts) is shown with control
//! characters escaped.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::Secret;
use crate::prompt::{Answer, HostKeyAnswer, Notice, Prompt};

/// Whether a person can be asked: stdin is a terminal and `/dev/tty` opens.
pub fn available() -> bool {
    // SAFETY: isatty has no preconditions.
    let stdin_tty = unsafe { libc::isatty(0) } == 1;
    stdin_tty
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_ok()
}

/// Shows server text on a terminal: control characters (escape sequences) as `\x1b`.
fn shown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The terminal's settings, restored when dropped.
struct Termios {
    fd: i32,
    saved: libc::termios,
}

impl Termios {
    /// Turns echo off (the newline still shows) until dropped.
    fn no_echo(fd: i32) -> Option<Termios> {
        // SAFETY: a zeroed termios is a valid out-parameter for tcgetattr on our own fd.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd is an open terminal; t is a valid pointer.
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        t.c_lflag &= !libc::ECHO;
        t.c_lflag |= libc::ECHONL;
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &t) };
        Some(Termios { fd, saved })
    }
}

impl Drop for Termios {
    fn drop(&mut self) {
        // SAFETY: restores the settings read from the same fd.
        unsafe { libc::tcsetattr(self.fd, libc::TCSAFLUSH, &self.saved) };
    }
}

/// Reads one line from the terminal, until `cancel` is set or `deadline` passes.
fn read_line(
    tty: &mut std::fs::File,
    echo: bool,
    cancel: &[&AtomicBool],
    deadline: Instant,
) -> Option<String> {
    let fd = tty.as_raw_fd();
    let _guard = if echo { None } else { Termios::no_echo(fd) };
    let mut line = Vec::new();
    loop {
        if cancel.iter().any(|c| c.load(Ordering::Relaxed)) || Instant::now() >= deadline {
            return None;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 200) };
        if n <= 0 {
            continue;
        }
        let mut buf = [0u8; 256];
        match tty.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(k) => {
                line.extend_from_slice(&buf[..k]);
                if let Some(end) = line.iter().position(|b| *b == b'\n') {
                    line.truncate(end);
                    return Some(String::from_utf8_lossy(&line).into_owned());
                }
                // A line longer than any answer: refuse rather than grow.
                if line.len() > 64 * 1024 {
                    return None;
                }
            }
        }
    }
}

fn say(tty: &mut std::fs::File, t: &str) {
    let _ = tty.write_all(t.as_bytes());
    let _ = tty.flush();
}

/// Asks one question on the terminal; `None` if it was withdrawn or not answered in time.
fn ask(
    tty: &mut std::fs::File,
    connection: &str,
    prompt: &Prompt,
    cancel: &[&AtomicBool],
    deadline: Instant,
) -> Option<Answer> {
    match prompt {
        Prompt::HostKey {
            host,
            key_type,
            fingerprint,
            other_names,
        } => {
            let mut text = format!(
                "{connection}: the authenticity of host '{host}' can't be established.\n{key_type} key fingerprint is {fingerprint}.\n"
            );
            if other_names.is_empty() {
                text.push_str("This key is not known by any other names.\n");
            } else {
                text.push_str("This host key is known by the following other names/addresses:\n");
                for n in other_names {
                    text.push_str(&format!("    {n}\n"));
                }
            }
            text.push_str("Are you sure you want to continue connecting (yes/no/[fingerprint])? ");
            say(tty, &text);
            loop {
                let line = read_line(tty, true, cancel, deadline)?;
                let word = line.trim_start_matches([' ', '\t']);
                let word = word.split([' ', '\t']).next().unwrap_or_default();
                if word.eq_ignore_ascii_case("yes") || word == fingerprint {
                    return Some(Answer::HostKey(HostKeyAnswer::AcceptAndSave));
                }
                if word.is_empty() || word.eq_ignore_ascii_case("no") {
                    return Some(Answer::HostKey(HostKeyAnswer::Reject));
                }
                let _ = tty.write_all(b"Please type 'yes', 'no' or the fingerprint: ");
                let _ = tty.flush();
            }
        }
        Prompt::Confirm { text } => {
            say(
                tty,
                &format!(
                    "{connection}: {}\nAre you sure you want to continue connecting (yes/no)? ",
                    shown(text)
                ),
            );
            loop {
                let line = read_line(tty, true, cancel, deadline)?;
                match line.trim().to_ascii_lowercase().as_str() {
                    "yes" => return Some(Answer::HostKey(HostKeyAnswer::AcceptOnce)),
                    "no" | "" => return Some(Answer::HostKey(HostKeyAnswer::Reject)),
                    _ => {
                        let _ = tty.write_all(b"Please type 'yes' or 'no': ");
                        let _ = tty.flush();
                    }
                }
            }
        }
        Prompt::Passphrase { key_file } => {
            say(
                tty,
                &format!("{connection}: Enter passphrase for key '{key_file}': "),
            );
            read_line(tty, false, cancel, deadline).map(|l| Answer::Secret(Secret::new(l)))
        }
        Prompt::Password { user, host } => {
            say(tty, &format!("{connection}: {user}@{host}'s password: "));
            read_line(tty, false, cancel, deadline).map(|l| Answer::Secret(Secret::new(l)))
        }
        Prompt::KeyboardInteractive {
            name,
            instructions,
            prompts,
        } => {
            for t in [name, instructions] {
                if !t.is_empty() {
                    say(tty, &format!("{}\n", shown(t)));
                }
            }
            let mut answers = Vec::new();
            for (text, echo) in prompts {
                let _ = tty.write_all(format!("({connection}) {}", shown(text)).as_bytes());
                let _ = tty.flush();
                answers.push(Secret::new(read_line(tty, *echo, cancel, deadline)?));
            }
            Some(Answer::Responses(answers))
        }
    }
}

/// Answers the engine's questions on the terminal, one at a time, in their order.
pub struct TerminalAsker {
    notices: mpsc::UnboundedSender<Notice>,
    stop: Arc<AtomicBool>,
    /// Cancels the question on screen.
    cancel: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl TerminalAsker {
    /// `answer(id, answer)` delivers an answer. `None` when there is no terminal.
    pub fn start(answer: impl Fn(u64, Answer) + Send + Sync + 'static) -> Option<Self> {
        let mut tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Notice>();
        let stop = Arc::new(AtomicBool::new(false));
        // The id of the question on screen; its withdrawal cancels the read.
        let current = Arc::new(AtomicU64::new(0));
        let cancel = Arc::new(AtomicBool::new(false));
        let cancel_all = Arc::clone(&cancel);
        let (s, cur, can) = (Arc::clone(&stop), Arc::clone(&current), Arc::clone(&cancel));
        let (qtx, mut qrx) = mpsc::unbounded_channel::<(u64, String, Prompt, Duration)>();
        let withdrawn = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let w = Arc::clone(&withdrawn);
        // Notices in: questions queue up; a withdrawal cancels the one on screen.
        let router = async move {
            while let Some(n) = rx.recv().await {
                match n {
                    Notice::Ask {
                        id,
                        connection,
                        prompt,
                        timeout,
                    } => {
                        let _ = qtx.send((id, connection, prompt, timeout));
                    }
                    Notice::Withdrawn { id, .. } => {
                        if let Ok(mut set) = w.lock() {
                            set.insert(id);
                        }
                        if cur.load(Ordering::Relaxed) == id {
                            can.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }
        };
        let task = tokio::spawn(async move {
            tokio::spawn(router);
            while let Some((id, connection, prompt, timeout)) = qrx.recv().await {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                if withdrawn.lock().is_ok_and(|set| set.contains(&id)) {
                    continue;
                }
                current.store(id, Ordering::Relaxed);
                cancel.store(false, Ordering::Relaxed);
                let (c, st) = (Arc::clone(&cancel), Arc::clone(&s));
                let deadline = Instant::now() + timeout;
                let mut t = match tty.try_clone() {
                    Ok(t) => t,
                    Err(_) => break,
                };
                let answered = tokio::task::spawn_blocking(move || {
                    ask(&mut t, &connection, &prompt, &[&c, &st], deadline)
                        .filter(|_| !st.load(Ordering::Relaxed))
                })
                .await
                .ok()
                .flatten();
                match answered {
                    Some(a) => answer(id, a),
                    None => {
                        let _ = tty.write_all(b"\n(the question was withdrawn)\n");
                    }
                }
                current.store(0, Ordering::Relaxed);
            }
        });
        Some(TerminalAsker {
            notices: tx,
            stop,
            cancel: cancel_all,
            task,
        })
    }

    pub fn notice(&self, n: Notice) {
        let _ = self.notices.send(n);
    }

    /// Stops asking; waits (briefly) for a question on screen to give the terminal back.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cancel.store(true, Ordering::Relaxed);
        drop(self.notices);
        let _ = tokio::time::timeout(Duration::from_secs(1), self.task).await;
    }
}
