//! The option lines warren uses, checked once when a file is read: each keyword's value as
//! OpenSSH parses it (ports, yes/no, times, forwards, ProxyJump), or a problem with the line
//! and the fix.

use super::canonical::Canonicalize;
use crate::config::Context;
use crate::config::algorithms::{self, AlgorithmKind};
use crate::config::destination::Destination;
use crate::config::forward::{self, Forward, ForwardKind};
use crate::config::origin::{Origin, Problem};

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
    ProxyUseFdpass(bool),
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
    /// Whether ssh canonicalizes the name (yes/always also make it re-read the config).
    CanonicalizeHostname(Canonicalize),
    /// The domains tried; `["none"]` is `none`.
    CanonicalDomains(Vec<String>),
    CanonicalizeMaxDots(u32),
    CanonicalizeFallbackLocal(bool),
    /// `(source patterns, target patterns)`, lowercased; `none` is `[("none", "")]`.
    CanonicalizePermittedCnames(Vec<(String, String)>),
    /// An algorithm list, as written (checked; assembled when the host is resolved).
    Algorithms(AlgorithmKind, String),
    GlobalKnownHostsFile(Vec<String>),
    RevokedHostKeys(String),
    CheckHostIp(bool),
    HashKnownHosts(bool),
    KnownHostsCommand(String),
    PreferredAuthentications(String),
    PasswordAuthentication(bool),
    KbdInteractiveAuthentication(bool),
    NumberOfPasswordPrompts(u32),
    BatchMode(bool),
    /// `SendEnv` names and patterns, in order; `-PATTERN` removes the names sent so far
    /// that match it (readconf.c `rm_env`).
    SendEnv(Vec<String>),
    /// `Tag name` (OpenSSH 9.4+): one name; the first one obtained wins.
    Tag(String),
    /// A `# warren: tags = prod, eu` comment: tags for ssh versions without `Tag`; every such
    /// line that applies adds its tags.
    WarrenTags(Vec<String>),
    /// `# warren: local_bind = auto`: the first one obtained wins.
    WarrenLocalBindAuto,
    /// `# warren: on_demand = true`: the first one obtained wins.
    WarrenOnDemand(bool),
    /// `# warren: certificate_command = ...`: the first one obtained wins.
    WarrenCertificateCommand(String),
    /// A keyword warren does not use: kept (for `warren show`) and otherwise ignored.
    Other {
        keyword: String,
        value: String,
    },
}

