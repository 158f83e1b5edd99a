//! The commands a config tells ssh to run, as warren keeps them: `ProxyCommand` (its stdin
//! and stdout are a hop's connection), `Match exec` (its exit status decides a block) and
//! `KnownHostsCommand` (its output is more known_hosts lines).
//!
//! warren runs exactly the commands the config tells ssh to run, when ssh would run them, and
//! no others; under `--no-exec` ([`crate::config::context::NO_EXEC_VAR`]) it runs none, and a
//! hop that needs one is refused with the file and line ([`Hop::refusal`]). Nothing here runs
//! a process: the resolver runs `Match exec`, the ssh layer the other two.

use std::fmt;

use serde::Serialize;

use super::expand::{self, ExpandError};
use super::model::Hop;
use super::origin::{Origin, Sourced};

/// What became of one `Match exec` command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum ExecOutcome {
    /// It ran and exited with this status (0: the criterion holds).
    Exited { status: i32 },
    /// It was killed by a signal (ssh stops with an error; warren treats the block as not
    /// matching).
    Signaled { signal: i32 },
    /// It did not finish in time: killed, and the block treated as not matching.
    TimedOut { secs: u64 },
    /// It could not be started (no shell) or its tokens could not be expanded.
    Failed { error: String },
    /// Not run: `--no-exec`.
    NotRun,
}

impl ExecOutcome {
    /// Whether the criterion holds (before `!`): exit status 0.
    pub fn holds(&self) -> bool {
        matches!(self, ExecOutcome::Exited { status: 0 })
    }
}

impl fmt::Display for ExecOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecOutcome::Exited { status } => write!(f, "exit {status}"),
            ExecOutcome::Signaled { signal } => write!(f, "killed by signal {signal}"),
            ExecOutcome::TimedOut { secs } => write!(f, "timed out after {secs}s"),
            ExecOutcome::Failed { error } => write!(f, "not run: {error}"),
            ExecOutcome::NotRun => f.write_str("not run (--no-exec)"),
        }
    }
}

/// A `Match exec` criterion evaluated while resolving a host, for `warren show`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MatchExec {
    /// The Match line.
    #[serde(rename = "source")]
    pub origin: Origin,
    /// The command as run, tokens expanded.
    pub command: String,
    pub outcome: ExecOutcome,
    /// Whether the whole Match line matched (its block applies).
    pub applied: bool,
}

/// A piece of a command word: text, or a `%` token filled in only when the command runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Token(char),
}

/// KnownHostsCommand: split into words as OpenSSH's `argv_split` splits it (no shell), the
/// tokens known when the host is resolved already expanded in every word but the first, and
/// the ones known only at connect time (`%H %I %t %f %K`) left as [`Piece::Token`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostsCommand {
    /// As written in the config.
    pub raw: String,
    pub argv: Vec<Vec<Piece>>,
    /// Why it cannot run, found when it was read.
    pub broken: Option<Broken>,
}

/// A KnownHostsCommand that cannot run, and what ssh does about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Broken {
    /// ssh says so and goes on without it (bad quotes, no words).
    Skipped(String),
    /// ssh stops (a token or variable it cannot expand).
    Fatal(String),
}

/// The tokens of KnownHostsCommand that are filled in when it runs.
pub const LATE_TOKENS: [char; 5] = ['H', 'I', 't', 'f', 'K'];

impl HostsCommand {
    /// Splits `raw` and expands the early tokens with `early` (and `${VAR}` with `env`).
    pub fn parse(
        raw: &str,
        split: impl Fn(&str) -> Result<Vec<String>, String>,
        early: impl Fn(char) -> Option<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let mut c = HostsCommand {
            raw: raw.to_string(),
            argv: Vec::new(),
            broken: None,
        };
        let words = match split(raw) {
            Ok(w) if w.is_empty() => {
                c.broken = Some(Broken::Skipped(format!(
                    "KnownHostsCommand \"{raw}\" yielded no arguments"
                )));
                return c;
            }
            Ok(w) => w,
            Err(e) => {
                c.broken = Some(Broken::Skipped(format!(
                    "KnownHostsCommand \"{raw}\" contains invalid quotes ({e})"
                )));
                return c;
            }
        };
        c.argv.push(vec![Piece::Text(words[0].clone())]);
        for w in &words[1..] {
            match pieces(w, &early, &env) {
                Ok(p) => c.argv.push(p),
                Err(e) => {
                    c.broken = Some(Broken::Fatal(format!("KnownHostsCommand \"{raw}\": {e}")));
                    return c;
                }
            }
        }
        c
    }

