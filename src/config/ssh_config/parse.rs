//! Reads ssh_config files into blocks of typed directives, following `Include`.
//!
//! Every line is checked once here, at load time, so a bad value is reported once with its
//! file and line (OpenSSH checks lines even in blocks that do not apply, and so do we); the
//! resolver then only walks the blocks that can apply to a host.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::directive::{Checker, Directive};
use super::keywords;
use super::lex;
use super::pattern::{self, ListMatch};
use crate::config::context::Context;
use crate::config::origin::{Origin, Problem};

/// OpenSSH's limit on nested Includes (READCONF_MAX_DEPTH).
const MAX_INCLUDE_DEPTH: usize = 16;

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

/// The files an Include's pattern (expanded) matches now, as ssh globs them: a leading dot
/// only matched by a dot.
pub fn include_matches(pattern: &Path) -> Result<Vec<PathBuf>, glob::PatternError> {
    let options = glob::MatchOptions {
        require_literal_leading_dot: true,
        ..glob::MatchOptions::new()
    };
    Ok(glob::glob_with(&pattern.to_string_lossy(), options)?
        .filter_map(Result::ok)
        .collect())
}

/// Reads files, resolving Includes; collects the problems it finds.
pub struct Loader<'a> {
    pub(super) ctx: &'a Context,
    pub files: Vec<File>,
    pub problems: Vec<Problem>,
    pub aliases: Vec<Alias>,
    pub want_final: bool,
    /// Every Include's path pattern, expanded (a file that appears later may match one).
    pub include_patterns: Vec<PathBuf>,
    /// The top-level files ssh refuses for a keyword it does not know ("terminating, N bad
    /// configuration options"), in order, each once.
    pub bad_option_files: Vec<PathBuf>,
    /// The first `IgnoreUnknown` list read: keywords it names are not bad options in the
    /// lines after it. (ssh takes the first one in a block that applies to the host; warren
    /// checks lines once, for every host, so it takes the first one written.)
    ignore_unknown: Option<String>,
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
            include_patterns: Vec::new(),
            bad_option_files: Vec::new(),
            ignore_unknown: None,
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
        // `# warren: tags = ...` lines not yet placed. An indented one belongs to the block it
        // is in, like the options around it. One at the start of its line belongs to the block
        // the next Host or Match line opens when only comments and blank lines stand between
        // (a note above a Host is about that Host), else to the block it is in.
        let mut pending: Vec<Stmt> = Vec::new();
        // Lines with a keyword ssh does not know: (line, keyword).
        let mut bad: Vec<(usize, String)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let origin = Origin::file(&path, line);
            match lex::warren_comment(raw) {
                Some(Ok(setting)) => {
                    let directive = match setting {
                        lex::WarrenSetting::Tags(tags) => Directive::WarrenTags(tags),
                        lex::WarrenSetting::LocalBindAuto => Directive::WarrenLocalBindAuto,
                        lex::WarrenSetting::OnDemand(on) => Directive::WarrenOnDemand(on),
                        lex::WarrenSetting::CertificateCommand(c) => {
                            Directive::WarrenCertificateCommand(c)
                        }
                    };
                    let stmt = Stmt::Set { line, directive };
                    if raw.starts_with([' ', '\t']) {
                        if let Some(b) = blocks.last_mut() {
                            b.body.append(&mut pending);
                            b.body.push(stmt);
                        }
                    } else {
                        pending.push(stmt);
                    }
                    continue;
                }
                Some(Err(e)) => {
                    self.problems.push(
                        Problem::warning(origin, format!("{e}; the comment is ignored"))
                            .with_fix("write it as `# warren: tags = prod, eu`"),
                    );
                    continue;
                }
                None => {}
            }
            // An option line after them: they were about the block they are in.
            if !pending.is_empty()
                && lex::keyword_and_rest(raw).is_some_and(|(k, _)| k != "host" && k != "match")
                && let Some(b) = blocks.last_mut()
            {
                b.body.append(&mut pending);
            }
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
                    body: std::mem::take(&mut pending),
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
                        body: std::mem::take(&mut pending),
                    });
                }
                "match" => {
                    // ssh reads a Match line with strdelim, not argv_split: only double
                    // quotes group, and one `=` also separates.
                    let rest = lex::keyword_and_rest(raw)
                        .map(|(_, r)| r)
                        .unwrap_or_default();
                    let criteria = match lex::match_words(rest) {
                        Ok(words) => self.match_criteria(&words, &origin),
                        Err(e) => {
                            self.problems.push(
                                Problem::error(
                                    origin.clone(),
                                    format!("Match: {e}; this block never applies"),
                                )
                                .with_fix("close the quote"),
                            );
                            None
                        }
                    };
                    blocks.push(Block {
                        header: Header::Match { criteria, line },
                        body: std::mem::take(&mut pending),
                    });
                }
                "include" => {
                    let files = self.include(&args, &origin, user, depth);
                    if let Some(b) = blocks.last_mut() {
                        b.body.push(Stmt::Include { files });
                    }
                }
                k if !keywords::known(k) => {
                    let ignored = self.ignore_unknown.as_deref().is_some_and(|list| {
                        pattern::pattern_list(k, list, true) == ListMatch::Positive
                    });
                    if !ignored {
                        bad.push((line, keyword.clone()));
                    }
                }
                _ => {
                    if keyword == "ignoreunknown" && self.ignore_unknown.is_none() {
                        self.ignore_unknown = Some(args[0].clone());
                    }
                    let command = lex::keyword_and_rest(raw)
                        .map(|(_, r)| r)
                        .unwrap_or_default();
                    if let Some(directive) = (Checker {
                        ctx: self.ctx,
                        problems: &mut self.problems,
                    })
                    .directive(&keyword, &args, command, &origin)
                        && let Some(b) = blocks.last_mut()
                    {
                        b.body.push(Stmt::Set { line, directive });
                    }
                }
            }
        }
        if let Some(b) = blocks.last_mut() {
            b.body.append(&mut pending);
        }
        self.bad_options(&path, &bad);
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

    /// ssh's errors for the keywords of one file it does not know, in its words, and the file
    /// as refused by ssh.
    fn bad_options(&mut self, path: &Arc<Path>, bad: &[(usize, String)]) {
        let Some((_, first)) = bad.first() else {
            return;
        };
        for (line, keyword) in bad {
            self.problems.push(
                Problem::error(
                    Origin::file(path, *line),
                    format!("Bad configuration option: {keyword}; the line is ignored"),
                )
                .with_fix(format!(
                    "ssh refuses this file (\"{}: terminating, {} bad configuration options\"): remove the line, or if it is meant for another ssh, write `IgnoreUnknown {first}` (a comma-separated list for more) at the top of the file, before any Host",
                    path.display(),
                    bad.len()
                )),
            );
        }
        let root = self
            .stack
            .first()
            .cloned()
            .unwrap_or_else(|| path.to_path_buf());
        if !self.bad_option_files.contains(&root) {
            self.bad_option_files.push(root);
        }
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
            if !self.include_patterns.contains(&pattern) {
                self.include_patterns.push(pattern.clone());
            }
            let matches = match include_matches(&pattern) {
                Ok(paths) => paths,
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
        // An attribute starting with `#` ends the line (an argument that does is missing).
        let end = args
            .iter()
            .position(|a| a.starts_with('#'))
            .unwrap_or(args.len());
        let args = &args[..end];
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
}
