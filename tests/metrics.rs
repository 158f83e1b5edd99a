//! The daemon's Prometheus metrics (`[metrics] listen` in the settings), scraped with curl
//! and read with the Prometheus client library's own text parser (Python's
//! `prometheus_client`): byte counters grow during a transfer, a refused channel is a failed
//! connection, a bastion restart shows as reconnecting and then one reconnect, and the listener
//! goes with the daemon; the last health check of a real PostgreSQL and its latency show.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::daemon::Home;
use support::sshd::{Sshd, free_port};
use support::tunnel::{entry, have_servers, with_key};

/// Debian's python3-prometheus-client is for Debian's python (not one on PATH before it).
const PYTHON: &str = "/usr/bin/python3";

/// The Prometheus text parser is there; under CI=true its absence fails the test.
fn have_parser() -> bool {
    if !support::require(PYTHON) {
        return false;
    }
    let ok = Command::new(PYTHON)
        .args(["-c", "import prometheus_client.parser"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "python3-prometheus-client is not installed, and CI=true: run scripts/test, which installs it"
        );
    }
    if !ok {
        eprintln!("SKIPPED: python3-prometheus-client is not installed (scripts/test installs it)");
    }
    ok
}

/// Reads the text with `prometheus_client.parser` (which raises on anything that is not the
/// text format) and gives back every sample; each family must have its HELP text.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    if not f.documentation:
        sys.exit("no HELP for " + f.name)
    for s in f.samples:
        out.append({"family": f.name, "type": f.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

struct Scrape {
    text: String,
    samples: Vec<serde_json::Value>,
}

impl Scrape {
    /// The value of `name` for tunnel `tunnel` (and the other labels given).
    fn value(&self, name: &str, tunnel: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s["name"] == name
                    && s["labels"]["name"] == tunnel
                    && labels.iter().all(|(k, v)| s["labels"][*k] == *v)
            })
            .and_then(|s| s["value"].as_f64())
    }

    fn get(&self, name: &str, tunnel: &str) -> f64 {
        self.value(name, tunnel, &[])
            .unwrap_or_else(|| panic!("no {name} for {tunnel} in:\n{}", self.text))
    }
}

/// `curl` of `url`: its HTTP status and body.
fn curl(args: &[&str], url: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or_default();
    (code.to_string(), body.to_string())
}

fn scrape(addr: &str) -> Scrape {
    let (code, text) = curl(&[], &format!("http://{addr}/metrics"));
    assert_eq!(code, "200", "{text}");
    let mut py = Command::new(PYTHON)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    py.stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to python3");
    let out = py.wait_with_output().expect("python3");
    assert!(
        out.status.success(),
        "the Prometheus parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("the parser's JSON");
    Scrape { text, samples }
}

/// A loopback server that sends `total` bytes to each client, `chunk` at a time with a pause
/// between, then closes; returns its port.
fn slow_server(total: usize, chunk: usize, pause: Duration) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let data = vec![0x5au8; chunk];
                let mut sent = 0;
                while sent < total {
                    let n = chunk.min(total - sent);
                    if s.write_all(&data[..n]).is_err() {
                        return;
                    }
                    sent += n;
                    std::thread::sleep(pause);
                }
            });
        }
    });
    port
}

fn read_exactly(s: &mut std::net::TcpStream, n: usize) {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).expect("read through the tunnel");
}

