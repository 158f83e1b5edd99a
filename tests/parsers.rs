//! Every parser that reads outside bytes, run on generated input: the fuzz targets of `fuzz/`
//! (the same `warren::fuzzing` functions) as property tests, bounded to a few hundred cases
//! each so `cargo test` stays fast, and every input the fuzzers ever crashed on, replayed.
//! The property is the one the fuzzers check: no panic, whatever the bytes. Inputs are both
//! raw bytes and text shaped like the format (keywords, framing, lengths), which reaches
//! deeper than noise in a few hundred cases.

use proptest::prelude::*;
use warren::fuzzing;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Lines made of ssh_config keywords, separators and values that mean something to it.
fn ssh_config_text() -> impl Strategy<Value = Vec<u8>> {
    let key = prop::sample::select(vec![
        "Host",
        "Match",
        "HostName",
        "Port",
        "User",
        "ProxyJump",
        "LocalForward",
        "RemoteForward",
        "DynamicForward",
        "IdentityFile",
        "CertificateFile",
        "StrictHostKeyChecking",
        "UserKnownHostsFile",
        "ConnectTimeout",
        "ServerAliveInterval",
        "HostKeyAlias",
        "ProxyCommand",
        "IdentitiesOnly",
        "IdentityAgent",
        "ExitOnForwardFailure",
        "CanonicalizeHostname",
        "host",
        "MATCH",
    ]);
    let value = prop::sample::select(vec![
        "a",
        "*",
        "!b",
        "a,b",
        "%h",
        "%%",
        "%",
        "${HOME}",
        "${UNSET}",
        "~/x",
        "127.0.0.1:22",
        "[::1]:22",
        "b@c:2222",
        "\"quoted value\"",
        "\"",
        "host a",
        "exec true",
        "final",
        "canonical",
        "all",
        "originalhost a",
        "localuser fuzz",
        "none",
        "yes",
        "accept-new",
        "8080 db:5432",
        "0",
        "65536",
        "-1",
        "/tmp/s:/tmp/t",
        "ssh://u@h:1",
    ]);
    let sep = prop::sample::select(vec![" ", "=", " = ", "\t", "  "]);
    prop::collection::vec((key, sep, value, any::<bool>()), 0..24).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(k, s, v, indent)| format!("{}{k}{s}{v}\n", if indent { "  " } else { "" }))
            .collect::<String>()
            .into_bytes()
    })
}

/// epoch.toml shaped text: storage and reverse tables, warren's keys, values of every type.
fn epoch_text() -> impl Strategy<Value = Vec<u8>> {
    let header = prop::sample::select(vec![
        "[storage.postgres.a]",
        "[storage.postgres.a.ssh_tunnel]",
        "[storage.mysql.b]",
        "[storage.mysql.b.ssh_tunnel]",
        "[storage.postgres.a.ssh_tunnel.jump_host]",
        "[reverse.r]",
        "[reverse.r.bastion]",
        "[storage]",
        "[[storage.x]]",
        "[storage.postgres",
    ]);
    let key = prop::sample::select(vec![
        "host",
        "port",
        "user",
        "username",
        "database",
        "password_file",
        "password",
        "sslmode",
        "sslrootcert",
        "ssl_mode",
        "key_file",
        "jump_host",
        "local_port",
        "local_bind",
        "local_socket",
        "socks_port",
        "connect_timeout",
        "keepalive_interval",
        "strict_host_key_checking",
        "auto_reconnect",
        "remote_port",
        "target",
        "bastion",
        "endpoint",
    ]);
    let value = prop::sample::select(vec![
        "\"db.internal\"",
        "5432",
        "0",
        "-1",
        "70000",
        "\"${PORT}\"",
        "\"${NOPE}\"",
        "\"${\"",
        "true",
        "\"yes\"",
        "1.5",
        "\"30s\"",
        "\"verify-full\"",
        "\"verify_full\"",
        "\"system\"",
        "\"bastion\"",
        "\"ops@b:22\"",
        "{ host = \"j\", port = 22 }",
        "[1, 2]",
        "\"~/x\"",
        "\"127.0.0.1:5432\"",
        "\"\"",
        "2024-01-01",
        "\"\\u0000\"",
    ]);
    let line = prop_oneof![
        header.prop_map(|h| h.to_string()),
        (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        Just("garbage = = =".to_string()),
    ];
    prop::collection::vec(line, 0..30).prop_map(|lines| (lines.join("\n") + "\n").into_bytes())
}

/// known_hosts shaped lines: markers, patterns, hashed names, key types, key data.
fn known_hosts_text() -> impl Strategy<Value = Vec<u8>> {
    let marker = prop::sample::select(vec!["", "@revoked ", "@cert-authority ", "@bogus "]);
    let hosts = prop::sample::select(vec![
        "bastion.example",
        "[127.0.0.1]:2222",
        "*.example,!evil.example",
        "?astion*",
        "|1|c2FsdA==|aGFzaA==",
        "|1|",
        "|1|!!|!!",
        "a,b,c",
        "[::1]:22",
    ]);
    let key = prop::sample::select(vec![
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        "ssh-ed25519 AAAA",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
        "ecdsa-sha2-nistp256 !!!",
        "",
    ]);
    prop::collection::vec((marker, hosts, key), 0..12).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(m, h, k)| format!("{m}{h} {k}\n"))
            .collect::<String>()
            .into_bytes()
    })
}

