//! Reads ssh_config files into blocks of typed directives, following `Include`.
//!
//! Every line is checked once here, at load time, so a bad value is reported once with its
//! file and line (OpenSSH checks lines even in blocks that do not apply, and so do we); the
//! resolver then only walks the blocks that can apply to a host.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lex;
use super::pattern;
use crate::config::context::Context;
use crate::config::destination::Destination;
use crate::config::forward::{self, Forward, ForwardKind};
use crate::config::origin::{Origin, Problem};

/// OpenSSH's limit on nested Includes (READCONF_MAX_DEPTH).
const MAX_INCLUDE_DEPTH: usize = 16;

/// StrictHostKeyChecking as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrictHostKeyChecking {
    Yes,
    No,
    Ask,
    AcceptNew,
}

impl StrictHostKeyChecking {
    /// The word `ssh -G` prints.
    pub fn as_ssh_g(self) -> &'static str {
        match self {
            StrictHostKeyChecking::Yes => "true",
            StrictHostKeyChecking::No => "false",
            StrictHostKeyChecking::Ask => "ask",
            StrictHostKeyChecking::AcceptNew => "accept-new",
        }
    }
}

/// A line of a config that warren understands, already checked.
#[derive(Clone, Debug)]
pub enum Directive {
    HostName(String),
    Port(u16),
    User(String),
    /// `None` is `ProxyJump none`.
    ProxyJump(Option<Vec<Destination>>),
    ProxyCommand(String),
    IdentityFile(String),
    CertificateFile(String),
    IdentitiesOnly(bool),
    IdentityAgent(String),
    UserKnownHostsFile(Vec<String>),
    StrictHostKeyChecking(StrictHostKeyChecking),
    ServerAliveInterval(u32),
    ServerAliveCountMax(u32),
    /// `None` is `ConnectTimeout none`.
    ConnectTimeout(Option<u32>),
    Forward(Forward),
    ExitOnForwardFailure(bool),
    ClearAllForwardings(bool),
    HostKeyAlias(String),
    /// Whether ssh canonicalizes the name (which also makes it re-read the config).
    CanonicalizeHostname(bool),
    /// A keyword warren does not use: kept (for `warren show`) and otherwise ignored.
    Other {
        keyword: String,
        value: String,
    },
}

/// One criterion of a `Match` line.
#[derive(Clone, Debug)]
pub struct Criterion {
    pub negated: bool,
    pub test: Test,
}

#[derive(Clone, Debug)]
pub enum Test {
    All,
    Canonical,
    Final,
    Host(String),
    OriginalHost(String),
    User(String),
    LocalUser(String),
    Exec(String),
}

#[derive(Clone, Debug)]
pub enum Header {
    /// The lines before a file's first Host or Match.
    Start,
    Host {
        /// `(negated, pattern)`.
        patterns: Vec<(bool, String)>,
        line: usize,
    },
    Match {
        /// `None`: the line is invalid and never matches (OpenSSH refuses the file).
        criteria: Option<Vec<Criterion>>,
        line: usize,
    },
}

#[derive(Clone, Debug)]
pub enum Stmt {
    Set {
        line: usize,
        directive: Directive,
    },
    /// The files an Include line matched, as indices into `SshConfig::files`.
    Include {
        files: Vec<usize>,
    },
}

#[derive(Clone, Debug)]
pub struct Block {
    pub header: Header,
    pub body: Vec<Stmt>,
}

/// A parsed file.
#[derive(Debug)]
pub struct File {
    pub path: Arc<Path>,
    pub blocks: Vec<Block>,
    /// Host blocks whose patterns are all plain names: the only hosts they can apply to.
    pub literal: HashMap<String, Vec<usize>>,
    /// Every other block, in order: evaluated for every host.
    pub always: Vec<usize>,
}

/// A concrete `Host` alias and the line that first named it.
#[derive(Clone, Debug)]
pub struct Alias {
    pub name: String,
    pub origin: Origin,
}

/// Reads files, resolving Includes; collects the problems it finds.
pub struct Loader<'a> {
    ctx: &'a Context,
    pub files: Vec<File>,
    pub problems: Vec<Problem>,
    pub aliases: Vec<Alias>,
    pub want_final: bool,
    seen_alias: HashMap<String, usize>,
    by_path: HashMap<PathBuf, usize>,
    stack: Vec<PathBuf>,
}

