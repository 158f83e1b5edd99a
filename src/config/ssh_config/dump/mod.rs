//! Every option of a resolved host the way `ssh -G` prints it (readconf.c
//! `dump_client_config`, OpenSSH 9.2p1 as Debian builds it): the same keys in the same order,
//! values interpreted as ssh interprets them (`yes` is `true` where ssh says so, times in
//! seconds, defaults filled in), each with where it came from. `warren show` prints it and
//! the differential test compares it with `ssh -G` key by key.
//!
//! The options warren uses come from their typed fields; the others from the first value
//! written (`HostConfig::other`), read by the kind of value ssh expects. Defaults are those
//! of OpenSSH 9.2p1 on Debian (e.g. ForwardX11Trusted yes, IPQoS lowdelay throughput).

use super::HostConfig;
use super::directive::convtime;
use crate::config::origin::{Origin, Sourced};

/// One line of `ssh -G`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Line {
    pub key: &'static str,
    pub value: String,
    pub source: Origin,
}

mod table;

use table::{Kind, YES_TRUE, table};

/// The keys `ssh -G` prints, in its order (those that may be absent included).
const ORDER: &[&str] = &[
    "host",
    "user",
    "hostname",
    "port",
    "addressfamily",
    "batchmode",
    "canonicalizefallbacklocal",
    "canonicalizehostname",
    "checkhostip",
    "compression",
    "controlmaster",
    "enablesshkeysign",
    "clearallforwardings",
    "exitonforwardfailure",
    "fingerprinthash",
    "forwardx11",
    "forwardx11trusted",
    "gatewayports",
    "gssapiauthentication",
    "gssapikeyexchange",
    "gssapidelegatecredentials",
    "gssapitrustdns",
    "gssapirenewalforcesrekey",
    "gssapikexalgorithms",
    "hashknownhosts",
    "hostbasedauthentication",
    "identitiesonly",
    "kbdinteractiveauthentication",
    "nohostauthenticationforlocalhost",
    "passwordauthentication",
    "permitlocalcommand",
    "proxyusefdpass",
    "pubkeyauthentication",
    "requesttty",
    "sessiontype",
    "stdinnull",
    "forkafterauthentication",
    "streamlocalbindunlink",
    "stricthostkeychecking",
    "tcpkeepalive",
    "tunnel",
    "verifyhostkeydns",
    "visualhostkey",
    "updatehostkeys",
    "enableescapecommandline",
    "canonicalizemaxdots",
    "connectionattempts",
    "forwardx11timeout",
    "numberofpasswordprompts",
    "serveralivecountmax",
    "serveraliveinterval",
    "requiredrsasize",
    "bindaddress",
    "bindinterface",
    "ciphers",
    "controlpath",
    "hostkeyalgorithms",
    "hostkeyalias",
    "hostbasedacceptedalgorithms",
    "identityagent",
    "ignoreunknown",
    "kbdinteractivedevices",
    "kexalgorithms",
    "casignaturealgorithms",
    "localcommand",
    "remotecommand",
    "loglevel",
    "macs",
    "pkcs11provider",
    "securitykeyprovider",
    "preferredauthentications",
    "pubkeyacceptedalgorithms",
    "revokedhostkeys",
    "xauthlocation",
    "knownhostscommand",
    "dynamicforward",
    "localforward",
    "remoteforward",
    "identityfile",
    "canonicaldomains",
    "certificatefile",
    "globalknownhostsfile",
    "userknownhostsfile",
    "sendenv",
    "setenv",
    "logverbose",
    "permitremoteopen",
    "addkeystoagent",
    "forwardagent",
    "connecttimeout",
    "tunneldevice",
    "canonicalizepermittedcnames",
    "controlpersist",
    "escapechar",
    "ipqos",
    "rekeylimit",
    "streamlocalbindmask",
    "syslogfacility",
    "proxycommand",
    "proxyjump",
];

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

impl HostConfig {
    /// The first value written for one of `keys` (a keyword and its aliases).
    fn written(&self, keys: &[&str]) -> Option<&Sourced<String>> {
        self.other
            .iter()
            .find(|(k, _)| keys.contains(&k.as_str()))
            .map(|(_, v)| v)
    }

