//! `sslmode`, `sslrootcert` and `channel_binding` in epoch.toml as a user meets them: the
//! default and its source in `warren show`, a value that is not libpq's (an error naming the
//! line and the nearest value), a misspelt key (a warning with the key it meant), and config
//! text with control characters shown escaped in list, show and problems, exact in JSON.

mod support;

use support::Scratch;

fn entry(extra: &str) -> Scratch {
    let s = Scratch::new();
    s.write(
        "epoch.toml",
        &format!("[storage.postgres.db]\nhost = \"db.internal\"\n{extra}\n[storage.postgres.db.ssh_tunnel]\nhost = \"bastion.example\"\nuser = \"ops\"\n"),
    );
    s
}

fn show(s: &Scratch, json: bool) -> support::Run {
    let mut args = vec!["--ssh-config", "/dev/null", "show", "db"];
    if json {
        args.push("--json");
    }
    s.warren(&args)
}

/// The `warren show` row for `key`.
fn row(r: &support::Run, key: &str) -> String {
    r.stdout()
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no {key} row:\n{}", r.describe()))
        .to_string()
}

#[test]
fn the_default_is_prefer_and_show_says_where_each_value_came_from() {
    let s = entry("");
    let r = show(&s, false);
    r.expect_code(0);
    let mode = row(&r, "sslmode");
    assert!(
        mode.contains("prefer") && mode.ends_with("default"),
        "{mode}"
    );
    let root = row(&r, "sslrootcert");
    assert!(root.contains(".postgresql/root.crt"), "{root}");

    let s = entry("sslmode = \"verify-full\"\nsslrootcert = \"~/ca.pem\"");
    let r = show(&s, false);
    let mode = row(&r, "sslmode");
    assert!(
        mode.contains("verify-full") && mode.ends_with("epoch.toml:3"),
        "{mode}"
    );
    let root = row(&r, "sslrootcert");
    assert!(
        root.contains(&format!("{}/ca.pem", s.path().display())) && root.ends_with("epoch.toml:4"),
        "~ is expanded: {root}"
    );
    let v = show(&s, true).json();
    assert_eq!(v["database"]["sslmode"]["value"], "verify-full");
    assert_eq!(v["database"]["sslmode"]["source"], "epoch.toml:3");
}

#[test]
fn a_value_that_is_not_an_sslmode_is_an_error_with_the_nearest_one() {
    let s = entry("sslmode = \"verify_full\"");
    let r = show(&s, false);
    r.expect_code(2)
        .expect_stderr("epoch.toml:3")
        .expect_stderr("'verify_full' is not an sslmode")
        .expect_stderr("fix: did you mean 'verify-full'?");
    let s = entry("sslmode = \"allow\"");
    show(&s, false)
        .expect_code(2)
        .expect_stderr("write sslmode = \"prefer\"");
}

#[test]
fn a_misspelt_key_is_a_warning_naming_the_key() {
    let s = entry("ssl_mode = \"require\"\nssl_root_cert = \"ca.pem\"");
    let r = show(&s, false);
    r.expect_code(0)
        .expect_stderr("warning:")
        .expect_stderr("unknown key 'ssl_mode'")
        .expect_stderr("did you mean 'sslmode'?")
        .expect_stderr("did you mean 'sslrootcert'?");
    assert!(
        row(&r, "sslmode").contains("prefer"),
        "the typo is not used"
    );
}

#[test]
fn system_roots_need_verify_full_and_other_engines_ignore_tls() {
    let s = entry("sslrootcert = \"system\"");
    show(&s, false)
        .expect_code(2)
        .expect_stderr("sslrootcert = \"system\" needs sslmode = \"verify-full\"");
    let s = Scratch::new();
    s.write(
        "epoch.toml",
        "[storage.clickhouse.db]\nhost = \"ch.internal\"\nport = 9000\nsslmode = \"require\"\n",
    );
    show(&s, false)
        .expect_code(0)
        .expect_stderr("sslmode is ignored: the probe of this engine does not use TLS");
    let s = Scratch::new();
    s.write(
        "epoch.toml",
        "[storage.mysql.db]\nhost = \"db.internal\"\nsslmode = \"require\"\n",
    );
    let r = show(&s, false);
    r.expect_code(0);
    assert!(!r.stderr().contains("ignored"), "{}", r.describe());
}

#[test]
fn control_characters_from_the_config_are_escaped_on_the_terminal_and_exact_in_json() {
    let s = entry("database = \"orders\\u001b]0;pwned\\u0007\"\nsslmode = \"bogus\\u001b[2J\"");
    // The bad sslmode makes the entry an error: the problem quotes it, escaped.
    let r = show(&s, false);
    r.expect_code(2).expect_stderr("bogus\\x1b[2J");
    assert!(!r.stderr().contains('\x1b'), "{:?}", r.stderr());

    let s = entry("database = \"orders\\u001b]0;pwned\\u0007\"");
    let r = show(&s, false);
    r.expect_code(0).expect_stdout("orders\\x1b]0;pwned\\x07");
    assert!(
        !r.stdout().contains('\x1b') && !r.stdout().contains('\x07'),
        "{:?}",
        r.stdout()
    );
    let v = show(&s, true).json();
    assert_eq!(v["database"]["database"]["value"], "orders\x1b]0;pwned\x07");

    let r = s.warren(&["--ssh-config", "/dev/null", "list"]);
    r.expect_code(0);
    assert!(!r.stdout().contains('\x1b'), "{:?}", r.stdout());
}