/// PostgreSQL messages: a tag a server might send, a length that is right or wrong, a body.
fn postgres_stream() -> impl Strategy<Value = Vec<u8>> {
    let tag = prop::sample::select(b"RENSKZvXD\x00".to_vec());
    let body = prop_oneof![
        bytes(40),
        Just(b"\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00".to_vec()),
        Just(b"\x00\x00\x00\x0br=abc,s=QUJD,i=4096".to_vec()),
        Just(b"\x00\x00\x00\x0br=abc,s=QUJD,i=99999999999".to_vec()),
        Just(b"\x00\x00\x00\x05\x01\x02\x03\x04".to_vec()),
        Just(b"SFATAL\x00C28000\x00Mno pg_hba.conf entry\x00\x00".to_vec()),
        Just(b"server_version\x0016.2\x00".to_vec()),
    ];
    let len_fix = prop_oneof![
        4 => Just(None),
        1 => any::<u32>().prop_map(Some),
        1 => (0u32..4).prop_map(Some),
    ];
    prop::collection::vec((tag, body, len_fix), 0..8).prop_map(|msgs| {
        let mut out = Vec::new();
        for (tag, body, len) in msgs {
            out.push(tag);
            let len = len.unwrap_or(body.len() as u32 + 4);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&body);
        }
        out
    })
}

/// A body shaped like each engine's: a MySQL greeting (protocol byte, version, NUL) or error,
/// a MongoDB OP_MSG section with the keys the parser looks for, a TDS PRELOGIN option list
/// (token, offset, length) with offsets and lengths around the body's own size.
fn body(kind: u8) -> BoxedStrategy<Vec<u8>> {
    match kind {
        b'm' => (
            prop::sample::select(vec![10u8, 0xff, 9]),
            bytes(40),
            any::<bool>(),
        )
            .prop_map(|(first, text, nul)| {
                let mut b = vec![first];
                b.extend_from_slice(&text);
                if nul {
                    b.push(0);
                }
                b
            })
            .boxed(),
        b'o' => prop::collection::vec(
            prop::sample::select(vec![
                &b"ok\0"[..],
                b"isWritablePrimary\0",
                b"maxWireVersion\0",
                b"\x01\x00",
                b"\x10",
            ]),
            0..6,
        )
        .prop_map(|parts| [&[0u8, 0, 0, 0, 0][..], &parts.concat()].concat())
        .boxed(),
        _ => (
            prop::collection::vec(
                (
                    prop::sample::select(vec![0u8, 1, 2, 3, 0xff]),
                    0u16..64,
                    0u16..12,
                ),
                0..5,
            ),
            bytes(40),
        )
            .prop_map(|(options, data)| {
                let mut b = Vec::new();
                for (token, off, len) in options {
                    b.push(token);
                    b.extend_from_slice(&off.to_be_bytes());
                    b.extend_from_slice(&len.to_be_bytes());
                }
                b.push(0xff);
                b.extend_from_slice(&data);
                b
            })
            .boxed(),
    }
}

