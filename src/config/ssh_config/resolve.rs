//! Evaluates a loaded config for one host, as `ssh` does: first obtained value wins, Host
//! patterns match the name as typed, Match tests the current HostName and User, a
//! `Match final` asks for a second pass in which Host patterns match the final host name.

use super::canonical::{self, Canonicalize};
use super::directive::{Directive, StrictHostKeyChecking};
use super::exec;
use super::parse::{Block, Criterion, Header, Stmt, Test};
use super::pattern::{self, ListMatch};
use super::{HostConfig, SshConfig};
use crate::config::algorithms::{self, AlgorithmKind};
use crate::config::command::{ExecOutcome, MatchExec};
use crate::config::destination::Destination;
use crate::config::expand;
use crate::config::forward::Forward;
use crate::config::origin::{Origin, Problem, Sourced};

/// Values given on the "command line" of a hop: ProxyJump's `user@host:port` and the rest of
/// the chain. They win over the config, as `ssh -l user -p port -J ...` does.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub user: Option<Sourced<String>>,
    pub port: Option<Sourced<u16>>,
    pub jump: Option<Sourced<Vec<Destination>>>,
}

/// The options as they accumulate over the passes: `None` until first set.
#[derive(Default)]
pub(super) struct Acc {
    pub(super) hostname: Option<Sourced<String>>,
    pub(super) port: Option<Sourced<u16>>,
    pub(super) user: Option<Sourced<String>>,
    jump: Option<Sourced<Option<Vec<Destination>>>>,
    proxy_command: Option<Sourced<String>>,
    proxy_use_fdpass: Option<Sourced<bool>>,
    identity_files: Vec<Sourced<String>>,
    certificate_files: Vec<Sourced<String>>,
    identities_only: Option<Sourced<bool>>,
    identity_agent: Option<Sourced<String>>,
    known_hosts: Option<Sourced<Vec<String>>>,
    strict: Option<Sourced<StrictHostKeyChecking>>,
    alive_interval: Option<Sourced<u32>>,
    alive_count: Option<Sourced<u32>>,
    connect_timeout: Option<Sourced<Option<u32>>>,
    forwards: Vec<Sourced<Forward>>,
    exit_on_forward_failure: Option<Sourced<bool>>,
    clear_forwardings: Option<Sourced<bool>>,
    pub(super) host_key_alias: Option<Sourced<String>>,
    canonicalize: Option<Sourced<Canonicalize>>,
    canonical_domains: Option<Sourced<Vec<String>>>,
    canonicalize_max_dots: Option<Sourced<u32>>,
    canonicalize_fallback_local: Option<Sourced<bool>>,
    permitted_cnames: Option<Sourced<Vec<(String, String)>>>,
    algorithms: Vec<(AlgorithmKind, Sourced<String>)>,
    global_known_hosts: Option<Sourced<Vec<String>>>,
    revoked_host_keys: Option<Sourced<String>>,
    check_host_ip: Option<Sourced<bool>>,
    hash_known_hosts: Option<Sourced<bool>>,
    known_hosts_command: Option<Sourced<String>>,
    preferred_authentications: Option<Sourced<String>>,
    password_authentication: Option<Sourced<bool>>,
    kbd_interactive_authentication: Option<Sourced<bool>>,
    number_of_password_prompts: Option<Sourced<u32>>,
    batch_mode: Option<Sourced<bool>>,
    send_env: Vec<Sourced<String>>,
    other: Vec<(String, Sourced<String>)>,
    tag: Option<Sourced<String>>,
    warren_tags: Vec<Sourced<String>>,
    warren_local_bind_auto: Option<Sourced<bool>>,
    warren_on_demand: Option<Sourced<bool>>,
    warren_certificate_command: Option<Sourced<String>>,
}

fn first<T>(slot: &mut Option<Sourced<T>>, value: T, origin: &Origin) {
    if slot.is_none() {
        *slot = Some(Sourced::new(value, origin.clone()));
    }
}