/// A MySQL entry may use the mysql client's names: `ssl_mode = "VERIFY_IDENTITY"` and
/// `ssl_ca` mean verify-full and sslrootcert; a wrong value names the mysql values, and both
/// spellings at once are an error.
#[test]
fn mysql_entries_take_the_mysql_clients_names() {
    let mysql = |extra: &str| {
        let s = Scratch::new();
        s.write(
            "epoch.toml",
            &format!("[storage.mysql.db]\nhost = \"db.internal\"\n{extra}\n"),
        );
        s
    };
    let s = mysql("ssl_mode = \"verify_identity\"\nssl_ca = \"~/ca.pem\"");
    let v = show(&s, true).json();
    assert_eq!(v["database"]["sslmode"]["value"], "verify-full", "{v:#}");
    assert_eq!(v["database"]["sslmode"]["source"], "epoch.toml:3");
    assert_eq!(
        v["database"]["sslrootcert"]["value"],
        format!("{}/ca.pem", s.path().display())
    );
    let r = show(&s, false);
    assert!(!r.stderr().contains("unknown key"), "{}", r.describe());

    let s = mysql("ssl_mode = \"VERIFY_FULL\"");
    show(&s, false)
        .expect_code(2)
        .expect_stderr("'VERIFY_FULL' is not an ssl_mode (DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY)");
    let s = mysql("ssl_mode = \"REQUIRED\"\nsslmode = \"require\"");
    show(&s, false)
        .expect_code(2)
        .expect_stderr("both sslmode and ssl_mode are set");
}

/// `channel_binding` as libpq's: `prefer` unless the entry says otherwise, shown with where
/// it came from; a value that is not one of libpq's three is an error naming the line, the
/// three values and the nearest one.
#[test]
fn channel_binding_is_prefer_by_default_and_a_wrong_value_names_the_line_and_the_values() {
    let s = entry("");
    let r = show(&s, false);
    r.expect_code(0);
    let cb = row(&r, "channel_binding");
    assert!(cb.contains("prefer") && cb.ends_with("default"), "{cb}");

    for value in ["disable", "prefer", "require"] {
        let s = entry(&format!("channel_binding = \"{value}\""));
        let r = show(&s, false);
        r.expect_code(0);
        let cb = row(&r, "channel_binding");
        assert!(cb.contains(value) && cb.ends_with("epoch.toml:3"), "{cb}");
        let v = show(&s, true).json();
        assert_eq!(v["database"]["channel_binding"]["value"], value, "{v:#}");
        assert_eq!(v["database"]["channel_binding"]["source"], "epoch.toml:3");
    }

    let s = entry("channel_binding = \"required\"");
    show(&s, false)
        .expect_code(2)
        .expect_stderr("epoch.toml:3")
        .expect_stderr(
            "channel_binding: 'required' is not a channel_binding (disable, prefer, require)",
        )
        .expect_stderr("fix: did you mean 'require'?");
    let s = entry("channel_binding = \"always\"");
    show(&s, false)
        .expect_code(2)
        .expect_stderr("epoch.toml:3")
        .expect_stderr("fix: write one of: disable, prefer, require");
    let s = entry("channel_binding = true");
    show(&s, false)
        .expect_code(2)
        .expect_stderr("epoch.toml:3")
        .expect_stderr("channel_binding = \"...\"");
}

#[test]
fn a_misspelt_channel_binding_is_a_warning_and_other_engines_ignore_it() {
    let s = entry("channel_bindng = \"require\"");
    let r = show(&s, false);
    r.expect_code(0)
        .expect_stderr("epoch.toml:3")
        .expect_stderr("unknown key 'channel_bindng'")
        .expect_stderr("did you mean 'channel_binding'?");
    assert!(
        row(&r, "channel_binding").contains("prefer"),
        "the typo is not used"
    );

    let s = Scratch::new();
    s.write(
        "epoch.toml",
        "[storage.mysql.db]\nhost = \"db.internal\"\nchannel_binding = \"require\"\n",
    );
    let r = show(&s, false);
    r.expect_code(0)
        .expect_stderr("epoch.toml:3")
        .expect_stderr("channel_binding is ignored: only the PostgreSQL probe binds");
    assert!(
        !r.stdout().contains("channel_binding"),
        "show lists it for PostgreSQL only: {}",
        r.describe()
    );
}
