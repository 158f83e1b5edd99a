//! The host key decision, as OpenSSH 9.2 makes it (sshconnect.c `check_host_key`): which
//! name is looked up, what the files say, and what the policy does with it: accept, record
//! and accept, ask a person, or refuse. Nothing here does I/O beyond reading the files; the
//! caller asks and writes.
//!
//! A KnownHostsCommand's lines ([`FromCommand`], run by the caller with
//! [`super::hosts_command`]) join the files' as ssh adds them: after the files, for the host
//! name and (with CheckHostIP) the address separately, never for the port-less fallback; a
//! key found only there is not written anywhere, and a failed command refuses the key.
//!
//! Where warren is stricter than ssh (the README lists these): a changed or `@revoked` key
//! under `StrictHostKeyChecking no` is refused (ssh connects but disables every forward, so a
//! tunnel would carry nothing).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use russh::keys::ssh_key::{Certificate, PublicKey};

use super::known_hosts::{self, KnownHosts, Place, Verdict, fingerprint, type_name};
use super::revoked::{self, Revocation};
use crate::config::command::HostsCommand;
use crate::config::model::{Hop, HostKeyPolicy};
use crate::config::origin::Origin;

/// `~/.ssh`: the one directory a known_hosts write may create.
pub fn ssh_dir() -> PathBuf {
    dirs::home_dir().unwrap_or_default().join(".ssh")
}

/// The rules of one hop: its policy and files, and the names it is known by.
#[derive(Clone, Debug)]
pub struct Rules {
    pub policy: HostKeyPolicy,
    pub batch: bool,
    pub user_files: Vec<PathBuf>,
    pub global_files: Vec<PathBuf>,
    /// HostKeyAlias, lowercased.
    pub alias: Option<String>,
    pub revoked: Option<PathBuf>,
    pub check_host_ip: bool,
    pub hash: bool,
    pub command: Option<(HostsCommand, Origin)>,
    /// How long the command may run (the hop's connect timeout).
    pub command_timeout: Duration,
    /// The final host name, lowercased as ssh does.
    pub hostname: String,
    pub port: u16,
    /// The peer's address when the hop is a direct TCP connection (not through a jump).
    pub peer: Option<SocketAddr>,
    /// `~/.ssh`: the only directory a write may create.
    pub ssh_dir: PathBuf,
}

impl Rules {
    pub fn for_hop(hop: &Hop, peer: Option<SocketAddr>, ssh_dir: PathBuf) -> Self {
        let hostname = if hop.host.value.parse::<std::net::IpAddr>().is_ok() {
            hop.host.value.clone()
        } else {
            hop.host.value.to_ascii_lowercase()
        };
        Rules {
            policy: hop.host_key_policy.value,
            batch: hop.batch_mode.value,
            user_files: hop.known_hosts_files.value.clone(),
            global_files: hop.global_known_hosts_files.value.clone(),
            alias: hop.host_key_alias.as_ref().map(|a| a.value.clone()),
            revoked: hop.revoked_host_keys.as_ref().map(|r| r.value.clone()),
            check_host_ip: hop.check_host_ip.value,
            hash: hop.hash_known_hosts.value,
            command: hop
                .known_hosts_command
                .as_ref()
                .map(|c| (c.value.clone(), c.origin.clone())),
            command_timeout: hop.connect_timeout.value.0,
            hostname,
            port: hop.port.value,
            peer,
            ssh_dir,
        }
    }

    /// The name keys are looked up and recorded under: the alias, else `host` or
    /// `[host]:port`.
    pub fn lookup_name(&self) -> String {
        match &self.alias {
            Some(a) => a.clone(),
            None => known_hosts::host_key_name(&self.hostname, self.port),
        }
    }

    /// The IP name to check too, when CheckHostIP applies: not for loopback, not when the
    /// host is given as that address, not through a jump (ssh turns it off in those cases).
    pub fn ip_name(&self) -> Option<String> {
        let peer = self.peer?;
        let ip = peer.ip().to_string();
        if !self.check_host_ip || peer.ip().is_loopback() || ip == self.hostname {
            return None;
        }
        Some(known_hosts::host_key_name(&ip, self.port))
    }

    /// Every file consulted: the user's, then the system's.
    pub fn files(&self) -> Vec<PathBuf> {
        self.user_files
            .iter()
            .chain(&self.global_files)
            .cloned()
            .collect()
    }