/// Checks option lines; what is wrong goes to `problems`.
pub(super) struct Checker<'a> {
    pub(super) ctx: &'a Context,
    pub(super) problems: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    /// Checks one option line; `None` (with a problem recorded) when its value is invalid.
    pub(super) fn directive(
        &mut self,
        keyword: &str,
        args: &[String],
        command: &str,
        origin: &Origin,
    ) -> Option<Directive> {
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
            // Commands are kept as written, the rest of the line (readconf.c parse_command).
            "proxycommand" => Some(Directive::ProxyCommand(command.to_string())),
            "proxyusefdpass" => self
                .flag(keyword, &first, origin)
                .map(Directive::ProxyUseFdpass),
            "identityfile" | "identityfile2" => {
                single(self).then_some(Directive::IdentityFile(first))
            }
            // ssh.c lowercases the alias.
            "hostkeyalias" => {
                single(self).then_some(Directive::HostKeyAlias(first.to_ascii_lowercase()))
            }
            "canonicalizehostname" => match first.to_ascii_lowercase().as_str() {
                "yes" | "true" => Some(Directive::CanonicalizeHostname(Canonicalize::Yes)),
                "always" => Some(Directive::CanonicalizeHostname(Canonicalize::Always)),
                "no" | "false" => Some(Directive::CanonicalizeHostname(Canonicalize::No)),
                _ => self.bad(
                    origin,
                    format!("CanonicalizeHostname '{first}' is not a valid value"),
                    "use yes, no or always",
                ),
            },
            "canonicaldomains" => {
                if args.len() > 1 && args.iter().any(|a| a.eq_ignore_ascii_case("none")) {
                    return self.bad(
                        origin,
                        "CanonicalDomains: \"none\" argument must appear alone".to_string(),
                        "write CanonicalDomains none, or a list of domains",
                    );
                }
                Some(Directive::CanonicalDomains(args.to_vec()))
            }
            "canonicalizemaxdots" => match first.parse::<u32>() {
                Ok(n) => single(self).then_some(Directive::CanonicalizeMaxDots(n)),
                Err(_) => self.bad(
                    origin,
                    format!("CanonicalizeMaxDots '{first}' is not a number"),
                    "use a whole number, e.g. 1",
                ),
            },
            "canonicalizefallbacklocal" => self
                .flag(keyword, &first, origin)
                .map(Directive::CanonicalizeFallbackLocal),
            "canonicalizepermittedcnames" => {
                let mut rules = Vec::new();
                for a in args {
                    if a.eq_ignore_ascii_case("none") {
                        if args.len() > 1 {
                            return self.bad(
                                origin,
                                "CanonicalizePermittedCNAMEs: \"none\" argument must appear alone"
                                    .to_string(),
                                "write CanonicalizePermittedCNAMEs none, or a list of rules",
                            );
                        }
                        rules.push((a.clone(), String::new()));
                    } else if a == "*" {
                        rules.push((a.clone(), a.clone()));
                    } else {
                        match a.to_ascii_lowercase().split_once(':') {
                            Some((src, tgt)) if !tgt.is_empty() => {
                                rules.push((src.to_string(), tgt.to_string()))
                            }
                            _ => {
                                return self.bad(
                                    origin,
                                    format!("Invalid permitted CNAME \"{a}\""),
                                    "write SOURCE_PATTERNS:TARGET_PATTERNS, e.g. *.a.example:*.b.example",
                                );
                            }
                        }
                    }
                }
                Some(Directive::CanonicalizePermittedCnames(rules))
            }
            "certificatefile" => single(self).then_some(Directive::CertificateFile(first)),
            "identityagent" => single(self).then_some(Directive::IdentityAgent(first)),
            "userknownhostsfile" => Some(Directive::UserKnownHostsFile(args.to_vec())),
            "globalknownhostsfile" => Some(Directive::GlobalKnownHostsFile(args.to_vec())),
            "revokedhostkeys" => single(self).then_some(Directive::RevokedHostKeys(first)),
            "knownhostscommand" => Some(Directive::KnownHostsCommand(command.to_string())),
            // Commands warren does not run, kept as written like ProxyCommand (quotes,
            // backslashes and a `#` included), as `ssh -G` prints them.
            "localcommand" | "remotecommand" => Some(Directive::Other {
                keyword: keyword.to_string(),
                value: command.to_string(),
            }),
            "checkhostip" => self
                .flag(keyword, &first, origin)
                .map(Directive::CheckHostIp),
            "hashknownhosts" => self
                .flag(keyword, &first, origin)
                .map(Directive::HashKnownHosts),
            "batchmode" => self.flag(keyword, &first, origin).map(Directive::BatchMode),
            "passwordauthentication" => self
                .flag(keyword, &first, origin)
                .map(Directive::PasswordAuthentication),
            "kbdinteractiveauthentication" | "challengeresponseauthentication" => self
                .flag(keyword, &first, origin)
                .map(Directive::KbdInteractiveAuthentication),
            "preferredauthentications" => {
                single(self).then_some(Directive::PreferredAuthentications(first))
            }
            "numberofpasswordprompts" => match first.parse::<u32>() {
                Ok(n) => Some(Directive::NumberOfPasswordPrompts(n)),
                Err(_) => self.bad(
                    origin,
                    format!("NumberOfPasswordPrompts '{first}' is not a number"),
                    "use a whole number, e.g. 3",
                ),
            },
            k if AlgorithmKind::from_keyword(k).is_some() => {
                let kind = AlgorithmKind::from_keyword(k)?;
                match algorithms::check(kind, &first) {
                    Ok(()) => single(self).then_some(Directive::Algorithms(kind, first)),
                    Err(e) => self.bad(
                        origin,
                        e,
                        &format!(
                            "use names from `ssh -Q {}`, comma-separated, optionally after +, - or ^",
                            match kind {
                                AlgorithmKind::Ciphers => "cipher",
                                AlgorithmKind::Kex => "kex",
                                AlgorithmKind::Macs => "mac",
                                AlgorithmKind::HostKey => "HostKeyAlgorithms",
                                AlgorithmKind::Pubkey => "PubkeyAcceptedAlgorithms",
                            }
                        ),
                    ),
                }
            }
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
            "sendenv" => {
                if args.iter().any(|a| a.is_empty() || a.contains('=')) {
                    return self.bad(
                        origin,
                        "SendEnv: Invalid environment name".to_string(),
                        "name variables (patterns allowed) without `=`; SetEnv sets values",
                    );
                }
                Some(Directive::SendEnv(args.to_vec()))
            }
            "tag" => match args {
                [name] => Some(Directive::Tag(name.clone())),
                _ => self.bad(
                    origin,
                    format!("Tag takes one name, not {}", args.len()),
                    "give one name (ssh allows one Tag per host); for more, use a \
                     `# warren: tags = a, b` comment",
                ),
            },
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