/// A packet as MySQL (3 bytes LE), MongoDB (4 bytes LE, whole message) or TDS (8-byte header,
/// BE length) frames it, with lengths right, short, long or absurd.
fn framed(kind: u8) -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![body(kind), bytes(120)],
        prop_oneof![3 => Just(None), 1 => any::<u32>().prop_map(Some)],
        any::<u8>(),
    )
        .prop_map(move |(body, len, status)| match kind {
            b'm' => {
                let len = len.unwrap_or(body.len() as u32).to_le_bytes();
                [&len[..3], &[0], &body].concat()
            }
            b'o' => {
                let len = len.unwrap_or(body.len() as u32 + 16);
                let mut out = len.to_le_bytes().to_vec();
                out.extend_from_slice(&[0; 8]);
                out.extend_from_slice(&2013i32.to_le_bytes());
                out.extend_from_slice(&body);
                out
            }
            _ => {
                let len = len
                    .map(|l| l as u16)
                    .unwrap_or(body.len() as u16 + 8)
                    .to_be_bytes();
                [&[4, status | 1, len[0], len[1], 0, 0, 1, 0], &body[..]].concat()
            }
        })
}

/// SOCKS4/5 requests with every field's length and type varied.
fn socks_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (bytes(6), any::<u8>(), any::<u8>(), bytes(40)).prop_map(|(methods, cmd, atyp, rest)| {
            let mut out = vec![5, methods.len() as u8];
            out.extend_from_slice(&methods);
            out.extend_from_slice(&[5, cmd % 4, 0, atyp % 6]);
            out.extend_from_slice(&rest);
            out
        }),
        (any::<u8>(), bytes(300), any::<bool>()).prop_map(|(cmd, rest, nul)| {
            let mut out = vec![4, cmd % 3, 0, 80, 0, 0, 0, 1];
            out.extend_from_slice(&rest);
            if nul {
                out.push(0);
            }
            out
        }),
    ]
}

/// Daemon protocol lines: requests of every kind with fields of the wrong type, versions off
/// by one, nesting, and frames.
fn daemon_lines() -> impl Strategy<Value = Vec<u8>> {
    let v = prop::sample::select(vec![
        "2",
        "1",
        "3",
        "\"2\"",
        "null",
        "-1",
        "18446744073709551616",
    ]);
    let cmd = prop::sample::select(vec![
        "status",
        "open",
        "close",
        "subscribe",
        "answer",
        "extend",
        "reconnect",
        "shutdown",
        "ping",
        "diagnose",
        "subscribe\"",
        "",
    ]);
    let field = prop::sample::select(vec![
        "\"names\": [\"a\", \"subscribe\"]",
        "\"names\": \"a\"",
        "\"names\": [1, null]",
        "\"question\": 9, \"answer\": {\"kind\": \"secret\", \"value\": \"x\"}",
        "\"question\": -1, \"answer\": {\"kind\": \"responses\", \"values\": [\"a\", 2]}",
        "\"answer\": {\"kind\": \"host_key\", \"answer\": \"yes\"}",
        "\"for_secs\": 1e400",
        "\"for_secs\": 18446744073709551615",
        "\"answers\": true",
        "\"reply\": {\"tunnels\": [{}]}",
        "\"frame\": \"reply\", \"reply\": {\"error\": \"x\"}",
        "\"frame\": \"event\", \"event\": {\"kind\": \"prompt_withdrawn\", \"id\": 1}",
        "\"event\": {\"kind\": \"state\"}",
        "\"req\": [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
    ]);
    proptest::collection::vec((v, any::<u64>(), cmd, field), 1..4).prop_map(|lines| {
        let mut out = Vec::new();
        for (v, id, cmd, field) in lines {
            out.extend_from_slice(
                format!("{{\"v\": {v}, \"id\": {id}, \"cmd\": \"{cmd}\", {field}}}\n").as_bytes(),
            );
        }
        out
    })
}

