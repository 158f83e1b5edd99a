//! The hops of an `ssh_tunnel` table: its `jump_host` tables (nested, outermost dialled first)
//! or an ssh_config alias, then the bastion itself, with the EPOCH_SSH_* defaults and the
//! policy keys a jump host takes from the table around it. A `host` written as a cloud
//! bastion (`ssm:...`, `iap:...`) is the instance, reached through its ProxyCommand
//! ([`crate::config::cloud`]).

use std::path::PathBuf;

use super::fields::{Findings, Table};
use super::{DEFAULT_KEEPALIVE, DEFAULT_KEEPALIVE_COUNT, JUMP_KEYS};
use crate::config::algorithms::{self, AlgorithmKind};
use crate::config::cloud::CloudBastion;
use crate::config::destination::Destination;
use crate::config::from_ssh;
use crate::config::model::{Algorithms, AuthPrefs, Hop, HostKeyPolicy, Seconds};
use crate::config::origin::{Origin, Problem, Sourced};
use crate::config::ssh_config::{Overrides, SshConfig};

/// Settings a jump_host table takes from the table around it when it does not set them.
#[derive(Clone, Default)]
pub(super) struct Inherit {
    known_hosts: Option<Sourced<Vec<PathBuf>>>,
    policy: Option<Sourced<HostKeyPolicy>>,
    connect_timeout: Option<Sourced<Seconds>>,
    keepalive_interval: Option<Sourced<Seconds>>,
    keepalive_count_max: Option<Sourced<u32>>,
    algorithms: Option<Algorithms>,
}

