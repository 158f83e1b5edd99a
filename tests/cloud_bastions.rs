//! Cloud bastions (`host = "ssm:..."`, `host = "iap:..."`) against a real sshd, with fake
//! `aws` and `gcloud` scripts first on warren's PATH: for the working case they record their
//! arguments and become the relay to the sshd (`support::net::nc_script`, as a real
//! `session-manager-plugin` or IAP tunnel carries the bytes), for the failures they print the
//! real tools' error texts and exit as the tools do. The tunnel carries data through an
//! `ssm:` bastion and an `iap:` jump host; `show` prints the command with its `host` line; a
//! bad value is an error with its line; `--no-exec` and an untrusted file do not run it;
//! `setup --bastion ssm:...` writes it; and doctor's `proxy` step names the cause and the fix
//! of a missing plugin or CLI, expired credentials (after running the credentials check
//! itself), SSM's TargetNotConnected and IAP's 4003 and 4033.

mod support;

use std::path::PathBuf;

use serde_json::Value;
use support::Scratch;
use support::net::{Up, echo_server, echo_through, nc_script};
use support::sshd::Sshd;
use support::tunnel::{have_servers, local_user, with_key};

/// The SSM bastion of the tests, as written in `host`.
const SSM: &str = "ssm:i-0abc123@prod/eu-west-1";
/// The IAP jump host of the tests.
const IAP: &str = "iap:edge-vm@shop-prod/europe-west1-b";