    /// The words with the late tokens filled in.
    pub fn words(&self, late: impl Fn(char) -> String) -> Vec<String> {
        self.argv
            .iter()
            .map(|w| {
                w.iter()
                    .map(|p| match p {
                        Piece::Text(t) => t.clone(),
                        Piece::Token(c) => late(*c),
                    })
                    .collect()
            })
            .collect()
    }
}

impl fmt::Display for HostsCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for HostsCommand {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

/// One word of KnownHostsCommand: `${VAR}` and `%` tokens in one pass, as OpenSSH's
/// `percent_dollar_expand`, the late tokens kept.
fn pieces(
    word: &str,
    early: &impl Fn(char) -> Option<String>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<Piece>, ExpandError> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = word.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '$' && word[i + 1..].starts_with('{') {
            let rest = &word[i + 2..];
            let Some(end) = rest.find('}') else {
                return Err(ExpandError::Unterminated(word.to_string()));
            };
            let name = &rest[..end];
            if name.is_empty() {
                return Err(ExpandError::BadName(String::new()));
            }
            text.push_str(&env(name).ok_or_else(|| ExpandError::Unset(name.to_string()))?);
            // Skip `{name}`.
            for _ in 0..name.chars().count() + 2 {
                chars.next();
            }
            continue;
        }
        if c != '%' {
            text.push(c);
            continue;
        }
        match chars.next().map(|(_, t)| t) {
            Some('%') => text.push('%'),
            Some(t) if LATE_TOKENS.contains(&t) => {
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                out.push(Piece::Token(t));
            }
            Some(t) => text.push_str(&early(t).ok_or(ExpandError::UnknownToken(t))?),
            None => return Err(ExpandError::TrailingPercent),
        }
    }
    if !text.is_empty() || out.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

impl Hop {
    /// The ProxyCommand as OpenSSH runs it (`$SHELL -c` this): `exec ` prepended and the
    /// tokens `%h %k %n %p %r %%` expanded (sshconnect.c `expand_proxy_command`).
    pub fn proxy_command_line(&self) -> Option<Result<String, ExpandError>> {
        let pc = self.proxy_command.as_ref()?;
        let line = expand::percent(&format!("exec {}", pc.value), |t| {
            Some(match t {
                'h' => self.host.value.clone(),
                'k' => self
                    .host_key_alias
                    .as_ref()
                    .map(|a| a.value.clone())
                    .unwrap_or_else(|| self.name.clone()),
                'n' => self.name.clone(),
                'p' => self.port.value.to_string(),
                'r' => self.user.value.clone(),
                _ => return None,
            })
        });
        Some(line)
    }