/// The hops of an ssh_tunnel (or jump_host) table: its jump hosts, outermost first, then itself.
pub(super) fn hops(
    t: &Table,
    inherit: &Inherit,
    bastion: bool,
    ssh: &SshConfig,
    f: &mut Findings,
) -> Option<Vec<Hop>> {
    let ctx = ssh.context();
    if !bastion {
        t.unknown_keys(JUMP_KEYS, f);
    }
    let endpoint = t
        .string("endpoint", f)
        .and_then(|e| match Destination::parse(&e.value) {
            Ok(d) => Some(Sourced::new(d, e.origin)),
            Err(msg) => {
                f.push(
                    Problem::error(e.origin, format!("{}.endpoint: {msg}", t.name))
                        .with_fix("write endpoint = \"ssh://user@host:22\""),
                );
                None
            }
        });
    if let Some(e) = &endpoint {
        for key in ["host", "user", "port"] {
            if let Some((_, origin)) = t.item(key) {
                f.push(
                    Problem::error(
                        origin,
                        format!(
                            "{}: both endpoint (at {}) and {key} are set",
                            t.name, e.origin
                        ),
                    )
                    .with_fix(format!("keep the endpoint or the {key} key, not both")),
                );
            }
        }
    }
    let env = |var: &str| {
        ctx.var(var)
            .filter(|v| !v.is_empty())
            .map(|v| Sourced::new(v.to_string(), Origin::Env(var.to_string())))
    };
    let from_endpoint = |get: &dyn Fn(&Destination) -> Option<String>| {
        endpoint
            .as_ref()
            .and_then(|e| get(&e.value).map(|v| Sourced::new(v, e.origin.clone())))
    };
    let host = t
        .string("host", f)
        .or_else(|| from_endpoint(&|d| Some(d.host.clone())))
        .or_else(|| if bastion { env("EPOCH_SSH_HOST") } else { None });
    let port = t
        .port("port", false, f)
        .or_else(|| {
            endpoint
                .as_ref()
                .and_then(|e| e.value.port.map(|p| Sourced::new(p, e.origin.clone())))
        })
        .unwrap_or_else(|| Sourced::default_value(22));
    let user = t
        .string("user", f)
        .or_else(|| from_endpoint(&|d| d.user.clone()))
        .or_else(|| env("EPOCH_SSH_USER"))
        .unwrap_or_else(|| Sourced::default_value(ctx.local_user.clone()));
    let key_file = t.path("key_file", f).or_else(|| {
        env("EPOCH_SSH_KEY_FILE")
            .map(|k| k.map(|v| PathBuf::from(crate::config::expand::tilde(&v, &ctx.home))))
    });
    let use_agent = t
        .boolean("use_agent", f)
        .unwrap_or_else(|| Sourced::default_value(key_file.is_none()));
    let identities_only = Sourced::new(
        key_file.is_some(),
        key_file
            .as_ref()
            .map(|k| k.origin.clone())
            .unwrap_or(Origin::Default),
    );
    let identity_files = match key_file {
        Some(k) => vec![k],
        None => crate::config::ssh_config::resolve::DEFAULT_IDENTITY_FILES
            .iter()
            .map(|p| {
                Sourced::default_value(PathBuf::from(crate::config::expand::tilde(
                    p,
                    &ctx.user_home,
                )))
            })
            .collect(),
    };
    let known_hosts = t
        .path("known_hosts_file", f)
        .map(|p| p.map(|v| vec![v]))
        .or_else(|| inherit.known_hosts.clone())
        .unwrap_or_else(|| Sourced::default_value(vec![ctx.user_home.join(".ssh/known_hosts")]));
    let policy = strictness(t, f)
        .or_else(|| inherit.policy.clone())
        // Unset is OpenSSH's default, `ask`: refused unless a person confirms the key.
        .unwrap_or_else(|| Sourced::default_value(HostKeyPolicy::Ask));
    // 0 is "no timeout of its own", as ConnectTimeout 0: warren's default bound.
    let connect_timeout = t
        .seconds("connect_timeout", f)
        .map(|s| {
            if s.value.0.is_zero() {
                Sourced::new(
                    Seconds::from_secs(from_ssh::DEFAULT_CONNECT_TIMEOUT),
                    s.origin,
                )
            } else {
                s
            }
        })
        .or_else(|| inherit.connect_timeout.clone())
        .unwrap_or_else(|| {
            Sourced::default_value(Seconds::from_secs(from_ssh::DEFAULT_CONNECT_TIMEOUT))
        });
    let keepalive_interval = t
        .seconds("keepalive_interval", f)
        .or_else(|| inherit.keepalive_interval.clone())
        .unwrap_or_else(|| Sourced::default_value(Seconds::from_secs(DEFAULT_KEEPALIVE)));
    let keepalive_count_max = t
        .count("keepalive_count_max", f)
        .or_else(|| inherit.keepalive_count_max.clone())
        .unwrap_or_else(|| Sourced::default_value(DEFAULT_KEEPALIVE_COUNT));
    let mut lists = inherit
        .algorithms
        .clone()
        .unwrap_or_else(Algorithms::defaults);
    for kind in AlgorithmKind::ALL {
        let Some(v) = t.list(kind.epoch_key(), f) else {
            continue;
        };
        match algorithms::check(kind, &v.value)
            .and_then(|()| algorithms::assemble(kind, Some(&v.value)))
        {
            Ok(list) => {
                if kind == AlgorithmKind::HostKey {
                    lists.host_key_reorder = v.value.starts_with(['+', '-']);
                }
                lists.set(kind, Sourced::new(list, v.origin));
            }
            Err(e) => f.push(
                Problem::error(v.origin, format!("{}.{}: {e}", t.name, kind.epoch_key()))
                    .with_fix(format!(
                        "write {} = \"name,name\" (or \"+name\" to add to the defaults, \"-name\" to remove, \"^name\" to put first)",
                        kind.epoch_key()
                    )),
            ),
        }
    }
    let host_key_alias = t
        .string("host_key_alias", f)
        .map(|a| a.map(|v| v.to_ascii_lowercase()));
    let mut proxy_command = proxy_command(t, f);
    let certificate_command = certificate_command(t, f);
    let Some(mut host) = host else {
        let fix = if bastion {
            "add host = \"bastion.example.com\" (or set EPOCH_SSH_HOST)"
        } else {
            "add host = \"jump.example.com\""
        };
        f.push(Problem::error(t.origin.clone(), format!("[{}] has no host", t.name)).with_fix(fix));
        return None;
    };
    let preset = match cloud_bastion(t, &host, f) {
        Cloud::No => None,
        Cloud::Bad => return None,
        Cloud::Yes(c) => {
            let written = host.clone();
            proxy_command = Some(Sourced::new(c.command(), host.origin.clone()));
            host = Sourced::new(c.instance().to_string(), host.origin);
            Some(written)
        }
    };
    if let Some(why) = bad_hostname(&host.value) {
        f.push(
            Problem::error(
                host.origin.clone(),
                format!(
                    "[{}] host '{}' {why}, which OpenSSH 9.6 refuses in a host name: it would reach a ProxyCommand or Match exec as %h",
                    t.name,
                    crate::text::escape(&host.value)
                ),
            )
            .with_fix("write the bastion's DNS name or address"),
        );
        return None;
    }
    if let Some(why) = bad_user(&user.value) {
        f.push(
            Problem::error(
                user.origin.clone(),
                format!(
                    "[{}] user '{}' {why}, which OpenSSH 9.6 refuses in a user name: it would reach a ProxyCommand or Match exec as %r",
                    t.name,
                    crate::text::escape(&user.value)
                ),
            )
            .with_fix("write the login name on the bastion"),
        );
        return None;
    }
    let this = Hop {
        name: host.value.clone(),
        host,
        port,
        user,
        identity_files,
        identities_only,
        use_agent,
        identity_agent: None,
        certificate_files: t.path("cert_file", f).into_iter().collect(),
        key_passphrase: t.secret("key_passphrase", f),
        known_hosts_files: known_hosts.clone(),
        global_known_hosts_files: Sourced::default_value(
            crate::config::ssh_config::resolve::DEFAULT_GLOBAL_KNOWN_HOSTS
                .iter()
                .map(PathBuf::from)
                .collect(),
        ),
        host_key_alias,
        revoked_host_keys: None,
        check_host_ip: Sourced::default_value(false),
        hash_known_hosts: Sourced::default_value(false),
        known_hosts_command: None,
        proxy_command,
        preset,
        proxy_use_fdpass: Sourced::default_value(false),
        certificate_command,
        match_exec: Vec::new(),
        run_commands: from_ssh::run_commands(ctx),
        host_key_policy: policy.clone(),
        algorithms: lists.clone(),
        auth: AuthPrefs::defaults(),
        batch_mode: Sourced::default_value(false),
        connect_timeout: connect_timeout.clone(),
        keepalive_interval: keepalive_interval.clone(),
        keepalive_count_max: keepalive_count_max.clone(),
    };
    let inner = Inherit {
        known_hosts: Some(known_hosts),
        policy: Some(policy),
        connect_timeout: Some(connect_timeout),
        keepalive_interval: Some(keepalive_interval),
        keepalive_count_max: Some(keepalive_count_max),
        algorithms: Some(lists),
    };
    let mut chain = match t.item("jump_host") {
        None => Vec::new(),
        Some((item, origin)) => {
            if let Some(alias) = item.as_str() {
                ssh_alias_hops(alias, origin, ssh, f)?
            } else {
                match t.sub("jump_host") {
                    Some(Ok(jt)) => hops(&jt, &inner, false, ssh, f)?,
                    Some(Err(p)) => {
                        f.push(p.with_fix("write jump_host = { host = \"jump.example.com\" } or jump_host = \"ssh-config-alias\""));
                        return None;
                    }
                    None => Vec::new(),
                }
            }
        }
    };
    chain.push(this);
    Some(chain)
}