    /// No user file, a host name ssh will not record, or a name that is not one concrete
    /// host (a HostKeyAlias of `*` or `restrict`: warren is stricter than ssh here): nothing
    /// can be written.
    fn read_only(&self) -> bool {
        self.user_files.is_empty()
            || self.special_hostname()
            || known_hosts::concrete_name(&self.lookup_name()).is_err()
    }

    /// A host name ssh will not record a key for (sshconnect.c `check_host_key`).
    fn special_hostname(&self) -> bool {
        self.hostname
            .contains(['@', '?', '*', '#', '[', ']', '|', '\'', '"', '\\'])
    }
}

/// What the files say, for the diagnostics and the error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Known(Place),
    /// A host certificate signed by a `@cert-authority` listed for the host.
    ByCa(Place),
    /// Known only under the name without the port (ssh's fallback for non-22 ports).
    KnownBare(Place),
    New,
    Changed(Place),
    Revoked(Place),
    /// Listed in RevokedHostKeys, or that file could not be used.
    RevokedByFile(String),
    /// The KnownHostsCommand failed (ssh: "KnownHostsCommand failed").
    CommandFailed(String),
}

/// What a KnownHostsCommand said about the presented key.
#[derive(Clone, Debug, Default)]
pub struct FromCommand {
    /// Its lines for the host's name (`%I` = `HOSTNAME`).
    pub host: KnownHosts,
    /// Its lines for the address (`ADDRESS`, with CheckHostIP).
    pub address: KnownHosts,
    /// It failed: the key is refused, as ssh stops.
    pub failed: Option<String>,
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Accept,
    /// Append these lines to the first user file, then accept.
    Record(Vec<String>),
    /// Ask a person; yes appends these lines (for the host key; empty for the IP question).
    Ask(Question),
    Refuse(String),
}

/// A question for the person at the keyboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    /// An unknown host key: yes records it.
    UnknownKey {
        lines: Vec<String>,
        other_names: Vec<String>,
    },
    /// The host key is known but the IP address's key differs (CheckHostIP).
    IpChanged { text: String },
}

/// The decision for one presented key.
#[derive(Clone, Debug)]
pub struct Decision {
    pub name: String,
    pub key: PublicKey,
    pub found: Found,
    pub action: Action,
    /// Lines to append whatever the answer, before accepting (a new IP address of a known
    /// host, with CheckHostIP).
    pub also_record: Vec<String>,
    /// A warning to show with an accepted key.
    pub warning: Option<String>,
    /// Why a host certificate was not used (its plain key was checked instead): added to
    /// a refusal.
    pub note: Option<String>,
}

fn line_for(rules: &Rules, names: &[String], key: &PublicKey) -> Vec<String> {
    if rules.hash {
        names
            .iter()
            .filter_map(|n| {
                known_hosts::hashed_name(n)
                    .and_then(|h| known_hosts::entry(&h, key))
                    .ok()
            })
            .collect()
    } else {
        known_hosts::entry(&names.join(","), key)
            .into_iter()
            .collect()
    }
}

/// Why a host certificate cannot be used, or None if it can.
fn certificate_problem(cert: &Certificate, host: &str) -> Option<String> {
    use russh::keys::ssh_key::{HashAlg, certificate::CertType};
    if cert.cert_type() != CertType::Host {
        return Some("it is a user certificate".into());
    }
    let ca = cert.signature_key().fingerprint(HashAlg::Sha256);
    if let Err(e) = cert.validate([&ca]) {
        return Some(format!("{e}: expired, not yet valid, or a bad signature"));
    }
    let principals = cert.valid_principals();
    if !principals.is_empty() && !principals.iter().any(|p| p == host) {
        return Some(format!("it is for {}, not {host}", principals.join(",")));
    }
    None
}