    /// Every option as `ssh -G` prints it for this host.
    pub fn ssh_g(&self) -> Vec<Line> {
        let mut out = Vec::new();
        for &key in ORDER {
            let mut put = |value: String, source: &Origin| {
                out.push(Line {
                    key,
                    value,
                    source: source.clone(),
                })
            };
            if let Some(lines) = self.typed(key) {
                for (v, o) in lines {
                    put(v, &o);
                }
                continue;
            }
            if let Some((keys, kind)) = table(key) {
                let set = self.written(keys);
                let first = set.map(|s| s.value.split(' ').next().unwrap_or_default());
                let source = set.map(|s| s.origin.clone()).unwrap_or(Origin::Default);
                let value = match kind {
                    Kind::Flag(d) => match first.map(str::to_ascii_lowercase).as_deref() {
                        Some("yes" | "true") => Some(yes_no(true)),
                        Some("no" | "false") => Some(yes_no(false)),
                        _ => Some(yes_no(d)),
                    },
                    Kind::Words(words, d) => {
                        let w = first.map(str::to_ascii_lowercase);
                        let printed = words
                            .iter()
                            .find(|(i, _)| Some(*i) == w.as_deref())
                            .map_or(d, |(_, p)| p);
                        Some(printed.to_string())
                    }
                    Kind::Int(d) => {
                        Some(first.and_then(|v| v.parse().ok()).unwrap_or(d).to_string())
                    }
                    Kind::Time(d) => Some(first.and_then(convtime).unwrap_or(d).to_string()),
                    Kind::Text(d) => match set {
                        Some(s) => Some(s.value.clone()),
                        None => d.map(str::to_string),
                    },
                };
                if let Some(v) = value {
                    put(v, &source);
                }
            }
        }
        out
    }