/// Why a host name is one OpenSSH 9.6 refuses on its command line (`valid_hostname` in
/// ssh.c): a leading `-`, a shell metacharacter, white space or a control character.
pub fn bad_hostname(s: &str) -> Option<String> {
    if s.starts_with('-') {
        return Some("starts with '-'".into());
    }
    s.chars().find_map(|c| {
        if "'`\"$\\;&<>|(){}".contains(c) {
            Some(format!("holds '{c}'"))
        } else if c == ' ' {
            Some("holds a space".into())
        } else if c.is_whitespace() || c.is_control() {
            Some(format!("holds {}", crate::text::escape(&c.to_string())))
        } else {
            None
        }
    })
}

/// Why a user name is one OpenSSH 9.6 refuses (`valid_ruser`): a leading `-`, a shell
/// metacharacter, `-` after white space, or a trailing backslash.
pub fn bad_user(s: &str) -> Option<String> {
    if s.starts_with('-') {
        return Some("starts with '-'".into());
    }
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if "'`\";&<>|(){}".contains(c) {
            return Some(format!("holds '{c}'"));
        }
        if c.is_whitespace() && chars.get(i + 1) == Some(&'-') {
            return Some("has '-' after white space".into());
        }
        if c == '\\' && i + 1 == chars.len() {
            return Some("ends with a backslash".into());
        }
    }
    None
}

