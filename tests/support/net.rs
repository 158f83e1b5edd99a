//! Loopback helpers: an echo server and a running `warren up`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// An echo server on 127.0.0.1 (a thread per connection); returns its port.
pub fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = s.try_clone().expect("clone");
                let mut w = s;
                let _ = std::io::copy(&mut r, &mut w);
                let _ = w.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

/// Sends `data` through `addr` and reads the echo back, writing and reading concurrently.
pub fn echo_through(addr: &str, data: &[u8]) -> Vec<u8> {
    let s = TcpStream::connect(addr).expect("connect to the tunnel");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut w = s.try_clone().expect("clone");
    let owned = data.to_vec();
    let writer = std::thread::spawn(move || {
        w.write_all(&owned).expect("write through the tunnel");
        let _ = w.shutdown(std::net::Shutdown::Write);
    });
    let mut out = Vec::with_capacity(data.len());
    let mut r = s;
    r.read_to_end(&mut out).expect("read the echo");
    writer.join().expect("writer");
    out
}

/// `warren up --json` running in the background; killed on drop.
pub struct Up {
    pub child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<serde_json::Value>,
    stderr_path: std::path::PathBuf,
}

impl Up {
    pub fn start(home: &std::path::Path, args: &[&str]) -> Up {
        Up::start_env(home, args, &[])
    }

    pub fn start_env(home: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Up {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
            .args(args)
            .current_dir(home)
            .env("HOME", home)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("EPOCH_CONFIG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // A file, not a pipe: a pipe nobody reads could fill and block warren.
            .stderr(std::fs::File::create(home.join("warren-up.stderr")).expect("stderr file"))
            .spawn()
            .expect("start warren up");
        let stdout: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Up {
            child,
            lines: rx,
            seen: Vec::new(),
            stderr_path: home.join("warren-up.stderr"),
        }
    }

    /// Waits (with a deadline) for a JSON event matching `pred`.
    pub fn wait_for(
        &mut self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait_for_within(what, Duration::from_secs(30), pred)
    }

    /// [`Up::wait_for`] with its own deadline (for an event behind a timeout of its own).
    pub fn wait_for_within(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let v: serde_json::Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => {
                    let stderr = self.stderr_now();
                    panic!(
                        "no {what} event within {} s; saw: {:#?}\nstderr: {stderr}",
                        within.as_secs(),
                        self.seen
                    )
                }
            }
        }
    }

    /// The local address of the first `listening` event for `name`, once it is up.
    pub fn listening(&mut self, name: &str) -> String {
        let ev = self.wait_for("listening", |v| {
            v["event"] == "listening" && v["name"] == name
        });
        self.wait_for("up", |v| {
            v["event"] == "state" && v["state"] == "up" && v["name"] == name
        });
        ev["local"].as_str().unwrap_or_default().to_string()
    }

    fn stderr_now(&mut self) -> String {
        let _ = self.child.kill();
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGINT, then the exit code.
    pub fn interrupt(mut self) -> i32 {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "warren up did not exit after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `dir/nc`, a stand-in for `nc HOST PORT` (netcat is not installed everywhere; bash
/// is): stdin and stdout relayed to HOST:PORT until either side closes, or until a SIGHUP or
/// SIGTERM (as ssh sends its ProxyCommand), taking both halves with it so that nothing is
/// left holding the connection. Returns its path.
pub fn nc_script(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("nc");
    std::fs::write(
        &path,
        "#!/bin/bash\n\
         exec 3<>\"/dev/tcp/$1/$2\" || exit 1\n\
         exec 4<&0\n\
         cat <&3 & r=$!\n\
         cat <&4 >&3 & w=$!\n\
         trap 'kill $r $w 2>/dev/null; exit 0' HUP TERM\n\
         wait -n\n\
         kill $r $w 2>/dev/null\n",
    )
    .expect("write nc");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod nc");
    path
}
