//! A real MariaDB server of the test's own on 127.0.0.1 (a data directory made by
//! `mariadb-install-db` in a temp dir, its own socket and port; never the system service),
//! stopped on drop. [`MariaDb::sql`] runs statements as root over the socket.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MariaDb {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

/// TLS for the server: a certificate, its key and the CA that signed it (PEM files).
pub struct Tls<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    pub ca: &'a Path,
}

fn bin(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

impl MariaDb {
    /// `None` (with a SKIPPED line) when MariaDB is not installed; under CI=true, a panic.
    pub fn start() -> Option<MariaDb> {
        MariaDb::start_tls(None)
    }

    pub fn start_tls(tls: Option<Tls>) -> Option<MariaDb> {
        let (Some(server), Some(install)) = (bin("mariadbd"), bin("mariadb-install-db")) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "MariaDB is not installed, and CI=true: run scripts/test"
            );
            eprintln!("SKIPPED: MariaDB is not installed (scripts/test installs it)");
            return None;
        };
        let dir = tempfile::tempdir().expect("mariadb dir");
        let data = dir.path().join("data");
        // Its own tmpdir: two servers bootstrapping at once in the shared /tmp collide on
        // their temporary tables' names ("Unknown table 'mysql.tmp_user_sys'").
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("mariadb tmpdir");
        let tmpdir = format!("--tmpdir={}", tmp.display());
        let out = Command::new(install)
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .arg(format!("--datadir={}", data.display()))
            .arg(&tmpdir)
            .output()
            .expect("mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut tls_args = Vec::new();
        if let Some(t) = &tls {
            tls_args.push(format!("--ssl-cert={}", t.cert.display()));
            tls_args.push(format!("--ssl-key={}", t.key.display()));
            tls_args.push(format!("--ssl-ca={}", t.ca.display()));
        }
        let sock = dir.path().join("sock");
        for _ in 0..5 {
            let port = super::sshd::free_port();
            let log = dir.path().join("err.log");
            let mut child = Command::new(&server)
                .args([
                    "--no-defaults",
                    "--user=root",
                    "--bind-address=127.0.0.1",
                    "--skip-name-resolve",
                    "--skip-log-bin",
                    "--innodb-buffer-pool-size=16M",
                    "--max-connections=20",
                ])
                .arg(format!("--datadir={}", data.display()))
                .arg(&tmpdir)
                .arg(format!("--socket={}", sock.display()))
                .arg(format!("--port={port}"))
                .arg(format!("--pid-file={}", dir.path().join("pid").display()))
                .arg(format!("--log-error={}", log.display()))
                .args(&tls_args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("mariadbd");
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut up = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if sock.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if up {
                return Some(MariaDb { port, dir, child });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "MariaDB did not start: {}",
            std::fs::read_to_string(dir.path().join("err.log")).unwrap_or_default()
        );
    }

    /// Runs SQL as root over the server's socket; panics when it fails.
    pub fn sql(&self, statements: &str) -> String {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!(
                "--socket={}",
                self.dir.path().join("sock").display()
            ))
            .args(["-uroot", "-N", "-B", "-e", statements])
            .output()
            .expect("mariadb client");
        assert!(
            out.status.success(),
            "SQL failed: {statements}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A user `user`@'%' with `password` and all rights on a new database `db`.
    pub fn user_with_db(&self, user: &str, password: &str, db: &str) {
        self.sql(&format!(
            "CREATE DATABASE {db}; CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; GRANT ALL ON {db}.* TO '{user}'@'%';"
        ));
    }

    /// The server's version string (`10.11.19-MariaDB-0+deb12u1`).
    pub fn version(&self) -> String {
        self.sql("SELECT VERSION()").trim().to_string()
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
