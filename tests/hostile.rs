//! `warren doctor` against servers that lie: fakes on loopback that send malformed lengths,
//! endless messages, absurd SCRAM parameters, bad signatures, truncated and oversized
//! replies, and endless SSH banners. Every run ends with exit 1 and a diagnosis naming what
//! was wrong, without a panic, within the step's timeout and under 64 MB peak RSS (read from
//! /proc while warren runs).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use support::Scratch;
use support::fake::{self, Measured, endless, linger, pg_message, pg_no_tls_then_startup};

/// The probe of a direct entry is bounded by warren's default connect timeout (15 s).
const STEP_TIMEOUT: Duration = Duration::from_secs(15);
const RSS_LIMIT_KB: u64 = 64 * 1024;

/// A direct epoch.toml entry `db` for `engine` on 127.0.0.1:`port`, with `extra` lines.
fn direct(engine: &str, port: u16, extra: &str) -> Scratch {
    let s = Scratch::new();
    // Redis databases are numbers.
    let db = if engine == "redis" { "1" } else { "orders" };
    s.write(
        "epoch.toml",
        &format!("[storage.{engine}.db]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"app\"\ndatabase = \"{db}\"\n{extra}"),
    );
    s.write("known_hosts", "");
    s
}

/// Runs doctor on `db` and checks what every hostile run must show; returns the failed step.
#[track_caller]
fn fails_at(s: &Scratch, step: &str, needle: &str) -> (Measured, Value) {
    let m = fake::doctor(s, "db", &["--json"]);
    eprintln!("peak RSS {} KiB, {:?}: {needle}", m.peak_rss_kb, m.elapsed);
    assert_eq!(m.code, 1, "{}", m.describe());
    assert!(!m.stderr.contains("panicked"), "{}", m.describe());
    assert!(
        m.peak_rss_kb > 0 && m.peak_rss_kb < RSS_LIMIT_KB,
        "peak RSS {} KiB:\n{}",
        m.peak_rss_kb,
        m.describe()
    );
    assert!(
        m.elapsed < STEP_TIMEOUT + Duration::from_secs(5),
        "not bounded by the step: {}",
        m.describe()
    );
    let st = m.step(step);
    assert_eq!(st["status"], "fail", "{st:#}");
    let detail = st["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(needle), "{needle:?} not in {st:#}");
    assert!(st["hint"].is_string(), "a failure has a hint: {st:#}");
    (m, st)
}

fn pg_fake(then: impl Fn(&mut TcpStream) + Send + Sync + 'static) -> u16 {
    fake::serve(move |mut s| {
        if pg_no_tls_then_startup(&mut s).is_some() {
            then(&mut s);
        }
        linger(s);
    })
}

#[test]
fn a_postgresql_message_length_below_four_is_named_not_a_panic() {
    let port = pg_fake(|s| {
        let _ = s.write_all(b"E\x00\x00\x00\x01SFATAL\x00");
    });
    fails_at(
        &direct("postgres", port, ""),
        "probe",
        "impossible length 1",
    );
}

#[test]
fn endless_postgresql_notices_stop_at_the_read_cap() {
    let port = pg_fake(|s| {
        let notice = pg_message(b'N', b"SNOTICE\x00C00000\x00Mstill here\x00\x00");
        endless(s, &notice.repeat(256), 64 << 20);
    });
    let (_, st) = fails_at(
        &direct("postgres", port, ""),
        "probe",
        "without finishing the login",
    );
    assert!(
        st["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("1024 KiB"),
        "{st:#}"
    );
}

#[test]
fn a_postgresql_message_announcing_two_gigabytes_is_refused_at_its_header() {
    let port = pg_fake(|s| {
        let _ = s.write_all(b"N\x7f\xff\xff\xff");
        endless(s, &[b'x'; 8192], 64 << 20);
    });
    fails_at(
        &direct("postgres", port, ""),
        "probe",
        "warren accepts up to 64 KiB",
    );
}

#[test]
fn a_postgresql_that_trickles_forever_ends_at_the_step_timeout() {
    let port = pg_fake(|s| {
        let notice = pg_message(b'N', b"SNOTICE\x00Mslow\x00\x00");
        for _ in 0..200 {
            for b in &notice {
                if s.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    fails_at(
        &direct("postgres", port, ""),
        "probe",
        "the login did not finish",
    );
}

/// A fake that asks for SCRAM-SHA-256 and answers the client's first message with
/// `challenge(client_nonce)`, then `last` after the client's final message.
fn scram_fake(challenge: fn(&str) -> String, last: fn() -> Vec<u8>) -> u16 {
    pg_fake(move |s| {
        let _ = s.write_all(&pg_message(b'R', b"\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00"));
        let Some((b'p', body)) = fake::read_typed(s) else {
            return;
        };
        let text = String::from_utf8_lossy(&body).into_owned();
        let nonce = text
            .rsplit_once("r=")
            .map(|(_, n)| n.to_string())
            .unwrap_or_default();
        let mut cont = 11u32.to_be_bytes().to_vec();
        cont.extend_from_slice(challenge(&nonce).as_bytes());
        let _ = s.write_all(&pg_message(b'R', &cont));
        if let Some((b'p', _)) = fake::read_typed(s) {
            let _ = s.write_all(&last());
        }
    })
}

#[test]
fn a_scram_challenge_asking_ten_million_iterations_is_refused_before_any_work() {
    let port = scram_fake(|n| format!("r={n}srv,s=QUJDREVGR0g=,i=10000000"), Vec::new);
    let (_, st) = fails_at(
        &direct("postgres", port, "password = \"s3cret\"\n"),
        "probe",
        "asks for 10000000 SCRAM iterations; warren computes at most 100000",
    );
    assert!(!st.to_string().contains("s3cret"), "{st:#}");
}

#[test]
fn a_wrong_scram_server_signature_fails_the_probe() {
    let port = scram_fake(
        |n| format!("r={n}srv,s=QUJDREVGR0g=,i=4096"),
        || {
            let mut fin = 12u32.to_be_bytes().to_vec();
            fin.extend_from_slice(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
            pg_message(b'R', &fin)
        },
    );
    fails_at(
        &direct("postgres", port, "password = \"s3cret\"\n"),
        "probe",
        "SCRAM signature is wrong",
    );
}

#[test]
fn a_server_that_skips_the_scram_signature_is_not_trusted() {
    let port = scram_fake(
        |n| format!("r={n}srv,s=QUJDREVGR0g=,i=4096"),
        || pg_message(b'R', &0u32.to_be_bytes()),
    );
    fails_at(
        &direct("postgres", port, "password = \"s3cret\"\n"),
        "probe",
        "without proving it knows the password",
    );
}

#[test]
fn a_cleartext_password_is_not_sent_without_tls_unless_sslmode_disable_says_so() {
    let received = Arc::new(AtomicBool::new(false));
    let got = Arc::clone(&received);
    let port = pg_fake(move |s| {
        let _ = s.write_all(&pg_message(b'R', &3u32.to_be_bytes()));
        if let Some((b'p', body)) = fake::read_typed(s) {
            got.store(body.starts_with(b"s3cret"), Ordering::SeqCst);
            let _ = s.write_all(&pg_message(b'R', &0u32.to_be_bytes()));
            let _ = s.write_all(&pg_message(b'Z', b"I"));
        }
    });
    let s = direct("postgres", port, "password = \"s3cret\"\n");
    let (_, st) = fails_at(&s, "probe", "warren did not send the password");
    assert!(
        st["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("sslmode = \"disable\""),
        "{st:#}"
    );
    assert!(
        !received.load(Ordering::SeqCst),
        "the password crossed in clear"
    );

    // The entry's own choice: sslmode = "disable" sends it.
    let s = direct(
        "postgres",
        port,
        "password = \"s3cret\"\nsslmode = \"disable\"\n",
    );
    let m = fake::doctor(&s, "db", &["--json"]);
    assert_eq!(m.code, 0, "{}", m.describe());
    assert!(
        received.load(Ordering::SeqCst),
        "sslmode = disable sends it"
    );
    let detail = m.step("probe")["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        detail.contains("no TLS (sslmode = disable)") && detail.contains("cleartext"),
        "{detail}"
    );
}

/// What a fake server does on a connection.
type Behaviour = fn(&mut TcpStream);

#[test]
fn a_server_that_offers_tls_but_cannot_speak_it_fails_require_and_prefer_goes_on_without() {
    let port = fake::serve(|mut s| {
        match fake::read_untyped(&mut s) {
            // The SSLRequest: yes, then nonsense instead of a TLS handshake.
            Some(b) if b == [0x04, 0xd2, 0x16, 0x2f] => {
                let _ = s.write_all(b"S");
                let mut hello = [0u8; 512];
                let _ = s.read(&mut hello);
                let _ = s.write_all(b"this is not TLS\r\n");
            }
            // A startup message (prefer's second connection): logged in.
            Some(_) => {
                let _ = s.write_all(&pg_message(b'R', &0u32.to_be_bytes()));
                let _ = s.write_all(&pg_message(b'Z', b"I"));
            }
            None => {}
        }
        linger(s);
    });
    let (_, st) = fails_at(
        &direct("postgres", port, "sslmode = \"require\"\n"),
        "probe",
        "the TLS handshake failed",
    );
    assert!(
        st["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("ssl_cert_file"),
        "{st:#}"
    );

    let m = fake::doctor(&direct("postgres", port, ""), "db", &["--json"]);
    assert_eq!(m.code, 0, "{}", m.describe());
    let detail = m.step("probe")["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        detail.starts_with("no TLS: the TLS handshake failed")
            && detail.contains("sslmode = prefer went on without TLS")
            && detail.contains("app is logged in to orders"),
        "{detail}"
    );
}

/// A fake for a non-PostgreSQL engine: reads what the client sends first (if it speaks
/// first), then runs `then`.
fn other_fake(reads_first: bool, then: Behaviour) -> u16 {
    fake::serve(move |mut s| {
        if reads_first {
            let mut b = [0u8; 512];
            let _ = s.read(&mut b);
        }
        then(&mut s);
        // Hang up: a truncated reply ends with the connection.
    })
}

#[test]
fn truncated_replies_are_named_for_each_engine() {
    let cases: [(&str, bool, Behaviour); 4] = [
        ("mysql", false, |s| {
            let _ = s.write_all(b"\x4a\x00\x00\x00\x0a8.0.36\x00");
        }),
        ("redis", true, |s| {
            let _ = s.write_all(b"+PO");
        }),
        ("mongodb", true, |s| {
            let _ = s.write_all(&[200, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0xdd, 7, 0, 0, 0]);
        }),
        ("mssql", true, |s| {
            let _ = s.write_all(b"\x04\x01\x00\x25\x00\x00\x01\x00\x00\x00");
        }),
    ];
    for (engine, reads_first, then) in cases {
        let port = other_fake(reads_first, then);
        fails_at(
            &direct(engine, port, ""),
            "probe",
            "the reply was cut short",
        );
    }
}

#[test]
fn oversized_replies_are_refused_for_each_engine() {
    let cases: [(&str, bool, Behaviour, &str); 4] = [
        (
            "mysql",
            false,
            |s| {
                let _ = s.write_all(b"\xff\xff\xff\x00\x0a");
                endless(s, &[b'v'; 8192], 64 << 20);
            },
            "it announces 16777215 bytes",
        ),
        (
            "redis",
            true,
            |s| {
                endless(s, &[b'+'; 8192], 64 << 20);
            },
            "a reply line longer than 64 KiB",
        ),
        (
            "mongodb",
            true,
            |s| {
                let _ = s.write_all(&100_000_000i32.to_le_bytes());
                endless(s, &[0; 8192], 64 << 20);
            },
            "it announces 100000000 bytes",
        ),
        (
            "mssql",
            true,
            |s| {
                // Packets that never say "end of message".
                let mut p = vec![0x04, 0x00, 0x10, 0x00, 0, 0, 1, 0];
                p.resize(0x1000, 0);
                endless(s, &p, 64 << 20);
            },
            "warren reads replies of up to 64 KiB",
        ),
    ];
    for (engine, reads_first, then, needle) in cases {
        let port = other_fake(reads_first, then);
        fails_at(&direct(engine, port, ""), "probe", needle);
    }
}

/// An entry whose bastion is the fake on `port`, with a 2 s connect_timeout.
fn via_fake_bastion(port: u16) -> Scratch {
    let s = Scratch::new();
    s.write(
        "epoch.toml",
        &format!("[storage.postgres.db]\nhost = \"127.0.0.1\"\nport = 5432\n[storage.postgres.db.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"app\"\nconnect_timeout = 2\n"),
    );
    s.write("known_hosts", "");
    s
}

#[test]
fn an_endless_ssh_banner_fails_the_banner_step() {
    let port = fake::serve(|mut s| {
        let _ = s.write_all(b"SSH-2.0-");
        endless(&mut s, &[b'A'; 4096], 64 << 20);
    });
    fails_at(&via_fake_bastion(port), "banner", "goes on past 255 bytes");
}

#[test]
fn a_banner_with_an_escape_sequence_is_printed_escaped() {
    let port = fake::serve(|mut s| {
        let _ = s.write_all(b"SSH-2.0-x\x1b]0;pwned\x07\r\n");
        linger(s);
    });
    let s = via_fake_bastion(port);
    let m = fake::doctor(&s, "db", &[]);
    assert_eq!(m.code, 1, "{}", m.describe());
    assert!(
        m.stdout.contains("SSH-2.0-x\\x1b]0;pwned\\x07"),
        "shown escaped:\n{}",
        m.describe()
    );
    assert!(
        !m.stdout.contains('\x1b') && !m.stdout.contains('\x07'),
        "no raw control character reaches the terminal:\n{:?}",
        m.stdout
    );
    let m = fake::doctor(&s, "db", &["--report"]);
    assert!(
        m.stdout.contains("SSH-2.0-x\\x1b]0;pwned\\x07") && !m.stdout.contains('\x1b'),
        "the report is escaped too:\n{}",
        m.describe()
    );
    // JSON stays exact.
    let m = fake::doctor(&s, "db", &["--json"]);
    assert_eq!(m.step("banner")["detail"], "SSH-2.0-x\x1b]0;pwned\x07");
}

/// A login that never ends is cut where warren stops, with a password configured (so the
/// probes go past the greeting): a MySQL server that answers every answer with another auth
/// switch, and a Redis server whose reply nests arrays without end.
#[test]
fn logins_that_never_end_are_cut_for_mysql_and_redis() {
    let port = fake::serve(|mut s| {
        // MySQL 8.0's greeting (caching_sha2_password), recorded.
        let greeting: &[u8] = b"\x4a\x00\x00\x00\x0a8.0.36\x00\x08\x00\x00\x00\x3e\x32\x18\x45\x2b\x4c\x0e\x53\x00\xff\xff\xff\x02\x00\xff\xdf\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x4b\x0b\x12\x3d\x6d\x0c\x0c\x44\x7c\x7d\x1f\x5e\x00caching_sha2_password\x00";
        let _ = s.write_all(greeting);
        let mut seq = 1u8;
        for _ in 0..100 {
            let mut b = [0u8; 4096];
            if !matches!(s.read(&mut b), Ok(n) if n > 0) {
                return;
            }
            seq = seq.wrapping_add(1);
            let mut p = vec![0x2c, 0, 0, seq, 0xfe];
            p.extend_from_slice(b"mysql_native_password\0");
            p.extend_from_slice(&[7u8; 20]);
            p.push(0);
            let _ = s.write_all(&p);
            seq = seq.wrapping_add(1);
        }
    });
    // sslmode = disable: the recorded greeting offers TLS, which the fake does not speak.
    fails_at(
        &direct("mysql", port, "password = \"x\"\nsslmode = \"disable\"\n"),
        "probe",
        "asked for more than 8 rounds of login",
    );
    let port = other_fake(true, |s| {
        let _ = s.write_all(&b"*1\r\n".repeat(10_000));
    });
    fails_at(
        &direct("redis", port, "password = \"x\"\n"),
        "probe",
        "arrays nested deeper than 4",
    );
}
