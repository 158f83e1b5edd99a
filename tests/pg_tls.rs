//! The PostgreSQL probe's TLS against a real PostgreSQL with `ssl = on` and certificates made
//! by the test with openssl: `sslmode` as libpq reads it, the certificate checked when asked
//! for (and the hint when it does not pass), and pg_hba.conf rules that demand TLS.

mod support;

use serde_json::Value;
use support::Scratch;
use support::certs::{Certs, make};
use support::postgres::{Options, Postgres};
use support::sshd::Sshd;
use support::tunnel::{have_servers, local_user, with_key};

const ARGS: [&str; 4] = ["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];

/// pg_hba.conf that admits TCP clients only over TLS.
const HOSTSSL_ONLY: &str = "local all all trust\nhostssl all all 127.0.0.1/32 trust\n";

fn certs(s: &Scratch) -> Option<Certs> {
    let dir = s.path().join("certs");
    std::fs::create_dir_all(&dir).expect("certs dir");
    make(&dir)
}

/// A direct entry `db` for the cluster on `port`, reached as `host`, with `extra` lines.
fn entry(s: &Scratch, host: &str, port: u16, extra: &str) {
    s.write(
        "epoch.toml",
        &format!("[storage.postgres.db]\nhost = \"{host}\"\nport = {port}\nusername = \"postgres\"\ndatabase = \"postgres\"\n{extra}"),
    );
}

/// doctor's probe step for `db`: exit code, detail, hint.
fn probe(s: &Scratch) -> (i32, String, String) {
    let mut args = ARGS.to_vec();
    args.extend(["doctor", "db", "--json"]);
    let r = s.warren(&args);
    let v = r.json();
    let p: Value = v["steps"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == "probe").cloned())
        .unwrap_or_else(|| panic!("no probe step:\n{}", r.describe()));
    assert!(!r.stderr().contains("panicked"), "{}", r.describe());
    (
        r.code(),
        p["detail"].as_str().unwrap_or_default().to_string(),
        p["hint"].as_str().unwrap_or_default().to_string(),
    )
}

fn tls_cluster(c: &Certs, hba: Option<&str>) -> Option<Postgres> {
    Postgres::start_opts(Options {
        tls: Some((&c.server_cert, &c.server_key)),
        hba,
        ..Options::default()
    })
}

#[test]
fn prefer_uses_tls_and_verify_full_checks_the_root_and_the_name() {
    let s = Scratch::new();
    let Some(c) = certs(&s) else { return };
    let Some(pg) = tls_cluster(&c, None) else {
        return;
    };
    s.write("known_hosts", "");

    // No sslmode: prefer, as libpq. TLS is used, nothing is checked, and it says so.
    entry(&s, "localhost", pg.port, "");
    let (code, detail, _) = probe(&s);
    assert_eq!(code, 0, "{detail}");
    assert!(
        detail.starts_with("TLS 1.3, certificate not verified (sslmode = prefer)")
            && detail.contains("postgres is logged in to postgres"),
        "{detail}"
    );

    // verify-full with the CA that signed the server's certificate.
    let ca = c.ca.display().to_string();
    entry(
        &s,
        "localhost",
        pg.port,
        &format!("sslmode = \"verify-full\"\nsslrootcert = \"{ca}\"\n"),
    );
    let (code, detail, _) = probe(&s);
    assert_eq!(code, 0, "{detail}");
    assert!(
        detail.contains(&format!(
            "certificate verified against {ca} for localhost (sslmode = verify-full)"
        )),
        "{detail}"
    );

    // verify-full with a CA that signed nothing of the server's.
    let other = c.other_ca.display().to_string();
    entry(
        &s,
        "localhost",
        pg.port,
        &format!("sslmode = \"verify-full\"\nsslrootcert = \"{other}\"\n"),
    );
    let (code, detail, hint) = probe(&s);
    assert_eq!(code, 1, "{detail}");
    assert!(detail.contains("the TLS handshake failed"), "{detail}");
    assert!(
        hint.contains("not signed by a certificate in sslrootcert") && hint.contains(&other),
        "{hint}"
    );

    // The certificate names localhost, not 127.0.0.1: verify-full says so, verify-ca passes.
    entry(
        &s,
        "127.0.0.1",
        pg.port,
        &format!("sslmode = \"verify-full\"\nsslrootcert = \"{ca}\"\n"),
    );
    let (code, _, hint) = probe(&s);
    assert_eq!(code, 1);
    assert!(
        hint.contains("the certificate is for localhost and not for 127.0.0.1"),
        "{hint}"
    );
    entry(
        &s,
        "127.0.0.1",
        pg.port,
        &format!("sslmode = \"verify-ca\"\nsslrootcert = \"{ca}\"\n"),
    );
    let (code, detail, _) = probe(&s);
    assert_eq!(code, 0, "{detail}");
    assert!(detail.contains("the host name is not checked"), "{detail}");

    // require with a root certificate checks the chain, as libpq does.
    entry(
        &s,
        "localhost",
        pg.port,
        &format!("sslmode = \"require\"\nsslrootcert = \"{other}\"\n"),
    );
    let (code, _, hint) = probe(&s);
    assert_eq!(code, 1);
    assert!(hint.contains("not signed by"), "{hint}");

    // verify-ca without any root certificate: libpq's default file is not there.
    entry(&s, "localhost", pg.port, "sslmode = \"verify-ca\"\n");
    let (code, detail, hint) = probe(&s);
    assert_eq!(code, 1);
    assert!(detail.contains(".postgresql/root.crt"), "{detail}");
    assert!(hint.contains("sslrootcert"), "{hint}");
}