/// `jump_host = "alias"`: the alias resolved through ssh_config, its own ProxyJump included.
pub(super) fn ssh_alias_hops(
    alias: &str,
    origin: Origin,
    ssh: &SshConfig,
    f: &mut Findings,
) -> Option<Vec<Hop>> {
    let dest = match Destination::parse(alias) {
        Ok(d) => d,
        Err(msg) => {
            f.push(
                Problem::error(origin, format!("jump_host: {msg}"))
                    .with_fix("name an ssh_config Host alias, or write a jump_host table"),
            );
            return None;
        }
    };
    // Checked before ssh_config is resolved for it: a Match exec there gets it as %h.
    let bad = bad_hostname(&dest.host)
        .map(|w| format!("'{}' {w}", crate::text::escape(&dest.host)))
        .or_else(|| {
            dest.user
                .as_deref()
                .and_then(|u| bad_user(u).map(|w| format!("user '{}' {w}", crate::text::escape(u))))
        });
    if let Some(why) = bad {
        f.push(
            Problem::error(
                origin,
                format!("jump_host {why}, which OpenSSH 9.6 refuses: it would reach your ssh_config's Match exec and ProxyCommand as %h / %r"),
            )
            .with_fix("name an ssh_config Host alias"),
        );
        return None;
    }
    let over = Overrides {
        user: dest.user.clone().map(|u| Sourced::new(u, origin.clone())),
        port: dest.port.map(|p| Sourced::new(p, origin.clone())),
        jump: None,
    };
    let (hops, problems) = from_ssh::hops(ssh, ssh.resolve_with(&dest.host, &over));
    for p in problems {
        f.push(p);
    }
    Some(hops)
}

/// `certificate_command = "..."`: run as ProxyCommand runs when the certificate must be
/// renewed (`ssh::certificate`), kept as written.
fn certificate_command(t: &Table, f: &mut Findings) -> Option<Sourced<String>> {
    let (item, origin) = t.item("certificate_command")?;
    match item.as_str() {
        Some(s) if !s.trim().is_empty() => Some(Sourced::new(s.to_string(), origin)),
        _ => {
            f.push(
                Problem::error(
                    origin,
                    format!("{}.certificate_command is not a command", t.name),
                )
                .with_fix(
                    "write certificate_command = \"vault write -field=signed_key ssh-client-signer/sign/ROLE public_key=@%f\"",
                ),
            );
            None
        }
    }
}

