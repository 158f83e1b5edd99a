//! `~/.ssh/config` evaluated the way OpenSSH evaluates it (ssh_config(5)).
//!
//! Why not ssh2-config: measured on 0.9, it merges a `Match` block's body into the preceding
//! Host block, keeps only the last LocalForward, and drops StrictHostKeyChecking,
//! UserKnownHostsFile, IdentitiesOnly and IdentityAgent unless asked. warren must give the
//! answer `ssh -G` gives, so the resolver is written here and tested against `ssh -G`.
//!
//! - [`parse`]: files -> blocks of checked directives, Includes followed (cycle-safe).
//! - [`resolve`]: one host -> [`HostConfig`], first value wins, `Match final` second pass.
//! - `canonical`: the host name ssh connects to (an address in canonical form).
//! - [`chain`]: ProxyJump -> the list of hops, each resolved as ssh resolves a jump host.
//! - `exec`: `Match exec` (run, bounded in time, once per line and command for a loaded
//!   config) and the checks of a ProxyCommand.

pub mod canonical;
pub mod chain;
pub mod directive;
pub mod dump;
mod exec;
mod keywords;
mod lex;
pub mod parse;
pub mod pattern;
pub mod resolve;
mod tokens;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use directive::StrictHostKeyChecking;
pub use parse::Alias;
pub use resolve::Overrides;

use crate::config::command::{ExecOutcome, MatchExec};
use crate::config::context::Context;
use crate::config::destination::Destination;
use crate::config::forward::Forward;
use crate::config::origin::{Origin, Problem, Sourced};

/// A loaded set of ssh_config files, ready to resolve any host.
#[derive(Debug)]
pub struct SshConfig {
    pub(crate) ctx: Arc<Context>,
    pub(crate) files: Vec<parse::File>,
    /// Top-level files in the order ssh reads them (user config, then system config).
    pub(crate) roots: Vec<usize>,
    pub(crate) want_final: bool,
    /// Every concrete `Host` alias, in the order the files name them.
    pub aliases: Vec<Alias>,
    /// Problems found while reading (bad values, unreadable includes, Include loops).
    pub problems: Vec<Problem>,
    /// Every Include's path pattern, expanded: where files that would be read may appear.
    pub include_patterns: Vec<PathBuf>,
    /// The top-level files that ssh refuses whole for a keyword it does not know (the lines
    /// are in `problems`; warren ignores just those lines).
    pub bad_option_files: Vec<PathBuf>,
    /// `Match exec` results, by (line, command as run): a command runs once per loaded
    /// config, whichever hosts ask.
    pub(crate) exec_cache: Mutex<HashMap<(String, String), (ExecOutcome, String)>>,
    /// How names are looked up for CanonicalizeHostname (the C library's resolver; tests
    /// give their own).
    pub(crate) lookup: canonical::Lookup,
    /// Lookups done, by name and family: each name once per loaded config.
    lookups: Mutex<HashMap<(String, canonical::Family), Result<String, String>>>,
    /// Jump hosts already resolved, by [`SshConfig::resolve_jump`]'s key.
    jumps: Mutex<HashMap<String, Arc<HostConfig>>>,
    /// The hops made of them (see `config::from_ssh`), by the same key.
    pub(crate) jump_hops: Mutex<HashMap<String, (crate::config::model::Hop, Vec<Problem>)>>,
}

/// Where a top-level file comes from, for OpenSSH's Include rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `~/.ssh/config` or `-F`: relative Includes are under `~/.ssh`.
    User,
    /// `/etc/ssh/ssh_config`: relative Includes are under `/etc/ssh`.
    System,
}

impl SshConfig {
    /// Loads files already read into memory, in order.
    pub fn from_texts(ctx: Arc<Context>, files: &[(&Path, &str, FileKind)]) -> Self {
        let mut loader = parse::Loader::new(&ctx);
        let roots = files
            .iter()
            .map(|(path, text, kind)| loader.load_text(path, text, *kind == FileKind::User))
            .collect();
        SshConfig {
            files: loader.files,
            roots,
            want_final: loader.want_final,
            aliases: loader.aliases,
            problems: loader.problems,
            include_patterns: loader.include_patterns,
            bad_option_files: loader.bad_option_files,
            exec_cache: Mutex::new(HashMap::new()),
            lookup: canonical::lookup,
            lookups: Mutex::new(HashMap::new()),
            jumps: Mutex::new(HashMap::new()),
            jump_hops: Mutex::new(HashMap::new()),
            ctx,
        }
    }

    /// Resolves a host name as `ssh -G NAME` would.
    pub fn resolve(&self, name: &str) -> HostConfig {
        resolve::resolve(self, name, &Overrides::default())
    }

    /// Resolves a host with values given "on the command line" (a jump spec's user and port).
    pub fn resolve_with(&self, name: &str, over: &Overrides) -> HostConfig {
        resolve::resolve(self, name, over)
    }

