//! The PostgreSQL probe's TLS against a real PostgreSQL with `ssl = on` and certificates made
//! by the test with openssl: `sslmode` as libpq reads it, the certificate checked when asked
//! for (and the hint when it does not pass), and pg_hba.conf rules that demand TLS. And SCRAM
//! bound to that TLS (SCRAM-SHA-256-PLUS, `channel_binding`): the server's own check of the
//! binding passes, each signature hash is the one the server picks, and a proxy that ends TLS
//! with a certificate of its own (or strips -PLUS from the offer) is caught.

mod support;

use serde_json::Value;
use support::Scratch;
use support::certs::{Certs, make, self_signed, server_for};
use support::pg_mitm::{self, Mitm};
use support::postgres::{Options, Postgres};
use support::sshd::Sshd;
use support::tunnel::{have_servers, local_user, with_key};

const ARGS: [&str; 4] = ["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];

/// pg_hba.conf that admits TCP clients only over TLS.
const HOSTSSL_ONLY: &str = "local all all trust\nhostssl all all 127.0.0.1/32 trust\n";

/// pg_hba.conf that asks TCP clients for a SCRAM password, over TLS only.
const HOSTSSL_SCRAM: &str = "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n";

/// The `postgres` role's password in the SCRAM clusters (the entry reads it from `pw`).
const PASSWORD: &str = "bound to TLS";

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

/// A cluster whose `postgres` role has [`PASSWORD`] (a SCRAM verifier), with TLS from `cert`
/// and `key`, and `hba`.
fn scram_cluster(cert: &std::path::Path, key: &std::path::Path, hba: &str) -> Option<Postgres> {
    Postgres::start_opts(Options {
        password: Some(PASSWORD),
        tls: Some((cert, key)),
        hba: Some(hba),
    })
}

/// doctor's probe step for `db`: exit code, status, detail, hint.
fn probe_status(s: &Scratch) -> (i32, String, String, String) {
    support::db::probe_with(s, &ARGS, "db")
}

/// An entry for the cluster on `port` with the password file, and `extra` lines from line 7.
fn scram_entry(s: &Scratch, host: &str, port: u16, extra: &str) {
    s.write("pw", &format!("{PASSWORD}\n"));
    entry(s, host, port, &format!("password_file = \"pw\"\n{extra}"));
}

#[test]
fn scram_over_tls_is_bound_to_the_servers_certificate() {
    let s = Scratch::new();
    let Some(c) = certs(&s) else { return };
    let Some(pg) = scram_cluster(&c.server_cert, &c.server_key, HOSTSSL_SCRAM) else {
        return;
    };
    s.write("known_hosts", "");
    let plus = "with the password from password_file (SCRAM-SHA-256-PLUS (channel binding tls-server-end-point, SHA-256))";

    // The default, prefer: the server offers -PLUS over TLS, and the probe takes it. The
    // server checks the binding (the hash of its certificate, ecdsa-with-SHA256) itself.
    scram_entry(&s, "127.0.0.1", pg.port, "");
    let (code, status, detail, _) = probe_status(&s);
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(
        detail.starts_with("TLS 1.3, certificate not verified (sslmode = prefer)")
            && detail.contains(plus),
        "{detail}"
    );

    // require: the same login, which it asks for.
    scram_entry(&s, "127.0.0.1", pg.port, "channel_binding = \"require\"\n");
    let (code, status, detail, _) = probe_status(&s);
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(detail.contains(plus), "{detail}");

    // disable: plain SCRAM-SHA-256 over the same TLS, and it says why.
    scram_entry(&s, "127.0.0.1", pg.port, "channel_binding = \"disable\"\n");
    let (code, status, detail, _) = probe_status(&s);
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(
        detail.contains("(SCRAM-SHA-256 (no channel binding: channel_binding = disable at ")
            && detail.contains("epoch.toml:7))"),
        "{detail}"
    );

    // A bound login is still a login: a wrong password is refused.
    s.write("pw", "not it\n");
    entry(&s, "127.0.0.1", pg.port, "password_file = \"pw\"\n");
    let (code, status, detail, hint) = probe_status(&s);
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(detail.contains("28P01"), "{detail}");
    assert!(hint.contains("password was wrong"), "{hint}");
}

/// RFC 5929 hashes the certificate with its signature's hash: the server does the same, so a
/// wrong pick would be refused. An Ed25519 certificate has no such hash: `prefer` logs in
/// unbound (and says why), `require` fails the step.
#[test]
fn the_binding_hash_is_the_certificates_signature_hash() {
    let s = Scratch::new();
    let Some(_) = certs(&s) else { return };
    let dir = s.path().join("certs");
    s.write("known_hosts", "");

    let (crt, key) = self_signed(&dir, "rsa-sha512", "rsa:2048", Some("-sha512"));
    let Some(pg) = scram_cluster(&crt, &key, HOSTSSL_SCRAM) else {
        return;
    };
    scram_entry(&s, "127.0.0.1", pg.port, "channel_binding = \"require\"\n");
    let (code, status, detail, _) = probe_status(&s);
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(
        detail.contains("(SCRAM-SHA-256-PLUS (channel binding tls-server-end-point, SHA-512))"),
        "{detail}"
    );
    drop(pg);

    let (crt, key) = self_signed(&dir, "ed25519", "ed25519", None);
    let Some(pg) = scram_cluster(&crt, &key, HOSTSSL_SCRAM) else {
        return;
    };
    scram_entry(&s, "127.0.0.1", pg.port, "");
    let (code, status, detail, _) = probe_status(&s);
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(
        detail.contains(
            "(SCRAM-SHA-256 (no channel binding: the server's certificate is signed with Ed25519"
        ),
        "{detail}"
    );
    scram_entry(&s, "127.0.0.1", pg.port, "channel_binding = \"require\"\n");
    let (code, status, detail, hint) = probe_status(&s);
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(
        detail.contains("signed with Ed25519") && detail.contains("epoch.toml:7) cannot be met"),
        "{detail}"
    );
    assert!(hint.contains("ECDSA or RSA"), "{hint}");
}

/// `require` with `sslmode = "disable"`: there is no TLS to bind to, so the step fails before
/// the password is used, naming both settings; `prefer` logs in unbound.
#[test]
fn channel_binding_require_without_tls_fails_the_login() {
    let s = Scratch::new();
    let Some(c) = certs(&s) else { return };
    let Some(pg) = scram_cluster(
        &c.server_cert,
        &c.server_key,
        "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
    ) else {
        return;
    };
    s.write("known_hosts", "");

    scram_entry(
        &s,
        "127.0.0.1",
        pg.port,
        "sslmode = \"disable\"\nchannel_binding = \"require\"\n",
    );
    let (code, status, detail, hint) = probe_status(&s);
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(
        detail.contains(
            "epoch.toml:8) binds the login to TLS, and there is none: no TLS (sslmode = disable)"
        ),
        "{detail}"
    );
    assert!(
        hint.contains("remove sslmode = \"disable\" (")
            && hint.contains("epoch.toml:7) so that the probe uses TLS")
            && hint.contains("lower channel_binding"),
        "{hint}"
    );

    // Without require, the same entry logs in with SCRAM-SHA-256 (nothing to bind to).
    scram_entry(&s, "127.0.0.1", pg.port, "sslmode = \"disable\"\n");
    let (code, status, detail, _) = probe_status(&s);
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(
        detail.contains("no TLS (sslmode = disable)")
            && detail.contains("password_file (SCRAM-SHA-256)"),
        "{detail}"
    );
}

/// A proxy that ends warren's TLS with a certificate of its own and opens its own TLS to the
/// server: the server computes the binding from its certificate, warren from the proxy's,
/// and the server refuses the proof. Taking -PLUS out of the offer makes warren say `y`,
/// which the server, offering -PLUS itself, refuses too; `require` refuses to go on at all.
#[test]
fn a_proxy_that_ends_tls_with_its_own_certificate_is_caught() {
    let s = Scratch::new();
    let Some(c) = certs(&s) else { return };
    let Some(pg) = scram_cluster(&c.server_cert, &c.server_key, HOSTSSL_SCRAM) else {
        return;
    };
    s.write("known_hosts", "");
    // The proxy's certificate is another, for the same name, from the same CA: verify-full
    // accepts it, so only the binding can tell.
    let (crt, key) = server_for(&s.path().join("certs"), "localhost");
    let relay = pg_mitm::start(pg.port, &crt, &key, Mitm::Relay);
    let strip = pg_mitm::start(pg.port, &crt, &key, Mitm::StripPlus);
    let verify = format!(
        "sslmode = \"verify-full\"\nsslrootcert = \"{}\"\n",
        c.ca.display()
    );

    // Straight to the server, verify-full and the binding both pass.
    scram_entry(&s, "localhost", pg.port, &verify);
    let (code, _, detail, _) = probe_status(&s);
    assert_eq!(code, 0, "{detail}");
    assert!(detail.contains("SCRAM-SHA-256-PLUS"), "{detail}");

    for extra in ["", verify.as_str()] {
        scram_entry(&s, "localhost", relay, extra);
        let (code, status, detail, hint) = probe_status(&s);
        assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
        assert!(
            detail.contains("SCRAM channel binding check failed"),
            "{detail}"
        );
        assert!(
            hint.contains("ends TLS with a certificate of its own"),
            "{hint}"
        );
        // Unverified, the hint says to verify; verified, it does not.
        assert_eq!(hint.contains("verify-full"), extra.is_empty(), "{hint}");
    }

    // The proxy is the user's own: disable logs in through it.
    scram_entry(&s, "localhost", relay, "channel_binding = \"disable\"\n");
    let (code, status, detail, _) = probe_status(&s);
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");

    // -PLUS taken out of the offer: `y`, which the server refuses.
    scram_entry(&s, "localhost", strip, "");
    let (code, status, detail, hint) = probe_status(&s);
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(
        detail.contains("SCRAM channel binding negotiation error"),
        "{detail}"
    );
    assert!(hint.contains("rewrote the login"), "{hint}");
    scram_entry(&s, "localhost", strip, "channel_binding = \"require\"\n");
    let (code, status, detail, hint) = probe_status(&s);
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(
        detail.contains("does not offer SCRAM-SHA-256-PLUS over TLS (it offers: SCRAM-SHA-256)"),
        "{detail}"
    );
    assert!(hint.contains("ends TLS itself"), "{hint}");
}