/// `proxy_command = "..."`: as ssh_config's ProxyCommand, kept as written (the shell expands
/// `$VAR`; warren expands `%h %k %n %p %r`), `"none"` for none. With a `jump_host` in the
/// same table it is an error: ssh takes whichever comes first, and a TOML table has no order.
fn proxy_command(t: &Table, f: &mut Findings) -> Option<Sourced<String>> {
    let (item, origin) = t.item("proxy_command")?;
    let Some(cmd) = item.as_str() else {
        f.push(
            Problem::error(origin, format!("{}.proxy_command is not a string", t.name))
                .with_fix("write proxy_command = \"ssh -W %h:%p jump.example.com\""),
        );
        return None;
    };
    if cmd.trim().is_empty() || cmd.eq_ignore_ascii_case("none") {
        return None;
    }
    if let Some((_, jump)) = t.item("jump_host") {
        f.push(
            Problem::error(
                origin,
                format!(
                    "{}: both proxy_command and jump_host (at {jump}) say how to reach the host",
                    t.name
                ),
            )
            .with_fix("keep one: the command reaches the host from here, the jump host from there"),
        );
        return None;
    }
    Some(Sourced::new(cmd.to_string(), origin))
}

/// What [`cloud_bastion`] found in `host`.
enum Cloud {
    No,
    /// Written as a cloud bastion, but wrong: the error is pushed.
    Bad,
    Yes(CloudBastion),
}

/// `host = "ssm:..."` or `"iap:..."`: the cloud bastion, which is then the hop's ProxyCommand
/// (so neither proxy_command nor jump_host may be in the same table: the command reaches the
/// instance from here).
fn cloud_bastion(t: &Table, host: &Sourced<String>, f: &mut Findings) -> Cloud {
    let c = match CloudBastion::parse(&host.value) {
        None => return Cloud::No,
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            f.push(
                Problem::error(
                    host.origin.clone(),
                    format!(
                        "[{}] host '{}': {}",
                        t.name,
                        crate::text::escape(&host.value),
                        e.message
                    ),
                )
                .with_fix(e.fix),
            );
            return Cloud::Bad;
        }
    };
    for (key, what) in [
        ("proxy_command", "the command"),
        ("jump_host", "the jump host"),
    ] {
        if let Some((_, origin)) = t.item(key) {
            f.push(
                Problem::error(
                    origin,
                    format!(
                        "[{}]: both host = \"{}\" (at {}) and {key} say how to reach the host",
                        t.name, host.value, host.origin
                    ),
                )
                .with_fix(format!(
                    "keep one: host = \"{}\" runs `{}` to reach the instance from here; drop {what}, or write the instance as a jump_host of its own",
                    host.value,
                    c.program()
                )),
            );
            return Cloud::Bad;
        }
    }
    Cloud::Yes(c)
}

fn strictness(t: &Table, f: &mut Findings) -> Option<Sourced<HostKeyPolicy>> {
    let (item, origin) = t.item("strict_host_key_checking")?;
    let v = match item.as_value() {
        Some(toml_edit::Value::Boolean(b)) => Some(if *b.value() {
            HostKeyPolicy::Strict
        } else {
            HostKeyPolicy::Off
        }),
        Some(toml_edit::Value::String(s)) => match s.value().to_ascii_lowercase().as_str() {
            "accept-new" => Some(HostKeyPolicy::AcceptNew),
            "true" | "yes" | "strict" => Some(HostKeyPolicy::Strict),
            "ask" => Some(HostKeyPolicy::Ask),
            "false" | "no" | "off" => Some(HostKeyPolicy::Off),
            _ => None,
        },
        _ => None,
    };
    if v.is_none() {
        let shown = item.as_value().map(|v| v.to_string()).unwrap_or_default();
        f.push(
            Problem::error(
                origin.clone(),
                format!(
                    "{}.strict_host_key_checking: {} is not true, false or \"accept-new\"",
                    t.name,
                    shown.trim()
                ),
            )
            .with_fix("write strict_host_key_checking = true (or \"accept-new\", or false)"),
        );
    }
    v.map(|p| Sourced::new(p, origin))
}
