//! `warren list` and `warren show` as a user runs them: output, JSON, exit codes, and what
//! happens with bad input (the message names file:line and the fix; good entries still load).

mod support;

use support::Scratch;

const SSH: &str = "Host bastion\n    HostName bastion.example.com\n    User ops\n\nHost pg\n    HostName pg.internal\n    ProxyJump bastion\n    LocalForward 15432 localhost:5432\n\nHost shared\n    HostName shared.example\n";

const EPOCH: &str = r#"# team databases
[storage.postgres.orders]
host = "orders.db.internal"
database = "orders"
username = "reporter"
password = "s3cret-db-password"
local_port = 25432

[storage.postgres.orders.ssh_tunnel]
host = "bastion.example.com"
user = "ops"
key_passphrase = "very-secret-passphrase"

[storage.mysql.shared]
host = "mysql.internal"

[storage.mysql.shared.ssh_tunnel]
host = "bastion.example.com"
"#;

fn scratch() -> Scratch {
    let s = Scratch::new();
    s.write("ssh_config", SSH);
    s.write("epoch.toml", EPOCH);
    s
}

#[test]
fn list_shows_both_sources_in_a_table() {
    let s = scratch();
    let r = s.warren(&["--ssh-config", "ssh_config", "list"]);
    r.expect_code(0)
        .expect_stdout("NAME")
        .expect_stdout("localhost:15432 -> localhost:5432")
        .expect_stdout("127.0.0.1:25432 -> orders.db.internal:5432")
        .expect_stdout("ssh:shared")
        .expect_stdout("epoch:shared");
    let pg = r
        .stdout()
        .lines()
        .find(|l| l.starts_with("pg "))
        .map(str::to_string)
        .expect("a pg row");
    assert!(pg.contains("tunnel") && pg.contains("bastion"), "{pg}");
    assert!(r.stderr().is_empty(), "{}", r.describe());
}

#[test]
fn list_json_has_names_sources_forwards_and_hops() {
    let s = scratch();
    let r = s.warren(&["--ssh-config", "ssh_config", "list", "--json"]);
    r.expect_code(0);
    let v = r.json();
    let list = v.as_array().expect("an array");
    let names: Vec<&str> = list.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        names,
        ["bastion", "pg", "ssh:shared", "orders", "epoch:shared"]
    );
    let pg = &list[1];
    assert_eq!(pg["kind"], "tunnel");
    assert_eq!(pg["source"]["line"], 5);
    assert!(
        pg["source"]["file"]
            .as_str()
            .unwrap_or("")
            .ends_with("ssh_config")
    );
    assert_eq!(pg["forwards"][0]["kind"], "local");
    assert_eq!(pg["forwards"][0]["local"], "localhost:15432");
    assert_eq!(pg["forwards"][0]["target"], "localhost:5432");
    let hops: Vec<&str> = pg["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .filter_map(|h| h["host"].as_str())
        .collect();
    assert_eq!(hops, ["bastion.example.com", "pg.internal"]);
    assert_eq!(pg["hops"][0]["user"], "ops");
    let orders = &list[3];
    assert_eq!(orders["engine"], "postgres");
    assert_eq!(orders["target"], "orders.db.internal:5432");
    assert_eq!(orders["source"]["line"], 2);
    assert_eq!(orders["source"]["kind"], "epoch");
    assert!(pg.get("engine").is_none());
}

#[test]
fn show_json_gives_every_setting_with_its_source_and_hides_secrets() {
    let s = scratch();
    let r = s.warren(&["--ssh-config", "ssh_config", "show", "orders", "--json"]);
    r.expect_code(0);
    let out = r.stdout();
    assert!(
        !out.contains("very-secret-passphrase") && !out.contains("s3cret-db-password"),
        "a secret leaked:\n{out}"
    );
    let v = r.json();
    assert_eq!(v["name"], "orders");
    assert_eq!(v["database"]["password"]["value"], "***");
    assert_eq!(v["hops"][0]["key_passphrase"]["value"], "***");
    assert_eq!(v["hops"][0]["user"]["value"], "ops");
    assert!(
        v["hops"][0]["user"]["source"]
            .as_str()
            .unwrap_or("")
            .ends_with("epoch.toml:11"),
        "{}",
        v["hops"][0]["user"]
    );
    assert_eq!(v["hops"][0]["port"]["source"], "default");
    assert_eq!(v["database"]["port"]["value"], 5432);
    assert_eq!(v["database"]["port"]["source"], "default");
    assert_eq!(v["forwards"][0]["local"], "127.0.0.1:25432");
    assert!(
        v["forwards"][0]["source"]
            .as_str()
            .unwrap_or("")
            .ends_with("epoch.toml:7")
    );

    let human = s.warren(&["--ssh-config", "ssh_config", "show", "orders"]);
    human
        .expect_code(0)
        .expect_stdout("key_passphrase")
        .expect_stdout("***");
    assert!(!human.stdout().contains("very-secret-passphrase"));
}