/// SSH identification lines, some with control characters or without an end.
fn banner_bytes() -> impl Strategy<Value = Vec<u8>> {
    (bytes(300), prop::sample::select(vec!["\r\n", "\n", ""]))
        .prop_map(|(mid, end)| [b"SSH-2.0-".as_slice(), &mid, end.as_bytes()].concat())
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn ssh_config_never_panics(data in prop_oneof![ssh_config_text(), bytes(512)]) {
        fuzzing::ssh_config(&data);
    }

    #[test]
    fn epoch_toml_never_panics(data in prop_oneof![epoch_text(), bytes(512)]) {
        fuzzing::epoch_toml(&data);
    }

    #[test]
    fn known_hosts_never_panics(data in prop_oneof![known_hosts_text(), bytes(512)]) {
        fuzzing::known_hosts(&data);
    }

    #[test]
    fn socks_requests_never_panic(data in prop_oneof![socks_bytes(), bytes(300)]) {
        fuzzing::socks_request(&data);
    }

    #[test]
    fn postgres_replies_never_panic(data in prop_oneof![postgres_stream(), bytes(300)]) {
        fuzzing::postgres_reply(&data);
    }

    #[test]
    fn mysql_replies_never_panic(data in prop_oneof![framed(b'm'), bytes(200)]) {
        fuzzing::mysql_reply(&data);
    }

    #[test]
    fn redis_replies_never_panic(data in bytes(200)) {
        fuzzing::redis_reply(&data);
    }

    #[test]
    fn mongo_replies_never_panic(data in prop_oneof![framed(b'o'), bytes(200)]) {
        fuzzing::mongo_reply(&data);
    }

    #[test]
    fn mssql_replies_never_panic(data in prop_oneof![framed(b't'), bytes(200)]) {
        fuzzing::mssql_reply(&data);
    }

    #[test]
    fn daemon_requests_never_panic(data in prop_oneof![daemon_lines(), bytes(300)]) {
        fuzzing::daemon_request(&data);
    }

    #[test]
    fn ssh_banners_never_panic(data in prop_oneof![banner_bytes(), bytes(300)]) {
        fuzzing::ssh_banner(&data);
    }
}

/// A fuzz target: a parser run over arbitrary bytes.
type Target = fn(&[u8]);

/// Every file under `tests/corpus/fuzz/<target>/`: inputs that once crashed a target (kept
/// as regression tests) and seeds worth keeping.
#[test]
fn every_recorded_fuzz_input_still_parses() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/fuzz");
    let targets: [(&str, Target); 11] = [
        ("ssh_config", fuzzing::ssh_config),
        ("epoch_toml", fuzzing::epoch_toml),
        ("known_hosts", fuzzing::known_hosts),
        ("socks_request", fuzzing::socks_request),
        ("postgres_reply", fuzzing::postgres_reply),
        ("mysql_reply", fuzzing::mysql_reply),
        ("redis_reply", fuzzing::redis_reply),
        ("mongo_reply", fuzzing::mongo_reply),
        ("mssql_reply", fuzzing::mssql_reply),
        ("ssh_banner", fuzzing::ssh_banner),
        ("daemon_request", fuzzing::daemon_request),
    ];
    let mut ran = 0;
    for (name, target) in targets {
        let Ok(dir) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        for entry in dir.flatten() {
            let data = std::fs::read(entry.path()).expect("read a corpus file");
            target(&data);
            ran += 1;
        }
    }
    assert!(ran > 0, "no corpus under {}", root.display());
}
