//! A real Redis server of the test's own on 127.0.0.1 (its own port and directory, no
//! persistence; never the system service), stopped on drop. [`Redis::cli`] runs a command
//! against it with the admin password.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub port: u16,
    /// The port speaks TLS only (`tls-port`).
    pub tls: bool,
    /// The `default` user's password (requirepass).
    pub password: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Redis {
    /// A server with `requirepass password` and the ACL lines `acl` (e.g. `user app on >pw
    /// ~* +@all`). `None` (with a SKIPPED line) when Redis is not installed; under CI=true, a
    /// panic.
    pub fn start(password: &str, acl: &[&str]) -> Option<Redis> {
        Redis::start_opts(password, acl, None)
    }

    /// As [`Redis::start`], speaking only TLS with this certificate, key and CA (PEM files).
    pub fn start_tls(
        password: &str,
        cert: &std::path::Path,
        key: &std::path::Path,
        ca: &std::path::Path,
    ) -> Option<Redis> {
        Redis::start_opts(password, &[], Some((cert, key, ca)))
    }

    fn start_opts(
        password: &str,
        acl: &[&str],
        tls: Option<(&std::path::Path, &std::path::Path, &std::path::Path)>,
    ) -> Option<Redis> {
        if !super::have("redis-server") {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "Redis is not installed, and CI=true: run scripts/test"
            );
            eprintln!("SKIPPED: redis-server is not installed (scripts/test installs it)");
            return None;
        }
        let dir = tempfile::tempdir().expect("redis dir");
        for _ in 0..5 {
            let port = super::sshd::free_port();
            let listen = match tls {
                None => format!("port {port}\n"),
                Some((c, k, ca)) => format!(
                    "port 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients no\n",
                    c.display(),
                    k.display(),
                    ca.display()
                ),
            };
            let mut conf = format!(
                "{listen}bind 127.0.0.1\ndir {}\nsave \"\"\nappendonly no\ndaemonize no\nrequirepass {password}\nlogfile {}\n",
                dir.path().display(),
                dir.path().join("redis.log").display()
            );
            for a in acl {
                conf.push_str(a);
                conf.push('\n');
            }
            let path = dir.path().join("redis.conf");
            std::fs::write(&path, conf).expect("redis.conf");
            let mut child = Command::new("redis-server")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Redis {
                        port,
                        tls: tls.is_some(),
                        password: password.to_string(),
                        dir,
                        child,
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "Redis did not start: {}",
            std::fs::read_to_string(dir.path().join("redis.log")).unwrap_or_default()
        );
    }

    /// Runs one command as `default` with the admin password; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "--no-auth-warning",
            ])
            .args(["-a", &self.password])
            .args(if self.tls {
                &["--tls", "--insecure"][..]
            } else {
                &[][..]
            })
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
