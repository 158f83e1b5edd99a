//! doctor's database step proves the login: a real MariaDB and a real Redis (each the test's
//! own, on loopback) behind a real sshd. The right password passes and names the server and
//! the user; a wrong one fails at the database step with the server's code and the fix; a
//! wrong database fails; no password configured is a warn. The hand-off forms (`exec`, `url`,
//! `connect`) are used by the real clients, and health follows a password changed on the
//! server.

mod support;

use support::db::{entry, probe, wait_health, warren, warren_stdin};
use support::mariadb::MariaDb;
use support::redis::Redis;
use support::sshd::Sshd;
use support::tunnel::{have_servers, with_key};

fn servers() -> bool {
    have_servers() && support::require("mariadb") && support::require("redis-cli")
}

#[test]
fn mariadb_doctor_logs_in_and_names_what_is_wrong() {
    if !servers() {
        return;
    }
    let Some(db) = MariaDb::start() else { return };
    db.user_with_db("app", "s3cret", "appdb");
    // An account with rights on every database learns that one does not exist (1049); one
    // with rights on its own only is told "access denied" (1044) for both.
    db.sql("CREATE USER 'ops'@'%' IDENTIFIED BY 's3cret'; GRANT ALL ON *.* TO 'ops'@'%';");
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write("pw", "s3cret\n");
    s.write("bad", "wrong\n");
    let p = db.port;
    let text = [
        entry(
            "mysql",
            "good",
            p,
            &sshd,
            &key,
            "username = \"app\"\ndatabase = \"appdb\"\npassword_file = \"pw\"\n",
        ),
        entry(
            "mariadb",
            "badpw",
            p,
            &sshd,
            &key,
            "username = \"app\"\ndatabase = \"appdb\"\npassword_file = \"bad\"\n",
        ),
        entry(
            "mysql",
            "baddb",
            p,
            &sshd,
            &key,
            "username = \"ops\"\ndatabase = \"nosuchdb\"\npassword_file = \"pw\"\n",
        ),
        entry(
            "mysql",
            "noaccess",
            p,
            &sshd,
            &key,
            "username = \"app\"\ndatabase = \"nosuchdb\"\npassword_file = \"pw\"\n",
        ),
        entry(
            "mysql",
            "nopw",
            p,
            &sshd,
            &key,
            "username = \"app\"\ndatabase = \"appdb\"\n",
        ),
    ]
    .concat();
    s.write("epoch.toml", &text);
    let version = db.version();
    let number = version.split('-').next().unwrap_or_default().to_string();

    let (code, status, detail, _) = probe(&s, "good");
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(
        detail.contains(&format!("MariaDB {number} answered"))
            && detail.contains("app logged in to appdb")
            && !detail.contains("5.5.5"),
        "{detail}"
    );

    let (code, status, detail, hint) = probe(&s, "badpw");
    assert_ne!(code, 0);
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.contains("1045") && detail.contains("refused the login of app"),
        "{detail}"
    );
    // The database sees the bastion's address (here the sshd on loopback) and the fix says so.
    assert!(
        hint.contains("password") && hint.contains("CREATE USER 'app'@'127.0.0.1'"),
        "{hint}"
    );

    let (code, status, detail, hint) = probe(&s, "baddb");
    assert_ne!(code, 0);
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.contains("1049") && detail.contains("nosuchdb"),
        "{detail}"
    );
    assert!(hint.contains("database"), "{hint}");

    let (code, status, detail, hint) = probe(&s, "noaccess");
    assert_ne!(code, 0);
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("1044"), "{detail}");
    assert!(
        hint.contains("no database nosuchdb") && hint.contains("GRANT ALL ON nosuchdb.*"),
        "{hint}"
    );

    let (code, status, detail, _) = probe(&s, "nopw");
    assert_eq!((code, status.as_str()), (0, "warn"), "{detail}");
    assert!(
        detail.contains(&format!("MariaDB {number} answered"))
            && detail.contains("login not checked: no password configured"),
        "{detail}"
    );

    // ed25519 accounts log in too (MariaDB switches the plugin mid-login).
    db.sql("INSTALL SONAME 'auth_ed25519'; CREATE USER 'edu'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('edpass'); GRANT ALL ON appdb.* TO 'edu'@'%';");
    s.write("edpw", "edpass\n");
    s.write(
        "epoch.toml",
        &format!(
            "{text}{}",
            entry(
                "mysql",
                "ed",
                p,
                &sshd,
                &key,
                "username = \"edu\"\ndatabase = \"appdb\"\npassword_file = \"edpw\"\n"
            )
        ),
    );
    let (code, status, detail, _) = probe(&s, "ed");
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(detail.contains("client_ed25519"), "{detail}");

    // The mysql client through the tunnel: exec sets MYSQL_HOST and MYSQL_TCP_PORT.
    let r = warren(
        &s,
        &[
            "exec",
            "good",
            "--with-password",
            "--",
            "mysql",
            "-u",
            "app",
            "-N",
            "-e",
            "select 40+2",
            "appdb",
        ],
    );
    r.expect_code(0);
    assert_eq!(r.stdout().trim(), "42", "{}", r.describe());
}

