//! TLS checked against the database's real name through the tunnel: a real MariaDB and a real
//! PostgreSQL with certificates the test made for `db.test` (not for 127.0.0.1, where the
//! bastion reaches them), behind a real sshd. doctor's probe passes with verify-full when the
//! name it checks is `db.test` (`tls_server_name`) and fails with a name mismatch otherwise;
//! psql given `warren url --format dsn` verifies the certificate through the tunnel.

mod support;

use support::Scratch;
use support::certs::{make, server_for};
use support::db::{entry, probe, warren, warren_stdin};
use support::mariadb::{MariaDb, Tls};
use support::postgres::{Options, Postgres};
use support::sshd::Sshd;
use support::tunnel::{have_servers, with_key};

#[test]
fn mariadb_verify_full_checks_the_databases_name_through_the_tunnel() {
    if !have_servers() || !support::require("mariadb") {
        return;
    }
    let s0 = Scratch::new();
    let dir = s0.path().join("certs");
    std::fs::create_dir_all(&dir).expect("certs dir");
    let Some(c) = make(&dir) else { return };
    let (cert, key_file) = server_for(&dir, "db.test");
    let Some(db) = MariaDb::start_tls(Some(Tls {
        cert: &cert,
        key: &key_file,
        ca: &c.ca,
    })) else {
        return;
    };
    db.user_with_db("app", "s3cret", "appdb");
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write("pw", "s3cret\n");
    let ca = c.ca.display().to_string();
    let login = "username = \"app\"\ndatabase = \"appdb\"\npassword_file = \"pw\"\n";
    let text = [
        entry("mysql", "plain", db.port, &sshd, &key, login),
        entry(
            "mysql",
            "named",
            db.port,
            &sshd,
            &key,
            &format!(
                "{login}sslmode = \"verify-full\"\nsslrootcert = \"{ca}\"\ntls_server_name = \"db.test\"\n"
            ),
        ),
        entry(
            "mysql",
            "misnamed",
            db.port,
            &sshd,
            &key,
            &format!(
                "{login}sslmode = \"verify-full\"\nsslrootcert = \"{ca}\"\ntls_server_name = \"other.test\"\n"
            ),
        ),
        entry(
            "mysql",
            "address",
            db.port,
            &sshd,
            &key,
            &format!("{login}sslmode = \"verify-full\"\nsslrootcert = \"{ca}\"\n"),
        ),
        entry(
            "mysql",
            "otherca",
            db.port,
            &sshd,
            &key,
            &format!(
                "{login}sslmode = \"verify-ca\"\nsslrootcert = \"{}\"\n",
                c.other_ca.display()
            ),
        ),
    ]
    .concat();
    s.write("epoch.toml", &text);

    // The default (prefer): TLS, nothing checked, and it says so; the scramble still goes.
    let (code, status, detail, _) = probe(&s, "plain");
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(
        detail.starts_with("TLS 1.") && detail.contains("certificate not verified"),
        "{detail}"
    );
    assert!(detail.contains("app logged in to appdb"), "{detail}");

    let (code, status, detail, _) = probe(&s, "named");
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(
        detail.contains(&format!("certificate verified against {ca} for db.test")),
        "{detail}"
    );

    let (code, status, detail, hint) = probe(&s, "misnamed");
    assert_ne!(code, 0);
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("TLS handshake failed"), "{detail}");
    assert!(
        hint.contains("is for db.test and not for other.test") && hint.contains("tls_server_name"),
        "{hint}"
    );

    // Without tls_server_name the name checked is the host, 127.0.0.1, which the certificate
    // does not carry.
    let (code, _, _, hint) = probe(&s, "address");
    assert_ne!(code, 0);
    assert!(hint.contains("not for 127.0.0.1"), "{hint}");

    let (code, _, _, hint) = probe(&s, "otherca");
    assert_ne!(code, 0);
    assert!(
        hint.contains("not signed by a certificate in sslrootcert"),
        "{hint}"
    );
}