    /// The lines of an option warren uses (or ssh computes), `None` for a table option.
    fn typed(&self, key: &str) -> Option<Vec<(String, Origin)>> {
        let one = |v: String, o: &Origin| Some(vec![(v, o.clone())]);
        let s = |v: &Sourced<bool>| one(yes_no(v.value), &v.origin);
        let opt = |v: &Option<Sourced<String>>| {
            Some(
                v.iter()
                    .map(|x| (x.value.clone(), x.origin.clone()))
                    .collect(),
            )
        };
        let raw = |k: &str| {
            Some(
                self.written(&[k])
                    .filter(|v| !v.value.eq_ignore_ascii_case("none"))
                    .map(|v| vec![(v.value.clone(), v.origin.clone())])
                    .unwrap_or_default(),
            )
        };
        let algorithm = |kw: &str| {
            self.algorithms
                .iter()
                .find(|(k, _)| k.keyword().eq_ignore_ascii_case(kw))
                .map(|(_, l)| vec![(l.value.join(","), l.origin.clone())])
        };
        match key {
            "host" => one(self.alias.clone(), &Origin::Default),
            "user" => one(self.user.value.clone(), &self.user.origin),
            "hostname" => one(self.hostname.value.clone(), &self.hostname.origin),
            "port" => one(self.port.value.to_string(), &self.port.origin),
            "batchmode" => s(&self.batch_mode),
            "canonicalizefallbacklocal" => s(&self.canonicalize_fallback_local),
            "canonicalizehostname" => one(
                self.canonicalize_hostname.value.as_ssh_g().into(),
                &self.canonicalize_hostname.origin,
            ),
            "checkhostip" => s(&self.check_host_ip),
            "clearallforwardings" => s(&self.clear_all_forwardings),
            "exitonforwardfailure" => s(&self.exit_on_forward_failure),
            "hashknownhosts" => s(&self.hash_known_hosts),
            "identitiesonly" => s(&self.identities_only),
            "kbdinteractiveauthentication" => s(&self.kbd_interactive_authentication),
            "passwordauthentication" => s(&self.password_authentication),
            "proxyusefdpass" => s(&self.proxy_use_fdpass),
            "stricthostkeychecking" => one(
                self.strict_host_key_checking.value.as_ssh_g().into(),
                &self.strict_host_key_checking.origin,
            ),
            "updatehostkeys" => self.update_host_keys(),
            "canonicalizemaxdots" => one(
                self.canonicalize_max_dots.value.to_string(),
                &self.canonicalize_max_dots.origin,
            ),
            "numberofpasswordprompts" => one(
                self.number_of_password_prompts.value.to_string(),
                &self.number_of_password_prompts.origin,
            ),
            "serveralivecountmax" => one(
                self.server_alive_count_max.value.to_string(),
                &self.server_alive_count_max.origin,
            ),
            "serveraliveinterval" => one(
                self.server_alive_interval.value.to_string(),
                &self.server_alive_interval.origin,
            ),
            "ciphers"
            | "hostkeyalgorithms"
            | "kexalgorithms"
            | "macs"
            | "pubkeyacceptedalgorithms" => algorithm(key),
            "controlpath" => Some(
                self.written(&["controlpath"])
                    .filter(|v| !v.value.eq_ignore_ascii_case("none"))
                    .map(|v| {
                        let p = self
                            .expand_path(&v.value)
                            .unwrap_or_else(|_| v.value.clone());
                        vec![(p, v.origin.clone())]
                    })
                    .unwrap_or_default(),
            ),
            "hostkeyalias" => opt(&self.host_key_alias),
            "identityagent" => opt(&self.identity_agent),
            "localcommand" | "remotecommand" => raw(key),
            "preferredauthentications" => Some(
                self.preferred_authentications
                    .iter()
                    .map(|p| (p.value.join(","), p.origin.clone()))
                    .collect(),
            ),
            "revokedhostkeys" => opt(&self.revoked_host_keys),
            "knownhostscommand" => opt(&self.known_hosts_command),
            "dynamicforward" | "localforward" | "remoteforward" => Some(self.forward_lines(key)),
            "identityfile" => Some(list(&self.identity_files)),
            "certificatefile" => Some(list(&self.certificate_files)),
            "sendenv" => Some(list(&self.send_env)),
            "canonicaldomains" => one(
                none_if_empty(self.canonical_domains.value.join(" ")),
                &self.canonical_domains.origin,
            ),
            "globalknownhostsfile" => one(
                self.global_known_hosts_files.value.join(" "),
                &self.global_known_hosts_files.origin,
            ),
            "userknownhostsfile" => one(
                self.known_hosts_files.value.join(" "),
                &self.known_hosts_files.origin,
            ),
            "setenv" => Some(
                self.written(&["setenv"])
                    .map(|v| {
                        v.value
                            .split(' ')
                            .map(|e| (e.to_string(), v.origin.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "connecttimeout" => one(
                self.connect_timeout
                    .value
                    .map_or("none".into(), |t| t.to_string()),
                &self.connect_timeout.origin,
            ),
            "canonicalizepermittedcnames" => one(
                none_if_empty(
                    self.canonicalize_permitted_cnames
                        .value
                        .iter()
                        .map(|(s, t)| format!("{s}:{t}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                &self.canonicalize_permitted_cnames.origin,
            ),
            "addkeystoagent" => Some(vec![self.add_keys_to_agent()]),
            "controlpersist" => Some(vec![self.control_persist()]),
            "ipqos" => Some(vec![self.ipqos()]),
            "rekeylimit" => Some(vec![self.rekey_limit()]),
            "proxycommand" => Some(match &self.proxy_jump {
                Some(_) => Vec::new(),
                None => self
                    .proxy_command
                    .iter()
                    .map(|p| (p.value.clone(), p.origin.clone()))
                    .collect(),
            }),
            "proxyjump" => Some(
                self.proxy_jump
                    .iter()
                    .map(|j| {
                        let hops: Vec<String> = j.value.iter().map(|d| d.to_string()).collect();
                        (hops.join(","), j.origin.clone())
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
}

fn list(v: &[Sourced<String>]) -> Vec<(String, Origin)> {
    v.iter()
        .map(|x| (x.value.clone(), x.origin.clone()))
        .collect()
}

fn none_if_empty(s: String) -> String {
    if s.is_empty() { "none".into() } else { s }
}

/// The options whose printed form ssh computes from more than one word.
impl HostConfig {
    /// UpdateHostKeys: as set, else yes unless VerifyHostKeyDNS is on or UserKnownHostsFile
    /// names other files than `~/.ssh/known_hosts` (readconf.c `fill_default_options`).
    fn update_host_keys(&self) -> Option<Vec<(String, Origin)>> {
        if let Some(v) = self.written(&["updatehostkeys"]) {
            let w = v.value.to_ascii_lowercase();
            let p = YES_TRUE
                .iter()
                .find(|(i, _)| *i == w)
                .map_or("false", |(_, p)| p);
            return Some(vec![(p.to_string(), v.origin.clone())]);
        }
        let dns = self.written(&["verifyhostkeydns"]).is_some_and(|v| {
            matches!(
                v.value.to_ascii_lowercase().as_str(),
                "yes" | "true" | "ask"
            )
        });
        let kh = &self.known_hosts_files;
        let default_files = matches!(kh.origin, Origin::Default)
            || self
                .expand_path("~/.ssh/known_hosts")
                .is_ok_and(|p| kh.value == [p]);
        let on = !dns && default_files;
        Some(vec![(
            if on { "true" } else { "false" }.to_string(),
            Origin::Default,
        )])
    }

    fn add_keys_to_agent(&self) -> (String, Origin) {
        let Some(v) = self.written(&["addkeystoagent"]) else {
            return ("false".into(), Origin::Default);
        };
        let words: Vec<String> = v.value.split(' ').map(str::to_ascii_lowercase).collect();
        let (mode, life) = match words.as_slice() {
            [t] if convtime(t).is_some() => ("yes".to_string(), convtime(t)),
            [m, t, ..] => (m.clone(), convtime(t)),
            [m] => (m.clone(), None),
            [] => ("no".to_string(), None),
        };
        let printed = match (mode.as_str(), life) {
            ("confirm", Some(t)) if t > 0 => format!("confirm {t}"),
            (_, Some(t)) if t > 0 => t.to_string(),
            ("yes" | "true", _) => "true".into(),
            ("ask", _) => "ask".into(),
            ("confirm", _) => "confirm".into(),
            _ => "false".into(),
        };
        (printed, v.origin.clone())
    }

    fn control_persist(&self) -> (String, Origin) {
        let Some(v) = self.written(&["controlpersist"]) else {
            return ("no".into(), Origin::Default);
        };
        let printed = match v.value.to_ascii_lowercase().as_str() {
            "yes" | "true" => "yes".to_string(),
            "no" | "false" => "no".to_string(),
            t => match convtime(t) {
                Some(0) => "yes".to_string(),
                Some(n) => n.to_string(),
                None => "no".to_string(),
            },
        };
        (printed, v.origin.clone())
    }

    fn ipqos(&self) -> (String, Origin) {
        let Some(v) = self.written(&["ipqos"]) else {
            return ("lowdelay throughput".into(), Origin::Default);
        };
        let w: Vec<String> = v.value.split(' ').map(str::to_ascii_lowercase).collect();
        let printed = match w.as_slice() {
            [one] => format!("{one} {one}"),
            _ => w.join(" "),
        };
        (printed, v.origin.clone())
    }

    /// RekeyLimit: bytes (K, M, G are powers of 1024) and seconds; `default`/`none` is 0.
    fn rekey_limit(&self) -> (String, Origin) {
        let Some(v) = self.written(&["rekeylimit"]) else {
            return ("0 0".into(), Origin::Default);
        };
        let mut w = v.value.split(' ');
        let bytes = w.next().map_or(0, |b| {
            let b = b.to_ascii_lowercase();
            let (num, mult) = match b.chars().last() {
                Some('k') => (&b[..b.len() - 1], 1u64 << 10),
                Some('m') => (&b[..b.len() - 1], 1 << 20),
                Some('g') => (&b[..b.len() - 1], 1 << 30),
                _ => (b.as_str(), 1),
            };
            num.parse::<u64>().map_or(0, |n| n * mult)
        });
        let secs = w.next().and_then(convtime).unwrap_or(0);
        (format!("{bytes} {secs}"), v.origin.clone())
    }

    /// The forwards of one key, as readconf.c `dump_cfg_forwards` lists them: a LocalForward
    /// to a unix socket is also a "dynamicforward" line (its connect host is unset).
    fn forward_lines(&self, key: &str) -> Vec<(String, Origin)> {
        use crate::config::forward::{Endpoint, ForwardKind};
        let end = |e: &Endpoint| match e {
            Endpoint::Unix(p) => p.display().to_string(),
            Endpoint::Tcp { host: None, port } => port.to_string(),
            Endpoint::Tcp {
                host: Some(h),
                port,
            } => format!("[{h}]:{port}"),
        };
        self.forwards
            .iter()
            .filter_map(|f| {
                let v = &f.value;
                let line = match (key, v.kind, &v.connect) {
                    ("dynamicforward", ForwardKind::Dynamic, _)
                    | ("dynamicforward", ForwardKind::Local, Some(Endpoint::Unix(_))) => {
                        end(&v.listen)
                    }
                    ("localforward", ForwardKind::Local, Some(c)) => {
                        format!("{} {}", end(&v.listen), end(c))
                    }
                    ("remoteforward", ForwardKind::Remote, None) => {
                        format!("{} [socks]:0", end(&v.listen))
                    }
                    ("remoteforward", ForwardKind::Remote, Some(c)) => {
                        format!("{} {}", end(&v.listen), end(c))
                    }
                    _ => return None,
                };
                Some((line, f.origin.clone()))
            })
            .collect()
    }
}