/// Writes the executable script `bin/NAME` (a `/bin/sh` script with `body`).
fn tool(s: &Scratch, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = s.write(&format!("bin/{name}"), &format!("#!/bin/sh\n{body}"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// warren's PATH: the fake tools first, then the system's (the relay needs bash and cat).
fn path(s: &Scratch) -> String {
    format!("{}/bin:/usr/bin:/bin", s.path().display())
}

/// A fake cloud CLI: each call appends its arguments to `NAME.args`; `cases` are `case`
/// arms on "$1 $2" (`"ssm start-session") ... ;;`); anything else is an error.
fn cli(s: &Scratch, name: &str, cases: &str) -> PathBuf {
    let log = s.path().join(format!("{name}.args"));
    tool(
        s,
        name,
        &format!(
            "echo \"$*\" >> '{}'\ncase \"$1 $2\" in\n{cases}\nesac\necho \"fake {name}: unexpected $*\" >&2\nexit 2\n",
            log.display()
        ),
    )
}

/// The calls a fake CLI received, one a line.
fn calls(s: &Scratch, name: &str) -> Vec<String> {
    std::fs::read_to_string(s.path().join(format!("{name}.args")))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `printf` of `text` to stderr, then `exit code`: a tool failing as the real one does.
fn fails(text: &str, code: i32) -> String {
    format!(
        "printf '%s\\n' '{}' >&2; exit {code}",
        text.replace('\'', "'\\''")
    )
}

/// A known_hosts line for `name` with the sshd's host key.
fn known_as(sshd: &Sshd, name: &str) -> String {
    let mut parts = sshd.host_key_line.split_whitespace();
    let kind = parts.next().unwrap_or_default();
    let key = parts.next().unwrap_or_default();
    format!("{name} {kind} {key}\n")
}

/// `[storage.postgres.NAME]` to 127.0.0.1:`db` through `tunnel` (the ssh_tunnel table's lines).
fn entry(name: &str, db: u16, tunnel: &str) -> String {
    format!(
        "[storage.postgres.{name}]\nhost = \"127.0.0.1\"\nport = {db}\n\n[storage.postgres.{name}.ssh_tunnel]\n{tunnel}"
    )
}

fn warren(s: &Scratch, args: &[&str]) -> support::Run {
    let mut all = vec!["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];
    all.extend_from_slice(args);
    s.warren_env(&all, &[("PATH", &path(s))])
}

/// `warren doctor NAME --json`: the run and its `proxy` step.
fn doctor_proxy(s: &Scratch, name: &str) -> (support::Run, Value) {
    let r = warren(s, &["doctor", name, "--json"]);
    let v = r.json();
    let step = v["steps"]
        .as_array()
        .and_then(|a| a.iter().find(|st| st["id"] == "proxy"))
        .cloned()
        .unwrap_or_else(|| panic!("no proxy step:\n{}", r.describe()));
    (r, step)
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

#[test]
fn an_ssm_bastion_and_an_iap_jump_host_carry_data() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let relay = nc_script(s.path());
    // known_hosts: the sshd as the two instances (by their ids, as ssh's `Host i-0abc123`
    // would record them) and as itself (the bastion behind the IAP jump host).
    s.write(
        "known_hosts",
        &format!(
            "{}\n{}{}",
            sshd.known_hosts_line(),
            known_as(&sshd, "i-0abc123"),
            known_as(&sshd, "edge-vm")
        ),
    );
    let to_sshd = format!("exec {} 127.0.0.1 {}", relay.display(), sshd.port);
    cli(
        &s,
        "aws",
        &format!("\"ssm start-session\") {to_sshd} ;;\n\"sts get-caller-identity\") exit 0 ;;"),
    );
    cli(
        &s,
        "gcloud",
        &format!("\"compute start-iap-tunnel\") {to_sshd} ;;"),
    );
    let (echo, user) = (echo_server(), local_user());
    s.write(
        "epoch.toml",
        &format!(
            "{}\n{}",
            entry(
                "orders",
                echo,
                &format!(
                    "host = \"{SSM}\"\nuser = \"{user}\"\nkey_file = \"{key}\"\nstrict_host_key_checking = true\n"
                )
            ),
            entry(
                "billing",
                echo,
                &format!(
                    "host = \"127.0.0.1\"\nport = {}\nuser = \"{user}\"\nkey_file = \"{key}\"\nstrict_host_key_checking = true\njump_host = {{ host = \"{IAP}\", user = \"{user}\", key_file = \"{key}\" }}\n",
                    sshd.port
                )
            )
        ),
    );

    // show: the command it stands for, its source the host line.
    let r = warren(&s, &["show", "orders"]);
    r.expect_code(0)
        .expect_stdout("aws ssm start-session --target i-0abc123 --document-name AWS-StartSSHSession --parameters portNumber=%p --profile prod --region eu-west-1")
        .expect_stdout(&format!("epoch.toml:6 (host = \"{SSM}\")"));
    let v = warren(&s, &["show", "orders", "--json"]).json();
    assert_eq!(v["hops"][0]["host"]["value"], "i-0abc123", "{v:#}");
    assert_eq!(v["hops"][0]["preset"]["value"], SSM);
    assert!(
        text(&v["hops"][0]["proxy_command"], "source").ends_with("epoch.toml:6"),
        "{v:#}"
    );

    let path = path(&s);
    let mut up = Up::start_env(
        s.path(),
        &[
            "--ssh-config",
            "/dev/null",
            "--known-hosts",
            "known_hosts",
            "up",
            "orders",
            "billing",
            "--json",
        ],
        &[("PATH", path.as_str())],
    );
    for name in ["orders", "billing"] {
        let local = up.listening(name);
        let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(
            echo_through(&local, &data),
            data,
            "{name}: the echo came back through the tunnel"
        );
    }
    assert_eq!(up.interrupt(), 0);
    assert_eq!(
        calls(&s, "aws"),
        [
            "ssm start-session --target i-0abc123 --document-name AWS-StartSSHSession --parameters portNumber=22 --profile prod --region eu-west-1"
        ],
        "the documented command, %p expanded; no credentials check while all is well"
    );
    assert_eq!(
        calls(&s, "gcloud"),
        [
            "compute start-iap-tunnel edge-vm 22 --listen-on-stdin --project shop-prod --zone europe-west1-b"
        ]
    );

    // doctor walks through it, the banner read through the command (its probe of the echo
    // server as PostgreSQL is not this test's business).
    let (r, proxy) = doctor_proxy(&s, "orders");
    assert_eq!(proxy["status"], "pass", "{}", r.describe());
    let v = r.json();
    let auth = v["steps"]
        .as_array()
        .and_then(|a| a.iter().find(|st| st["id"] == "auth"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(auth["status"], "pass", "{}", r.describe());
    assert!(
        text(&proxy, "detail").contains("exec aws ssm start-session --target i-0abc123"),
        "{proxy}"
    );
}

/// `doctor --deep`: with a session that opens, the CLI is asked whose credentials these are
/// (and a check that fails is a warning: the next session may not open); without it, a
/// walk that passes runs no extra command.
#[test]
fn doctor_deep_asks_the_cli_whose_credentials_a_working_session_uses() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let relay = nc_script(s.path());
    s.write("known_hosts", &known_as(&sshd, "i-0abc123"));
    let to_sshd = format!("exec {} 127.0.0.1 {}", relay.display(), sshd.port);
    let arn = "arn:aws:sts::123456789012:assumed-role/DBA/alice";
    cli(
        &s,
        "aws",
        &format!(
            "\"ssm start-session\") {to_sshd} ;;\n\"sts get-caller-identity\") echo '{{\"UserId\": \"AROA:alice\", \"Account\": \"123456789012\", \"Arn\": \"{arn}\"}}'; exit 0 ;;"
        ),
    );
    let user = local_user();
    s.write(
        "epoch.toml",
        &entry(
            "orders",
            echo_server(),
            &format!(
                "host = \"{SSM}\"\nuser = \"{user}\"\nkey_file = \"{key}\"\nstrict_host_key_checking = true\n"
            ),
        ),
    );
    let deep = |s: &Scratch| {
        let r = warren(s, &["doctor", "orders", "--deep", "--json"]);
        let step = r.json()["steps"]
            .as_array()
            .and_then(|a| a.iter().find(|st| st["id"] == "proxy"))
            .cloned()
            .unwrap_or_else(|| panic!("no proxy step:\n{}", r.describe()));
        (r, step)
    };
    let (_, plain) = doctor_proxy(&s, "orders");
    assert_eq!(plain["status"], "pass", "{plain}");
    assert!(
        !calls(&s, "aws").iter().any(|c| c.starts_with("sts ")),
        "no credentials check without --deep: {:?}",
        calls(&s, "aws")
    );
    let (r, proxy) = deep(&s);
    assert_eq!(proxy["status"], "pass", "{}", r.describe());
    assert!(
        text(&proxy, "detail").contains(&format!(
            "`aws sts get-caller-identity --profile prod --region eu-west-1` succeeded: the credentials are {arn}"
        )),
        "{proxy}"
    );
    assert_eq!(
        calls(&s, "aws").last().map(String::as_str),
        Some("sts get-caller-identity --profile prod --region eu-west-1")
    );

    // The session still opens, but the CLI's own check fails: a warning, with the fix.
    cli(
        &s,
        "aws",
        &format!(
            "\"ssm start-session\") {to_sshd} ;;\n\"sts get-caller-identity\") {} ;;",
            fails(
                "An error occurred (ExpiredToken) when calling the GetCallerIdentity operation: The security token included in the request is expired",
                254
            )
        ),
    );
    let (r, proxy) = deep(&s);
    assert_eq!(proxy["status"], "warn", "{}", r.describe());
    let (detail, hint) = (text(&proxy, "detail"), text(&proxy, "hint"));
    assert!(
        detail.contains("the server answers through it")
            && detail.contains("exited with status 254; it said: An error occurred (ExpiredToken)"),
        "{detail}"
    );
    assert!(
        hint.contains("the next one may not") && hint.contains("aws sso login --profile prod"),
        "{hint}"
    );
}

/// A home with the `orders` entry through `host` (and no sshd behind it).
fn failing(host: &str) -> Scratch {
    let s = Scratch::new();
    s.write("known_hosts", "");
    s.write(
        "epoch.toml",
        &entry(
            "orders",
            9,
            &format!("host = \"{host}\"\nuser = \"{}\"\n", local_user()),
        ),
    );
    s
}

#[test]
fn doctor_says_the_session_manager_plugin_is_missing() {
    let s = failing(SSM);
    cli(
        &s,
        "aws",
        &format!(
            "\"ssm start-session\") {} ;;",
            fails(
                "SessionManagerPlugin is not found. Please refer to SessionManager Documentation here: http://docs.aws.amazon.com/console/systems-manager/session-manager-plugin-not-found",
                255
            )
        ),
    );
    let (r, proxy) = doctor_proxy(&s, "orders");
    r.expect_code(1);
    assert_eq!(proxy["status"], "fail", "{}", r.describe());
    let (detail, hint) = (text(&proxy, "detail"), text(&proxy, "hint"));
    assert!(detail.contains("exited with status 255"), "{detail}");
    assert!(
        detail.contains("session-manager-plugin is not on warren's PATH"),
        "{detail}"
    );
    assert!(
        hint.contains("Session Manager plugin is missing")
            && hint.contains("package session-manager-plugin"),
        "{hint}"
    );
}

#[test]
fn doctor_says_which_cli_is_not_installed() {
    let s = failing(SSM);
    // No aws at all on the PATH: only the (empty) directory of fake tools.
    let bin = format!("{}/bin", s.path().display());
    std::fs::create_dir_all(&bin).expect("bin");
    let doctor = |s: &Scratch| {
        let r = s.warren_env(
            &[
                "--ssh-config",
                "/dev/null",
                "--known-hosts",
                "known_hosts",
                "doctor",
                "orders",
                "--json",
            ],
            &[("PATH", bin.as_str())],
        );
        let v = r.json();
        let proxy = v["steps"]
            .as_array()
            .and_then(|a| a.iter().find(|st| st["id"] == "proxy"))
            .cloned()
            .unwrap_or_else(|| panic!("no proxy step:\n{}", r.describe()));
        (r, proxy)
    };
    let (r, proxy) = doctor(&s);
    r.expect_code(1);
    let (detail, hint) = (text(&proxy, "detail"), text(&proxy, "hint"));
    assert!(detail.contains("status 127"), "{detail}");
    assert!(detail.contains("`aws` is not on warren's PATH"), "{detail}");
    assert!(hint.contains("install the AWS CLI v2"), "{hint}");

    s.write(
        "epoch.toml",
        &entry("orders", 9, &format!("host = \"{IAP}\"\n")),
    );
    let (_, proxy) = doctor(&s);
    assert!(
        text(&proxy, "hint").contains("install the Google Cloud CLI"),
        "{proxy}"
    );
}

#[test]
fn doctor_finds_expired_credentials_by_asking_the_cli() {
    let s = failing(SSM);
    cli(
        &s,
        "aws",
        &format!(
            "\"ssm start-session\") {} ;;\n\"sts get-caller-identity\") {} ;;",
            fails(
                "An error occurred (ExpiredTokenException) when calling the StartSession operation: The security token included in the request is expired",
                255
            ),
            fails(
                "An error occurred (ExpiredToken) when calling the GetCallerIdentity operation: The security token included in the request is expired",
                254
            )
        ),
    );
    let (r, proxy) = doctor_proxy(&s, "orders");
    r.expect_code(1);
    let (detail, hint) = (text(&proxy, "detail"), text(&proxy, "hint"));
    assert!(
        detail.contains("`aws sts get-caller-identity --profile prod --region eu-west-1` exited with status 254; it said: An error occurred (ExpiredToken)"),
        "{detail}"
    );
    assert!(
        hint.contains("credentials are expired") && hint.contains("aws sso login --profile prod"),
        "{hint}"
    );
    assert_eq!(
        calls(&s, "aws")[1],
        "sts get-caller-identity --profile prod --region eu-west-1",
        "the check ran with the command's profile and region"
    );

    // With credentials that work, another failure is not blamed on them.
    cli(
        &s,
        "aws",
        &format!(
            "\"ssm start-session\") {} ;;\n\"sts get-caller-identity\") echo '{{\"Account\": \"123456789012\"}}'; exit 0 ;;",
            fails("Connection to the SSM endpoint was reset", 255)
        ),
    );
    let (_, proxy) = doctor_proxy(&s, "orders");
    let (detail, hint) = (text(&proxy, "detail"), text(&proxy, "hint"));
    assert!(
        detail.contains("succeeded: the credentials work"),
        "{detail}"
    );
    assert!(
        hint.contains("the credentials work") && !hint.contains("expired"),
        "{hint}"
    );

    // gcloud: the same, with its own words.
    let s = failing(IAP);
    let reauth = "ERROR: (gcloud.auth.print-access-token) There was a problem refreshing your current auth tokens: Reauthentication failed. cannot prompt during non-interactive execution.";
    cli(
        &s,
        "gcloud",
        &format!(
            "\"compute start-iap-tunnel\") {} ;;\n\"auth print-access-token\") {} ;;",
            fails(
                &reauth.replace("auth.print-access-token", "compute.start-iap-tunnel"),
                1
            ),
            fails(reauth, 1)
        ),
    );
    let (_, proxy) = doctor_proxy(&s, "orders");
    let (detail, hint) = (text(&proxy, "detail"), text(&proxy, "hint"));
    assert!(
        detail.contains("`gcloud auth print-access-token` exited with status 1"),
        "{detail}"
    );
    assert!(hint.contains("gcloud auth login"), "{hint}");
}

#[test]
fn doctor_explains_target_not_connected() {
    let s = failing(SSM);
    cli(
        &s,
        "aws",
        &format!(
            "\"ssm start-session\") {} ;;",
            fails(
                "An error occurred (TargetNotConnected) when calling the StartSession operation: i-0abc123 is not connected.",
                254
            )
        ),
    );
    let (r, proxy) = doctor_proxy(&s, "orders");
    r.expect_code(1);
    let (detail, hint) = (text(&proxy, "detail"), text(&proxy, "hint"));
    assert!(detail.contains("i-0abc123 is not connected"), "{detail}");
    assert!(
        hint.contains("TargetNotConnected")
            && hint.contains("SSM agent is not running")
            && hint.contains("AmazonSSMManagedInstanceCore")
            && hint.contains("(here eu-west-1)"),
        "{hint}"
    );
    assert_eq!(
        calls(&s, "aws").len(),
        1,
        "the API answered: no credentials check"
    );
}

#[test]
fn doctor_tells_iap_4003_from_4033() {
    let s = failing(IAP);
    for (code, said, has, not) in [
        (
            4003,
            "failed to connect to backend",
            "35.235.240.0/20",
            "Tunnel User",
        ),
        (
            4033,
            "not authorized",
            "IAP-secured Tunnel User role",
            "35.235.240.0/20",
        ),
    ] {
        cli(
            &s,
            "gcloud",
            &format!(
                "\"compute start-iap-tunnel\") {} ;;",
                fails(
                    &format!(
                        "ERROR: (gcloud.compute.start-iap-tunnel) Error while connecting [{code}: '{said}']."
                    ),
                    1
                )
            ),
        );
        let (r, proxy) = doctor_proxy(&s, "orders");
        r.expect_code(1);
        let (detail, hint) = (text(&proxy, "detail"), text(&proxy, "hint"));
        assert!(detail.contains(&format!("[{code}: '{said}']")), "{detail}");
        assert!(hint.contains(has) && !hint.contains(not), "{code}: {hint}");
    }
}

#[test]
fn a_bad_value_is_an_error_with_its_line_and_fix() {
    let s = failing("ssm:i-0abc;reboot");
    let r = warren(&s, &["show", "orders"]);
    r.expect_code(2)
        .expect_stderr("epoch.toml:6")
        .expect_stderr("instance id 'i-0abc;reboot' holds ';'")
        .expect_stderr("fix: write host = \"ssm:i-0abc123\"");
    let s = failing("ssm:");
    warren(&s, &["show", "orders"])
        .expect_code(2)
        .expect_stderr("'ssm:' names no instance");
}

#[test]
fn an_untrusted_file_may_not_run_it() {
    let s = failing(SSM);
    cli(&s, "aws", "*) exit 0 ;;");
    // --no-exec holds it as it holds any ProxyCommand.
    let r = warren(&s, &["--no-exec", "doctor", "orders", "--json"]);
    r.expect_code(1);
    let v = r.json();
    assert_eq!(v["steps"][0]["status"], "fail", "{}", r.describe());
    let detail = text(&v["steps"][0], "detail");
    assert!(
        detail.contains("ProxyCommand at ") && detail.contains("epoch.toml:6 is not run"),
        "{detail}"
    );
    assert!(
        calls(&s, "aws").is_empty(),
        "aws did not run under --no-exec"
    );
    // The test user's trust forgotten: the directory's own epoch.toml is a project's.
    let store = s.path().join(".config/warren/trusted-configs");
    std::fs::remove_file(&store).expect("forget the trust");
    let r = warren(&s, &["doctor", "orders", "--json"]);
    r.expect_code(1);
    let v = r.json();
    let config = &v["steps"][0];
    assert_eq!(config["id"], "config");
    assert_eq!(config["status"], "fail");
    assert!(
        text(config, "detail").contains(&format!(
            "i-0abc123: host = \"{SSM}\" runs a command (`aws ssm start-session`)"
        )),
        "{config}"
    );
    assert!(calls(&s, "aws").is_empty(), "aws did not run");
}

#[test]
fn setup_writes_a_cloud_bastion() {
    let s = Scratch::new();
    s.write("known_hosts", "");
    cli(
        &s,
        "aws",
        &format!(
            "\"ssm start-session\") {} ;;",
            fails(
                "An error occurred (TargetNotConnected) when calling the StartSession operation: i-0abc123 is not connected.",
                254
            )
        ),
    );
    let bastion = format!("ec2-user@{SSM}");
    let r = warren(
        &s,
        &[
            "--config",
            "epoch.toml",
            "setup",
            "--name",
            "orders",
            "--engine",
            "postgres",
            "--target",
            "db.internal:5432",
            "--bastion",
            &bastion,
            "--generate-key",
            "keys/id_orders",
        ],
    );
    r.expect_code(0)
        .expect_stdout("the walk stopped at 'proxy'")
        .expect_stdout("the cloud bastion");
    let written = std::fs::read_to_string(s.path().join("epoch.toml")).expect("epoch.toml");
    assert!(
        written.contains(&format!("host = \"{SSM}\"")) && written.contains("user = \"ec2-user\""),
        "{written}"
    );
    assert_eq!(calls(&s, "aws").len(), 1, "the diagnostics ran it");
    // A jump host in front of it is refused before anything is written.
    let r = warren(
        &s,
        &[
            "--config",
            "other.toml",
            "setup",
            "--name",
            "orders",
            "--engine",
            "postgres",
            "--target",
            "db.internal:5432",
            "--bastion",
            SSM,
            "--jump",
            "jump.example.com",
            "--agent",
        ],
    );
    assert_ne!(r.code(), 0, "{}", r.describe());
    assert!(r.stderr().contains("jump"), "{}", r.describe());
    assert!(!s.path().join("other.toml").exists(), "nothing written");
}