#[test]
fn redis_doctor_logs_in_as_the_password_and_the_acl_user() {
    if !servers() {
        return;
    }
    let Some(redis) = Redis::start("adminpw", &["user app on >apppw ~* +@all"]) else {
        return;
    };
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write("admin", "adminpw\n");
    s.write("app", "apppw\n");
    s.write("bad", "nope\n");
    let p = redis.port;
    // AUTH is cleartext: these entries say sslmode = "disable" so that doctor sends it.
    let plain = "sslmode = \"disable\"\n";
    let e =
        |name: &str, lines: &str| entry("redis", name, p, &sshd, &key, &format!("{lines}{plain}"));
    let text = [
        e("plain", "password_file = \"admin\"\n"),
        e(
            "acl",
            "username = \"app\"\ndatabase = \"2\"\npassword_file = \"app\"\n",
        ),
        e("badpw", "password_file = \"bad\"\n"),
        e(
            "baddb",
            "username = \"app\"\ndatabase = \"99\"\npassword_file = \"app\"\n",
        ),
        entry("redis", "nopw", p, &sshd, &key, ""),
        entry(
            "redis",
            "prefer",
            p,
            &sshd,
            &key,
            "password_file = \"admin\"\n",
        ),
    ]
    .concat();
    s.write("epoch.toml", &text);

    let (code, status, detail, _) = probe(&s, "plain");
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(
        detail.contains("Redis 7") && detail.contains("default logged in"),
        "{detail}"
    );

    let (code, status, detail, _) = probe(&s, "acl");
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(
        detail.contains("app logged in") && detail.contains("database 2"),
        "{detail}"
    );

    let (code, status, detail, hint) = probe(&s, "badpw");
    assert_ne!(code, 0);
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("WRONGPASS"), "{detail}");
    assert!(hint.contains("password_file"), "{hint}");

    let (code, status, detail, _) = probe(&s, "baddb");
    assert_ne!(code, 0);
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("no database 99"), "{detail}");

    let (code, status, detail, _) = probe(&s, "nopw");
    assert_eq!((code, status.as_str()), (0, "warn"), "{detail}");
    assert!(
        detail.contains("login not checked: no password configured"),
        "{detail}"
    );

    // The default (prefer, and Redis has no STARTTLS): the password would go in cleartext to
    // a server nobody verified, so doctor keeps it and says the login was not checked.
    let hellos = || {
        redis
            .cli(&["info", "commandstats"])
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_hello:"))
            .map(|v| v.split(',').next().unwrap_or_default().to_string())
    };
    let before = hellos();
    let (code, status, detail, hint) = probe(&s, "prefer");
    assert_eq!((code, status.as_str()), (0, "warn"), "{detail}");
    assert!(
        detail.contains("login not checked") && detail.contains("did not send it"),
        "{detail}"
    );
    assert!(hint.contains("sslmode = \"disable\""), "{hint}");
    assert!(before.is_some(), "the logins above went through HELLO");
    assert_eq!(before, hellos(), "no HELLO (with the password) was sent");

    // redis-cli takes DATABASE_URL as exec gives it, for the password alone and for the ACL
    // user with a database number.
    for name in ["plain", "acl"] {
        let r = warren(
            &s,
            &[
                "exec",
                name,
                "--with-password",
                "--",
                "sh",
                "-c",
                "redis-cli --no-auth-warning -u \"$DATABASE_URL\" ping",
            ],
        );
        r.expect_code(0);
        assert_eq!(r.stdout().trim(), "PONG", "{}", r.describe());
    }
    let r = warren(
        &s,
        &[
            "exec",
            "acl",
            "--with-password",
            "--",
            "sh",
            "-c",
            "redis-cli --no-auth-warning -u \"$DATABASE_URL\" acl whoami; redis-cli --no-auth-warning -u \"$DATABASE_URL\" client info",
        ],
    );
    r.expect_code(0);
    assert!(
        r.stdout().starts_with("app\n") && r.stdout().contains(" db=2 "),
        "{}",
        r.describe()
    );

    // connect runs redis-cli as the entry's user on its database, and fails when the server
    // refuses the password (redis-cli itself would exit 0).
    let r = warren_stdin(
        &s,
        &["connect", "acl", "--with-password"],
        "ACL WHOAMI\nCLIENT INFO\n",
    );
    r.expect_code(0);
    assert!(
        r.stdout().starts_with("app\n") && r.stdout().contains(" db=2 "),
        "{}",
        r.describe()
    );
    let r = warren(&s, &["connect", "badpw", "--with-password"]);
    assert_ne!(r.code(), 0, "{}", r.describe());
    r.expect_stderr("WRONGPASS");
}

