//! ssh_config hosts -> [`Connection`]s and [`Hop`]s.

use std::path::PathBuf;

use super::model::{
    Algorithms, AuthPrefs, Connection, Hop, HostKeyPolicy, Policy, Seconds, SourceKind,
};
use super::origin::{Origin, Problem, Sourced};
use super::ssh_config::{HostConfig, SshConfig, StrictHostKeyChecking, chain};

/// Whether commands from the config may run, and why not.
pub fn run_commands(ctx: &crate::config::Context) -> Sourced<bool> {
    use crate::config::context::NO_EXEC_VAR;
    match ctx.run_commands() {
        true => Sourced::default_value(true),
        false if ctx.untrusted_names() => {
            Sourced::new(false, Origin::Flag(crate::config::context::UNTRUSTED_NAMES))
        }
        false => Sourced::new(false, Origin::Env(NO_EXEC_VAR.to_string())),
    }
}

/// warren's connect timeout when ssh_config says `none`.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 15;

/// The connection for a concrete Host alias: its ProxyJump chain, then itself.
pub fn connection(config: &SshConfig, alias: &str, origin: Origin) -> Connection {
    let host = config.resolve(alias);
    let mut forwards = host.forwards.clone();
    let exit_on_failure = host.exit_on_forward_failure.clone();
    let other = host.other.clone();
    let tags = host.tags.clone();
    let mut auto_problems = Vec::new();
    if let Some(auto) = host.local_bind_auto.as_ref().filter(|a| a.value) {
        auto_bind(alias, &mut forwards, &auto.origin, &mut auto_problems);
    }
    let on_demand = host.on_demand.clone();
    let (hops, mut problems) = hops(config, host);
    problems.extend(auto_problems);
    let mut policy = Policy::defaults();
    policy.exit_on_forward_failure = exit_on_failure;
    policy.on_demand = on_demand;
    // Problems of jump hosts are the connection's problems too.
    problems.dedup();
    Connection {
        name: alias.to_string(),
        display_name: alias.to_string(),
        source: SourceKind::Ssh,
        origin,
        hops,
        forwards,
        database: None,
        policy,
        tags,
        problems,
        other,
        untrusted: None,
    }
}

/// `# warren: local_bind = auto`: each local and dynamic forward on a TCP port listens on the
/// host's own loopback address instead, on the port it names (see [`super::auto_bind`]).
fn auto_bind(
    alias: &str,
    forwards: &mut [Sourced<super::forward::Forward>],
    origin: &Origin,
    problems: &mut Vec<Problem>,
) {
    use super::forward::{Endpoint, ForwardKind};
    for f in forwards.iter_mut() {
        if f.value.kind == ForwardKind::Remote {
            continue;
        }
        let Endpoint::Tcp { port, .. } = f.value.listen else {
            continue;
        };
        let (listen, problem) = super::auto_bind::listen(alias, port, Some(port), origin);
        f.value.listen = listen;
        problems.extend(problem);
    }
}

/// The hops to reach a host resolved from ssh_config, outermost first, and the problems
/// found on the way.
pub fn hops(config: &SshConfig, host: HostConfig) -> (Vec<Hop>, Vec<Problem>) {
    let (chain, mut problems) = chain::hops(config, host);
    let mut out = Vec::with_capacity(chain.len());
    for (h, key) in chain {
        let cached = key
            .as_ref()
            .and_then(|k| config.jump_hops.lock().ok()?.get(k).cloned());
        if let Some((hop, found)) = cached {
            problems.extend(found);
            out.push(hop);
            continue;
        }
        let mut found = h.problems.clone();
        let made = hop(&h, &mut found);
        if let (Some(k), Ok(mut m)) = (key, config.jump_hops.lock()) {
            m.insert(k, (made.clone(), found.clone()));
        }
        problems.extend(found);
        out.push(made);
    }
    (out, problems)
}

