//! warren against OpenSSH's `ssh -N -L` on the same sshd, in one run, alternating, median of 5:
//! bulk throughput both ways (default ciphers and the same cipher), through one jump, at
//! 50 ms RTT; per-connection latency; 1000 concurrent connections; cold start; memory; and
//! what each costs in CPU: user+system seconds of the warren and the ssh process per GiB each
//! way (default ciphers and each of aes128-gcm, aes256-gcm, chacha20-poly1305 forced on
//! both), and per 10,000 short connections (connect, 1 KiB echo, close).
//! Prints a table with the ratios and writes target/bench-vs-openssh.json.
//!
//! Run: `cargo bench --bench vs_openssh` (needs sshd and ssh; builds the release binary).
//! Everything listens on 127.0.0.1; every loop is bounded.

#[path = "../tests/support/sshd.rs"]
mod sshd;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sshd::{Sshd, free_port, keygen};

const RUNS: usize = 5;
const BULK: usize = 256 << 20;
const BULK_RTT: usize = 32 << 20;
const GIB: usize = 1 << 30;
/// Runs of each CPU row (each moves a GiB per program).
const CPU_RUNS: usize = 3;
/// The ciphers the CPU rows force on both programs (None: each program's default).
const CPU_CIPHERS: [(&str, Option<&str>); 4] = [
    ("default ciphers", None),
    ("aes128-gcm", Some("aes128-gcm@openssh.com")),
    ("aes256-gcm", Some("aes256-gcm@openssh.com")),
    ("chacha20-poly1305", Some("chacha20-poly1305@openssh.com")),
];

// ---------- the far end: sink, source, echo, and a delaying proxy ----------

/// Reads until EOF, then answers with the byte count (so an upload is timed to its arrival).
fn sink() -> u16 {
    serve(|mut s| {
        let mut buf = vec![0u8; 1 << 18];
        let mut n: u64 = 0;
        while let Ok(k) = s.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        let _ = s.write_all(&n.to_be_bytes());
    })
}

/// Reads an 8-byte length, writes that many bytes, closes.
fn source() -> u16 {
    serve(|mut s| {
        let mut len = [0u8; 8];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let mut left = u64::from_be_bytes(len) as usize;
        let buf = vec![0x5au8; 1 << 18];
        while left > 0 {
            let k = left.min(buf.len());
            if s.write_all(&buf[..k]).is_err() {
                return;
            }
            left -= k;
        }
    })
}

fn echo() -> u16 {
    serve(|s| {
        let mut r = s.try_clone().expect("clone");
        let mut w = s;
        let _ = std::io::copy(&mut r, &mut w);
    })
}

fn serve(handler: fn(TcpStream)) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let _ = s.set_nodelay(true);
            std::thread::spawn(move || handler(s));
        }
    });
    port
}

/// A TCP proxy to `to` that holds every chunk `delay` in each direction (RTT = 2 x delay).
fn delay_proxy(to: u16, delay: Duration) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for client in l.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                continue;
            };
            for (from, into) in [
                (client.try_clone(), server.try_clone()),
                (server.try_clone(), client.try_clone()),
            ] {
                let (Ok(mut from), Ok(mut into)) = (from, into) else {
                    continue;
                };
                let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 16];
                    while let Ok(k) = from.read(&mut buf) {
                        if k == 0
                            || tx
                                .send((Instant::now() + delay, buf[..k].to_vec()))
                                .is_err()
                        {
                            break;
                        }
                    }
                });
                std::thread::spawn(move || {
                    for (due, chunk) in rx {
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        if into.write_all(&chunk).is_err() {
                            break;
                        }
                    }
                    let _ = into.shutdown(Shutdown::Write);
                });
            }
        }
    });
    port
}

// ---------- measurements through a local port ----------

fn upload(port: u16, bytes: usize) -> Option<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = s.set_nodelay(true);
    let buf = vec![0xa5u8; 1 << 18];
    let mut left = bytes;
    while left > 0 {
        let k = left.min(buf.len());
        s.write_all(&buf[..k]).ok()?;
        left -= k;
    }
    s.shutdown(Shutdown::Write).ok()?;
    let mut ack = [0u8; 8];
    s.read_exact(&mut ack).ok()?;
    (u64::from_be_bytes(ack) as usize == bytes).then(|| t.elapsed())
}

