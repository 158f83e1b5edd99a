//! `Match exec` and the other commands of a config, on the resolver's side: the tokens of a
//! `Match exec` line, running it, and what is wrong with a ProxyCommand before it runs.
//!
//! A `Match exec` command runs as OpenSSH's `execute_in_shell` runs it: `$SHELL -c CMD` (or
//! `/bin/sh`), stdin and stdout on /dev/null, the environment kept. Unlike ssh, warren bounds
//! it in time ([`TIMEOUT`]; then it is killed and the block does not match), gives it no
//! terminal (its own session: the TUI owns the screen, and a command that asks there would
//! hang), and keeps its stderr (the last [`STDERR_CAP`] bytes) for the warning instead of
//! letting it reach the screen.
//!
//! Synchronous on purpose: the resolver is, and a `Match exec` command is short (a test, a
//! ping). It runs where the config is loaded, which is where ssh runs it too.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::resolve::{Acc, Pass};
use crate::config::command::ExecOutcome;
use crate::config::expand;
use crate::config::origin::{Origin, Problem, Sourced};

/// How long a `Match exec` command may run.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How much of its stderr is kept.
pub const STDERR_CAP: usize = 2048;

/// The outcome and the tail of stderr.
pub fn run(shell: &str, command: &str, timeout: Duration) -> (ExecOutcome, String) {
    let mut cmd = Command::new(shell);
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                ExecOutcome::Failed {
                    error: format!("cannot run {shell}: {e}"),
                },
                String::new(),
            );
        }
    };
    let pid = child.id() as libc::pid_t;
    // Drain stderr on a thread (keeping the tail), so that a chatty command never blocks.
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut tail: Vec<u8> = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = e.read(&mut buf) {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > STDERR_CAP {
                    tail.drain(..tail.len() - STDERR_CAP);
                }
            }
            String::from_utf8_lossy(&tail).into_owned()
        })
    });
    let deadline = Instant::now() + timeout;
    let outcome = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                break match (status.code(), status.signal()) {
                    (Some(code), _) => ExecOutcome::Exited { status: code },
                    (None, Some(sig)) => ExecOutcome::Signaled { signal: sig },
                    (None, None) => ExecOutcome::Failed {
                        error: "ended without a status".into(),
                    },
                };
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => {
                // Its whole session: the shell and whatever it started.
                // SAFETY: kill with a negative pid signals that process group; pid is ours.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                let _ = child.wait();
                break ExecOutcome::TimedOut {
                    secs: timeout.as_secs(),
                };
            }
        }
    };
    // The command's own processes are gone with it, except ones it left in the background:
    // those may hold stderr open, so the tail is taken only if it is there already.
    let tail = match stderr {
        Some(t) => {
            let waited = Instant::now() + Duration::from_millis(200);
            while !t.is_finished() && Instant::now() < waited {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                t.join().unwrap_or_default()
            } else {
                String::new()
            }
        }
        None => String::new(),
    };
    (outcome, tail.trim_end().to_string())
}