impl Acc {
    fn apply(&mut self, d: &Directive, origin: &Origin) {
        match d {
            Directive::HostName(v) => first(&mut self.hostname, v.clone(), origin),
            Directive::Port(v) => first(&mut self.port, *v, origin),
            Directive::User(v) => first(&mut self.user, v.clone(), origin),
            Directive::ProxyJump(v) => {
                if self.jump.is_none() && self.proxy_command.is_none() {
                    self.jump = Some(Sourced::new(v.clone(), origin.clone()));
                }
            }
            Directive::ProxyCommand(v) => {
                let jump_set = matches!(&self.jump, Some(Sourced { value: Some(_), .. }));
                if !jump_set {
                    first(&mut self.proxy_command, v.clone(), origin);
                }
            }
            Directive::ProxyUseFdpass(v) => first(&mut self.proxy_use_fdpass, *v, origin),
            Directive::IdentityFile(v) => push_unique(&mut self.identity_files, v, origin),
            Directive::CertificateFile(v) => push_unique(&mut self.certificate_files, v, origin),
            Directive::IdentitiesOnly(v) => first(&mut self.identities_only, *v, origin),
            Directive::IdentityAgent(v) => first(&mut self.identity_agent, v.clone(), origin),
            Directive::UserKnownHostsFile(v) => first(&mut self.known_hosts, v.clone(), origin),
            Directive::StrictHostKeyChecking(v) => first(&mut self.strict, *v, origin),
            Directive::ServerAliveInterval(v) => first(&mut self.alive_interval, *v, origin),
            Directive::ServerAliveCountMax(v) => first(&mut self.alive_count, *v, origin),
            // `ConnectTimeout none` is stored by ssh as "unset": a later value still applies.
            Directive::ConnectTimeout(Some(v)) => {
                first(&mut self.connect_timeout, Some(*v), origin)
            }
            Directive::ConnectTimeout(None) => {}
            Directive::HostKeyAlias(v) => first(&mut self.host_key_alias, v.clone(), origin),
            Directive::CanonicalizeHostname(v) => first(&mut self.canonicalize, *v, origin),
            Directive::CanonicalDomains(v) => first(&mut self.canonical_domains, v.clone(), origin),
            Directive::CanonicalizeMaxDots(v) => first(&mut self.canonicalize_max_dots, *v, origin),
            Directive::CanonicalizeFallbackLocal(v) => {
                first(&mut self.canonicalize_fallback_local, *v, origin)
            }
            Directive::CanonicalizePermittedCnames(v) => {
                first(&mut self.permitted_cnames, v.clone(), origin)
            }
            Directive::Algorithms(kind, v) => {
                if !self.algorithms.iter().any(|(k, _)| k == kind) {
                    self.algorithms
                        .push((*kind, Sourced::new(v.clone(), origin.clone())));
                }
            }
            Directive::GlobalKnownHostsFile(v) => {
                first(&mut self.global_known_hosts, v.clone(), origin)
            }
            Directive::RevokedHostKeys(v) => first(&mut self.revoked_host_keys, v.clone(), origin),
            Directive::CheckHostIp(v) => first(&mut self.check_host_ip, *v, origin),
            Directive::HashKnownHosts(v) => first(&mut self.hash_known_hosts, *v, origin),
            Directive::KnownHostsCommand(v) => {
                first(&mut self.known_hosts_command, v.clone(), origin)
            }
            Directive::PreferredAuthentications(v) => {
                first(&mut self.preferred_authentications, v.clone(), origin)
            }
            Directive::PasswordAuthentication(v) => {
                first(&mut self.password_authentication, *v, origin)
            }
            Directive::KbdInteractiveAuthentication(v) => {
                first(&mut self.kbd_interactive_authentication, *v, origin)
            }
            Directive::NumberOfPasswordPrompts(v) => {
                first(&mut self.number_of_password_prompts, *v, origin)
            }
            Directive::BatchMode(v) => first(&mut self.batch_mode, *v, origin),
            Directive::Forward(f) => {
                if !self.forwards.iter().any(|x| x.value == *f) {
                    self.forwards.push(Sourced::new(f.clone(), origin.clone()));
                }
            }
            Directive::ExitOnForwardFailure(v) => {
                first(&mut self.exit_on_forward_failure, *v, origin)
            }
            Directive::ClearAllForwardings(v) => first(&mut self.clear_forwardings, *v, origin),
            // Every SendEnv line that applies adds to the list, as ssh does (not first wins).
            Directive::SendEnv(v) => {
                for name in v {
                    match name.strip_prefix('-') {
                        Some(p) => self.send_env.retain(|e| !pattern::wildcard(&e.value, p)),
                        None => self
                            .send_env
                            .push(Sourced::new(name.clone(), origin.clone())),
                    }
                }
            }
            Directive::Tag(v) => first(&mut self.tag, v.clone(), origin),
            Directive::WarrenLocalBindAuto => first(&mut self.warren_local_bind_auto, true, origin),
            Directive::WarrenOnDemand(on) => first(&mut self.warren_on_demand, *on, origin),
            Directive::WarrenCertificateCommand(c) => {
                first(&mut self.warren_certificate_command, c.clone(), origin)
            }
            Directive::WarrenTags(v) => {
                for t in v {
                    if !self
                        .warren_tags
                        .iter()
                        .any(|x| x.value.eq_ignore_ascii_case(t))
                    {
                        self.warren_tags
                            .push(Sourced::new(t.clone(), origin.clone()));
                    }
                }
            }
            Directive::Other { keyword, value } => {
                if !self.other.iter().any(|(k, _)| k == keyword) {
                    self.other
                        .push((keyword.clone(), Sourced::new(value.clone(), origin.clone())));
                }
            }
        }
    }
}