impl<'a> Loader<'a> {
    pub fn new(ctx: &'a Context) -> Self {
        Loader {
            ctx,
            files: Vec::new(),
            problems: Vec::new(),
            aliases: Vec::new(),
            want_final: false,
            seen_alias: HashMap::new(),
            by_path: HashMap::new(),
            stack: Vec::new(),
        }
    }

    /// Loads a top-level file from its text. `user` selects the user-config rules for
    /// relative Includes (`~/.ssh/`) rather than the system ones (`/etc/ssh/`).
    pub fn load_text(&mut self, path: &Path, text: &str, user: bool) -> usize {
        self.stack.push(path.to_path_buf());
        let idx = self.parse(path, text, user, 0);
        self.stack.pop();
        idx
    }

    fn parse(&mut self, path: &Path, text: &str, user: bool, depth: usize) -> usize {
        let path: Arc<Path> = Arc::from(path);
        let mut blocks = vec![Block {
            header: Header::Start,
            body: Vec::new(),
        }];
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let origin = Origin::file(&path, line);
            let (keyword, args) = match lex::split(raw) {
                Ok(Some(kv)) => kv,
                Ok(None) => continue,
                Err(e) => {
                    self.problems.push(
                        Problem::error(origin, format!("{e}; the line is ignored"))
                            .with_fix("close the quote"),
                    );
                    continue;
                }
            };
            if args.is_empty() && keyword == "host" && !raw.trim().eq_ignore_ascii_case("host") {
                // `Host # comment`: ssh opens a block that matches no host.
                blocks.push(Block {
                    header: Header::Host {
                        patterns: Vec::new(),
                        line,
                    },
                    body: Vec::new(),
                });
                continue;
            }
            if args.is_empty() {
                self.problems.push(
                    Problem::error(origin, format!("no argument after keyword \"{keyword}\""))
                        .with_fix(format!("give {keyword} a value or remove the line")),
                );
                continue;
            }
            match keyword.as_str() {
                "host" => {
                    let patterns = args
                        .iter()
                        .map(|a| match a.strip_prefix('!') {
                            Some(p) => (true, p.to_string()),
                            None => (false, a.clone()),
                        })
                        .collect::<Vec<_>>();
                    for (neg, p) in &patterns {
                        if !*neg && pattern::is_literal(p) && !self.seen_alias.contains_key(p) {
                            self.seen_alias.insert(p.clone(), self.aliases.len());
                            self.aliases.push(Alias {
                                name: p.clone(),
                                origin: origin.clone(),
                            });
                        }
                    }
                    blocks.push(Block {
                        header: Header::Host { patterns, line },
                        body: Vec::new(),
                    });
                }
                "match" => {
                    let criteria = self.match_criteria(&args, &origin);
                    blocks.push(Block {
                        header: Header::Match { criteria, line },
                        body: Vec::new(),
                    });
                }
                "include" => {
                    let files = self.include(&args, &origin, user, depth);
                    if let Some(b) = blocks.last_mut() {
                        b.body.push(Stmt::Include { files });
                    }
                }
                _ => {
                    if let Some(directive) = self.directive(&keyword, &args, &origin)
                        && let Some(b) = blocks.last_mut()
                    {
                        b.body.push(Stmt::Set { line, directive });
                    }
                }
            }
        }
        let mut literal: HashMap<String, Vec<usize>> = HashMap::new();
        let mut always = Vec::new();
        for (bi, block) in blocks.iter().enumerate() {
            match &block.header {
                Header::Host { patterns, .. }
                    if patterns
                        .iter()
                        .all(|(neg, p)| !neg && pattern::is_literal(p)) =>
                {
                    for (_, p) in patterns {
                        let v = literal.entry(p.clone()).or_default();
                        if v.last() != Some(&bi) {
                            v.push(bi);
                        }
                    }
                }
                _ => always.push(bi),
            }
        }
        self.files.push(File {
            path,
            blocks,
            literal,
            always,
        });
        self.files.len() - 1
    }

    fn include(
        &mut self,
        args: &[String],
        origin: &Origin,
        user: bool,
        depth: usize,
    ) -> Vec<usize> {
        let mut out = Vec::new();
        for arg in args {
            let pattern = if let Some(rest) = arg.strip_prefix("~/") {
                if !user {
                    self.problems.push(Problem::error(
                        origin.clone(),
                        format!("bad include path {arg}: a system config cannot use ~"),
                    ));
                    continue;
                }
                self.ctx.home.join(rest)
            } else if arg.starts_with('/') {
                PathBuf::from(arg)
            } else if arg.starts_with('~') {
                self.problems.push(Problem::error(
                    origin.clone(),
                    format!("include path {arg}: ~user paths are not supported"),
                ));
                continue;
            } else if user {
                self.ctx.home.join(".ssh").join(arg)
            } else {
                Path::new("/etc/ssh").join(arg)
            };
            let options = glob::MatchOptions {
                require_literal_leading_dot: true,
                ..glob::MatchOptions::new()
            };
            let matches = match glob::glob_with(&pattern.to_string_lossy(), options) {
                Ok(paths) => paths.filter_map(Result::ok).collect::<Vec<_>>(),
                Err(e) => {
                    self.problems.push(Problem::error(
                        origin.clone(),
                        format!("Include {arg}: bad glob pattern: {e}"),
                    ));
                    continue;
                }
            };
            for path in matches {
                if let Some(idx) = self.include_file(&path, origin, user, depth) {
                    out.push(idx);
                }
            }
        }
        out
    }

    fn include_file(
        &mut self,
        path: &Path,
        origin: &Origin,
        user: bool,
        depth: usize,
    ) -> Option<usize> {
        if self.stack.iter().any(|p| p == path) {
            let chain = self
                .stack
                .iter()
                .chain(std::iter::once(&path.to_path_buf()))
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" -> ");
            self.problems.push(
                Problem::error(origin.clone(), format!("Include loop: {chain}"))
                    .with_fix("remove the Include that points back at a file already being read"),
            );
            return None;
        }
        if depth + 1 > MAX_INCLUDE_DEPTH {
            self.problems.push(Problem::error(
                origin.clone(),
                format!(
                    "Includes nested more than {MAX_INCLUDE_DEPTH} deep at {}",
                    path.display()
                ),
            ));
            return None;
        }
        if let Some(&idx) = self.by_path.get(path) {
            return Some(idx);
        }
        if path.is_dir() {
            return None;
        }
        let text = match std::fs::read(path) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) => {
                self.problems.push(
                    Problem::error(
                        origin.clone(),
                        format!("cannot read included file {}: {e}", path.display()),
                    )
                    .with_fix("fix the file's permissions or remove the Include"),
                );
                return None;
            }
        };
        self.stack.push(path.to_path_buf());
        let idx = self.parse(path, &text, user, depth + 1);
        self.stack.pop();
        self.by_path.insert(path.to_path_buf(), idx);
        Some(idx)
    }

    /// The criteria of a Match line, checked as OpenSSH's `match_cfg_line` checks them.
    fn match_criteria(&mut self, args: &[String], origin: &Origin) -> Option<Vec<Criterion>> {
        // ssh splits Match arguments with strdelim, for which one `=` also separates.
        let args: Vec<String> = args
            .iter()
            .flat_map(|a| match a.split_once('=') {
                Some((k, v)) => vec![k.to_string(), v.to_string()],
                None => vec![a.clone()],
            })
            .filter(|a| !a.is_empty())
            .collect();
        let mut out = Vec::new();
        let mut attributes = 0;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (negated, attr) = match a.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, a.as_str()),
            };
            let attr = attr.to_ascii_lowercase();
            if attr == "all" {
                if attributes > 1 || it.next().is_some() {
                    self.problems.push(
                        Problem::error(
                            origin.clone(),
                            "'all' cannot be combined with other Match attributes",
                        )
                        .with_fix("write 'Match all' alone (or after 'final' / 'canonical')"),
                    );
                    return None;
                }
                out.push(Criterion {
                    negated,
                    test: Test::All,
                });
                return Some(out);
            }
            attributes += 1;
            let test = match attr.as_str() {
                "canonical" => Test::Canonical,
                "final" => {
                    // Negated or not, a `final` criterion makes ssh do the second pass.
                    self.want_final = true;
                    Test::Final
                }
                "host" | "originalhost" | "user" | "localuser" | "exec" => {
                    let Some(arg) = it.next() else {
                        self.problems.push(
                            Problem::error(
                                origin.clone(),
                                format!("Match {attr} needs an argument"),
                            )
                            .with_fix(format!("write e.g. 'Match {attr} PATTERN'")),
                        );
                        return None;
                    };
                    let arg = arg.clone();
                    match attr.as_str() {
                        "host" => Test::Host(arg),
                        "originalhost" => Test::OriginalHost(arg),
                        "user" => Test::User(arg),
                        "localuser" => Test::LocalUser(arg),
                        _ => Test::Exec(arg),
                    }
                }
                other => {
                    self.problems.push(
                        Problem::error(origin.clone(), format!("unsupported Match attribute '{other}'; this block never applies"))
                            .with_fix("use all, canonical, final, host, originalhost, user, localuser or exec"),
                    );
                    return None;
                }
            };
            out.push(Criterion { negated, test });
        }
        if out.is_empty() {
            self.problems.push(Problem::error(
                origin.clone(),
                "Match needs at least one attribute",
            ));
            return None;
        }
        Some(out)
    }

    /// Checks one option line; `None` (with a problem recorded) when its value is invalid.
    fn directive(&mut self, keyword: &str, args: &[String], origin: &Origin) -> Option<Directive> {
        let first = args[0].clone();
        let single = |this: &mut Self| -> bool {
            if args.len() > 1 {
                this.problems.push(
                    Problem::error(
                        origin.clone(),
                        format!(
                            "{keyword}: garbage at end of line: '{}'",
                            args[1..].join(" ")
                        ),
                    )
                    .with_fix(format!(
                        "{keyword} takes one value; quote a value that has spaces"
                    )),
                );
                return false;
            }
            true
        };
        match keyword {
            "hostname" => single(self).then_some(Directive::HostName(first)),
            "user" => single(self).then_some(Directive::User(first)),
            "port" => match crate::config::expand::port(&first) {
                Some(p) if p > 0 => single(self).then_some(Directive::Port(p)),
                _ => self.bad(
                    origin,
                    format!("Port '{first}' is not a port number"),
                    "use a number from 1 to 65535",
                ),
            },
            "proxyjump" => {
                if first.eq_ignore_ascii_case("none") {
                    Some(Directive::ProxyJump(None))
                } else {
                    let mut hops = Vec::new();
                    for part in first.split(',') {
                        match Destination::parse(part) {
                            Ok(d) => hops.push(d),
                            Err(e) => return self.bad(
                                origin,
                                format!("invalid ProxyJump {e}"),
                                "write [user@]host[:port] or ssh://user@host:port, comma-separated",
                            ),
                        }
                    }
                    single(self).then_some(Directive::ProxyJump(Some(hops)))
                }
            }
            "proxycommand" => Some(Directive::ProxyCommand(args.join(" "))),
            "identityfile" | "identityfile2" => {
                single(self).then_some(Directive::IdentityFile(first))
            }
            "hostkeyalias" => single(self).then_some(Directive::HostKeyAlias(first)),
            "canonicalizehostname" => match first.to_ascii_lowercase().as_str() {
                "yes" | "true" | "always" => Some(Directive::CanonicalizeHostname(true)),
                "no" | "false" | "none" => Some(Directive::CanonicalizeHostname(false)),
                _ => self.bad(
                    origin,
                    format!("CanonicalizeHostname '{first}' is not a valid value"),
                    "use yes, no or always",
                ),
            },
            "certificatefile" => single(self).then_some(Directive::CertificateFile(first)),
            "identityagent" => single(self).then_some(Directive::IdentityAgent(first)),
            "userknownhostsfile" => Some(Directive::UserKnownHostsFile(args.to_vec())),
            "identitiesonly" => self
                .flag(keyword, &first, origin)
                .map(Directive::IdentitiesOnly),
            "exitonforwardfailure" => self
                .flag(keyword, &first, origin)
                .map(Directive::ExitOnForwardFailure),
            "clearallforwardings" => self
                .flag(keyword, &first, origin)
                .map(Directive::ClearAllForwardings),
            "stricthostkeychecking" => match first.to_ascii_lowercase().as_str() {
                "yes" | "true" => {
                    Some(Directive::StrictHostKeyChecking(StrictHostKeyChecking::Yes))
                }
                "no" | "false" | "off" => {
                    Some(Directive::StrictHostKeyChecking(StrictHostKeyChecking::No))
                }
                "ask" => Some(Directive::StrictHostKeyChecking(StrictHostKeyChecking::Ask)),
                "accept-new" => Some(Directive::StrictHostKeyChecking(
                    StrictHostKeyChecking::AcceptNew,
                )),
                _ => self.bad(
                    origin,
                    format!("StrictHostKeyChecking '{first}' is not a valid value"),
                    "use yes, accept-new, no or ask",
                ),
            },
            "serveraliveinterval" => match convtime(&first) {
                Some(t) => Some(Directive::ServerAliveInterval(t)),
                None => self.bad(
                    origin,
                    format!("ServerAliveInterval '{first}' is not a time"),
                    "use seconds, e.g. 30, or 1m",
                ),
            },
            "connecttimeout" => {
                if first.eq_ignore_ascii_case("none") {
                    Some(Directive::ConnectTimeout(None))
                } else {
                    match convtime(&first) {
                        Some(t) => Some(Directive::ConnectTimeout(Some(t))),
                        None => self.bad(
                            origin,
                            format!("ConnectTimeout '{first}' is not a time"),
                            "use seconds, e.g. 10",
                        ),
                    }
                }
            }
            "serveralivecountmax" => match first.parse::<u32>() {
                Ok(n) => Some(Directive::ServerAliveCountMax(n)),
                Err(_) => self.bad(
                    origin,
                    format!("ServerAliveCountMax '{first}' is not a number"),
                    "use a whole number, e.g. 3",
                ),
            },
            "localforward" | "remoteforward" | "dynamicforward" => {
                self.forward(keyword, args, origin)
            }
            _ => Some(Directive::Other {
                keyword: keyword.to_string(),
                value: args.join(" "),
            }),
        }
    }

    fn bad<T>(&mut self, origin: &Origin, message: String, fix: &str) -> Option<T> {
        self.problems.push(
            Problem::error(origin.clone(), format!("{message}; the line is ignored")).with_fix(fix),
        );
        None
    }

    fn flag(&mut self, keyword: &str, value: &str, origin: &Origin) -> Option<bool> {
        match value.to_ascii_lowercase().as_str() {
            "yes" | "true" => Some(true),
            "no" | "false" => Some(false),
            _ => self.bad(
                origin,
                format!("{keyword} '{value}' is not yes or no"),
                "use yes or no",
            ),
        }
    }

    fn forward(&mut self, keyword: &str, args: &[String], origin: &Origin) -> Option<Directive> {
        let kind = match keyword {
            "localforward" => ForwardKind::Local,
            "remoteforward" => ForwardKind::Remote,
            _ => ForwardKind::Dynamic,
        };
        let (spec, dynamic) = match (kind, args.get(1)) {
            (ForwardKind::Dynamic, _) => (args[0].clone(), true),
            (ForwardKind::Remote, None) => (args[0].clone(), true),
            (ForwardKind::Local, None) => {
                return self.bad(
                    origin,
                    "LocalForward has no target".to_string(),
                    "write LocalForward LOCALPORT HOST:PORT",
                );
            }
            (_, Some(target)) => (format!("{}:{}", args[0], target), false),
        };
        let spec =
            match crate::config::expand::dollar(&spec, |v| self.ctx.var(v).map(str::to_string)) {
                Ok(s) => s,
                Err(e) => {
                    return self.bad(
                        origin,
                        format!("{keyword}: {e}"),
                        "set the variable or write the value",
                    );
                }
            };
        match forward::parse(kind, &spec, dynamic) {
            Some(f) => Some(Directive::Forward(f)),
            None => self.bad(
                origin,
                format!("bad forwarding specification '{}'", args.join(" ")),
                match kind {
                    ForwardKind::Local => {
                        "write LocalForward [BIND:]PORT HOST:PORT (or a socket path)"
                    }
                    ForwardKind::Remote => "write RemoteForward [BIND:]PORT HOST:PORT",
                    ForwardKind::Dynamic => "write DynamicForward [BIND:]PORT",
                },
            ),
        }
    }
}

/// OpenSSH's `convtime`: `90`, `1m30s`, `2h`; units s, m, h, d, w.
pub fn convtime(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let mult = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 604800,
            _ => return None,
        };
        total += num.parse::<u64>().ok()? * mult;
        num.clear();
    }
    if !num.is_empty() {
        total += num.parse::<u64>().ok()?;
    }
    u32::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::convtime;

    #[test]
    fn times() {
        assert_eq!(convtime("30"), Some(30));
        assert_eq!(convtime("1m30s"), Some(90));
        assert_eq!(convtime("2h"), Some(7200));
        assert_eq!(convtime("x"), None);
        assert_eq!(convtime(""), None);
    }
}
