//! A real PostgreSQL cluster of the test's own on 127.0.0.1 (trust auth), stopped on drop.
//! It refuses to run as root, so as root it runs as the `postgres` user. [`Options`] add a
//! password, TLS (a certificate and key the test made) and a pg_hba.conf of the test's own.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The server's options (port, socket dir, TLS), for a restart.
    opts: String,
}

/// How a cluster differs from the default (trust for everyone, no TLS).
#[derive(Default)]
pub struct Options<'a> {
    /// The `postgres` role's password, asked for with SCRAM-SHA-256 over TCP.
    pub password: Option<&'a str>,
    /// `ssl = on` with this certificate and key (PEM files; copied into the cluster's dir).
    pub tls: Option<(&'a std::path::Path, &'a std::path::Path)>,
    /// pg_hba.conf as a whole (replacing initdb's).
    pub hba: Option<&'a str>,
}

fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = glob::glob("/usr/lib/postgresql/*/bin")
        .ok()?
        .filter_map(Result::ok)
        .collect();
    dirs.sort();
    dirs.pop()
}

fn as_postgres(cmd: &str, args: &[&str]) -> Command {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", cmd]).args(args);
        c
    } else {
        let mut c = Command::new(cmd);
        c.args(args);
        c
    }
}

impl Postgres {
    /// `None` (with a SKIPPED line) when PostgreSQL is not installed; under CI=true, a panic.
    pub fn start() -> Option<Postgres> {
        Postgres::start_auth(None)
    }

    /// A cluster whose `postgres` role has `password`, asked for with SCRAM-SHA-256 over TCP.
    pub fn start_with_password(password: &str) -> Option<Postgres> {
        Postgres::start_opts(Options {
            password: Some(password),
            ..Options::default()
        })
    }

    fn start_auth(password: Option<&str>) -> Option<Postgres> {
        Postgres::start_opts(Options {
            password,
            ..Options::default()
        })
    }

    pub fn start_opts(o: Options) -> Option<Postgres> {
        let password = o.password;
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL is not installed, and CI=true: run scripts/test"
            );
            eprintln!("SKIPPED: PostgreSQL is not installed (scripts/test installs it)");
            return None;
        };
        let dir = tempfile::tempdir().expect("pg dir");
        let _ = Command::new("chmod").arg("0777").arg(dir.path()).status();
        let data = dir.path().join("data");
        let initdb = bin.join("initdb");
        let pwfile = dir.path().join("pwfile");
        let mut args: Vec<String> = vec![
            "--no-sync".into(),
            "-U".into(),
            "postgres".into(),
            "-D".into(),
            data.display().to_string(),
        ];
        match password {
            None => args.extend(["-A".into(), "trust".into()]),
            Some(p) => {
                std::fs::write(&pwfile, format!("{p}\n")).expect("pwfile");
                let _ = Command::new("chmod").arg("0644").arg(&pwfile).status();
                args.extend([
                    "--auth-local=trust".into(),
                    "--auth-host=scram-sha-256".into(),
                    format!("--pwfile={}", pwfile.display()),
                ]);
            }
        }
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = as_postgres(initdb.to_str().unwrap_or_default(), &arg_refs)
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(hba) = o.hba {
            std::fs::write(data.join("pg_hba.conf"), hba).expect("pg_hba.conf");
        }
        let mut server_opts = String::new();
        if let Some((cert, key)) = o.tls {
            let (c, k) = (dir.path().join("server.crt"), dir.path().join("server.key"));
            std::fs::copy(cert, &c).expect("copy the certificate");
            std::fs::copy(key, &k).expect("copy the key");
            let _ = Command::new("chmod").arg("0600").arg(&k).status();
            let _ = Command::new("chown")
                .arg("postgres")
                .arg(&c)
                .arg(&k)
                .status();
            server_opts = format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                c.display(),
                k.display()
            );
        }
        if password.is_some() {
            // PostgreSQL 14's default, said outright: a password set later is a SCRAM verifier.
            server_opts.push_str(" -c password_encryption=scram-sha-256");
        }
        for _ in 0..5 {
            let port = super::sshd::free_port();
            let opts = format!(
                "-k {} -h 127.0.0.1 -p {port}{server_opts}",
                dir.path().display()
            );
            let log = dir.path().join("pg.log");
            let pg_ctl = bin.join("pg_ctl");
            let st = as_postgres(
                pg_ctl.to_str().unwrap_or_default(),
                &[
                    "-w",
                    "-D",
                    data.to_str().unwrap_or_default(),
                    "-o",
                    &opts,
                    "-l",
                    log.to_str().unwrap_or_default(),
                    "start",
                ],
            )
            .output()
            .expect("pg_ctl start");
            if st.status.success() {
                return Some(Postgres {
                    port,
                    dir,
                    bin,
                    opts,
                });
            }
        }
        panic!(
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(dir.path().join("pg.log")).unwrap_or_default()
        );
    }
}

impl Postgres {
    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("pg.log");
        let pg_ctl = self.bin.join("pg_ctl");
        let mut all = vec![
            "-w",
            "-D",
            data.to_str().unwrap_or_default(),
            "-l",
            log.to_str().unwrap_or_default(),
        ];
        all.extend_from_slice(args);
        as_postgres(pg_ctl.to_str().unwrap_or_default(), &all)
            .output()
            .expect("pg_ctl")
    }

    /// Stops the server (fast: sessions are ended) and waits until it is down.
    pub fn stop(&self) {
        let out = self.pg_ctl(&["-m", "fast", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts it again on the same port, and waits until it takes connections.
    pub fn restart(&self) {
        let out = self.pg_ctl(&["-o", &self.opts, "start"]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            std::fs::read_to_string(self.dir.path().join("pg.log")).unwrap_or_default()
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let pg_ctl = self.bin.join("pg_ctl");
        let _ = as_postgres(
            pg_ctl.to_str().unwrap_or_default(),
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "stop",
            ],
        )
        .output();
    }
}
