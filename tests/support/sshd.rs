//! A real OpenSSH sshd on 127.0.0.1, started by a test with its own temporary host key and
//! authorized_keys, and stopped (with its session processes) when dropped.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An ssh key pair made with ssh-keygen.
pub struct Key {
    pub private: PathBuf,
    pub public_line: String,
}

/// Makes a key pair under `dir`: `kind` is ed25519, rsa or ecdsa; `passphrase` "" for none;
/// `pem` writes the old PEM format (`-m PEM`).
pub fn keygen(dir: &Path, name: &str, kind: &str, passphrase: &str, pem: bool) -> Key {
    let private = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", passphrase, "-C", name, "-f"])
        .arg(&private);
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    if pem {
        cmd.args(["-m", "PEM"]);
    }
    let out = cmd.output().expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public_line = std::fs::read_to_string(private.with_extension("pub"))
        .or_else(|_| std::fs::read_to_string(format!("{}.pub", private.display())))
        .expect("read public key")
        .trim()
        .to_string();
    Key {
        private,
        public_line,
    }
}

/// A running sshd.
pub struct Sshd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub host_key_line: String,
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
}

impl Sshd {
    /// Starts sshd with `overrides` (sshd takes the first value of a keyword, so these win
    /// over the defaults written after them).
    pub fn start(overrides: &str) -> Sshd {
        let mut dir = tempfile::tempdir().expect("sshd dir");
        std::fs::create_dir_all("/run/sshd").ok();
        let host = keygen(dir.path(), "host_ed25519", "ed25519", "", false);
        std::fs::write(dir.path().join("authorized_keys"), "").expect("authorized_keys");
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            let log = dir.path().join("sshd.log");
            let d = dir.path().display();
            let text = format!(
                "{overrides}\nPort {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nUseDNS no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n\
                 MaxStartups 1000:30:1000\nMaxSessions 1000\n"
            );
            std::fs::write(&config, text).expect("sshd_config");
            let child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start /usr/sbin/sshd");
            let mut sshd = Sshd {
                port,
                host_key_line: host.public_line.clone(),
                child: Some(child),
                config,
                log,
                dir,
            };
            if sshd.wait_ready() {
                return sshd;
            }
            last_log = sshd.log_text();
            sshd.kill();
            dir = std::mem::replace(&mut sshd.dir, tempfile::tempdir().expect("dir"));
        }
        panic!("sshd did not start:\n{last_log}");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 8];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"SSH-2.0") {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Adds a line (a public key, with options if wanted) to authorized_keys.
    pub fn authorize(&self, line: &str) {
        let p = self.dir.path().join("authorized_keys");
        let mut text = std::fs::read_to_string(&p).unwrap_or_default();
        text.push_str(line);
        text.push('\n');
        std::fs::write(p, text).expect("authorized_keys");
    }

    /// The known_hosts line for this server: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`.
    pub fn known_hosts_line(&self) -> String {
        let mut parts = self.host_key_line.split_whitespace();
        let kind = parts.next().unwrap_or_default();
        let key = parts.next().unwrap_or_default();
        format!("[127.0.0.1]:{} {kind} {key}", self.port)
    }

    /// The host key's fingerprint as `ssh-keygen -l` prints it (`SHA256:...`).
    pub fn fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .args(["-l", "-f"])
            .arg(self.dir.path().join("host_ed25519.pub"))
            .output()
            .expect("ssh-keygen -l");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The session processes (children of the listening sshd): one per SSH connection.
    pub fn session_pids(&self) -> Vec<u32> {
        let Some(pid) = self.pid() else {
            return Vec::new();
        };
        let out = Command::new("ps")
            .args(["-o", "pid=", "--ppid", &pid.to_string()])
            .output();
        out.map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
    }

    /// Sends a signal to the listener and every session process.
    pub fn signal_all(&self, signal: &str) {
        let mut pids = self.session_pids();
        if let Some(p) = self.pid() {
            pids.push(p);
        }
        for p in pids {
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), &p.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Every process under the listener: each session's monitor and the processes it
    /// forked (the one running as the user holds the connection, and outlives its monitor
    /// if only that is killed).
    fn descendants(&self) -> Vec<u32> {
        let mut found = Vec::new();
        let mut next: Vec<u32> = self.pid().into_iter().collect();
        // Bounded: sshd's tree is a few levels deep.
        for _ in 0..8 {
            let mut children = Vec::new();
            for parent in &next {
                let out = Command::new("ps")
                    .args(["-o", "pid=", "--ppid", &parent.to_string()])
                    .output();
                if let Ok(o) = out {
                    children.extend(
                        String::from_utf8_lossy(&o.stdout)
                            .split_whitespace()
                            .filter_map(|p| p.parse::<u32>().ok()),
                    );
                }
            }
            if children.is_empty() {
                break;
            }
            found.extend(&children);
            next = children;
        }
        found
    }

    /// Stops the listener and its sessions: the bastion is gone.
    pub fn kill(&mut self) {
        // Sessions are under the listener: stop them first, or they outlive it. The tree is
        // read whole before anything is killed, so a process reparented meanwhile is not
        // missed.
        let pids: Vec<String> = self.descendants().iter().map(u32::to_string).collect();
        if !pids.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&pids)
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Puts `lines` at the top of the config (they win) and restarts sshd on the same port.
    pub fn reconfigure(&mut self, lines: &str) {
        let text = std::fs::read_to_string(&self.config).expect("sshd_config");
        std::fs::write(&self.config, format!("{lines}\n{text}")).expect("sshd_config");
        self.restart();
    }

    /// Starts sshd again on the same port with a new host key: to its clients, a host whose
    /// key changed.
    pub fn restart_with_a_new_host_key(&mut self) {
        self.kill();
        let dir = self.dir.path();
        for f in ["host_ed25519", "host_ed25519.pub"] {
            std::fs::remove_file(dir.join(f)).expect("remove the old host key");
        }
        self.host_key_line = keygen(dir, "host_ed25519", "ed25519", "", false).public_line;
        self.restart();
    }

    /// Starts sshd again on the same port with the same keys and config.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(&self.config)
                .arg("-E")
                .arg(&self.log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("restart sshd");
            self.child = Some(child);
            if self.wait_ready() {
                return;
            }
            self.kill();
            assert!(
                Instant::now() < deadline,
                "sshd did not restart:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.signal_all("CONT");
        self.kill();
    }
}

/// A port that was free a moment ago (sshd cannot take a bound socket; start() retries).
///
/// Ports come from 20000..32000, below Linux's ephemeral range (32768..61000), so no
/// outgoing connection of another test can take the port between this call and the bind
/// that uses it (as happens with a port the kernel picked for `:0`). A counter shared by
/// the binary's tests, started at an offset from the pid, hands each call its own port,
/// three apart, so the port after it stays free for a test of `--port-fallback`; one still
/// bound by something else is skipped.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const BASE: u32 = 20000;
    const SPAN: u32 = 12000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(97) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN / 3 {
        let port = (BASE + NEXT.fetch_add(3, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {BASE}..{}", BASE + SPAN)
}

/// OpenSSH's `ssh ARGS` with HOME set to `home` and no standard input: whether it exited 0,
/// and what it said on stderr.
pub fn run_ssh(home: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("ssh")
        .args(args)
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