/// The hop for a resolved host.
fn hop(h: &HostConfig, problems: &mut Vec<Problem>) -> Hop {
    let mut paths = |list: &[Sourced<String>]| -> Vec<Sourced<PathBuf>> {
        list.iter()
            .filter_map(|f| match h.expand_path(&f.value) {
                Ok(p) => Some(Sourced::new(PathBuf::from(p), f.origin.clone())),
                Err(e) => {
                    problems.push(Problem::error(
                        f.origin.clone(),
                        format!("{}: {e}", f.value),
                    ));
                    None
                }
            })
            .collect()
    };
    let identity_files = paths(&h.identity_files);
    let certificate_files = paths(&h.certificate_files);
    let use_agent = match &h.identity_agent {
        Some(a) if a.value.eq_ignore_ascii_case("none") => Sourced::new(false, a.origin.clone()),
        Some(a) => Sourced::new(true, a.origin.clone()),
        None => Sourced::default_value(true),
    };
    let identity_agent = h
        .identity_agent
        .clone()
        .filter(|a| !a.value.eq_ignore_ascii_case("none") && a.value != "SSH_AUTH_SOCK");
    let policy = h.strict_host_key_checking.clone().map(|s| match s {
        StrictHostKeyChecking::Yes => HostKeyPolicy::Strict,
        StrictHostKeyChecking::Ask => HostKeyPolicy::Ask,
        StrictHostKeyChecking::AcceptNew => HostKeyPolicy::AcceptNew,
        StrictHostKeyChecking::No => HostKeyPolicy::Off,
    });
    // ConnectTimeout 0, like none, is "no timeout of ssh's own" (ssh waits for the system's
    // TCP timeout): warren then bounds each step by its default.
    let connect_timeout = match &h.connect_timeout {
        Sourced {
            value: Some(t),
            origin,
        } if *t > 0 => Sourced::new(Seconds::from_secs(u64::from(*t)), origin.clone()),
        Sourced { origin, .. } => {
            Sourced::new(Seconds::from_secs(DEFAULT_CONNECT_TIMEOUT), origin.clone())
        }
    };
    let algorithms = Algorithms::from_lists(h.algorithms.clone(), h.host_key_reorder);
    let file_list = |list: &Sourced<Vec<String>>| {
        // `none` is no file at all (ssh.c); it is never a file named "none".
        list.clone().map(|v| {
            v.into_iter()
                .filter(|f| !f.eq_ignore_ascii_case("none"))
                .map(PathBuf::from)
                .collect::<Vec<_>>()
        })
    };
    let global_known_hosts_files = file_list(&h.global_known_hosts_files.clone().map(|v| {
        v.into_iter()
            .map(|f| crate::config::expand::tilde(&f, &h.context().user_home))
            .collect()
    }));
    let revoked_host_keys = h
        .revoked_host_keys
        .as_ref()
        .filter(|r| !r.value.eq_ignore_ascii_case("none"))
        .and_then(|r| match h.expand_path(&r.value) {
            Ok(p) => Some(Sourced::new(PathBuf::from(p), r.origin.clone())),
            Err(e) => {
                problems.push(Problem::error(
                    r.origin.clone(),
                    format!("RevokedHostKeys {}: {e}", r.value),
                ));
                None
            }
        });
    let mut auth = AuthPrefs::defaults();
    if let Some(p) = &h.preferred_authentications {
        auth.preferred = p.clone();
    }
    auth.password = h.password_authentication.clone();
    auth.kbd_interactive = h.kbd_interactive_authentication.clone();
    auth.password_prompts = h.number_of_password_prompts.clone();
    Hop {
        name: h.alias.clone(),
        host: h.hostname.clone(),
        port: h.port.clone(),
        user: h.user.clone(),
        identity_files,
        identities_only: h.identities_only.clone(),
        use_agent,
        identity_agent,
        certificate_files,
        key_passphrase: None,
        known_hosts_files: file_list(&h.known_hosts_files),
        global_known_hosts_files,
        host_key_alias: h.host_key_alias.clone(),
        revoked_host_keys,
        check_host_ip: h.check_host_ip.clone(),
        hash_known_hosts: h.hash_known_hosts.clone(),
        known_hosts_command: h.hosts_command(),
        proxy_command: h.proxy_command.clone(),
        preset: None,
        proxy_use_fdpass: h.proxy_use_fdpass.clone(),
        certificate_command: h.certificate_command.clone(),
        match_exec: h.match_exec.clone(),
        run_commands: run_commands(h.context()),
        host_key_policy: policy,
        algorithms,
        auth,
        batch_mode: h.batch_mode.clone(),
        connect_timeout,
        keepalive_interval: h
            .server_alive_interval
            .clone()
            .map(|s| Seconds::from_secs(u64::from(s))),
        keepalive_count_max: h.server_alive_count_max.clone(),
    }
}