fn push_unique(list: &mut Vec<Sourced<String>>, v: &str, origin: &Origin) {
    if !list.iter().any(|x| x.value == v) {
        list.push(Sourced::new(v.to_string(), origin.clone()));
    }
}

/// The state of one pass over the files.
pub(super) struct Pass<'a> {
    pub(super) config: &'a SshConfig,
    /// The name Host patterns are matched against.
    pub(super) host: String,
    /// The name as the user typed it (`%n`, `Match originalhost`).
    pub(super) original: &'a str,
    final_pass: bool,
    pub(super) problems: Vec<Problem>,
    /// The `Match exec` criteria evaluated, in order.
    execs: Vec<MatchExec>,
}

impl Pass<'_> {
    fn file(&mut self, idx: usize, acc: &mut Acc, active: &mut bool, never: bool) {
        let config = self.config;
        let file = &config.files[idx];
        let literal = file
            .literal
            .get(&self.host)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        // Blocks that can apply, in file order: the merge of two sorted lists. A literal
        // Host block for another name would only switch `active` off for its own body, so
        // skipping it changes nothing.
        let (mut a, mut l) = (0, 0);
        loop {
            let bi = match (file.always.get(a), literal.get(l)) {
                (Some(&x), Some(&y)) if x < y => {
                    a += 1;
                    x
                }
                (Some(_), Some(&y)) => {
                    l += 1;
                    y
                }
                (Some(&x), None) => {
                    a += 1;
                    x
                }
                (None, Some(&y)) => {
                    l += 1;
                    y
                }
                (None, None) => break,
            };
            self.block(&file.blocks[bi], &file.path, acc, active, never);
        }
    }

    fn block(
        &mut self,
        block: &Block,
        path: &std::sync::Arc<std::path::Path>,
        acc: &mut Acc,
        active: &mut bool,
        never: bool,
    ) {
        match &block.header {
            Header::Start => {}
            Header::Host { patterns, .. } => {
                *active = !never && host_matches(&self.host, patterns);
            }
            Header::Match { criteria, line } => {
                let from = self.execs.len();
                let matched = match criteria {
                    Some(c) => self.match_line(c, acc, &Origin::file(path, *line)),
                    None => false,
                };
                for e in &mut self.execs[from..] {
                    e.applied = matched;
                }
                *active = !never && matched;
            }
        }
        for stmt in &block.body {
            match stmt {
                Stmt::Set { line, directive } => {
                    if *active {
                        acc.apply(directive, &Origin::file(path, *line));
                    }
                }
                Stmt::Include { files } => {
                    let outer = *active;
                    for &f in files {
                        self.file(f, acc, active, never || !outer);
                        // A Match inside an included file does not change the includer's state.
                        *active = outer;
                    }
                }
            }
        }
    }

    fn match_line(&mut self, criteria: &[Criterion], acc: &Acc, origin: &Origin) -> bool {
        let mut result = true;
        for c in criteria {
            let hit = match &c.test {
                Test::All => {
                    if c.negated {
                        result = false;
                    }
                    continue;
                }
                Test::Canonical | Test::Final => self.final_pass,
                Test::Host(p) => {
                    let host = self.match_host(acc);
                    pattern::pattern_list(&host.to_ascii_lowercase(), p, true)
                        == ListMatch::Positive
                }
                Test::OriginalHost(p) => {
                    pattern::pattern_list(&self.original.to_ascii_lowercase(), p, true)
                        == ListMatch::Positive
                }
                Test::User(p) => {
                    let user = acc
                        .user
                        .as_ref()
                        .map(|u| u.value.as_str())
                        .unwrap_or(&self.config.ctx.local_user);
                    pattern::pattern_list(user, p, false) == ListMatch::Positive
                }
                Test::LocalUser(p) => {
                    pattern::pattern_list(&self.config.ctx.local_user, p, false)
                        == ListMatch::Positive
                }
                Test::Exec(cmd) => {
                    // ssh expands the command first, then runs it only if the criteria
                    // before it on the line still hold.
                    let command = match expand::percent(cmd, |t| self.exec_token(t, acc)) {
                        Ok(c) => c,
                        Err(e) => {
                            self.problems.push(
                                Problem::error(origin.clone(), format!("Match exec \"{cmd}\": {e} (ssh stops here); this block is treated as not matching"))
                                    .with_fix("the tokens of Match exec are %C %L %d %h %i %k %l %n %p %r %u; write %% for a %"),
                            );
                            self.execs.push(MatchExec {
                                origin: origin.clone(),
                                command: cmd.clone(),
                                outcome: ExecOutcome::Failed {
                                    error: e.to_string(),
                                },
                                applied: false,
                            });
                            result = false;
                            continue;
                        }
                    };
                    if !result {
                        continue;
                    }
                    let outcome = self.exec(&command, origin);
                    let hit = outcome.holds();
                    let ran = matches!(outcome, ExecOutcome::Exited { .. });
                    self.execs.push(MatchExec {
                        origin: origin.clone(),
                        command,
                        outcome,
                        applied: false,
                    });
                    if !ran {
                        // Whatever the `!`: a command that did not finish does not match.
                        result = false;
                        continue;
                    }
                    hit
                }
            };
            if hit == c.negated {
                result = false;
            }
        }
        result
    }
}