/// `url --with-password` as redis-cli reads it, through a tunnel the daemon holds.
#[test]
fn redis_url_works_with_redis_cli_and_health_follows_the_password() {
    if !servers() {
        return;
    }
    let Some(redis) = Redis::start("adminpw", &[]) else {
        return;
    };
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write("admin", "adminpw\n");
    s.write(
        "epoch.toml",
        &entry(
            "redis",
            "cache",
            redis.port,
            &sshd,
            &key,
            "password_file = \"admin\"\nsslmode = \"disable\"\nhealth_interval = 2\n",
        ),
    );
    warren(&s, &["up", "--detach", "cache"]).expect_code(0);
    let url = warren(&s, &["url", "cache", "--with-password"]);
    url.expect_code(0);
    let url = url.stdout().trim().to_string();
    assert!(
        url.starts_with("redis://default:adminpw@127.0.0.1:"),
        "{url}"
    );
    let out = std::process::Command::new("redis-cli")
        .args(["--no-auth-warning", "-u", &url, "ping"])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "PONG");

    let wait = |want: bool| wait_health(&s, want);
    let (h, _) = wait(true);
    assert!(
        h["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("logged in"),
        "{h}"
    );
    // The password changes on the server: the check's login is refused.
    redis.cli(&["config", "set", "requirepass", "changed"]);
    let (h, took) = wait(false);
    eprintln!("health went false {took:?} after the password changed");
    assert!(
        h["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("WRONGPASS"),
        "{h}"
    );
    let st = warren(&s, &["status"]);
    assert!(
        st.stdout().contains("up · db login refused (WRONGPASS)"),
        "{}",
        st.describe()
    );
    // And back.
    let out = std::process::Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &redis.port.to_string(),
            "--no-auth-warning",
        ])
        .args(["-a", "changed", "config", "set", "requirepass", "adminpw"])
        .output()
        .expect("redis-cli");
    assert!(out.status.success());
    let (_, took) = wait(true);
    eprintln!("health came back {took:?} after the password was restored");
    warren(&s, &["down", "--all"]).expect_code(0);
}

#[test]
fn mariadb_health_follows_the_password() {
    if !servers() {
        return;
    }
    let Some(db) = MariaDb::start() else { return };
    db.user_with_db("app", "s3cret", "appdb");
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write("pw", "s3cret\n");
    s.write(
        "epoch.toml",
        &entry(
            "mysql",
            "db",
            db.port,
            &sshd,
            &key,
            "username = \"app\"\ndatabase = \"appdb\"\npassword_file = \"pw\"\nhealth_interval = 2\n",
        ),
    );
    warren(&s, &["up", "--detach", "db"]).expect_code(0);
    let wait = |want: bool| wait_health(&s, want);
    wait(true);
    db.sql("ALTER USER 'app'@'%' IDENTIFIED BY 'other';");
    let (h, took) = wait(false);
    eprintln!("health went false {took:?} after the password changed");
    assert!(
        h["detail"].as_str().unwrap_or_default().contains("1045"),
        "{h}"
    );
    let st = warren(&s, &["status"]);
    assert!(
        st.stdout().contains("up · db login refused (1045)"),
        "{}",
        st.describe()
    );
    let v = warren(&s, &["status", "--json"]).json();
    assert_eq!(v[0]["health"]["brief"], "login refused (1045)", "{v:#}");
    db.sql("ALTER USER 'app'@'%' IDENTIFIED BY 's3cret';");
    let (_, took) = wait(true);
    eprintln!("health came back {took:?} after the password was restored");
    warren(&s, &["down", "--all"]).expect_code(0);
}
