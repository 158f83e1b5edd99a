//! The differential test: every host of every config in tests/corpus/ssh_config is resolved
//! by warren and by OpenSSH (`ssh -G -F FILE HOST`), and every key warren uses must agree.
//! Both run the configs' `Match exec` commands (true, false, negated, with tokens, skipped
//! after a criterion that fails); ProxyCommand is compared as written, as ssh -G prints it.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use warren::config::context::{Context, passwd_entry};
use warren::config::destination::Destination;
use warren::config::forward::{Endpoint, Forward, ForwardKind};
use warren::config::ssh_config::{FileKind, HostConfig, SshConfig};

/// Keys compared, as `ssh -G` names them.
const KEYS: &[&str] = &[
    "hostname",
    "port",
    "user",
    "proxyjump",
    "proxycommand",
    "proxyusefdpass",
    "identityfile",
    "identitiesonly",
    "identityagent",
    "certificatefile",
    "userknownhostsfile",
    "stricthostkeychecking",
    "serveraliveinterval",
    "serveralivecountmax",
    "connecttimeout",
    "localforward",
    "remoteforward",
    "dynamicforward",
    "exitonforwardfailure",
    "ciphers",
    "kexalgorithms",
    "hostkeyalgorithms",
    "macs",
    "pubkeyacceptedalgorithms",
    "globalknownhostsfile",
    "hostkeyalias",
    "revokedhostkeys",
    "checkhostip",
    "hashknownhosts",
    "knownhostscommand",
    "preferredauthentications",
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "numberofpasswordprompts",
    "batchmode",
    "sendenv",
    "localcommand",
    "remotecommand",
    "canonicalizehostname",
    "canonicaldomains",
    "canonicalizemaxdots",
    "canonicalizefallbacklocal",
    "canonicalizepermittedcnames",
];

/// Variables both sides see (for `${VAR}` in forwards and IdentityAgent).
const ENV: &[(&str, &str)] = &[
    ("WARREN_TEST_PORT", "15437"),
    ("WARREN_TEST_AGENT", "/tmp/agent-from-env.sock"),
];