#[test]
fn a_hostssl_only_pg_hba_is_diagnosed() {
    let s = Scratch::new();
    let Some(c) = certs(&s) else { return };
    let Some(pg) = tls_cluster(&c, Some(HOSTSSL_ONLY)) else {
        return;
    };
    s.write("known_hosts", "");

    entry(&s, "127.0.0.1", pg.port, "sslmode = \"disable\"\n");
    let (code, detail, hint) = probe(&s);
    assert_eq!(code, 1, "{detail}");
    assert!(
        detail.contains("no TLS (sslmode = disable)") && detail.contains("28000"),
        "{detail}"
    );
    assert!(
        hint.contains("only over TLS (a hostssl line)") && hint.contains("sslmode = \"disable\""),
        "{hint}"
    );

    entry(&s, "127.0.0.1", pg.port, "");
    let (code, detail, _) = probe(&s);
    assert_eq!(code, 0, "prefer uses TLS, which pg_hba asks for: {detail}");
    assert!(detail.starts_with("TLS 1.3"), "{detail}");
}

#[test]
fn hostssl_only_on_a_server_without_tls_says_to_turn_tls_on() {
    let Some(pg) = Postgres::start_opts(Options {
        hba: Some(HOSTSSL_ONLY),
        ..Options::default()
    }) else {
        return;
    };
    let s = Scratch::new();
    s.write("known_hosts", "");
    entry(&s, "127.0.0.1", pg.port, "");
    let (code, detail, hint) = probe(&s);
    assert_eq!(code, 1, "{detail}");
    assert!(
        detail.contains("no TLS: the server does not offer it") && detail.contains("28000"),
        "{detail}"
    );
    assert!(hint.contains("set ssl = on"), "{hint}");

    entry(&s, "127.0.0.1", pg.port, "sslmode = \"require\"\n");
    let (code, detail, hint) = probe(&s);
    assert_eq!(code, 1);
    assert!(
        detail.contains("does not offer TLS") && detail.contains("sslmode = require needs it"),
        "{detail}"
    );
    assert!(hint.contains("ssl = on"), "{hint}");
}