#[test]
fn show_of_an_ssh_host_names_the_config_lines() {
    let s = scratch();
    let r = s.warren(&["--ssh-config", "ssh_config", "show", "pg", "--json"]);
    r.expect_code(0);
    let v = r.json();
    assert_eq!(v["hops"][1]["host"]["value"], "pg.internal");
    assert!(
        v["hops"][1]["host"]["source"]
            .as_str()
            .unwrap_or("")
            .ends_with("ssh_config:6")
    );
    assert!(
        v["hops"][0]["user"]["source"]
            .as_str()
            .unwrap_or("")
            .ends_with("ssh_config:3")
    );
}

#[test]
fn show_of_an_ssh_host_lists_every_option_as_ssh_g_prints_it() {
    if !support::require("ssh") {
        return;
    }
    let s = Scratch::new();
    // (Known hosts files are given: warren's `~` in a path is $HOME, ssh's the passwd home.)
    s.write(
        "ssh_config",
        "Host db\n    HostName 127.1\n    UserKnownHostsFile /dev/null\n    ControlMaster auto\n    ControlPersist 10m\n    SendEnv LANG\nHost *\n    SendEnv LC_*\n    IPQoS af21\n",
    );
    let r = s.warren(&["--ssh-config", "ssh_config", "show", "db", "--json"]);
    r.expect_code(0);
    let got: Vec<(String, String)> = r.json()["ssh_options"]
        .as_array()
        .expect("ssh_options")
        .iter()
        .map(|l| {
            (
                l["key"].as_str().unwrap_or_default().to_ascii_lowercase(),
                l["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let out = std::process::Command::new("ssh")
        .args(["-G", "-F", "ssh_config", "db"])
        .current_dir(s.path())
        .env("HOME", s.path())
        .output()
        .expect("ssh -G");
    let want: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            (k.to_ascii_lowercase(), v.to_string())
        })
        .collect();
    assert_eq!(got, want, "the same lines as ssh -G, in its order");
    // The human form: each with its source.
    let human = s.warren(&["--ssh-config", "ssh_config", "show", "db"]);
    human.expect_code(0).expect_stdout("as `ssh -G` prints it");
    let line = |key: &str| {
        human
            .stdout()
            .lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert!(
        line("controlpersist").starts_with("controlpersist 600 "),
        "{}",
        human.stdout()
    );
    assert!(
        line("controlpersist").ends_with("ssh_config:5"),
        "{}",
        line("controlpersist")
    );
    assert_eq!(line("tcpkeepalive"), "tcpkeepalive yes default");
    assert!(
        line("hostname").starts_with("hostname 127.0.0.1 "),
        "{}",
        line("hostname")
    );
}

#[test]
fn names_in_both_files_must_be_qualified() {
    let s = scratch();
    s.warren(&["--ssh-config", "ssh_config", "show", "shared"])
        .expect_code(2)
        .expect_stderr("say ssh:shared or epoch:shared");
    let r = s.warren(&[
        "--ssh-config",
        "ssh_config",
        "show",
        "epoch:shared",
        "--json",
    ]);
    r.expect_code(0);
    assert_eq!(r.json()["database"]["engine"], "mysql");
    let r = s.warren(&["--ssh-config", "ssh_config", "show", "ssh:shared", "--json"]);
    r.expect_code(0);
    assert_eq!(r.json()["hops"][0]["host"]["value"], "shared.example");
}

#[test]
fn an_unknown_name_is_exit_2_with_a_suggestion() {
    let s = scratch();
    s.warren(&["--ssh-config", "ssh_config", "show", "order"])
        .expect_code(2)
        .expect_stderr("no connection named 'order'; did you mean 'orders'?");
}

/// A good entry and the ssh hosts are still listed next to each kind of bad epoch.toml input.
fn bad_epoch(entry: &str) -> support::Run {
    let s = scratch();
    s.write("epoch.toml", &format!("{EPOCH}\n{entry}"));
    s.warren(&["--ssh-config", "ssh_config", "list"])
}

fn lists_the_good_entries(r: &support::Run) {
    r.expect_stdout("orders")
        .expect_stdout("pg ")
        .expect_stdout("bastion");
}

#[test]
fn a_wrong_type_names_file_line_and_fix() {
    let r = bad_epoch(
        "[storage.postgres.bad]\nhost = \"db\"\n[storage.postgres.bad.ssh_tunnel]\nhost = \"b\"\nport = \"abc\"\n",
    );
    r.expect_code(0)
        .expect_stderr("epoch.toml:24: storage.postgres.bad.ssh_tunnel.port: expected a port number (1-65535), found the string \"abc\"")
        .expect_stderr("fix: write port = 5432");
    lists_the_good_entries(&r);
    assert!(!r.stdout().contains("bad "), "{}", r.describe());
}

#[test]
fn an_out_of_range_port_names_file_line_and_fix() {
    let r = bad_epoch(
        "[storage.postgres.bad]\nhost = \"db\"\nport = 99999\n[storage.postgres.bad.ssh_tunnel]\nhost = \"b\"\n",
    );
    r.expect_code(0).expect_stderr(
        "epoch.toml:22: storage.postgres.bad.port: port 99999 is out of range (1-65535)",
    );
    lists_the_good_entries(&r);
}

#[test]
fn a_missing_required_key_names_file_line_and_fix() {
    let r = bad_epoch(
        "[storage.postgres.bad]\nport = 5432\n[storage.postgres.bad.ssh_tunnel]\nhost = \"b\"\n",
    );
    r.expect_code(0)
        .expect_stderr("epoch.toml:20: [storage.postgres.bad] has no host")
        .expect_stderr("fix: add host = \"db.internal\"");
    lists_the_good_entries(&r);
}

#[test]
fn a_toml_syntax_error_is_exit_2_after_listing_what_loaded() {
    let r = bad_epoch("[storage.postgres.bad]\nhost = \"db\nport = 5432\n");
    r.expect_code(2)
        .expect_stderr("epoch.toml:21: TOML syntax error")
        .expect_stderr("skipped [storage.postgres.bad]");
    lists_the_good_entries(&r);
}

#[test]
fn an_unknown_tunnel_key_is_a_warning_with_did_you_mean() {
    let r = bad_epoch(
        "[storage.postgres.typo]\nhost = \"db\"\n[storage.postgres.typo.ssh_tunnel]\nhost = \"b\"\nkey_fiel = \"~/.ssh/id\"\n",
    );
    r.expect_code(0)
        .expect_stderr("warning: ")
        .expect_stderr("epoch.toml:24: unknown key 'key_fiel'")
        .expect_stderr("did you mean 'key_file'?")
        .expect_stdout("typo");
}

#[test]
fn an_unreadable_file_is_exit_2_after_listing_the_other_source() {
    let s = scratch();
    std::fs::create_dir(s.path().join("dir.toml")).expect("mkdir");
    let r = s.warren(&["--ssh-config", "ssh_config", "--config", "dir.toml", "list"]);
    r.expect_code(2)
        .expect_stderr("dir.toml:1: cannot read the file")
        .expect_stdout("pg ");
    let r = s.warren(&[
        "--ssh-config",
        "ssh_config",
        "--config",
        "missing.toml",
        "list",
    ]);
    r.expect_code(2)
        .expect_stderr("missing.toml:1: cannot read the file")
        .expect_stdout("pg ");
}

#[test]
fn an_include_loop_names_the_line_and_the_rest_still_loads() {
    let s = Scratch::new();
    s.write(".ssh/config", "Host first\n    HostName first.example\nInclude loop.conf\nHost last\n    HostName last.example\n");
    s.write(
        ".ssh/loop.conf",
        "Host looped\n    User u\nInclude config\n",
    );
    let cfg = s.path().join(".ssh/config");
    let r = s.warren(&["--ssh-config", cfg.to_str().unwrap_or_default(), "list"]);
    r.expect_code(0)
        .expect_stderr("loop.conf:3: Include loop")
        .expect_stdout("first")
        .expect_stdout("looped")
        .expect_stdout("last");
}

#[test]
fn a_bad_ssh_config_value_names_the_line() {
    let s = Scratch::new();
    s.write(
        "ssh_config",
        "Host a\n    Port abc\nHost b\n    HostName b.example\n",
    );
    let r = s.warren(&["--ssh-config", "ssh_config", "list"]);
    r.expect_code(0)
        .expect_stderr("ssh_config:2: Port 'abc' is not a port number")
        .expect_stdout("b.example");
}

#[test]
fn an_option_ssh_does_not_know_is_exit_2_in_ssh_words_unless_ignore_unknown_names_it() {
    let s = Scratch::new();
    s.write(
        "ssh_config",
        "Host mac\n    HostName mac.example\n    UseKeychain yes\nHost b\n    HostName b.example\n",
    );
    let r = s.warren(&["--ssh-config", "ssh_config", "list"]);
    r.expect_code(2)
        .expect_stderr("ssh_config:3: Bad configuration option: usekeychain")
        .expect_stderr("terminating, 1 bad configuration options")
        .expect_stderr("IgnoreUnknown usekeychain")
        .expect_stdout("mac.example")
        .expect_stdout("b.example");
    // As ssh, once IgnoreUnknown names it before the line.
    s.write(
        "ssh_config",
        "IgnoreUnknown UseKeychain\nHost mac\n    HostName mac.example\n    UseKeychain yes\n",
    );
    let r = s.warren(&["--ssh-config", "ssh_config", "list"]);
    r.expect_code(0).expect_stdout("mac.example");
    assert!(r.stderr().is_empty(), "{}", r.describe());
}

#[test]
fn with_no_config_at_all_it_says_where_it_looked() {
    let s = Scratch::new();
    let r = s.warren(&["list"]);
    r.expect_code(0)
        .expect_stdout("No connections found")
        .expect_stdout(".ssh/config")
        .expect_stdout("epoch.toml");
}

#[test]
fn epoch_config_env_and_the_default_path_are_used() {
    let s = scratch();
    let r = s.warren_env(
        &["--ssh-config", "ssh_config", "list", "--json"],
        &[("EPOCH_CONFIG", "epoch.toml")],
    );
    r.expect_code(0);
    assert!(r.stdout().contains("orders"));
    // ./epoch.toml is found without being named.
    s.warren(&["--ssh-config", "ssh_config", "list"])
        .expect_code(0)
        .expect_stdout("orders");
    // <config dir>/epoch/epoch.toml, when there is no ./epoch.toml.
    let t = Scratch::new();
    t.write(".config/epoch/epoch.toml", EPOCH);
    t.write("ssh_config", "");
    t.warren(&["--ssh-config", "ssh_config", "list"])
        .expect_code(0)
        .expect_stdout("orders");
}

/// A password with `${` in it is not valid in epoch.toml (which expands ${NAME}), and the
/// problem says so without showing it: not in list, show, show --json or doctor --report.
#[test]
fn a_password_that_does_not_expand_is_never_shown() {
    let s = Scratch::new();
    s.write(
        "epoch.toml",
        "[storage.postgres.db]\nhost = \"db.internal\"\npassword = \"hunter${2 secret\"\nkey_passphrase = \"x${NOT_SET_ANYWHERE_42}y\"\n[storage.postgres.db.ssh_tunnel]\nhost = \"bastion\"\nkey_passphrase = \"pp${NOT_SET_ANYWHERE_42}qq\"\n",
    );
    for args in [
        vec!["--ssh-config", "/dev/null", "list"],
        vec!["--ssh-config", "/dev/null", "list", "--json"],
        vec!["--ssh-config", "/dev/null", "show", "db"],
        vec!["--ssh-config", "/dev/null", "show", "db", "--json"],
        vec!["--ssh-config", "/dev/null", "doctor", "db", "--report"],
    ] {
        let r = s.warren(&args);
        let all = format!("{}{}", r.stdout(), r.stderr());
        for leak in ["hunter", "2 secret", "NOT_SET_ANYWHERE_42", "pp$", "qq"] {
            assert!(
                !all.contains(leak),
                "{leak} shown by {args:?}:\n{}",
                r.describe()
            );
        }
        assert!(!all.contains("panicked"), "{}", r.describe());
    }
    s.warren(&["--ssh-config", "/dev/null", "list"])
        .expect_stderr("the value is not valid")
        .expect_stderr("(the value is not shown)");
}

/// Colour as clap does it: on a terminal unless NO_COLOR; `--color` decides over both; never
/// in what a script parses.
#[test]
fn colour_follows_the_terminal_no_color_and_the_color_flag() {
    let s = scratch();
    let esc = '\u{1b}';
    // Piped: plain.
    let r = s.warren(&["--ssh-config", "ssh_config", "show", "nosuch"]);
    r.expect_code(2)
        .expect_stderr("error: no connection named 'nosuch'");
    assert!(!r.stderr().contains(esc), "{}", r.describe());
    // --color always: the word error is red even piped; --color never: plain.
    let r = s.warren(&[
        "--color",
        "always",
        "--ssh-config",
        "ssh_config",
        "show",
        "nosuch",
    ]);
    r.expect_code(2);
    assert!(
        r.stderr().starts_with(&format!(
            "{esc}[1m{esc}[31merror:{esc}[0m no connection named"
        )),
        "{:?}",
        r.stderr()
    );
    let r = s.warren_env(
        &[
            "--color",
            "never",
            "--ssh-config",
            "ssh_config",
            "show",
            "nosuch",
        ],
        &[("CLICOLOR_FORCE", "1")],
    );
    assert!(!r.stderr().contains(esc), "{:?}", r.stderr());
    // JSON stays JSON under --color always.
    let r = s.warren(&[
        "--color",
        "always",
        "--ssh-config",
        "ssh_config",
        "list",
        "--json",
    ]);
    r.expect_code(0);
    assert!(!r.stdout().contains(esc), "{:?}", r.stdout());
    serde_json::from_str::<serde_json::Value>(&r.stdout()).expect("JSON");
    // A bad --color value is a usage error.
    s.warren(&["--color", "sometimes", "list"])
        .expect_code(2)
        .expect_stderr("sometimes");
    // On a real terminal: red by default, plain under NO_COLOR.
    let exe = env!("CARGO_BIN_EXE_warren");
    let dir = s.path().display();
    for (env, coloured) in [("", true), ("NO_COLOR=1", false)] {
        let t = support::tmux::Tmux::start(&format!(
            "cd {dir} && env {env} TERM=xterm-256color {exe} --ssh-config ssh_config show nosuch"
        ));
        t.wait_for("EXITED 2");
        let screen = t.styled_screen();
        assert!(screen.contains("no connection named 'nosuch'"), "{screen}");
        assert_eq!(
            screen.contains(&format!("{esc}[31m")) || screen.contains(&format!("{esc}[1;31m")),
            coloured,
            "{env}: {screen:?}"
        );
    }
}

/// An entry that did not load is named as such by every command, with its error (file:line,
/// the fix), not as an unknown name.
#[test]
fn up_show_and_doctor_of_a_broken_entry_give_its_error_and_exit_2() {
    let s = scratch();
    s.write(
        "epoch.toml",
        &format!(
            "{EPOCH}\n[storage.postgres.badport]\nhost = \"db\"\nport = 70000\n[storage.postgres.badport.ssh_tunnel]\nhost = \"b\"\n\n[storage.postgres.unclosed]\nhost = \"db\n[storage.postgres.unclosed.ssh_tunnel]\nhost = \"b\"\n\n[storage.postgres.halfway]\nhost = \"db\"\n[storage.postgres.halfway.ssh_tunnel]\nhost = \"b\nuser = \"ops\"\n"
        ),
    );
    let cases = [
        (
            "badport",
            "epoch.toml:22: storage.postgres.badport.port: port 70000 is out of range (1-65535) (fix: write port = 5432",
        ),
        (
            "unclosed",
            "epoch.toml:27: TOML syntax error: invalid basic string",
        ),
        // The error is in its ssh_tunnel table: the rest is not taken for a direct entry.
        (
            "halfway",
            "epoch.toml:34: TOML syntax error: invalid basic string",
        ),
    ];
    for (name, error) in cases {
        for cmd in ["show", "up", "doctor"] {
            let r = s.warren(&["--ssh-config", "ssh_config", cmd, name]);
            r.expect_code(2)
                .expect_stderr(&format!("'{name}' did not load: "))
                .expect_stderr(error);
            assert!(
                !r.stderr().contains("no connection named"),
                "{}",
                r.describe()
            );
        }
    }
    let r = s.warren(&["--ssh-config", "ssh_config", "up", "orders", "halfway"]);
    r.expect_code(2).expect_stderr("'halfway' did not load");
    // The good ones still load.
    s.warren(&["--ssh-config", "ssh_config", "show", "orders"])
        .expect_code(0);
}

/// `warren down` closes what it is told: with no name and no --all it says so (exit 2)
/// instead of closing nothing and saying "0 tunnel(s) still running".
#[test]
fn down_without_a_name_or_all_is_a_usage_error() {
    let s = scratch();
    s.warren(&["--ssh-config", "ssh_config", "down"])
        .expect_code(2)
        .expect_stderr("--all");
}