fn host_matches(host: &str, patterns: &[(bool, String)]) -> bool {
    let mut active = false;
    for (negated, p) in patterns {
        if pattern::wildcard(host, p) {
            if *negated {
                return false;
            }
            active = true;
        }
    }
    active
}

/// The system-wide known_hosts files OpenSSH reads when GlobalKnownHostsFile is not set.
pub const DEFAULT_GLOBAL_KNOWN_HOSTS: [&str; 2] =
    ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

/// The identity files OpenSSH tries when none is configured.
pub const DEFAULT_IDENTITY_FILES: [&str; 7] = [
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
];

pub(super) fn resolve(config: &SshConfig, name: &str, over: &Overrides) -> HostConfig {
    let mut acc = Acc {
        user: over.user.clone(),
        port: over.port.clone(),
        jump: over.jump.clone().map(|j| j.map(Some)),
        ..Acc::default()
    };
    let mut pass = Pass {
        config,
        host: name.to_string(),
        original: name,
        final_pass: false,
        problems: Vec::new(),
        execs: Vec::new(),
    };
    for &root in &config.roots {
        let mut active = true;
        pass.file(root, &mut acc, &mut active, false);
    }
    // ssh.c: HostName with %h expanded, lowercased, then (for Match final) a second pass
    // in which Host patterns see this final name.
    let hostname = match &acc.hostname {
        Some(h) => match expand::percent(&h.value, |t| (t == 'h').then(|| name.to_string())) {
            Ok(v) => Sourced::new(v, h.origin.clone()),
            Err(e) => {
                pass.problems.push(
                    Problem::error(h.origin.clone(), format!("HostName: {e}"))
                        .with_fix("only %h and %% may appear in HostName"),
                );
                h.clone()
            }
        },
        None => Sourced::new(name.to_string(), Origin::Default),
    };
    // ssh lowercases names but not addresses, and writes an address in its canonical form
    // (`127.1` is 127.0.0.1) before the final pass.
    let family = acc
        .other
        .iter()
        .find(|(k, _)| k == "addressfamily")
        .and_then(|(_, v)| canonical::Family::parse(&v.value))
        .unwrap_or_default();
    // Then canonicalization (CanonicalizeHostname, CanonicalDomains, ...), see `canonical`.
    let mode = acc
        .canonicalize
        .as_ref()
        .map(|c| c.value)
        .unwrap_or_default();
    let none = Vec::new();
    let rules = canonical::Rules {
        mode,
        domains: acc.canonical_domains.as_ref().map_or(&none, |d| &d.value),
        max_dots: acc.canonicalize_max_dots.as_ref().map_or(1, |d| d.value),
        fallback_local: acc
            .canonicalize_fallback_local
            .as_ref()
            .is_none_or(|f| f.value),
        cnames: acc.permitted_cnames.as_ref().map_or(&[], |c| &c.value),
        direct: acc
            .proxy_command
            .as_ref()
            .is_none_or(|p| p.value.eq_ignore_ascii_case("none"))
            && !matches!(&acc.jump, Some(Sourced { value: Some(_), .. })),
        family,
    };
    let hostname = match canonical::canonical_name(&hostname.value, &rules, &|n| {
        config.lookup_cached(n, family)
    }) {
        Ok(h) if mode != Canonicalize::No && !h.eq_ignore_ascii_case(&hostname.value) => {
            let origin = acc.canonicalize.as_ref().map(|c| c.origin.clone());
            Sourced::new(h, origin.unwrap_or_else(|| hostname.origin.clone()))
        }
        Ok(h) => Sourced::new(h, hostname.origin.clone()),
        Err(e) => {
            let origin = acc
                .canonicalize
                .as_ref()
                .map(|c| c.origin.clone())
                .or_else(|| acc.permitted_cnames.as_ref().map(|c| c.origin.clone()))
                .unwrap_or_else(|| hostname.origin.clone());
            pass.problems.push(
                Problem::error(origin, format!("{e} (ssh stops here)")).with_fix(
                    "check the name and CanonicalDomains, or set CanonicalizeFallbackLocal yes to use the name as it is",
                ),
            );
            hostname.map(|h| h.to_ascii_lowercase())
        }
    };
    // A `Match final` anywhere, or CanonicalizeHostname yes/always, makes ssh read the config
    // again, with the canonical name.
    if config.want_final || mode != Canonicalize::No {
        acc.hostname = Some(hostname.clone());
        pass.host = hostname.value.clone();
        pass.final_pass = true;
        for &root in &config.roots {
            let mut active = true;
            pass.file(root, &mut acc, &mut active, false);
        }
    }
    // The second pass evaluates the same lines again: each is reported once.
    let mut problems = pass.problems;
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| seen.insert((p.origin.to_string(), p.message.clone())));
    let mut execs: Vec<MatchExec> = Vec::new();
    for e in pass.execs {
        match execs
            .iter_mut()
            .find(|x| x.origin == e.origin && x.command == e.command)
        {
            Some(x) => x.applied |= e.applied,
            None => execs.push(e),
        }
    }
    let mut hc = finish(config, name, hostname, acc, problems);
    hc.match_exec = execs;
    hc
}

