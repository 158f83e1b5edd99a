//! doctor's SQL Server login against a fake TDS server (no SQL Server is packaged here): it
//! answers PRELOGIN with ENCRYPTION ON, runs a real TLS handshake (rustls, a certificate the
//! test made for `sql.test`) carried in PRELOGIN packets as MS-TDS says, then reads LOGIN7
//! inside TLS, undoes the password's obfuscation and answers LOGINACK or error 18456. The
//! right password passes, a wrong one fails with 18456, a certificate that is not verified
//! keeps the password back, and no password is a warn.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use support::Scratch;
use support::certs::{make, server_for};
use tokio_rustls::rustls;

fn packet(kind: u8, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut p = vec![kind, 0x01, (len >> 8) as u8, len as u8, 0, 0, 1, 0];
    p.extend_from_slice(payload);
    p
}

fn read_packet(s: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 8];
    s.read_exact(&mut h).ok()?;
    let len = usize::from(h[2]) << 8 | usize::from(h[3]);
    let mut p = vec![0u8; len.checked_sub(8)?];
    s.read_exact(&mut p).ok()?;
    Some((h[0], p))
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn text16(b: &[u8]) -> String {
    let u: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&u)
}

/// LOGIN7's field `i` (0 HostName, 1 UserName, 2 Password, ... 8 Database), raw.
fn field(body: &[u8], i: usize) -> Vec<u8> {
    let at = 36 + 4 * i;
    let off = usize::from(u16::from_le_bytes([body[at], body[at + 1]]));
    let len = 2 * usize::from(u16::from_le_bytes([body[at + 2], body[at + 3]]));
    body[off..off + len].to_vec()
}

