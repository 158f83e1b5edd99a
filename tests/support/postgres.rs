//! A real PostgreSQL cluster of the test's own on 127.0.0.1 (trust auth), stopped on drop.
//! It refuses to run as root, so as root it runs as the `postgres` user.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
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
        Postgres::start_auth(Some(password))
    }

    fn start_auth(password: Option<&str>) -> Option<Postgres> {
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
        for _ in 0..5 {
            let port = super::sshd::free_port();
            let opts = format!("-k {} -h 127.0.0.1 -p {port}", dir.path().display());
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
                return Some(Postgres { port, dir, bin });
            }
        }
        panic!("PostgreSQL did not start");
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