fn finish(
    config: &SshConfig,
    name: &str,
    hostname: Sourced<String>,
    acc: Acc,
    mut problems: Vec<Problem>,
) -> HostConfig {
    let ctx = &*config.ctx;
    let port = acc.port.unwrap_or_else(|| Sourced::default_value(22));
    let user = acc
        .user
        .unwrap_or_else(|| Sourced::default_value(ctx.local_user.clone()));
    let proxy_command = acc
        .proxy_command
        .filter(|p| !p.value.eq_ignore_ascii_case("none"));
    let proxy_jump = acc.jump.and_then(|j| match j.value {
        Some(list) => Some(Sourced::new(list, j.origin)),
        None => None,
    });
    // ssh.c: "Never use FD passing for ProxyJump".
    let proxy_use_fdpass = match &proxy_jump {
        Some(j) => Sourced::new(false, j.origin.clone()),
        None => acc
            .proxy_use_fdpass
            .unwrap_or_else(|| Sourced::default_value(false)),
    };
    let identity_files = if acc.identity_files.is_empty() {
        DEFAULT_IDENTITY_FILES
            .iter()
            .map(|f| Sourced::default_value(f.to_string()))
            .collect()
    } else {
        acc.identity_files
    };
    // `warren show` lists it with the keywords warren does not use.
    let mut other = acc.other;
    if let Some(last) = acc.send_env.last() {
        let names: Vec<&str> = acc.send_env.iter().map(|e| e.value.as_str()).collect();
        other.push((
            "sendenv".to_string(),
            Sourced::new(names.join(" "), last.origin.clone()),
        ));
    }
    let mut hc = HostConfig {
        alias: name.to_string(),
        hostname,
        port,
        user,
        proxy_jump,
        proxy_command,
        proxy_use_fdpass,
        match_exec: Vec::new(),
        identity_files,
        certificate_files: acc.certificate_files,
        identities_only: acc
            .identities_only
            .unwrap_or_else(|| Sourced::default_value(false)),
        identity_agent: None,
        known_hosts_files: Sourced::default_value(Vec::new()),
        strict_host_key_checking: acc
            .strict
            .unwrap_or_else(|| Sourced::default_value(StrictHostKeyChecking::Ask)),
        // BatchMode makes ssh notice a dead server: ServerAliveInterval 300 unless set.
        server_alive_interval: acc.alive_interval.unwrap_or_else(|| match &acc.batch_mode {
            Some(b) if b.value => Sourced::new(300, b.origin.clone()),
            _ => Sourced::default_value(0),
        }),
        server_alive_count_max: acc.alive_count.unwrap_or_else(|| Sourced::default_value(3)),
        connect_timeout: acc
            .connect_timeout
            .unwrap_or_else(|| Sourced::default_value(None)),
        forwards: Vec::new(),
        exit_on_forward_failure: acc
            .exit_on_forward_failure
            .unwrap_or_else(|| Sourced::default_value(false)),
        clear_all_forwardings: acc
            .clear_forwardings
            .clone()
            .unwrap_or_else(|| Sourced::default_value(false)),
        host_key_alias: acc.host_key_alias,
        canonicalize_hostname: acc
            .canonicalize
            .unwrap_or_else(|| Sourced::default_value(Canonicalize::No)),
        canonical_domains: acc
            .canonical_domains
            .unwrap_or_else(|| Sourced::default_value(Vec::new())),
        canonicalize_max_dots: acc
            .canonicalize_max_dots
            .unwrap_or_else(|| Sourced::default_value(1)),
        canonicalize_fallback_local: acc
            .canonicalize_fallback_local
            .unwrap_or_else(|| Sourced::default_value(true)),
        // readconf.c: `none` alone is no rule at all.
        canonicalize_permitted_cnames: match acc.permitted_cnames {
            Some(c) if c.value.len() == 1 && c.value[0].1.is_empty() => c.map(|_| Vec::new()),
            Some(c) => c,
            None => Sourced::default_value(Vec::new()),
        },
        global_known_hosts_files: acc.global_known_hosts.unwrap_or_else(|| {
            Sourced::default_value(
                DEFAULT_GLOBAL_KNOWN_HOSTS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            )
        }),
        revoked_host_keys: None,
        check_host_ip: acc
            .check_host_ip
            .unwrap_or_else(|| Sourced::default_value(false)),
        hash_known_hosts: acc
            .hash_known_hosts
            .unwrap_or_else(|| Sourced::default_value(false)),
        known_hosts_command: acc.known_hosts_command,
        algorithms: Vec::new(),
        host_key_reorder: acc
            .algorithms
            .iter()
            .find(|(k, _)| *k == AlgorithmKind::HostKey)
            .is_none_or(|(_, v)| v.value.starts_with(['+', '-'])),
        preferred_authentications: acc
            .preferred_authentications
            .map(|p| p.map(|v| v.split(',').map(str::to_string).collect())),
        password_authentication: acc
            .password_authentication
            .unwrap_or_else(|| Sourced::default_value(true)),
        kbd_interactive_authentication: acc
            .kbd_interactive_authentication
            .unwrap_or_else(|| Sourced::default_value(true)),
        number_of_password_prompts: acc
            .number_of_password_prompts
            .unwrap_or_else(|| Sourced::default_value(3)),
        batch_mode: acc
            .batch_mode
            .unwrap_or_else(|| Sourced::default_value(false)),
        send_env: acc.send_env,
        other,
        tags: acc.tag.into_iter().chain(acc.warren_tags).fold(
            Vec::new(),
            |mut all: Vec<Sourced<String>>, t| {
                if !all.iter().any(|x| x.value.eq_ignore_ascii_case(&t.value)) {
                    all.push(t);
                }
                all
            },
        ),
        local_bind_auto: acc.warren_local_bind_auto,
        on_demand: acc.warren_on_demand,
        certificate_command: acc.warren_certificate_command,
        problems: Vec::new(),
        ctx: std::sync::Arc::clone(&config.ctx),
    };
    // Paths that ssh expands before it uses (and prints) them: tilde with the passwd home,
    // %-tokens and ${VAR}.
    let known = acc.known_hosts.unwrap_or_else(|| {
        Sourced::default_value(vec![
            "~/.ssh/known_hosts".to_string(),
            "~/.ssh/known_hosts2".to_string(),
        ])
    });
    let mut files = Vec::new();
    for f in &known.value {
        if f.eq_ignore_ascii_case("none") {
            files.push("none".to_string());
            continue;
        }
        match hc.expand_path(f) {
            Ok(p) => files.push(p),
            Err(e) => problems.push(Problem::error(
                known.origin.clone(),
                format!("UserKnownHostsFile {f}: {e}"),
            )),
        }
    }
    hc.known_hosts_files = Sourced::new(files, known.origin);
    hc.revoked_host_keys = acc.revoked_host_keys;
    for kind in AlgorithmKind::ALL {
        let set = acc.algorithms.iter().find(|(k, _)| *k == kind);
        let origin = set
            .map(|(_, v)| v.origin.clone())
            .unwrap_or(Origin::Default);
        match algorithms::assemble(kind, set.map(|(_, v)| v.value.as_str())) {
            Ok(list) => hc.algorithms.push((kind, Sourced::new(list, origin))),
            Err(e) => {
                problems.push(Problem::error(origin, e).with_fix(format!(
                    "check the names with `ssh -Q` ({})",
                    kind.keyword()
                )));
                let list = algorithms::assemble(kind, None).unwrap_or_default();
                hc.algorithms.push((kind, Sourced::default_value(list)));
            }
        }
    }
    if let Some(agent) = acc.identity_agent {
        match hc.expand_path(&agent.value) {
            Ok(p) => hc.identity_agent = Some(Sourced::new(p, agent.origin)),
            Err(e) => problems.push(Problem::error(agent.origin, format!("IdentityAgent: {e}"))),
        }
    }
    if !acc.clear_forwardings.is_some_and(|c| c.value) {
        for f in acc.forwards {
            let origin = f.origin.clone();
            match hc.expand_forward(f.value) {
                Ok(v) => hc.forwards.push(Sourced::new(v, origin)),
                Err(e) => problems.push(Problem::error(origin, format!("forward path: {e}"))),
            }
        }
    }
    if let Some(pc) = &hc.proxy_command {
        problems.extend(exec::proxy_problems(pc, ctx.run_commands()));
    }
    if let Some(c) = &hc.known_hosts_command
        && !ctx.run_commands()
        && !c.value.eq_ignore_ascii_case("none")
    {
        problems.push(
            Problem::warning(c.origin.clone(), format!("{name}: KnownHostsCommand is not run (--no-exec): connecting this host is refused"))
                .with_fix("list the host key in a known_hosts file, or run warren without --no-exec"),
        );
    }
    hc.problems = problems;
    hc
}