    /// [`SshConfig::resolve_with`] for a jump host, once per `key` (the name and the
    /// overrides, which decide the result) for the life of this loaded config.
    pub fn resolve_jump(&self, name: &str, over: &Overrides, key: &str) -> Arc<HostConfig> {
        if let Some(h) = self.jumps.lock().ok().and_then(|m| m.get(key).cloned()) {
            return h;
        }
        let h = Arc::new(resolve::resolve(self, name, over));
        if let Ok(mut m) = self.jumps.lock() {
            m.insert(key.to_string(), Arc::clone(&h));
        }
        h
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// [`SshConfig::lookup`], once per name and family.
    pub(crate) fn lookup_cached(
        &self,
        name: &str,
        family: canonical::Family,
    ) -> Result<String, String> {
        let key = (name.to_string(), family);
        if let Some(r) = self.lookups.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return r;
        }
        let r = (self.lookup)(name, family);
        if let Ok(mut m) = self.lookups.lock() {
            m.insert(key, r.clone());
        }
        r
    }
}

/// The effective configuration of one host, each value with its origin.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// The name as typed (the Host alias).
    pub alias: String,
    pub hostname: Sourced<String>,
    pub port: Sourced<u16>,
    pub user: Sourced<String>,
    pub proxy_jump: Option<Sourced<Vec<Destination>>>,
    /// As written (`ssh -G` prints it so); `none` is `None`.
    pub proxy_command: Option<Sourced<String>>,
    pub proxy_use_fdpass: Sourced<bool>,
    /// The `Match exec` criteria evaluated for this host, with their outcomes.
    pub match_exec: Vec<MatchExec>,
    /// As written (ssh -G prints them unexpanded); see [`HostConfig::expand_path`].
    pub identity_files: Vec<Sourced<String>>,
    pub certificate_files: Vec<Sourced<String>>,
    pub identities_only: Sourced<bool>,
    /// Expanded.
    pub identity_agent: Option<Sourced<String>>,
    /// Expanded.
    pub known_hosts_files: Sourced<Vec<String>>,
    pub strict_host_key_checking: Sourced<StrictHostKeyChecking>,
    pub server_alive_interval: Sourced<u32>,
    pub server_alive_count_max: Sourced<u32>,
    /// Seconds; `None` is "none" (the system's TCP timeout).
    pub connect_timeout: Sourced<Option<u32>>,
    /// Unix socket paths expanded.
    pub forwards: Vec<Sourced<Forward>>,
    pub exit_on_forward_failure: Sourced<bool>,
    /// ClearAllForwardings (the forwards above are then empty).
    pub clear_all_forwardings: Sourced<bool>,
    /// The name host keys are looked up under instead of the host name.
    pub host_key_alias: Option<Sourced<String>>,
    pub canonicalize_hostname: Sourced<canonical::Canonicalize>,
    /// As written; `["none"]` or empty is none.
    pub canonical_domains: Sourced<Vec<String>>,
    pub canonicalize_max_dots: Sourced<u32>,
    pub canonicalize_fallback_local: Sourced<bool>,
    /// `(source patterns, target patterns)`; empty is none.
    pub canonicalize_permitted_cnames: Sourced<Vec<(String, String)>>,
    /// As written (`ssh -G` prints them unexpanded).
    pub global_known_hosts_files: Sourced<Vec<String>>,
    /// As written (`ssh -G` prints it unexpanded); see [`HostConfig::expand_path`].
    pub revoked_host_keys: Option<Sourced<String>>,
    pub check_host_ip: Sourced<bool>,
    pub hash_known_hosts: Sourced<bool>,
    pub known_hosts_command: Option<Sourced<String>>,
    /// Every algorithm list, assembled as OpenSSH does (what `ssh -G` prints).
    pub algorithms: Vec<(
        crate::config::algorithms::AlgorithmKind,
        Sourced<crate::config::algorithms::List>,
    )>,
    /// HostKeyAlgorithms is unset or `+list`/`-list` (ssh orders it by known_hosts).
    pub host_key_reorder: bool,
    /// `None`: OpenSSH's default order.
    pub preferred_authentications: Option<Sourced<Vec<String>>>,
    pub password_authentication: Sourced<bool>,
    pub kbd_interactive_authentication: Sourced<bool>,
    pub number_of_password_prompts: Sourced<u32>,
    pub batch_mode: Sourced<bool>,
    /// The names and patterns of variables `SendEnv` sends, in order, from every block that
    /// applies (repeats kept, as `ssh -G` prints them).
    pub send_env: Vec<Sourced<String>>,
    /// Keywords warren does not use, first value of each, lowercased keyword.
    pub other: Vec<(String, Sourced<String>)>,
    /// `Tag` (first) and the tags of `# warren: tags = ...` comments, without repeats.
    pub tags: Vec<Sourced<String>>,
    /// `# warren: local_bind = auto`: the forwards listen on the host's own loopback address.
    pub local_bind_auto: Option<Sourced<bool>>,
    /// `# warren: on_demand = true|false`.
    pub on_demand: Option<Sourced<bool>>,
    /// `# warren: certificate_command = ...`.
    pub certificate_command: Option<Sourced<String>>,
    /// Problems found while resolving this host (Match exec, token errors).
    pub problems: Vec<Problem>,
    ctx: Arc<Context>,
}

impl HostConfig {
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Where the host's own definition is: the HostName line, or else None.
    pub fn defined_at(&self) -> Option<&Origin> {
        match self.hostname.origin {
            Origin::File { .. } => Some(&self.hostname.origin),
            _ => None,
        }
    }
}