fn ssh_g(home: &Path, config: &Path, host: &str) -> BTreeMap<String, Vec<String>> {
    let out = Command::new("ssh")
        .arg("-G")
        .arg("-F")
        .arg(config)
        .arg(host)
        .env("HOME", home)
        .envs(ENV.iter().copied())
        .output()
        .expect("run ssh -G");
    assert!(
        out.status.success(),
        "ssh -G -F {} {host} failed: {}",
        config.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        map.entry(k.to_ascii_lowercase())
            .or_default()
            .push(v.to_string());
    }
    map
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// A forward end as ssh's `dump_cfg_forwards` prints it.
fn end(e: &Endpoint) -> String {
    match e {
        Endpoint::Unix(p) => p.display().to_string(),
        Endpoint::Tcp { host: None, port } => port.to_string(),
        Endpoint::Tcp {
            host: Some(h),
            port,
        } => format!("[{h}]:{port}"),
    }
}

fn forward_line(f: &Forward) -> String {
    match (&f.kind, &f.connect) {
        (ForwardKind::Dynamic, _) => end(&f.listen),
        (ForwardKind::Remote, None) => format!("{} [socks]:0", end(&f.listen)),
        (_, Some(c)) => format!("{} {}", end(&f.listen), end(c)),
        (_, None) => end(&f.listen),
    }
}

/// warren's answer, in ssh -G's words. ProxyJump is compared as a parsed list.
fn warren_view(h: &HostConfig) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let put = |m: &mut BTreeMap<String, Vec<String>>, k: &str, v: String| {
        m.entry(k.to_string()).or_default().push(v)
    };
    put(&mut m, "hostname", h.hostname.value.clone());
    put(&mut m, "port", h.port.value.to_string());
    put(&mut m, "user", h.user.value.clone());
    if let Some(j) = &h.proxy_jump {
        put(
            &mut m,
            "proxyjump",
            j.value
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    if let Some(p) = &h.proxy_command {
        // As written: ssh -G prints it unexpanded.
        put(&mut m, "proxycommand", p.value.clone());
    }
    put(&mut m, "proxyusefdpass", yes_no(h.proxy_use_fdpass.value));
    for f in &h.identity_files {
        put(&mut m, "identityfile", f.value.clone());
    }
    put(&mut m, "identitiesonly", yes_no(h.identities_only.value));
    if let Some(a) = &h.identity_agent {
        put(&mut m, "identityagent", a.value.clone());
    }
    for f in &h.certificate_files {
        put(&mut m, "certificatefile", f.value.clone());
    }
    put(
        &mut m,
        "userknownhostsfile",
        h.known_hosts_files.value.join(" "),
    );
    put(
        &mut m,
        "stricthostkeychecking",
        h.strict_host_key_checking.value.as_ssh_g().to_string(),
    );
    put(
        &mut m,
        "serveraliveinterval",
        h.server_alive_interval.value.to_string(),
    );
    put(
        &mut m,
        "serveralivecountmax",
        h.server_alive_count_max.value.to_string(),
    );
    put(
        &mut m,
        "connecttimeout",
        h.connect_timeout
            .value
            .map(|t| t.to_string())
            .unwrap_or_else(|| "none".into()),
    );
    for f in &h.forwards {
        let key = match f.value.kind {
            ForwardKind::Local => "localforward",
            ForwardKind::Remote => "remoteforward",
            ForwardKind::Dynamic => "dynamicforward",
        };
        put(&mut m, key, forward_line(&f.value));
    }
    // ssh -G's dump (readconf.c dump_cfg_forwards) walks one list of local and dynamic
    // forwards and prints as "dynamicforward" every entry whose connect host is unset, which
    // includes a LocalForward to a unix socket. Mirror that print quirk; the forward itself
    // is a LocalForward on both sides (compared above).
    m.remove("dynamicforward");
    for f in &h.forwards {
        let as_dynamic = matches!(
            (&f.value.kind, &f.value.connect),
            (ForwardKind::Dynamic, _) | (ForwardKind::Local, Some(Endpoint::Unix(_)))
        );
        if as_dynamic {
            m.entry("dynamicforward".to_string())
                .or_default()
                .push(end(&f.value.listen));
        }
    }
    put(
        &mut m,
        "exitonforwardfailure",
        yes_no(h.exit_on_forward_failure.value),
    );
    for (kind, list) in &h.algorithms {
        put(
            &mut m,
            &kind.keyword().to_ascii_lowercase(),
            list.value.join(","),
        );
    }
    put(
        &mut m,
        "globalknownhostsfile",
        h.global_known_hosts_files.value.join(" "),
    );
    if let Some(a) = &h.host_key_alias {
        put(&mut m, "hostkeyalias", a.value.clone());
    }
    if let Some(r) = &h.revoked_host_keys {
        put(&mut m, "revokedhostkeys", r.value.clone());
    }
    put(&mut m, "checkhostip", yes_no(h.check_host_ip.value));
    put(&mut m, "hashknownhosts", yes_no(h.hash_known_hosts.value));
    if let Some(c) = &h.known_hosts_command {
        put(&mut m, "knownhostscommand", c.value.clone());
    }
    if let Some(p) = &h.preferred_authentications {
        put(&mut m, "preferredauthentications", p.value.join(","));
    }
    put(
        &mut m,
        "passwordauthentication",
        yes_no(h.password_authentication.value),
    );
    put(
        &mut m,
        "kbdinteractiveauthentication",
        yes_no(h.kbd_interactive_authentication.value),
    );
    put(
        &mut m,
        "numberofpasswordprompts",
        h.number_of_password_prompts.value.to_string(),
    );
    put(&mut m, "batchmode", yes_no(h.batch_mode.value));
    // Kept with the keywords warren does not use, as written; ssh -G leaves out `none`.
    for (k, v) in &h.other {
        if (k == "localcommand" || k == "remotecommand") && !v.value.eq_ignore_ascii_case("none") {
            put(&mut m, k, v.value.clone());
        }
    }
    put(
        &mut m,
        "canonicalizehostname",
        h.canonicalize_hostname.value.as_ssh_g().to_string(),
    );
    let domains = &h.canonical_domains.value;
    put(
        &mut m,
        "canonicaldomains",
        if domains.is_empty() {
            "none".to_string()
        } else {
            domains.join(" ")
        },
    );
    put(
        &mut m,
        "canonicalizemaxdots",
        h.canonicalize_max_dots.value.to_string(),
    );
    put(
        &mut m,
        "canonicalizefallbacklocal",
        yes_no(h.canonicalize_fallback_local.value),
    );
    let cnames = &h.canonicalize_permitted_cnames.value;
    put(
        &mut m,
        "canonicalizepermittedcnames",
        if cnames.is_empty() {
            "none".to_string()
        } else {
            cnames
                .iter()
                .map(|(s, t)| format!("{s}:{t}"))
                .collect::<Vec<_>>()
                .join(" ")
        },
    );
    for e in &h.send_env {
        put(&mut m, "sendenv", e.value.clone());
    }
    m
}

/// ssh prints ProxyJump as `[earlier,...,]user@host:port`; compare it parsed.
fn normalize_jump(v: &str) -> String {
    v.split(',')
        .map(|p| {
            Destination::parse(p)
                .map(|d| d.to_string())
                .unwrap_or_else(|e| format!("<{e}>"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// ssh's complaints about keywords it does not know, as `(file, line, keyword)`, and its
/// "terminating, N bad configuration options" counts by file.
type Refusal = (Vec<(String, usize, String)>, BTreeMap<String, usize>);

fn ssh_refusal(stderr: &str) -> Refusal {
    let mut bad = Vec::new();
    let mut counts = BTreeMap::new();
    for l in stderr.lines() {
        if let Some((head, keyword)) = l.split_once(": Bad configuration option: ")
            && let Some((file, line)) = head.rsplit_once(": line ")
        {
            bad.push((
                file.to_string(),
                line.parse().unwrap_or(0),
                keyword.to_string(),
            ));
        } else if let Some((file, rest)) = l.split_once(": terminating, ")
            && let Some(n) = rest.strip_suffix(" bad configuration options")
        {
            counts.insert(file.to_string(), n.parse().unwrap_or(0));
        }
    }
    (bad, counts)
}

/// Every `bad-*.conf` of a case is a config ssh refuses: warren must name the same lines
/// and keywords, with ssh's words and count, and hold the file as refused. Returns how many
/// complaints were compared.
fn refused_alike(
    home: &Path,
    ssh_dir: &Path,
    ctx: &Arc<Context>,
    failures: &mut Vec<String>,
) -> usize {
    let mut bad_files: Vec<_> = std::fs::read_dir(ssh_dir)
        .expect("case dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("bad-") && n.ends_with(".conf"))
        })
        .collect();
    bad_files.sort();
    let mut compared = 0;
    for path in bad_files {
        let out = Command::new("ssh")
            .arg("-G")
            .arg("-F")
            .arg(&path)
            .arg("a")
            .env("HOME", home)
            .output()
            .expect("run ssh -G");
        let (want, counts) = ssh_refusal(&String::from_utf8_lossy(&out.stderr));
        assert!(
            !out.status.success() && !want.is_empty(),
            "{}: ssh accepts it; a bad-*.conf must be one ssh refuses for a keyword",
            path.display()
        );
        let text = std::fs::read_to_string(&path).expect("bad conf");
        let config = SshConfig::from_texts(Arc::clone(ctx), &[(&path, &text, FileKind::User)]);
        let mut got = Vec::new();
        for p in &config.problems {
            let Some(keyword) = p
                .message
                .strip_prefix("Bad configuration option: ")
                .and_then(|m| m.split(';').next())
            else {
                continue;
            };
            let Some((file, line)) = p.origin.file_line() else {
                continue;
            };
            let file = file.display().to_string();
            let n = counts.get(&file).copied().unwrap_or(0);
            let terminating = format!("{file}: terminating, {n} bad configuration options");
            if !p.fix.as_deref().unwrap_or_default().contains(&terminating) {
                failures.push(format!(
                    "{}: warren's fix lacks {terminating:?}: {p}",
                    path.display()
                ));
            }
            got.push((file, line, keyword.to_string()));
        }
        compared += want.len();
        if want != got {
            failures.push(format!(
                "{}: bad configuration options\n    ssh -G: {want:?}\n    warren: {got:?}",
                path.display()
            ));
        }
        if config.bad_option_files != [path.clone()] {
            failures.push(format!(
                "{}: warren does not hold the file as refused: {:?}",
                path.display(),
                config.bad_option_files
            ));
        }
    }
    compared
}

#[test]
fn warren_resolves_every_corpus_host_as_ssh_g_does() {
    if !support::require("ssh") {
        return;
    }
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/ssh_config");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .expect("corpus")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 12,
        "the corpus must hold at least 12 configs, found {}",
        cases.len()
    );

    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let (pw_name, pw_dir) = passwd_entry(uid).expect("passwd entry");
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in &cases {
        let home = tempfile::tempdir().expect("temp home");
        let ssh_dir = home.path().join(".ssh");
        let replace = [
            ("@HOME@", home.path().display().to_string()),
            ("@LOCALUSER@", pw_name.clone()),
        ];
        support::copy_tree(case, &ssh_dir, &replace);
        let config_path = ssh_dir.join("config");
        let text = std::fs::read_to_string(&config_path).expect("config");
        let ctx = Arc::new(Context {
            home: home.path().to_path_buf(),
            // ssh expands `~` and %d with the passwd home, not $HOME.
            user_home: pw_dir.clone().into(),
            local_user: pw_name.clone(),
            uid,
            local_host: Context::from_process().local_host,
            env: ENV
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        });
        let config =
            SshConfig::from_texts(Arc::clone(&ctx), &[(&config_path, &text, FileKind::User)]);
        assert!(
            config.problems.is_empty(),
            "{}: warren found problems in a config ssh accepts: {:#?}",
            case.display(),
            config.problems
        );
        let mut hosts: Vec<String> = config.aliases.iter().map(|a| a.name.clone()).collect();
        if let Ok(extra) = std::fs::read_to_string(case.join("hosts")) {
            hosts.extend(
                extra
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string),
            );
        }
        assert!(!hosts.is_empty(), "{}: no hosts to compare", case.display());
        let mut execs = 0;
        for host in &hosts {
            let theirs = ssh_g(home.path(), &config_path, host);
            let resolved = config.resolve(host);
            execs += resolved.match_exec.len();
            let ours = warren_view(&resolved);
            // `warren show`'s list: every line ssh -G prints, key by key.
            let mut shown: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for l in resolved.ssh_g() {
                shown.entry(l.key.to_string()).or_default().push(l.value);
            }
            let keys: std::collections::BTreeSet<&String> =
                theirs.keys().chain(shown.keys()).collect();
            for key in keys {
                let mut want = theirs.get(key).cloned().unwrap_or_default();
                let mut got = shown.get(key).cloned().unwrap_or_default();
                if key == "proxyjump" {
                    want = want.iter().map(|v| normalize_jump(v)).collect();
                    got = got.iter().map(|v| normalize_jump(v)).collect();
                }
                compared += 1;
                if want != got {
                    failures.push(format!(
                        "{} host {host}: ssh_g() {key}\n    ssh -G: {want:?}\n    warren: {got:?}",
                        case.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    ));
                }
            }
            for key in KEYS {
                let mut want = theirs.get(*key).cloned().unwrap_or_default();
                let mut got = ours.get(*key).cloned().unwrap_or_default();
                if *key == "proxyjump" {
                    want = want.iter().map(|v| normalize_jump(v)).collect();
                    got = got.iter().map(|v| normalize_jump(v)).collect();
                }
                compared += 1;
                if want != got {
                    failures.push(format!(
                        "{} host {host}: {key}\n    ssh -G: {want:?}\n    warren: {got:?}",
                        case.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    ));
                }
            }
        }
        compared += refused_alike(home.path(), &ssh_dir, &ctx, &mut failures);
        if text.contains("Match") && text.contains("exec") {
            assert!(execs > 0, "{}: warren ran no Match exec", case.display());
        }
        // Neither ssh nor warren runs an exec after a criterion on its line that failed.
        assert!(
            !home.path().join("should-not-run").exists(),
            "{}: a Match exec ran after a criterion that failed",
            case.display()
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} values differ from ssh -G:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "{compared} values agree with ssh -G across {} configs",
        cases.len()
    );
}