#[cfg(test)]
mod tests {
    use crate::config::context::Context;
    use crate::config::ssh_config::{FileKind, SshConfig};

    fn config(text: &str) -> SshConfig {
        let dir = std::path::PathBuf::from("/nonexistent-home");
        let ctx = Context::new(dir.clone(), "me", std::collections::HashMap::new());
        let path = dir.join(".ssh/config");
        SshConfig::from_texts(
            std::sync::Arc::new(ctx),
            &[(path.as_path(), text, FileKind::User)],
        )
    }

    fn tags(c: &SshConfig, host: &str) -> Vec<String> {
        c.resolve(host).tags.into_iter().map(|t| t.value).collect()
    }

    #[test]
    fn tags_come_from_tag_and_from_warren_comments() {
        let c = config(
            "# warren: tags = prod, eu\n\
             Host db-eu\n  HostName 10.0.0.1\n\
             Host db-us\n  # warren: tags = prod us\n  HostName 10.0.0.2\n  Tag first\n\
             Host db-*\n  Tag second\n  # warren: tags = PROD, all\n\
             # a plain comment\n\
             Host staging\n  HostName 10.0.0.3\n",
        );
        assert_eq!(tags(&c, "db-eu"), ["second", "prod", "eu", "all"]);
        assert_eq!(tags(&c, "db-us"), ["first", "prod", "us", "all"]);
        assert!(tags(&c, "staging").is_empty());
        assert!(c.problems.is_empty(), "{:?}", c.problems);
    }

