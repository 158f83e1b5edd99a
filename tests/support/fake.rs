//! Hostile servers on loopback, for fault injection on top of the real servers: each
//! connection runs a handler in its own thread; every endless stream stops by itself after a
//! bound (or when warren hangs up). And `warren doctor` run as a child whose peak memory is
//! read from /proc while it runs (VmHWM) and from the kernel when it exits (wait4's rusage).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::Scratch;

/// Serves every connection on 127.0.0.1 with `handler`; returns the port.
pub fn serve(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a fake server");
    let port = l.local_addr().expect("addr").port();
    let handler = std::sync::Arc::new(handler);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            let _ = s.set_write_timeout(Some(Duration::from_secs(30)));
            let h = std::sync::Arc::clone(&handler);
            std::thread::spawn(move || h(s));
        }
    });
    port
}

/// Writes `chunk` again and again until the peer hangs up or `limit` bytes are written.
pub fn endless(s: &mut TcpStream, chunk: &[u8], limit: usize) {
    let mut sent = 0;
    while sent < limit && s.write_all(chunk).is_ok() {
        sent += chunk.len();
    }
}

/// Holds the connection open (silent) for a while, then drops it.
pub fn linger(s: TcpStream) {
    std::thread::sleep(Duration::from_secs(20));
    drop(s);
}

/// Reads a PostgreSQL frontend message without a type byte (SSLRequest, startup): its body.
pub fn read_untyped(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let len = u32::from_be_bytes(len) as usize;
    let mut body = vec![0u8; len.checked_sub(4)?.min(1 << 16)];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// Reads a typed PostgreSQL frontend message: its type and body.
pub fn read_typed(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut tag = [0u8; 1];
    s.read_exact(&mut tag).ok()?;
    read_untyped(s).map(|b| (tag[0], b))
}

/// A typed PostgreSQL backend message.
pub fn pg_message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// The start every fake PostgreSQL shares: answers the SSLRequest with 'N' (no TLS) and
/// reads the startup message.
pub fn pg_no_tls_then_startup(s: &mut TcpStream) -> Option<()> {
    let first = read_untyped(s)?;
    if first == [0x04, 0xd2, 0x16, 0x2f] {
        s.write_all(b"N").ok()?;
        read_untyped(s)?;
    }
    Some(())
}

/// One `warren doctor` run, measured.
pub struct Measured {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The child's peak resident set, in KiB.
    pub peak_rss_kb: u64,
    pub elapsed: Duration,
}

impl Measured {
    pub fn describe(&self) -> String {
        format!(
            "exit {} after {:?}, peak RSS {} KiB\n--- stdout\n{}--- stderr\n{}",
            self.code, self.elapsed, self.peak_rss_kb, self.stdout, self.stderr
        )
    }

    /// The probe (or other) step's JSON object, from `--json` output.
    pub fn step(&self, id: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.describe()));
        v["steps"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|s| s["id"] == id && s["status"] != "skip")
                    .cloned()
            })
            .unwrap_or_else(|| panic!("no {id} step:\n{}", self.describe()))
    }
}

fn vm_hwm_kb(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `warren --ssh-config /dev/null --known-hosts known_hosts doctor NAME ARGS` in the
/// scratch home, its peak memory followed until it exits (at most 60 s, then it is killed).
pub fn doctor(s: &Scratch, name: &str, args: &[&str]) -> Measured {
    let out = s.path().join("doctor.stdout");
    let err = s.path().join("doctor.stderr");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_warren"));
    cmd.args([
        "--ssh-config",
        "/dev/null",
        "--known-hosts",
        "known_hosts",
        "doctor",
        name,
    ])
    .args(args)
    .current_dir(s.path())
    .env("HOME", s.path())
    .stdin(std::process::Stdio::null())
    .stdout(std::fs::File::create(&out).expect("stdout file"))
    .stderr(std::fs::File::create(&err).expect("stderr file"));
    for (k, _) in std::env::vars() {
        if k.starts_with("EPOCH_") || k.starts_with("XDG_") || k == "SSH_AUTH_SOCK" {
            cmd.env_remove(k);
        }
    }
    let started = Instant::now();
    let child = cmd.spawn().expect("start warren doctor");
    let pid = child.id() as i32;
    let mut peak = 0;
    let code = loop {
        // Read before reaping: once reaped, /proc/PID is gone.
        if let Some(kb) = vm_hwm_kb(pid) {
            peak = peak.max(kb);
        }
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid value to be filled in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our own child; status and usage are valid for writing.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            peak = peak.max(usage.ru_maxrss as u64);
            break if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -libc::WTERMSIG(status)
            };
        }
        if started.elapsed() > Duration::from_secs(60) {
            // SAFETY: pid is our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("warren doctor {name} ran for more than 60 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    drop(child);
    Measured {
        code,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        peak_rss_kb: peak,
        elapsed: started.elapsed(),
    }
}