#[test]
fn the_daemon_serves_metrics_that_follow_a_transfer_and_a_bastion_restart() {
    if !have_servers() || !support::require("curl") || !have_parser() {
        return;
    }
    const MIB: usize = 1024 * 1024;
    // 8 MiB at about 1.3 MB/s: the two scrapes after the first and second MiB come well
    // before the end, however slow curl and python3 start.
    const TOTAL: usize = 8 * MIB;
    let mut sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let slow = slow_server(TOTAL, 32 * 1024, Duration::from_millis(25));
    // `gone` forwards to a port nothing listens on: the bastion refuses its channels.
    let policy = "health_interval = 0\nreconnect_delay = 0.2\nkeepalive_interval = 1\nkeepalive_count_max = 2\nconnect_timeout = 3";
    s.write(
        "epoch.toml",
        &format!(
            "{}{}",
            entry(
                "pg",
                slow,
                &sshd,
                Some(&key),
                &format!("tags = [\"prod\", \"eu\"]\n{policy}"),
            ),
            entry("gone", free_port(), &sshd, Some(&key), policy)
        ),
    );
    let addr = format!("127.0.0.1:{}", free_port());
    s.write(
        ".config/warren/config.toml",
        &format!("[metrics]\nlisten = \"{addr}\"\n"),
    );
    let h = Home::new(s);
    h.warren(&["up", "--detach", "pg", "gone"])
        .expect_code(0)
        .expect_stdout("up");
    let status = h.status();
    let local_of = |name: &str| {
        status
            .as_array()
            .and_then(|a| a.iter().find(|t| t["name"] == name))
            .and_then(|t| t["local"][0].as_str())
            .unwrap_or_else(|| panic!("{name} in {status}"))
            .to_string()
    };
    let (local, gone) = (local_of("pg"), local_of("gone"));

    let first = scrape(&addr);
    assert_eq!(first.get("warren_tunnel_up", "pg"), 1.0, "{}", first.text);
    assert_eq!(
        first.value("warren_tunnel_state", "pg", &[("state", "up")]),
        Some(1.0)
    );
    assert_eq!(
        first.value("warren_tunnel_state", "pg", &[("state", "reconnecting")]),
        Some(0.0)
    );
    let counter = first
        .samples
        .iter()
        .find(|s| s["name"] == "warren_tunnel_received_bytes_total" && s["labels"]["name"] == "pg")
        .expect("the byte counter");
    assert_eq!(counter["type"], "counter");
    assert_eq!(counter["labels"]["tags"], "prod,eu");
    assert_eq!(
        first.value("warren_tunnel_tag_info", "pg", &[("tag", "eu")]),
        Some(1.0)
    );
    assert!(first.get("warren_tunnel_open_seconds", "pg") > 0.0);
    assert_eq!(first.get("warren_tunnel_connections_open", "pg"), 0.0);

    // During the transfer: the counter grows between two scrapes.
    let mut c = std::net::TcpStream::connect(&local).expect("connect to the tunnel");
    c.set_read_timeout(Some(Duration::from_secs(60))).ok();
    read_exactly(&mut c, MIB);
    let a = scrape(&addr);
    read_exactly(&mut c, MIB);
    let b = scrape(&addr);
    let (ra, rb) = (
        a.get("warren_tunnel_received_bytes_total", "pg"),
        b.get("warren_tunnel_received_bytes_total", "pg"),
    );
    assert!(ra >= MIB as f64, "{ra}: a MiB was read already");
    assert!(
        rb > ra,
        "the counter grows during the transfer: {ra} then {rb}"
    );
    assert!(
        rb < TOTAL as f64,
        "the second scrape came during the transfer"
    );
    assert_eq!(a.get("warren_tunnel_connections_open", "pg"), 1.0);
    assert_eq!(a.get("warren_tunnel_connections_total", "pg"), 1.0);
    read_exactly(&mut c, TOTAL - 2 * MIB);
    drop(c);

    // A connection the bastion cannot carry is a failed one, of that tunnel only.
    assert_eq!(b.get("warren_tunnel_failed_connections_total", "gone"), 0.0);
    let mut g = std::net::TcpStream::connect(&gone).expect("connect to gone");
    g.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let _ = g.read_to_end(&mut Vec::new());
    let failed = scrape(&addr);
    assert_eq!(
        failed.get("warren_tunnel_failed_connections_total", "gone"),
        1.0,
        "{}",
        failed.text
    );
    assert_eq!(
        failed.get("warren_tunnel_failed_connections_total", "pg"),
        0.0
    );
    assert_eq!(failed.get("warren_tunnel_connections_total", "gone"), 1.0);

    // Paths and methods other than GET /metrics are refused.
    assert_eq!(curl(&[], &format!("http://{addr}/")).0, "404");
    assert_eq!(
        curl(&["-X", "POST"], &format!("http://{addr}/metrics")).0,
        "405"
    );

    // A bastion restart is one reconnect.
    let before = scrape(&addr).get("warren_tunnel_reconnects_total", "pg");
    sshd.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = scrape(&addr);
        if now.value("warren_tunnel_state", "pg", &[("state", "reconnecting")]) == Some(1.0) {
            assert_eq!(now.get("warren_tunnel_up", "pg"), 0.0, "{}", now.text);
            assert!(
                now.value("warren_tunnel_uptime_seconds", "pg", &[])
                    .is_none(),
                "no uptime while down:\n{}",
                now.text
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tunnel never showed as reconnecting:\n{}",
            now.text
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sshd.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let now = scrape(&addr);
        if now.get("warren_tunnel_reconnects_total", "pg") > before
            && now.get("warren_tunnel_up", "pg") == 1.0
        {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "no reconnect counted:\n{}\n{}",
            now.text,
            h.daemon_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        after.get("warren_tunnel_reconnects_total", "pg"),
        before + 1.0,
        "{}",
        after.text
    );
    assert!(
        after.get("warren_tunnel_received_bytes_total", "pg") >= TOTAL as f64,
        "the counters survive a reconnect"
    );
    assert!(
        h.daemon_log()
            .contains(&format!("metrics at http://{addr}/metrics")),
        "{}",
        h.daemon_log()
    );

    // With the last tunnel closed the daemon goes, and its metrics listener with it.
    h.warren(&["down", "--all"]).expect_code(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the metrics listener outlived the daemon"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_bad_metrics_address_is_a_settings_problem_and_the_tunnels_still_open() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let target = slow_server(1, 1, Duration::from_millis(1));
    s.write(
        "epoch.toml",
        &entry("pg", target, &sshd, Some(&key), "health_interval = 0"),
    );
    s.write(
        ".config/warren/config.toml",
        "[metrics]\nlisten = \"localhost:9750\"\n",
    );
    let h = Home::new(s);
    h.warren(&["up", "--detach", "pg"])
        .expect_code(0)
        .expect_stdout("up");
    let log = h.daemon_log();
    assert!(
        log.contains(
            "config.toml:2: metrics.listen: 'localhost:9750' is not an IP address and port"
        ) && log.contains("listen = \"127.0.0.1:9750\""),
        "{log}"
    );
    assert!(!log.contains("metrics at"), "{log}");
}

/// Scrapes `addr` until `done` holds (or 30 s pass) and returns that scrape.
fn scrape_until(addr: &str, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = scrape(addr);
        if done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "never {what}:\n{}", now.text);
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_health_of_the_database_behind_a_tunnel_and_its_latency_follow_a_real_postgresql() {
    let Some(pg) = support::postgres::Postgres::start() else {
        return;
    };
    if !have_servers() || !support::require("curl") || !have_parser() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write(
        "epoch.toml",
        &entry("db", pg.port, &sshd, Some(&key), "health_interval = 1").replace(
            "[storage.postgres.db]\n",
            "[storage.postgres.db]\nusername = \"postgres\"\ndatabase = \"postgres\"\nsslmode = \"disable\"\n",
        ),
    );
    let addr = format!("127.0.0.1:{}", free_port());
    s.write(
        ".config/warren/config.toml",
        &format!("[metrics]\nlisten = \"{addr}\"\n"),
    );
    let h = Home::new(s);
    h.warren(&["up", "--detach", "db"])
        .expect_code(0)
        .expect_stdout("up");
    let ok = scrape_until(&addr, "a passing check", |m| {
        m.value("warren_tunnel_health_ok", "db", &[]) == Some(1.0)
    });
    let latency = ok.get("warren_tunnel_health_latency_seconds", "db");
    assert!(latency.is_finite() && latency >= 0.0, "{}", ok.text);

    pg.stop();
    let failing = scrape_until(&addr, "a failing check", |m| {
        m.value("warren_tunnel_health_ok", "db", &[]) == Some(0.0)
    });
    assert!(
        failing
            .value("warren_tunnel_health_latency_seconds", "db", &[])
            .is_none(),
        "no latency for a failed check:\n{}",
        failing.text
    );
    assert_eq!(
        failing.get("warren_tunnel_up", "db"),
        1.0,
        "the session stays up"
    );
}