    #[test]
    fn send_env_adds_up_over_the_user_and_the_system_file_and_minus_removes() {
        let dir = std::path::PathBuf::from("/nonexistent-home");
        let ctx = Context::new(dir.clone(), "me", std::collections::HashMap::new());
        let user = dir.join(".ssh/config");
        let system = std::path::PathBuf::from("/etc/ssh/ssh_config");
        let c = SshConfig::from_texts(
            std::sync::Arc::new(ctx),
            &[
                (
                    user.as_path(),
                    "Host db\n  SendEnv DB_* EDITOR\nHost *\n  SendEnv -EDITOR\n",
                    FileKind::User,
                ),
                (
                    system.as_path(),
                    "Host *\n  SendEnv LANG LC_*\n  SendEnv -DB_H*\n",
                    FileKind::System,
                ),
            ],
        );
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let db = c.resolve("db");
        let sent: Vec<(&str, String)> = db
            .send_env
            .iter()
            .map(|e| (e.value.as_str(), e.origin.to_string()))
            .collect();
        // `-DB_H*` matches the name `DB_*` as a string, not as a pattern: it stays.
        assert_eq!(
            sent,
            [
                ("DB_*", format!("{}:2", user.display())),
                ("LANG", "/etc/ssh/ssh_config:2".to_string()),
                ("LC_*", "/etc/ssh/ssh_config:2".to_string()),
            ]
        );
        let other = c.resolve("web");
        let names: Vec<&str> = other.send_env.iter().map(|e| e.value.as_str()).collect();
        assert_eq!(names, ["LANG", "LC_*"]);
        let bad = config("Host a\n  SendEnv FOO=1\n");
        assert!(
            bad.problems[0].to_string().contains(":2")
                && bad.problems[0].message.contains("Invalid environment name"),
            "{:?}",
            bad.problems
        );
    }

    /// A resolver for the test: these names only, never DNS.
    fn fake_dns(name: &str, _: super::canonical::Family) -> Result<String, String> {
        match name {
            "db.corp.example." => Ok("db.corp.example".into()),
            _ => Err("Name or service not known".into()),
        }
    }