/// Decides for `key` (the plain key; `cert` when the server showed a certificate), with
/// what the KnownHostsCommand (if any) said.
pub fn decide(
    rules: &Rules,
    key: &PublicKey,
    cert: Option<&Certificate>,
    from_command: &FromCommand,
) -> Decision {
    let name = rules.lookup_name();
    let fp = fingerprint(key);
    let kind = type_name(key);
    let decision = |found: Found, action: Action| Decision {
        name: name.clone(),
        key: key.clone(),
        found,
        action,
        also_record: Vec::new(),
        warning: None,
        note: None,
    };
    // 1. RevokedHostKeys first: fail closed, whatever the policy.
    if let Some(file) = &rules.revoked {
        match revoked::check(file, key, cert) {
            Some(Revocation::Revoked) => {
                let msg = format!("Host key {kind} {fp} revoked by file {}", file.display());
                return decision(Found::RevokedByFile(msg.clone()), Action::Refuse(msg));
            }
            Some(Revocation::Error(e)) => {
                let msg = format!(
                    "Error checking host key {kind} {fp} in revoked keys file {}: {e}",
                    file.display()
                );
                return decision(Found::RevokedByFile(msg.clone()), Action::Refuse(msg));
            }
            None => {}
        }
    }
    if let Some(msg) = &from_command.failed {
        return decision(
            Found::CommandFailed(msg.clone()),
            Action::Refuse(msg.clone()),
        );
    }
    let files = KnownHosts::read(&rules.files());
    let mut pool = files.clone();
    pool.extend(&from_command.host);
    // 2. A certificate: its CA must be listed for the host, and it must be valid for it;
    // else ssh checks the plain key inside it (and so does warren, saying why).
    let mut cert_note = None;
    if let Some(cert) = cert {
        let ca = PublicKey::from(cert.signature_key().clone());
        match pool.check_ca(&name, &ca) {
            Verdict::Revoked(at) => {
                let msg = format!(
                    "the certificate authority that signed the host key of {name} is marked @revoked at {at}"
                );
                return decision(Found::Revoked(at), Action::Refuse(msg));
            }
            Verdict::Known(at) => {
                let principal = rules.alias.clone().unwrap_or(rules.hostname.clone());
                match certificate_problem(cert, &principal) {
                    None => return decision(Found::ByCa(at), Action::Accept),
                    Some(p) => {
                        cert_note = Some(format!(
                            "the host certificate (CA at {at}) was not used: {p}"
                        ))
                    }
                }
            }
            _ => {
                cert_note = Some(format!(
                    "the host presented a certificate, but no @cert-authority line for {name} lists its CA"
                ))
            }
        }
    }
    let ip_pool = rules.ip_name().map(|_| {
        let mut p = files.clone();
        p.extend(&from_command.address);
        p
    });
    let pools = Pools {
        host: &pool,
        files: &files,
        ip: ip_pool.as_ref().unwrap_or(&files),
    };
    let mut d = decide_plain(rules, &name, key, &pools);
    d.note = cert_note;
    if d.found == Found::New {
        let broken = files.corrupted_with(key);
        if !broken.is_empty() {
            let at: Vec<String> = broken.iter().map(|p| p.to_string()).collect();
            let repair = format!(
                "this key is already in {} under a hashed name an earlier warren wrote corrupted, which nothing can match: remove it with warren trust --repair (ssh-keygen -R cannot find it)",
                at.join(", ")
            );
            d.note = Some(match d.note.take() {
                Some(n) => format!("{n}; {repair}"),
                None => repair,
            });
        }
    }
    d
}

/// The lines a decision looks at: the host's (files, then the command's), the files' alone
/// (the port-less fallback), and the address's (files, then the command's).
struct Pools<'a> {
    host: &'a KnownHosts,
    files: &'a KnownHosts,
    ip: &'a KnownHosts,
}