impl Pass<'_> {
    /// The host name a Match line tests: HostName with `%h` expanded, else the name.
    pub(super) fn match_host(&self, acc: &Acc) -> String {
        match &acc.hostname {
            Some(h) => expand::percent(&h.value, |t| (t == 'h').then(|| self.host.clone()))
                .unwrap_or_else(|_| h.value.clone()),
            None => self.host.clone(),
        }
    }

    /// The tokens of `Match exec`, from the values so far (readconf.c `match_cfg_line`).
    pub(super) fn exec_token(&self, t: char, acc: &Acc) -> Option<String> {
        let ctx = &self.config.ctx;
        let host = self.match_host(acc);
        let port = acc.port.as_ref().map(|p| p.value).unwrap_or(22).to_string();
        let user = acc
            .user
            .as_ref()
            .map(|u| u.value.clone())
            .unwrap_or_else(|| ctx.local_user.clone());
        Some(match t {
            'C' => connection_hash(&ctx.local_host, &host, &port, &user),
            'L' => ctx
                .local_host
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string(),
            'd' => ctx.user_home.display().to_string(),
            'h' => host,
            'k' => acc
                .host_key_alias
                .as_ref()
                .map(|a| a.value.clone())
                .unwrap_or(host),
            'l' => ctx.local_host.clone(),
            'n' => self.original.to_string(),
            'p' => port,
            'r' => user,
            'u' => ctx.local_user.clone(),
            'i' => ctx.uid.to_string(),
            _ => return None,
        })
    }

    /// Runs a `Match exec` command (once per line and command for this config: the same
    /// answer for every host that asks), or not under `--no-exec`; says what went wrong.
    pub(super) fn exec(&mut self, command: &str, origin: &Origin) -> ExecOutcome {
        let ctx = &self.config.ctx;
        let (outcome, stderr) = if !ctx.run_commands() {
            (ExecOutcome::NotRun, String::new())
        } else {
            let key = (origin.to_string(), command.to_string());
            let cached = self
                .config
                .exec_cache
                .lock()
                .ok()
                .and_then(|c| c.get(&key).cloned());
            match cached {
                Some(r) => r,
                None => {
                    let shell = ctx
                        .var("SHELL")
                        .filter(|s| !s.is_empty())
                        .unwrap_or("/bin/sh")
                        .to_string();
                    let r = run(&shell, command, TIMEOUT);
                    if let Ok(mut c) = self.config.exec_cache.lock() {
                        c.insert(key, r.clone());
                    }
                    r
                }
            }
        };
        let said = if stderr.is_empty() {
            String::new()
        } else {
            format!("; it said: {}", stderr.lines().last().unwrap_or_default())
        };
        let problem = match &outcome {
            ExecOutcome::Exited { .. } => None,
            ExecOutcome::TimedOut { secs } => Some(
                Problem::warning(origin.clone(), format!("Match exec \"{command}\" did not finish within {secs}s and was stopped; this block is treated as not matching{said}"))
                    .with_fix("make the command quick (warren runs it whenever it reads the config, as ssh does on every connection)"),
            ),
            ExecOutcome::Signaled { signal } => Some(
                Problem::error(origin.clone(), format!("Match exec \"{command}\" was killed by signal {signal} (ssh stops here); this block is treated as not matching{said}"))
                    .with_fix("run the command by hand to see why it dies"),
            ),
            ExecOutcome::Failed { error } => Some(
                Problem::error(origin.clone(), format!("Match exec \"{command}\": {error}; this block is treated as not matching"))
                    .with_fix("set SHELL to a shell that exists, or unset it (then /bin/sh runs the command)"),
            ),
            ExecOutcome::NotRun if ctx.untrusted_names() => Some(
                Problem::warning(origin.clone(), format!("Match exec \"{command}\" is not run for a name from an epoch.toml you have not trusted; this block is treated as not matching, and connecting through it is refused"))
                    .with_fix("read the epoch.toml, then run `warren trust-config PATH`"),
            ),
            ExecOutcome::NotRun => Some(
                Problem::error(origin.clone(), format!("Match exec \"{command}\" is not run: --no-exec; this block is treated as not matching, and connecting this host is refused"))
                    .with_fix("run warren without --no-exec (and without WARREN_NO_EXEC) to evaluate the config as ssh does"),
            ),
        };
        self.problems.extend(problem);
        outcome
    }
}

