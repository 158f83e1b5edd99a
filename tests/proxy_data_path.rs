//! The data path through a ProxyCommand, against a real sshd: `nc`, `socat - TCP:%h:%p` and
//! `ssh -W` as the command, each carrying data both ways through 4 parallel connections,
//! byte-exact, run after run. A stall detector fails the test when no byte moves for 5 s,
//! saying how far each connection got in each direction (a pipe written while its other end
//! is not read stalls exactly so: it carried a few hundred KB, then nothing).
//!
//! `WARREN_PROXY_MIB` (default 16) sets the MiB each connection sends, `WARREN_PROXY_RUNS`
//! (default 2) the runs per command: the acceptance run uses 256 and 20.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::Scratch;
use support::net::{Up, echo_server};
use support::sshd::{Sshd, free_port, keygen};
use support::tunnel::{have_servers, local_user};

const PARALLEL: usize = 4;
const STALL: Duration = Duration::from_secs(5);

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes that are the same for a seed, so the echo can be checked without keeping them.
fn block(seed: u64, i: u64) -> [u8; 8] {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 29)).to_le_bytes()
}

struct Progress {
    sent: AtomicU64,
    got: AtomicU64,
}

/// One connection: writes `len` bytes while reading the echo; returns the digests of what
/// was sent and what came back.
fn one(addr: &str, len: u64, seed: u64, p: Arc<Progress>) -> ([u8; 32], [u8; 32], u64) {
    let s = TcpStream::connect(addr).expect("connect to the tunnel");
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let mut w = s.try_clone().expect("clone");
    let pw = Arc::clone(&p);
    let writer = std::thread::spawn(move || {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut i = 0u64;
        let mut left = len;
        while left > 0 {
            let n = buf.len().min(left as usize);
            for c in buf[..n].chunks_mut(8) {
                let b = block(seed, i);
                c.copy_from_slice(&b[..c.len()]);
                i += 1;
            }
            if w.write_all(&buf[..n]).is_err() {
                break;
            }
            h.update(&buf[..n]);
            left -= n as u64;
            pw.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        let _ = w.shutdown(std::net::Shutdown::Write);
        <[u8; 32]>::from(h.finalize())
    });
    let mut h = Sha256::new();
    let mut r = s;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                h.update(&buf[..n]);
                total += n as u64;
                p.got.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    let sent = writer.join().expect("writer");
    (sent, h.finalize().into(), total)
}

/// Runs PARALLEL connections through `addr`, watching for a stall.
fn run(addr: &str, mib: u64, what: &str, run: usize, up: &Up) {
    let len = mib * 1024 * 1024;
    let progress: Vec<Arc<Progress>> = (0..PARALLEL)
        .map(|_| {
            Arc::new(Progress {
                sent: AtomicU64::new(0),
                got: AtomicU64::new(0),
            })
        })
        .collect();
    let workers: Vec<_> = progress
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (addr, p) = (addr.to_string(), Arc::clone(p));
            std::thread::spawn(move || one(&addr, len, (run * 16 + i) as u64 + 1, p))
        })
        .collect();
    let mut last = (0, Instant::now());
    while !workers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        let moved: u64 = progress
            .iter()
            .map(|p| p.sent.load(Ordering::Relaxed) + p.got.load(Ordering::Relaxed))
            .sum();
        if moved != last.0 {
            last = (moved, Instant::now());
        } else if last.1.elapsed() > STALL {
            let state: Vec<String> = progress
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    format!(
                        "connection {i}: sent {} of {len}, got back {}",
                        p.sent.load(Ordering::Relaxed),
                        p.got.load(Ordering::Relaxed)
                    )
                })
                .collect();
            panic!(
                "{what}, run {run}: no byte moved for {} s (warren pid {}):\n{}",
                STALL.as_secs(),
                up.child.id(),
                state.join("\n")
            );
        }
    }
    for (i, w) in workers.into_iter().enumerate() {
        let (sent, got, total) = w.join().expect("connection");
        assert_eq!(
            total, len,
            "{what}, run {run}, connection {i}: all came back"
        );
        assert_eq!(sent, got, "{what}, run {run}, connection {i}: byte-exact");
    }
}

#[test]
fn nc_socat_and_ssh_w_carry_every_byte_through_parallel_connections() {
    if !have_servers()
        || !support::require("nc")
        || !support::require("socat")
        || !support::require("ssh")
    {
        return;
    }
    let mib = setting("WARREN_PROXY_MIB", 16) as u64;
    let runs = setting("WARREN_PROXY_RUNS", 2);
    let (jump, target) = (Sshd::start(""), Sshd::start(""));
    let s = Scratch::new();
    let key = keygen(s.path(), "id_ed25519", "ed25519", "", false);
    let mut kh = String::new();
    for sshd in [&jump, &target] {
        sshd.authorize(&key.public_line);
        kh.push_str(&sshd.known_hosts_line());
        kh.push('\n');
    }
    s.write("known_hosts", &kh);
    let d = s.path().display();
    let host = |name: &str, sshd: &Sshd, lines: &str| {
        format!(
            "Host {name}\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {}\n    IdentitiesOnly yes\n    IdentityAgent none\n    UserKnownHostsFile {d}/known_hosts\n    GlobalKnownHostsFile none\n    StrictHostKeyChecking yes\n    BatchMode yes\n{lines}\n",
            sshd.port,
            local_user(),
            key.private.display()
        )
    };
    s.write("jump_config", &host("jump", &jump, ""));
    let echo = echo_server();
    let commands = [
        ("nc", "nc 127.0.0.1 %p".to_string()),
        ("socat", "socat - TCP:%h:%p".to_string()),
        ("ssh -W", format!("ssh -F {d}/jump_config -W %h:%p jump")),
    ];
    let mut config = String::new();
    let mut locals = Vec::new();
    for (i, (_, cmd)) in commands.iter().enumerate() {
        let local = free_port();
        locals.push(local);
        config.push_str(&host(
            &format!("p{i}"),
            &target,
            &format!(
                "    ProxyCommand {cmd}\n    LocalForward 127.0.0.1:{local} 127.0.0.1:{echo}\n"
            ),
        ));
    }
    s.write("ssh_config", &config);
    for (i, (what, _)) in commands.iter().enumerate() {
        let name = format!("p{i}");
        let mut up = Up::start(
            s.path(),
            &[
                "--ssh-config",
                "ssh_config",
                "--config",
                "/dev/null",
                "up",
                &name,
                "--json",
            ],
        );
        let addr = up.listening(&name);
        for r in 0..runs {
            run(&addr, mib, what, r, &up);
        }
        assert_eq!(up.interrupt(), 0, "{what}: warren up ends cleanly");
    }
}