/// The decision for a plain key (or a certificate's key when the certificate was not used).
fn decide_plain(rules: &Rules, name: &str, key: &PublicKey, pools: &Pools<'_>) -> Decision {
    let pool = pools.host;
    let name = name.to_string();
    let fp = fingerprint(key);
    let kind = type_name(key);
    let decision = |found: Found, action: Action| Decision {
        name: name.clone(),
        key: key.clone(),
        found,
        action,
        also_record: Vec::new(),
        warning: None,
        note: None,
    };
    // 3. The plain key, under the name, the port-less name, and the IP.
    let mut verdict = pool.check(&name, key);
    if verdict == Verdict::New && rules.alias.is_none() && rules.port != 22 {
        // ssh's quiet second look: a key listed for the bare host name is accepted.
        // (The command does not run for it.)
        if let Verdict::Known(at) = pools.files.check(&rules.hostname, key) {
            return decision(Found::KnownBare(at), Action::Accept);
        }
    }
    let ip = rules.ip_name();
    let ip_verdict = ip.as_ref().map(|n| pools.ip.check(n, key));
    // A key found through KnownHostsCommand is never written about (ssh: readonly).
    let read_only = rules.read_only()
        || matches!(&verdict, Verdict::Known(at) | Verdict::Changed(at) if at.is_command());
    let lines_new = || {
        let mut names = vec![name.clone()];
        if let (Some(ipn), Some(Verdict::New)) = (&ip, &ip_verdict) {
            names.push(ipn.clone());
        }
        line_for(rules, &names, key)
    };
    if let Verdict::Revoked(at) = &verdict {
        let msg = format!(
            "the {kind} host key {fp} of {name} is marked @revoked at {at}: a stolen key may be in use to impersonate the host"
        );
        return decision(Found::Revoked(at.clone()), Action::Refuse(msg));
    }
    match std::mem::replace(&mut verdict, Verdict::New) {
        Verdict::Known(at) => {
            let mut d = decision(Found::Known(at.clone()), Action::Accept);
            match (&ip, &ip_verdict) {
                (Some(ipn), Some(Verdict::New)) if !read_only => {
                    d.also_record = line_for(rules, std::slice::from_ref(ipn), key);
                }
                (Some(ipn), Some(Verdict::Changed(ip_at))) => {
                    let text = format!(
                        "the {kind} host key for '{name}' differs from the key for the IP address '{ipn}' (offending key for IP in {ip_at}; matching host key in {at})"
                    );
                    d.action = match rules.policy {
                        HostKeyPolicy::Off => {
                            d.warning = Some(text);
                            Action::Accept
                        }
                        HostKeyPolicy::Ask if !rules.batch => {
                            Action::Ask(Question::IpChanged { text })
                        }
                        _ => Action::Refuse(format!(
                            "{text}; exiting, you have requested strict checking"
                        )),
                    };
                }
                _ => {}
            }
            d
        }
        Verdict::Changed(at) => {
            let mut msg = if at.is_command() {
                format!(
                    "REMOTE HOST IDENTIFICATION HAS CHANGED: {name} presented {kind} {fp}, which contradicts {at} (line {} of what KnownHostsCommand printed); if the change is expected, fix what the command prints",
                    at.line
                )
            } else {
                format!(
                    "REMOTE HOST IDENTIFICATION HAS CHANGED: {name} presented {kind} {fp}, which contradicts {at}; if the change is expected, run: ssh-keygen -R '{name}' -f {}",
                    at.path.display()
                )
            };
            if rules.policy == HostKeyPolicy::Off {
                msg.push_str(" (with StrictHostKeyChecking no, ssh would connect with every forward disabled; warren refuses)");
            }
            decision(Found::Changed(at), Action::Refuse(msg))
        }
        _ => {
            // New.
            if read_only {
                let why = if rules.user_files.is_empty() {
                    "there is no known_hosts file to record it in (UserKnownHostsFile none)"
                        .to_string()
                } else if let (false, Err(e)) =
                    (rules.special_hostname(), known_hosts::concrete_name(&name))
                {
                    format!(
                        "{e}: warren records host keys only under one concrete name (check HostKeyAlias / host_key_alias)"
                    )
                } else {
                    "ssh does not record keys for a host name with special characters".to_string()
                };
                let msg = format!(
                    "Host key verification failed: the {kind} key of {name} ({fp}) is not known, and {why}"
                );
                return decision(Found::New, Action::Refuse(msg));
            }
            match rules.policy {
                HostKeyPolicy::Strict => decision(
                    Found::New,
                    Action::Refuse(format!(
                        "No {kind} host key is known for {name} and you have requested strict checking ({fp}); verify the fingerprint with the host's owner, then add it: warren trust NAME, or set strict_host_key_checking = \"accept-new\" (StrictHostKeyChecking accept-new) once"
                    )),
                ),
                HostKeyPolicy::Ask if rules.batch => decision(
                    Found::New,
                    Action::Refuse(format!(
                        "Host key verification failed: the {kind} key of {name} ({fp}) is not known, and BatchMode forbids asking"
                    )),
                ),
                HostKeyPolicy::Ask => decision(
                    Found::New,
                    Action::Ask(Question::UnknownKey {
                        lines: lines_new(),
                        other_names: pool
                            .other_names(key)
                            .into_iter()
                            .take(8)
                            .map(|(p, n)| format!("{p}: {n}"))
                            .collect(),
                    }),
                ),
                HostKeyPolicy::AcceptNew | HostKeyPolicy::Off => {
                    decision(Found::New, Action::Record(lines_new()))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