    /// Why warren will not connect this hop, with the file and line and the fix; `None`
    /// when it can. Checked before anything is run or dialled.
    pub fn refusal(&self) -> Option<String> {
        let no_exec = !self.run_commands.value;
        if let Some(pc) = &self.proxy_command {
            if no_exec {
                return Some(format!(
                    "ProxyCommand at {} is not run: {} forbids running commands from the config; {}",
                    pc.origin,
                    no_exec_source(&self.run_commands),
                    no_exec_fix(&self.run_commands, "to connect as ssh would")
                ));
            }
            if pc.value == "-" {
                return Some(format!(
                    "ProxyCommand - at {} (ssh's own stdin and stdout as the connection) cannot be used by warren; write the command that reaches the host instead",
                    pc.origin
                ));
            }
            if let Some(Err(e)) = self.proxy_command_line() {
                return Some(format!(
                    "ProxyCommand at {}: {e}; its tokens are %h %k %n %p %r and %%",
                    pc.origin
                ));
            }
        }
        if let Some(cc) = &self.certificate_command
            && no_exec
        {
            return Some(format!(
                "certificate_command at {} is not run: {} forbids running commands from the config; {}",
                cc.origin,
                no_exec_source(&self.run_commands),
                no_exec_fix(&self.run_commands, "to get a fresh certificate")
            ));
        }
        // ssh stops at a Match exec that cannot be expanded, run, or that dies.
        if let Some(m) = self.match_exec.iter().find(|m| {
            matches!(
                m.outcome,
                ExecOutcome::Signaled { .. } | ExecOutcome::Failed { .. }
            )
        }) {
            return Some(format!(
                "Match exec \"{}\" at {}: {} (ssh stops there); warren does not connect with settings ssh would not use",
                m.command, m.origin, m.outcome
            ));
        }
        if no_exec {
            if let Some(c) = &self.known_hosts_command {
                return Some(format!(
                    "KnownHostsCommand at {} is not run: {} forbids running commands from the config; list the host's key in a known_hosts file, or {}",
                    c.origin,
                    no_exec_source(&self.run_commands),
                    no_exec_fix(&self.run_commands, "")
                ));
            }
            if let Some(m) = self
                .match_exec
                .iter()
                .find(|m| m.outcome == ExecOutcome::NotRun)
            {
                return Some(format!(
                    "the settings of {} depend on Match exec \"{}\" at {}, which {} does not run: warren would not know which settings ssh uses; {}",
                    self.name,
                    m.command,
                    m.origin,
                    no_exec_source(&self.run_commands),
                    no_exec_fix(&self.run_commands, "")
                ));
            }
        }
        None
    }
}

/// What to do about [`no_exec_source`]: trust the file, or run without `--no-exec`.
fn no_exec_fix(run: &Sourced<bool>, then: &str) -> String {
    let fix = match &run.origin {
        Origin::Flag(crate::config::context::UNTRUSTED_NAMES) => {
            "trust the epoch.toml that names it (`warren trust-config PATH`)"
        }
        _ => "run without it",
    };
    if then.is_empty() {
        fix.to_string()
    } else {
        format!("{fix} {then}")
    }
}

fn no_exec_source(run: &Sourced<bool>) -> String {
    match &run.origin {
        Origin::Flag(crate::config::context::UNTRUSTED_NAMES) => {
            "the entry's epoch.toml, not trusted (its names run none of your commands),".into()
        }
        Origin::Env(v) => format!("--no-exec ({v})"),
        other => format!("--no-exec ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<HostsCommand, String> {
        let c = HostsCommand::parse(
            raw,
            |s| Ok(s.split(' ').map(str::to_string).collect()),
            |t| (t == 'h').then(|| "db".to_string()),
            |v| (v == "X").then(|| "x".to_string()),
        );
        match c.broken {
            Some(Broken::Fatal(e) | Broken::Skipped(e)) => Err(e),
            None => Ok(c),
        }
    }

    #[test]
    fn hosts_command_keeps_late_tokens_and_expands_the_rest() {
        let c = parse("/bin/kh %h:%H ${X}%% %I").expect("parses");
        let words = c.words(|t| format!("<{t}>"));
        assert_eq!(words, ["/bin/kh", "db:<H>", "x%", "<I>"]);
        // The first word is never expanded (OpenSSH expands arguments 1..n).
        let c = parse("/bin/%h").expect("parses");
        assert_eq!(c.words(|_| String::new()), ["/bin/%h"]);
        assert!(parse("/bin/kh %q").is_err());
        assert!(parse("/bin/kh ${NOPE}").is_err());
        // `%%H` is a literal `%H`, not the token.
        let c = parse("/bin/kh %%H").expect("parses");
        assert_eq!(c.words(|_| "no".into()), ["/bin/kh", "%H"]);
    }
}