fn download(port: u16, bytes: usize) -> Option<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(&(bytes as u64).to_be_bytes()).ok()?;
    let mut buf = vec![0u8; 1 << 18];
    let mut got = 0;
    while got < bytes {
        let k = s.read(&mut buf).ok()?;
        if k == 0 {
            return None;
        }
        got += k;
    }
    Some(t.elapsed())
}

fn echo_once(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut b = [0u8; 1];
    s.write_all(b"x").is_ok() && s.read_exact(&mut b).is_ok() && b[0] == b'x'
}

fn latencies(port: u16, n: usize) -> Vec<Duration> {
    (0..n)
        .filter_map(|_| {
            let t = Instant::now();
            echo_once(port).then(|| t.elapsed())
        })
        .collect()
}

/// `n` simultaneous connections, each echoing 1 MiB: (total time, failures).
fn concurrency(port: u16, n: usize) -> (Duration, usize) {
    let t = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            std::thread::spawn(move || -> bool {
                let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
                    return false;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
                let Ok(mut w) = s.try_clone() else {
                    return false;
                };
                let writer = std::thread::spawn(move || {
                    let buf = vec![7u8; 1 << 20];
                    let ok = w.write_all(&buf).is_ok();
                    let _ = w.shutdown(Shutdown::Write);
                    ok
                });
                let mut r = s;
                let mut got = 0usize;
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(k) = r.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    got += k;
                }
                writer.join().unwrap_or(false) && got == 1 << 20
            })
        })
        .collect();
    let failures = handles
        .into_iter()
        .map(|h| h.join().unwrap_or(false))
        .filter(|ok| !ok)
        .count();
    (t.elapsed(), failures)
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds the process `pid` (all its threads) has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After "pid (comm) ": state is field 3, utime 14 and stime 15 of the whole line.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The CPU seconds `pid` spends while `work` runs (NaN if the work failed).
fn cpu_of(pid: u32, work: impl FnOnce() -> bool) -> f64 {
    let before = cpu_secs(pid);
    if !work() {
        return f64::NAN;
    }
    cpu_secs(pid) - before
}

/// `n` connections one after another, each echoing 1 KiB and closing.
fn short_connections(port: u16, n: usize) -> bool {
    let data = [0x5au8; 1024];
    (0..n).all(|_| {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let mut back = [0u8; 1024];
        s.write_all(&data).is_ok() && s.read_exact(&mut back).is_ok() && back == data
    })
}

// ---------- the two tunnel programs ----------

struct Tunnel {
    child: Child,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn warren_bin() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "warren"])
        .status()
        .expect("cargo build");
    assert!(status.success(), "building the release binary failed");
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/warren")
}