#[test]
fn postgres_verify_full_through_the_tunnel_in_doctor_and_in_psql() {
    if !have_servers() || !support::require("psql") {
        return;
    }
    let s0 = Scratch::new();
    let dir = s0.path().join("certs");
    std::fs::create_dir_all(&dir).expect("certs dir");
    let Some(c) = make(&dir) else { return };
    let (cert, key_file) = server_for(&dir, "db.test");
    let Some(pg) = Postgres::start_opts(Options {
        password: Some("pgpass"),
        tls: Some((&cert, &key_file)),
        hba: Some("local all all trust\nhostssl all all 127.0.0.1/32 password\n"),
    }) else {
        return;
    };
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write("pw", "pgpass\n");
    let ca = c.ca.display().to_string();
    let login = "username = \"postgres\"\ndatabase = \"postgres\"\npassword_file = \"pw\"\n";
    let text = [
        entry(
            "postgres",
            "named",
            pg.port,
            &sshd,
            &key,
            &format!(
                "{login}sslmode = \"verify-full\"\nsslrootcert = \"{ca}\"\ntls_server_name = \"db.test\"\n"
            ),
        ),
        entry(
            "postgres",
            "misnamed",
            pg.port,
            &sshd,
            &key,
            &format!(
                "{login}sslmode = \"verify-full\"\nsslrootcert = \"{ca}\"\ntls_server_name = \"other.test\"\n"
            ),
        ),
        entry("postgres", "unverified", pg.port, &sshd, &key, login),
    ]
    .concat();
    s.write("epoch.toml", &text);

    // verify-full against db.test: the certificate is checked, then the cleartext password
    // (pg_hba says `password`) goes.
    let (code, status, detail, _) = probe(&s, "named");
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(
        detail.contains(&format!("certificate verified against {ca} for db.test"))
            && detail.contains("(a cleartext password)"),
        "{detail}"
    );
    let (code, _, detail, hint) = probe(&s, "misnamed");
    assert_ne!(code, 0);
    assert!(
        hint.contains("is for db.test and not for other.test"),
        "{detail} / {hint}"
    );
    // prefer: TLS without a checked certificate, so the cleartext password stays here.
    let (code, _, detail, _) = probe(&s, "unverified");
    assert_ne!(code, 0);
    assert!(
        detail.contains("certificate was not verified: warren did not send the password"),
        "{detail}"
    );

    // psql, given the DSN warren prints, connects to the tunnel and checks the certificate
    // against db.test.
    warren(&s, &["up", "--detach", "named"]).expect_code(0);
    let dsn = warren(&s, &["url", "named", "--format", "dsn", "--with-password"]);
    dsn.expect_code(0);
    let dsn = dsn.stdout().trim().to_string();
    assert!(
        dsn.starts_with("host=db.test hostaddr=127.0.0.1 ") && dsn.contains("sslmode=verify-full"),
        "{dsn}"
    );
    let psql = |conninfo: &str| {
        std::process::Command::new("psql")
            .args([
                conninfo,
                "-tAc",
                "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            ])
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .expect("psql")
    };
    let out = psql(&dsn);
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "t");
    // The same DSN with another name: psql refuses the certificate, so the check was real.
    let out = psql(&dsn.replace("host=db.test", "host=other.test"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not match host name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    warren(&s, &["down", "--all"]).expect_code(0);
}

#[test]
fn redis_over_tls_checks_the_name_and_hands_rediss_to_redis_cli() {
    if !have_servers() || !support::require("redis-cli") {
        return;
    }
    let s0 = Scratch::new();
    let dir = s0.path().join("certs");
    std::fs::create_dir_all(&dir).expect("certs dir");
    let Some(c) = make(&dir) else { return };
    let (cert, key_file) = server_for(&dir, "db.test");
    let Some(redis) = support::redis::Redis::start_tls("tlspw", &cert, &key_file, &c.ca) else {
        return;
    };
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write("pw", "tlspw\n");
    let ca = c.ca.display().to_string();
    let text = [
        entry(
            "redis",
            "named",
            redis.port,
            &sshd,
            &key,
            &format!(
                "password_file = \"pw\"\nsslmode = \"verify-full\"\nsslrootcert = \"{ca}\"\ntls_server_name = \"db.test\"\n"
            ),
        ),
        entry(
            "redis",
            "misnamed",
            redis.port,
            &sshd,
            &key,
            &format!(
                "password_file = \"pw\"\nsslmode = \"verify-full\"\nsslrootcert = \"{ca}\"\ntls_server_name = \"other.test\"\n"
            ),
        ),
        entry(
            "redis",
            "unverified",
            redis.port,
            &sshd,
            &key,
            "password_file = \"pw\"\nsslmode = \"require\"\n",
        ),
    ]
    .concat();
    s.write("epoch.toml", &text);

    let (code, status, detail, _) = probe(&s, "named");
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(
        detail.contains(&format!("certificate verified against {ca} for db.test"))
            && detail.contains("default logged in"),
        "{detail}"
    );
    let (code, _, _, hint) = probe(&s, "misnamed");
    assert_ne!(code, 0);
    assert!(
        hint.contains("is for db.test and not for other.test"),
        "{hint}"
    );
    // TLS, the certificate not checked: AUTH's password stays here.
    let (code, status, detail, _) = probe(&s, "unverified");
    assert_eq!((code, status.as_str()), (0, "warn"), "{detail}");
    assert!(detail.contains("did not send it"), "{detail}");

    // exec: DATABASE_URL is rediss://, which redis-cli takes with the CA.
    let r = warren(
        &s,
        &[
            "exec",
            "named",
            "--with-password",
            "--",
            "sh",
            "-c",
            &format!("redis-cli --no-auth-warning --cacert {ca} -u \"$DATABASE_URL\" ping"),
        ],
    );
    r.expect_code(0);
    assert_eq!(r.stdout().trim(), "PONG", "{}", r.describe());
    // connect: redis-cli with --tls --sni db.test --cacert CA, and the password checked first.
    let r = warren_stdin(&s, &["connect", "named", "--with-password"], "PING\n");
    r.expect_code(0);
    assert_eq!(r.stdout().trim(), "PONG", "{}", r.describe());
}