    #[test]
    fn a_canonicalized_name_is_the_host_name_and_the_config_is_read_again_with_it() {
        let mut c = config(
            "Host db.corp.example\n  User canon\n\
             Match canonical host *.corp.example\n  Port 2222\n\
             Host *\n  CanonicalizeHostname yes\n  CanonicalDomains none.example corp.example\n  UserKnownHostsFile /kh/%h\n\
             Host strict\n  CanonicalizeFallbackLocal no\n",
        );
        c.lookup = fake_dns;
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let db = c.resolve("db");
        assert_eq!(db.hostname.value, "db.corp.example");
        assert!(
            db.hostname.origin.to_string().ends_with(":6"),
            "{}",
            db.hostname.origin
        );
        assert_eq!(db.user.value, "canon");
        assert_eq!(db.port.value, 2222);
        assert_eq!(db.known_hosts_files.value, ["/kh/db.corp.example"]);
        // Not found: the name as typed (fallback), still read twice.
        let other = c.resolve("other");
        assert_eq!(
            (other.hostname.value.as_str(), other.port.value),
            ("other", 22)
        );
        // CanonicalizeFallbackLocal no: ssh's error, with the line.
        let strict = c.resolve("strict");
        let text: Vec<String> = strict.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains(":6: Could not resolve host \"strict\"")),
            "{text:?}"
        );
    }

    #[test]
    fn a_bad_warren_comment_or_tag_is_a_problem_with_its_line() {
        let c = config("Host a\n  # warren: tag = x\n  Tag one two\n");
        let text: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(
            text[0].contains(":2")
                && text[0].contains("tags, local_bind, on_demand and certificate_command are"),
            "{text:?}"
        );
        assert!(
            text[1].contains(":3") && text[1].contains("one name"),
            "{text:?}"
        );
        assert!(tags(&c, "a").is_empty());
    }

    #[test]
    fn warren_comments_give_a_host_its_own_address_and_on_demand() {
        let c = config(
            "Host orders
  # warren: local_bind = auto
  # warren: on_demand = true
               LocalForward 5432 db:5432
  DynamicForward 1080
  RemoteForward 9000 localhost:9000
             Host plain
  LocalForward 5433 db:5432
             Host bad
  # warren: local_bind = 0.0.0.0
  # warren: on_demand = maybe
",
        );
        let conn =
            crate::config::from_ssh::connection(&c, "orders", crate::config::Origin::Flag("test"));
        let addr = crate::config::auto_bind::address("orders").to_string();
        let listens: Vec<String> = conn
            .forwards
            .iter()
            .map(|f| f.value.listen.to_string())
            .collect();
        assert_eq!(
            listens,
            [
                format!("{addr}:5432"),
                format!("{addr}:1080"),
                "9000".to_string()
            ],
            "local and dynamic forwards move; a remote one listens on the bastion"
        );
        assert!(conn.policy.on_demand());
        assert_eq!(
            conn.policy.on_demand.as_ref().map(|o| o.origin.to_string()),
            Some("/nonexistent-home/.ssh/config:3".to_string())
        );
        let plain =
            crate::config::from_ssh::connection(&c, "plain", crate::config::Origin::Flag("test"));
        assert_eq!(plain.forwards[0].value.listen.to_string(), "5433");
        assert!(plain.policy.on_demand.is_none());
        let text: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains(":10") && t.contains("only `auto`"))
                && text
                    .iter()
                    .any(|t| t.contains(":11") && t.contains("not true or false")),
            "{text:?}"
        );
    }

    #[test]
    fn a_warren_comment_gives_a_host_its_certificate_command() {
        let c = config(
            "Host bastion
  # warren: certificate_command = \"vault write -field=signed_key ssh/sign/ops public_key=@%f\"
  # warren: certificate_command = second
  HostName bastion.example.com
Host other
  # warren: certificate_command =
",
        );
        let conn =
            crate::config::from_ssh::connection(&c, "bastion", crate::config::Origin::Flag("test"));
        let cmd = conn.hops[0]
            .certificate_command
            .as_ref()
            .expect("certificate_command");
        assert_eq!(
            cmd.value, "vault write -field=signed_key ssh/sign/ops public_key=@%f",
            "quotes removed, the `=` of the command kept; the first one wins"
        );
        assert_eq!(cmd.origin.to_string(), "/nonexistent-home/.ssh/config:2");
        let other =
            crate::config::from_ssh::connection(&c, "other", crate::config::Origin::Flag("test"));
        assert!(other.hops[0].certificate_command.is_none());
        let text: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains(":6") && t.contains("names no command")),
            "{text:?}"
        );
    }
}