fn wait_echo(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !echo_once(port) {
        assert!(
            Instant::now() < deadline,
            "{what}: no echo through 127.0.0.1:{port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn start_warren(bin: &Path, cfg: &Path, home: &Path, hosts: &[&str]) -> Tunnel {
    let mut cmd = Command::new(bin);
    cmd.arg("--ssh-config")
        .arg(cfg)
        .args(["up", "--json"])
        .args(hosts);
    // Connections warren could not serve are written to warren.stderr, for the report.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("warren.stderr"))
        .expect("log");
    cmd.env("HOME", home)
        .env("WARREN_DEBUG_FAILURES", "1")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    let mut child = cmd.spawn().expect("start warren");
    let out = child.stdout.take().expect("stdout");
    // Drain stdout so warren never blocks on it.
    std::thread::spawn(move || for _ in BufReader::new(out).lines() {});
    Tunnel { child }
}

fn start_ssh(cfg: &Path, home: &Path, host: &str, extra: &[&str]) -> Tunnel {
    let child = Command::new("ssh")
        .arg("-F")
        .arg(cfg)
        .args([
            "-N",
            "-o",
            "BatchMode=yes",
            "-o",
            "ExitOnForwardFailure=yes",
        ])
        .args(extra)
        .arg(host)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ssh");
    Tunnel { child }
}

// ---------- results ----------

struct Row {
    name: String,
    unit: &'static str,
    warren: f64,
    ssh: f64,
    /// Higher is better (throughput) or lower (time, memory).
    higher_better: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn percentile(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

fn mbps(bytes: usize, d: Option<Duration>) -> f64 {
    d.map(|d| bytes as f64 / d.as_secs_f64() / 1e6)
        .unwrap_or(0.0)
}

/// Alternates warren and ssh for RUNS rounds; returns their medians.
fn alternate(w: impl FnMut() -> f64, s: impl FnMut() -> f64) -> (f64, f64) {
    alternate_n(RUNS, w, s)
}

/// [`alternate`] for `runs` rounds.
fn alternate_n(runs: usize, mut w: impl FnMut() -> f64, mut s: impl FnMut() -> f64) -> (f64, f64) {
    let (mut wv, mut sv) = (Vec::new(), Vec::new());
    for run in 0..runs {
        if run % 2 == 0 {
            wv.push(w());
            sv.push(s());
        } else {
            sv.push(s());
            wv.push(w());
        }
    }
    // Every run is printed: a row whose runs split into two clusters is a behaviour to
    // explain, which the median alone would hide.
    let runs = |v: &[f64]| {
        v.iter()
            .map(|x| {
                if x.abs() < 100.0 {
                    format!("{x:.2}")
                } else {
                    format!("{x:.0}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("    runs: warren [{}], ssh [{}]", runs(&wv), runs(&sv));
    (median(wv), median(sv))
}

fn main() {
    // `cargo bench --bench vs_openssh -- NAME` runs only the sections whose name contains NAME:
    // throughput, latency, concurrency, jump, proxy, rtt, cold, cpu, memory.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let want = |section: &str| filter.as_deref().is_none_or(|f| section.contains(f));
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("SKIPPED: sshd is not installed (scripts/test installs it)");
        return;
    }
    let bin = warren_bin();
    let home = tempfile::tempdir().expect("home");
    let home_path = home.path().to_path_buf();
    let bastion = Sshd::start("");
    let jump = Sshd::start("");
    let key = keygen(&home_path, "id_ed25519", "ed25519", "", false);
    bastion.authorize(&key.public_line);
    jump.authorize(&key.public_line);
    let rtt_port = delay_proxy(bastion.port, Duration::from_millis(25));
    let (sink, src, echo) = (sink(), source(), echo());
    let fields: Vec<String> = bastion
        .host_key_line
        .split_whitespace()
        .map(String::from)
        .collect();
    let kh = home_path.join("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "{}\n{}\n[127.0.0.1]:{rtt_port} {} {}\n",
            bastion.known_hosts_line(),
            jump.known_hosts_line(),
            fields[0],
            fields[1]
        ),
    )
    .expect("known_hosts");
    let user = String::from_utf8_lossy(&Command::new("id").arg("-un").output().expect("id").stdout)
        .trim()
        .to_string();

    // One ssh_config for both programs: warren reads it, ssh uses it with -F.
    let ports: Vec<u16> = (0..40).map(|_| free_port()).collect();
    let common = format!(
        "    HostName 127.0.0.1\n    User {user}\n    IdentityFile {}\n    IdentitiesOnly yes\n    UserKnownHostsFile {}\n    StrictHostKeyChecking yes\n",
        key.private.display(),
        kh.display()
    );
    let fwd = |base: usize| {
        format!(
            "    LocalForward 127.0.0.1:{} 127.0.0.1:{sink}\n    LocalForward 127.0.0.1:{} 127.0.0.1:{src}\n    LocalForward 127.0.0.1:{} 127.0.0.1:{echo}\n",
            ports[base],
            ports[base + 1],
            ports[base + 2]
        )
    };
    let mut cfg = String::new();
    cfg += &format!("Host jump\n    Port {}\n{common}\n", jump.port);
    for (name, base, port, extra) in [
        ("w-direct", 0, bastion.port, ""),
        ("s-direct", 3, bastion.port, ""),
        (
            "s-gcm",
            6,
            bastion.port,
            "    Ciphers aes256-gcm@openssh.com\n",
        ),
        ("w-jump", 9, bastion.port, "    ProxyJump jump\n"),
        ("s-jump", 12, bastion.port, "    ProxyJump jump\n"),
        ("w-rtt", 15, rtt_port, ""),
        ("s-rtt", 18, rtt_port, ""),
        (
            "w-proxy",
            23,
            bastion.port,
            "    ProxyCommand nc 127.0.0.1 %p\n",
        ),
        (
            "s-proxy",
            26,
            bastion.port,
            "    ProxyCommand nc 127.0.0.1 %p\n",
        ),
    ] {
        cfg += &format!(
            "Host {name}\n    Port {port}\n{common}{extra}{}\n",
            fwd(base)
        );
    }
    for (name, p) in [("w-cold", ports[21]), ("s-cold", ports[22])] {
        cfg += &format!(
            "Host {name}\n    Port {}\n{common}    LocalForward 127.0.0.1:{p} 127.0.0.1:{echo}\n\n",
            bastion.port
        );
    }
    // The CPU rows' hosts: w-cpu-N and s-cpu-N, N indexing CPU_CIPHERS, each with a sink,
    // a source and an echo forward.
    let cpu_ports: Vec<[u16; 3]> = (0..CPU_CIPHERS.len() * 2)
        .map(|_| [free_port(), free_port(), free_port()])
        .collect();
    for (i, (_, cipher)) in CPU_CIPHERS.iter().enumerate() {
        for (j, who) in ["w", "s"].iter().enumerate() {
            let p = cpu_ports[i * 2 + j];
            cfg += &format!(
                "Host {who}-cpu-{i}\n    Port {}\n{common}{}    LocalForward 127.0.0.1:{} 127.0.0.1:{sink}\n    LocalForward 127.0.0.1:{} 127.0.0.1:{src}\n    LocalForward 127.0.0.1:{} 127.0.0.1:{echo}\n\n",
                bastion.port,
                cipher
                    .map(|c| format!("    Ciphers {c}\n"))
                    .unwrap_or_default(),
                p[0],
                p[1],
                p[2]
            );
        }
    }
    let idle: Vec<u16> = (0..100).map(|_| free_port()).collect();
    for (i, p) in idle.iter().enumerate() {
        cfg += &format!(
            "Host w-idle-{i}\n    Port {}\n{common}    LocalForward 127.0.0.1:{p} 127.0.0.1:{echo}\n\n",
            bastion.port
        );
    }
    let cfg_path = home_path.join("ssh_config");
    std::fs::write(&cfg_path, &cfg).expect("ssh_config");

    let mut rows: Vec<Row> = Vec::new();
    let mut push = |name: &str, unit: &'static str, (w, s): (f64, f64), higher_better: bool| {
        println!("  measured {name}: warren {w:.2} {unit}, ssh {s:.2} {unit}");
        rows.push(Row {
            name: name.to_string(),
            unit,
            warren: w,
            ssh: s,
            higher_better,
        });
    };

    {
        let _w = start_warren(&bin, &cfg_path, &home_path, &["w-direct"]);
        let _s = start_ssh(&cfg_path, &home_path, "s-direct", &[]);
        let _g = start_ssh(&cfg_path, &home_path, "s-gcm", &[]);
        for p in [ports[2], ports[5], ports[8]] {
            wait_echo(p, "direct tunnels");
        }
        if want("throughput") {
            push(
                "upload, default ciphers",
                "MB/s",
                alternate(
                    || mbps(BULK, upload(ports[0], BULK)),
                    || mbps(BULK, upload(ports[3], BULK)),
                ),
                true,
            );
            push(
                "download, default ciphers",
                "MB/s",
                alternate(
                    || mbps(BULK, download(ports[1], BULK)),
                    || mbps(BULK, download(ports[4], BULK)),
                ),
                true,
            );
            push(
                "upload, aes256-gcm both",
                "MB/s",
                alternate(
                    || mbps(BULK, upload(ports[0], BULK)),
                    || mbps(BULK, upload(ports[6], BULK)),
                ),
                true,
            );
            push(
                "download, aes256-gcm both",
                "MB/s",
                alternate(
                    || mbps(BULK, download(ports[1], BULK)),
                    || mbps(BULK, download(ports[7], BULK)),
                ),
                true,
            );
        }
        if want("latency") {
            let (wl, sl) = (latencies(ports[2], 200), latencies(ports[5], 200));
            let (wl2, sl2) = (wl.clone(), sl.clone());
            push(
                "connect + 1-byte echo p50",
                "ms",
                (percentile(wl, 0.5), percentile(sl, 0.5)),
                false,
            );
            push(
                "connect + 1-byte echo p99",
                "ms",
                (percentile(wl2, 0.99), percentile(sl2, 0.99)),
                false,
            );
        }
        if want("concurrency") {
            let w_pid = _w.child.id();
            let s_pid = _s.child.id();
            let (wt, wf) = concurrency(ports[2], 1000);
            let (st, sf) = concurrency(ports[5], 1000);
            push(
                "1000 conns x 1 MiB echo: time",
                "s",
                (wt.as_secs_f64(), st.as_secs_f64()),
                false,
            );
            push(
                "1000 conns x 1 MiB echo: failures",
                "conns",
                (wf as f64, sf as f64),
                false,
            );
            push(
                "peak RSS, 1000 active conns",
                "MB",
                (
                    rss_kib(w_pid, "VmHWM:") as f64 / 1024.0,
                    rss_kib(s_pid, "VmHWM:") as f64 / 1024.0,
                ),
                false,
            );
        }
    }
    if want("jump") {
        let _w = start_warren(&bin, &cfg_path, &home_path, &["w-jump"]);
        let _s = start_ssh(&cfg_path, &home_path, "s-jump", &[]);
        wait_echo(ports[11], "warren through a jump");
        wait_echo(ports[14], "ssh -J");
        push(
            "upload through one jump",
            "MB/s",
            alternate(
                || mbps(BULK, upload(ports[9], BULK)),
                || mbps(BULK, upload(ports[12], BULK)),
            ),
            true,
        );
        push(
            "download through one jump",
            "MB/s",
            alternate(
                || mbps(BULK, download(ports[10], BULK)),
                || mbps(BULK, download(ports[13], BULK)),
            ),
            true,
        );
    }
    // A bastion reached through a command (SSM, IAP, Cloudflare are reached so): the same
    // `nc` for both.
    if want("proxy") && Path::new("/usr/bin/nc").exists() {
        let _w = start_warren(&bin, &cfg_path, &home_path, &["w-proxy"]);
        let _s = start_ssh(&cfg_path, &home_path, "s-proxy", &[]);
        wait_echo(ports[25], "warren through ProxyCommand nc");
        wait_echo(ports[28], "ssh through ProxyCommand nc");
        push(
            "upload through ProxyCommand nc",
            "MB/s",
            alternate(
                || mbps(BULK, upload(ports[23], BULK)),
                || mbps(BULK, upload(ports[26], BULK)),
            ),
            true,
        );
        push(
            "download through ProxyCommand nc",
            "MB/s",
            alternate(
                || mbps(BULK, download(ports[24], BULK)),
                || mbps(BULK, download(ports[27], BULK)),
            ),
            true,
        );
    } else if want("proxy") {
        println!("  proxy: skipped, nc is not installed (scripts/test installs netcat-openbsd)");
    }
    if want("rtt") {
        let _w = start_warren(&bin, &cfg_path, &home_path, &["w-rtt"]);
        let _s = start_ssh(&cfg_path, &home_path, "s-rtt", &[]);
        wait_echo(ports[17], "warren at 50 ms RTT");
        wait_echo(ports[20], "ssh at 50 ms RTT");
        push(
            "upload at 50 ms RTT",
            "MB/s",
            alternate(
                || mbps(BULK_RTT, upload(ports[15], BULK_RTT)),
                || mbps(BULK_RTT, upload(ports[18], BULK_RTT)),
            ),
            true,
        );
        push(
            "download at 50 ms RTT",
            "MB/s",
            alternate(
                || mbps(BULK_RTT, download(ports[16], BULK_RTT)),
                || mbps(BULK_RTT, download(ports[19], BULK_RTT)),
            ),
            true,
        );
    }
    let cold = |warren: bool| -> f64 {
        let t = Instant::now();
        let _t = if warren {
            start_warren(&bin, &cfg_path, &home_path, &["w-cold"])
        } else {
            start_ssh(&cfg_path, &home_path, "s-cold", &[])
        };
        wait_echo(if warren { ports[21] } else { ports[22] }, "cold start");
        t.elapsed().as_secs_f64() * 1000.0
    };
    if want("cold") {
        push(
            "cold start to first echoed byte",
            "ms",
            alternate(|| cold(true), || cold(false)),
            false,
        );
    }
    if want("cpu") {
        for (i, (cipher, _)) in CPU_CIPHERS.iter().enumerate() {
            let (wp, sp) = (cpu_ports[i * 2], cpu_ports[i * 2 + 1]);
            let w = start_warren(&bin, &cfg_path, &home_path, &[&format!("w-cpu-{i}")]);
            let s = start_ssh(&cfg_path, &home_path, &format!("s-cpu-{i}"), &[]);
            wait_echo(wp[2], "warren for the CPU rows");
            wait_echo(sp[2], "ssh for the CPU rows");
            let (wpid, spid) = (w.child.id(), s.child.id());
            for (dir, up) in [("upload", true), ("download", false)] {
                let moved = |port: [u16; 3]| {
                    if up {
                        upload(port[0], GIB).is_some()
                    } else {
                        download(port[1], GIB).is_some()
                    }
                };
                push(
                    &format!("CPU per GiB {dir}, {cipher}"),
                    "s",
                    alternate_n(
                        CPU_RUNS,
                        || cpu_of(wpid, || moved(wp)),
                        || cpu_of(spid, || moved(sp)),
                    ),
                    false,
                );
            }
            if i == 0 {
                push(
                    "CPU per 10,000 conns (1 KiB echo)",
                    "s",
                    alternate_n(
                        CPU_RUNS,
                        || cpu_of(wpid, || short_connections(wp[2], 10_000)),
                        || cpu_of(spid, || short_connections(sp[2], 10_000)),
                    ),
                    false,
                );
            }
        }
    }
    if want("memory") {
        let names: Vec<String> = (0..100).map(|i| format!("w-idle-{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let w = start_warren(&bin, &cfg_path, &home_path, &refs);
        for p in &idle {
            wait_echo(*p, "idle tunnels");
        }
        let mut args: Vec<String> = Vec::new();
        for p in &idle {
            args.push("-L".into());
            args.push(format!("127.0.0.1:{}:127.0.0.1:{echo}", *p));
        }
        std::thread::sleep(Duration::from_millis(500));
        let w_rss = rss_kib(w.child.id(), "VmRSS:") as f64 / 1024.0;
        // Private (anonymous) memory is the program's own; file-backed pages are the binary's
        // and its libraries', shared and reclaimable.
        let w_anon = rss_kib(w.child.id(), "RssAnon:") as f64 / 1024.0;
        drop(w);
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let s = start_ssh(&cfg_path, &home_path, "s-cold", &arg_refs);
        for p in &idle {
            wait_echo(*p, "ssh idle forwards");
        }
        std::thread::sleep(Duration::from_millis(500));
        let s_rss = rss_kib(s.child.id(), "VmRSS:") as f64 / 1024.0;
        let s_anon = rss_kib(s.child.id(), "RssAnon:") as f64 / 1024.0;
        push("RSS with 100 idle tunnels", "MB", (w_rss, s_rss), false);
        push(
            "private RSS (RssAnon), 100 idle tunnels",
            "MB",
            (w_anon, s_anon),
            false,
        );
    }

    println!(
        "\n{:<38} {:>12} {:>12} {:>8}  (ratio warren/ssh; {} runs alternating, CPU rows {}, median)",
        "measurement", "warren", "ssh", "ratio", RUNS, CPU_RUNS
    );
    let mut json = Vec::new();
    for r in &rows {
        let ratio = if r.ssh == 0.0 {
            f64::NAN
        } else {
            r.warren / r.ssh
        };
        let better = if r.higher_better {
            ratio >= 1.0
        } else {
            ratio <= 1.0
        };
        println!(
            "{:<38} {:>9.2} {:<2} {:>9.2} {:<2} {:>7.2}x {}",
            r.name,
            r.warren,
            r.unit,
            r.ssh,
            r.unit,
            ratio,
            if ratio.is_nan() || better {
                ""
            } else {
                "(ssh better)"
            }
        );
        json.push(format!(
            "{{\"name\":{:?},\"unit\":{:?},\"warren\":{},\"ssh\":{},\"ratio\":{},\"higher_is_better\":{}}}",
            r.name,
            r.unit,
            r.warren,
            r.ssh,
            if ratio.is_nan() { "null".to_string() } else { format!("{ratio:.4}") },
            r.higher_better
        ));
    }
    if let Ok(log) = std::fs::read_to_string(home_path.join("warren.stderr"))
        && !log.is_empty()
    {
        let lines: Vec<&str> = log.lines().collect();
        println!(
            "\nwarren reported {} connection failures; the first: {}",
            lines.len(),
            lines[0]
        );
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-vs-openssh.json");
    if std::fs::write(&out, format!("[{}]\n", json.join(",\n"))).is_ok() {
        println!("written: {}", out.display());
    }
}
