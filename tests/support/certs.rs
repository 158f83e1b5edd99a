//! Certificates for TLS tests, made with openssl in a scratch dir: a CA, a server certificate
//! it signs (subjectAltName DNS:localhost), a second CA that signed nothing, and a
//! self-signed CA certificate used as a server's own (what `openssl req -x509` makes); and
//! self-signed ones with a chosen key and signature hash ([`self_signed`]).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub other_ca: PathBuf,
    pub self_signed_cert: PathBuf,
    pub self_signed_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key and a self-signed CA certificate named `name`.
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// A server certificate and key for the DNS name `name`, signed by the CA that [`make`] made in
/// `dir`: `<name>.crt`, `<name>.key`.
pub fn server_for(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    sign(dir, name, name)
}

/// A key and a certificate for the DNS name `name` signed by `ca` in `dir`, as
/// `<stem>.key` and `<stem>.crt`.
fn sign(dir: &Path, name: &str, stem: &str) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{stem}.key"),
            "-out",
            &format!("{stem}.csr"),
        ],
    );
    std::fs::write(
        dir.join(format!("{stem}.ext")),
        format!("subjectAltName = DNS:{name}\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n"),
    )
    .expect("ext file");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{stem}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{stem}.ext"),
            "-out",
            &format!("{stem}.crt"),
        ],
    );
    (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    )
}

/// A self-signed certificate for localhost with a key made by `newkey` (`rsa:2048`, `ed25519`)
/// and signed with `digest` (`-sha512`; none for Ed25519, which has its own), as
/// `<stem>.crt` and `<stem>.key`: what decides the hash of SCRAM's channel binding.
pub fn self_signed(
    dir: &Path,
    stem: &str,
    newkey: &str,
    digest: Option<&str>,
) -> (PathBuf, PathBuf) {
    let (crt, key) = (format!("{stem}.crt"), format!("{stem}.key"));
    let mut args = vec![
        "req",
        "-x509",
        "-new",
        "-nodes",
        "-newkey",
        newkey,
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &key,
        "-out",
        &crt,
    ];
    args.extend(digest);
    openssl(dir, &args);
    (dir.join(crt), dir.join(key))
}

/// `None` (with a SKIPPED line) without openssl; under CI=true, a panic.
pub fn make(dir: &Path) -> Option<Certs> {
    if !super::require("openssl") {
        return None;
    }
    ca(dir, "ca");
    ca(dir, "other-ca");
    ca(dir, "self-signed");
    let (server_cert, server_key) = sign(dir, "localhost", "server");
    Some(Certs {
        ca: dir.join("ca.crt"),
        server_cert,
        server_key,
        other_ca: dir.join("other-ca.crt"),
        self_signed_cert: dir.join("self-signed.crt"),
        self_signed_key: dir.join("self-signed.key"),
    })
}