/// One connection of the fake server.
fn serve(mut s: TcpStream, config: Arc<rustls::ServerConfig>) {
    let Some((0x12, _)) = read_packet(&mut s) else {
        return;
    };
    // VERSION 16.0.1000, ENCRYPTION ON.
    let opts = [
        0x00, 0, 11, 0, 6, 0x01, 0, 17, 0, 1, 0xff, 16, 0, 0x03, 0xe8, 0, 0, 0x01,
    ];
    let _ = s.write_all(&packet(0x04, &opts));
    let Ok(mut conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    while conn.is_handshaking() {
        if conn.wants_write() {
            let mut out = Vec::new();
            let _ = conn.write_tls(&mut out);
            let _ = s.write_all(&packet(0x12, &out));
            continue;
        }
        let Some((_, p)) = read_packet(&mut s) else {
            return;
        };
        let _ = conn.read_tls(&mut &p[..]);
        if conn.process_new_packets().is_err() {
            // The client refused the certificate: send the alert, wrapped, and stop.
            let mut out = Vec::new();
            let _ = conn.write_tls(&mut out);
            let _ = s.write_all(&packet(0x12, &out));
            return;
        }
    }
    if conn.wants_write() {
        let mut out = Vec::new();
        let _ = conn.write_tls(&mut out);
        let _ = s.write_all(&packet(0x12, &out));
    }
    let mut tls = rustls::StreamOwned::new(conn, s);
    let Some((0x10, body)) = read_packet(&mut tls) else {
        return;
    };
    let user = text16(&field(&body, 1));
    let password: Vec<u8> = field(&body, 2)
        .into_iter()
        .map(|b| (b ^ 0xa5).rotate_right(4))
        .collect();
    let database = text16(&field(&body, 8));
    let tokens = if user == "app" && text16(&password) == "right" && database == "orders" {
        let mut ack = vec![0x01, 0x04, 0x00, 0x00, 0x74];
        let name = utf16("Microsoft SQL Server");
        ack.push((name.len() / 2) as u8);
        ack.extend_from_slice(&name);
        ack.extend_from_slice(&[16, 0, 0x03, 0xe8]);
        let mut t = vec![0xad];
        t.extend_from_slice(&(ack.len() as u16).to_le_bytes());
        t.extend_from_slice(&ack);
        t
    } else {
        let msg = utf16(&format!("Login failed for user '{user}'."));
        let mut e = 18456i32.to_le_bytes().to_vec();
        e.extend_from_slice(&[1, 14]);
        e.extend_from_slice(&((msg.len() / 2) as u16).to_le_bytes());
        e.extend_from_slice(&msg);
        e.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut t = vec![0xaa];
        t.extend_from_slice(&(e.len() as u16).to_le_bytes());
        t.extend_from_slice(&e);
        t
    };
    let mut all = tokens;
    all.push(0xfd);
    all.extend_from_slice(&[0; 12]);
    let _ = tls.write_all(&packet(0x04, &all));
    let _ = tls.flush();
}

fn fake_server(dir: &std::path::Path) -> u16 {
    let (cert, key) = server_for(dir, "sql.test");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .expect("cert")
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_file(&key).expect("key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    // No session tickets after the handshake: they would come bare while the fake still
    // speaks wrapped.
    config.send_tls13_tickets = 0;
    let config = Arc::new(config);
    support::fake::serve(move |s| serve(s, Arc::clone(&config)))
}

fn probe(s: &Scratch) -> (i32, String, String, String) {
    support::db::probe_with(s, &["--ssh-config", "/dev/null"], "db")
}

#[test]
fn sql_server_login_inside_tds_wrapped_tls() {
    let s = Scratch::new();
    let dir = s.path().join("certs");
    std::fs::create_dir_all(&dir).expect("certs dir");
    let Some(c) = make(&dir) else { return };
    let port = fake_server(&dir);
    let ca = c.ca.display().to_string();
    let entry = |pw: &str, extra: &str| {
        s.write("pw", &format!("{pw}\n"));
        s.write(
            "epoch.toml",
            &format!("[storage.mssql.db]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"app\"\ndatabase = \"orders\"\npassword_file = \"pw\"\n{extra}"),
        );
    };
    let verified = format!(
        "sslmode = \"verify-full\"\nsslrootcert = \"{ca}\"\ntls_server_name = \"sql.test\"\n"
    );

    entry("right", &verified);
    let (code, status, detail, _) = probe(&s);
    assert_eq!((code, status.as_str()), (0, "pass"), "{detail}");
    assert!(
        detail.contains(&format!("certificate verified against {ca} for sql.test"))
            && detail.contains("SQL Server 16.0.1000 answered: app logged in to orders")
            && detail.contains("Microsoft SQL Server 16.0.1000"),
        "{detail}"
    );

    entry("wrong", &verified);
    let (code, status, detail, hint) = probe(&s);
    assert_ne!(code, 0);
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.contains("18456") && detail.contains("Login failed for user 'app'"),
        "{detail}"
    );
    assert!(hint.contains("password_file"), "{hint}");

    // The default (prefer): TLS, the certificate not checked, so the password stays here.
    entry("right", "");
    let (code, status, detail, _) = probe(&s);
    assert_ne!(code, 0);
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("warren did not send it"), "{detail}");

    // Another name than the certificate's: the handshake fails before any password.
    entry(
        "right",
        &format!(
            "sslmode = \"verify-full\"\nsslrootcert = \"{ca}\"\ntls_server_name = \"other.test\"\n"
        ),
    );
    let (code, _, _, hint) = probe(&s);
    assert_ne!(code, 0);
    assert!(
        hint.contains("is for sql.test and not for other.test"),
        "{hint}"
    );

    // No password: the server answered, the login was not checked.
    s.write(
        "epoch.toml",
        &format!("[storage.mssql.db]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"app\"\n"),
    );
    let (code, status, detail, _) = probe(&s);
    assert_eq!((code, status.as_str()), (0, "warn"), "{detail}");
    assert!(
        detail.contains("SQL Server 16.0.1000 answered; login not checked"),
        "{detail}"
    );
}