#[test]
fn a_self_signed_ca_certificate_as_the_servers_own_is_explained() {
    let s = Scratch::new();
    let Some(c) = certs(&s) else { return };
    let Some(pg) = Postgres::start_opts(Options {
        tls: Some((&c.self_signed_cert, &c.self_signed_key)),
        ..Options::default()
    }) else {
        return;
    };
    s.write("known_hosts", "");
    let root = c.self_signed_cert.display().to_string();
    entry(
        &s,
        "localhost",
        pg.port,
        &format!("sslmode = \"verify-ca\"\nsslrootcert = \"{root}\"\n"),
    );
    let (code, _, hint) = probe(&s);
    assert_eq!(code, 1);
    assert!(hint.contains("a CA certificate as its own"), "{hint}");

    // Without verification, TLS still works.
    entry(&s, "localhost", pg.port, "sslmode = \"require\"\n");
    let (code, detail, _) = probe(&s);
    assert_eq!(code, 0, "{detail}");
    assert!(
        detail.contains("certificate not verified (sslmode = require)"),
        "{detail}"
    );
}

/// A cleartext password goes only to a server whose certificate was verified: under the
/// default `prefer` (TLS, nothing checked) the probe keeps it; with verify-ca it sends it.
#[test]
fn a_cleartext_password_goes_only_over_verified_tls() {
    let s = Scratch::new();
    let Some(c) = certs(&s) else { return };
    let Some(pg) = Postgres::start_opts(Options {
        password: Some("tls only please"),
        tls: Some((&c.server_cert, &c.server_key)),
        hba: Some("local all all trust\nhost all all 127.0.0.1/32 password\n"),
    }) else {
        return;
    };
    s.write("known_hosts", "");
    s.write("pw", "tls only please\n");
    entry(&s, "127.0.0.1", pg.port, "password_file = \"pw\"\n");
    let (code, detail, hint) = probe(&s);
    assert_ne!(code, 0, "{detail}");
    assert!(
        detail.starts_with("TLS 1.3")
            && detail.contains(
                "the server's certificate was not verified: warren did not send the password"
            ),
        "{detail}"
    );
    assert!(hint.contains("verify-ca"), "{hint}");

    entry(
        &s,
        "127.0.0.1",
        pg.port,
        &format!(
            "password_file = \"pw\"\nsslmode = \"verify-ca\"\nsslrootcert = \"{}\"\n",
            c.ca.display()
        ),
    );
    let (code, detail, _) = probe(&s);
    assert_eq!(code, 0, "{detail}");
    assert!(
        detail.contains("certificate verified against")
            && detail.contains("(a cleartext password)"),
        "{detail}"
    );
}

#[test]
fn verify_full_works_through_the_bastion() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let Some(c) = certs(&s) else { return };
    let Some(pg) = tls_cluster(&c, None) else {
        return;
    };
    s.write(
        "epoch.toml",
        &format!(
            "[storage.postgres.db]\nhost = \"localhost\"\nport = {}\nusername = \"postgres\"\nsslmode = \"verify-full\"\nsslrootcert = \"{}\"\n[storage.postgres.db.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = \"{key}\"\n",
            pg.port,
            c.ca.display(),
            sshd.port,
            local_user()
        ),
    );
    let (code, detail, _) = probe(&s);
    assert_eq!(code, 0, "{detail}");
    assert!(
        detail.contains("certificate verified against") && detail.contains("for localhost"),
        "{detail}"
    );
}

#[test]
fn prefer_tries_without_tls_when_pg_hba_refuses_tls_as_libpq_does() {
    let s = Scratch::new();
    let Some(c) = certs(&s) else { return };
    let Some(pg) = tls_cluster(
        &c,
        Some("local all all trust\nhostnossl all all 127.0.0.1/32 trust\n"),
    ) else {
        return;
    };
    s.write("known_hosts", "");
    entry(&s, "127.0.0.1", pg.port, "");
    let (code, detail, _) = probe(&s);
    assert_eq!(code, 0, "{detail}");
    assert!(
        detail.contains("sslmode = prefer tried again without") && detail.contains("logged in"),
        "{detail}"
    );
    entry(&s, "127.0.0.1", pg.port, "sslmode = \"require\"\n");
    let (code, detail, hint) = probe(&s);
    assert_eq!(code, 1, "{detail}");
    assert!(detail.contains("28000"), "{detail}");
    assert!(hint.contains("no line for this client over TLS"), "{hint}");
}