/// OpenSSH 9.2's `ssh_connection_hash`: SHA1 of `%l%h%p%r`, in hex.
pub(super) fn connection_hash(local: &str, host: &str, port: &str, user: &str) -> String {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    for part in [local, host, port, user] {
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What is wrong with a ProxyCommand that ssh would only find when it runs it.
pub(super) fn proxy_problems(pc: &Sourced<String>, run: bool) -> Vec<Problem> {
    let mut out = Vec::new();
    if !run {
        out.push(
            Problem::warning(
                pc.origin.clone(),
                "ProxyCommand is not run (--no-exec): connecting this host is refused",
            )
            .with_fix(
                "run warren without --no-exec (and without WARREN_NO_EXEC) to connect as ssh would",
            ),
        );
    }
    if pc.value == "-" {
        out.push(
            Problem::error(pc.origin.clone(), "ProxyCommand - (ssh's own stdin and stdout as the connection) cannot be used by warren")
                .with_fix("write the command that reaches the host"),
        );
    }
    let tokens = expand::percent(&pc.value, |t| {
        matches!(t, 'h' | 'k' | 'n' | 'p' | 'r').then(String::new)
    });
    if let Err(e) = tokens {
        out.push(
            Problem::error(
                pc.origin.clone(),
                format!("ProxyCommand: {e} (ssh stops with \"percent_expand: unknown key\")"),
            )
            .with_fix("the tokens of ProxyCommand are %h %k %n %p %r; write %% for a %"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::context::Context;
    use crate::config::ssh_config::{FileKind, SshConfig};

    fn config(dir: &std::path::Path, text: &str, no_exec: bool) -> SshConfig {
        let mut env = std::collections::HashMap::new();
        if no_exec {
            env.insert("WARREN_NO_EXEC".to_string(), "1".to_string());
        }
        let ctx = Context::new(dir.to_path_buf(), "me", env);
        let path = dir.join("config");
        SshConfig::from_texts(
            std::sync::Arc::new(ctx),
            &[(path.as_path(), text, FileKind::User)],
        )
    }

    #[test]
    fn match_exec_as_ssh_evaluates_it() {
        let dir = tempfile::tempdir().expect("dir");
        let d = dir.path().display();
        let text = format!(
            "Match exec \"true\"\n  User from-true\n\
             Match host nomatch exec \"touch {d}/ran\"\n  Port 1\n\
             Match !exec \"test %h = db\"\n  Port 2\n\
             Match exec \"echo %n %h %p %r >> {d}/tokens; false\"\n  Port 3\n\
             Match exec \"exit 0\" host other\n  Port 4\n"
        );
        let c = config(dir.path(), &text, false);
        let h = c.resolve("db");
        assert_eq!(h.user.value, "from-true");
        assert_eq!(h.port.value, 22, "{:#?}", h.match_exec);
        assert!(
            !dir.path().join("ran").exists(),
            "an exec after a criterion that failed does not run"
        );
        let tokens = std::fs::read_to_string(dir.path().join("tokens")).expect("ran");
        assert_eq!(tokens, "db db 22 from-true\n");
        let shown: Vec<(bool, String)> = h
            .match_exec
            .iter()
            .map(|m| (m.applied, m.outcome.to_string()))
            .collect();
        assert_eq!(
            shown,
            [
                (true, "exit 0".to_string()),
                (false, "exit 0".to_string()),
                (false, "exit 1".to_string()),
                (false, "exit 0".to_string()),
            ]
        );
        // Resolved again: the same answers, the commands not run again.
        let again = c.resolve("db");
        assert_eq!(again.match_exec, h.match_exec);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("tokens")).expect("ran"),
            tokens
        );
    }

    #[test]
    fn no_exec_runs_nothing_and_says_where() {
        let dir = tempfile::tempdir().expect("dir");
        let d = dir.path().display();
        let text =
            format!("Host db\n  ProxyCommand nc %h %p\nMatch exec \"touch {d}/ran\"\n  User x\n");
        let c = config(dir.path(), &text, true);
        let h = c.resolve("db");
        assert!(!dir.path().join("ran").exists());
        assert_eq!(h.user.value, "me", "the block is not applied");
        assert_eq!(h.match_exec[0].outcome, ExecOutcome::NotRun);
        let p = h
            .problems
            .iter()
            .find(|p| p.message.contains("Match exec"))
            .expect("a problem");
        assert!(p.origin.to_string().ends_with("config:3"), "{p}");
        assert!(
            h.problems
                .iter()
                .any(|p| p.message.contains("ProxyCommand is not run")
                    && p.origin.to_string().ends_with("config:2"))
        );
    }

    #[test]
    fn a_match_exec_ssh_would_stop_at_refuses_the_host() {
        let dir = tempfile::tempdir().expect("dir");
        for line in ["Match exec \"test %q\"", "Match exec \"kill -9 $$\""] {
            let c = config(dir.path(), &format!("{line}\n  User x\n"), false);
            let (hops, _) = crate::config::from_ssh::hops(&c, c.resolve("db"));
            let why = hops[0].refusal().expect("refused");
            assert!(
                why.contains("config:1") && why.contains("ssh stops"),
                "{why}"
            );
        }
        let c = config(dir.path(), "Match exec \"false\"\n  User x\n", false);
        let (hops, _) = crate::config::from_ssh::hops(&c, c.resolve("db"));
        assert_eq!(
            hops[0].refusal(),
            None,
            "a command that exits 1 is a plain no"
        );
    }

    #[test]
    fn proxy_command_problems() {
        let dir = tempfile::tempdir().expect("dir");
        let c = config(
            dir.path(),
            "Host a\n  ProxyCommand nc %h %x\nHost b\n  ProxyCommand nc %h %p\n  ProxyUseFdpass yes\nHost c\n  ProxyCommand -\n",
            false,
        );
        let msg = |h: &str| {
            c.resolve(h)
                .problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(msg("a").contains("unknown token %x"), "{}", msg("a"));
        // ProxyUseFdpass yes is a way to connect, not a problem.
        assert_eq!(msg("b"), "");
        assert!(msg("c").contains("ProxyCommand -"), "{}", msg("c"));
    }

    #[test]
    fn status_signal_timeout_and_stderr() {
        let (o, _) = run("/bin/sh", "exit 3", TIMEOUT);
        assert_eq!(o, ExecOutcome::Exited { status: 3 });
        let (o, err) = run("/bin/sh", "echo oops >&2; true", TIMEOUT);
        assert!(o.holds());
        assert_eq!(err, "oops");
        let (o, _) = run("/bin/sh", "kill -9 $$", TIMEOUT);
        assert_eq!(o, ExecOutcome::Signaled { signal: 9 });
        let t = Instant::now();
        let (o, _) = run("/bin/sh", "sleep 30", Duration::from_millis(200));
        assert_eq!(o, ExecOutcome::TimedOut { secs: 0 });
        assert!(t.elapsed() < Duration::from_secs(5), "killed at the bound");
        let (o, _) = run("/nonexistent/shell", "true", TIMEOUT);
        assert!(matches!(o, ExecOutcome::Failed { .. }));
    }
}
