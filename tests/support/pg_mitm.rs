//! A TLS-terminating proxy in front of a real PostgreSQL, standing where an attacker (or a
//! pooler, or a corporate proxy) would: it answers the client's SSLRequest itself, ends the
//! client's TLS with a certificate of its own, and speaks TLS to the server on the client's
//! behalf (accepting any certificate). Everything else passes through as each side sent it,
//! except under [`Mitm::StripPlus`], which removes SCRAM-SHA-256-PLUS from the server's
//! SASL mechanism list (a downgrade). What SCRAM channel binding exists to catch.
#![allow(dead_code)]

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::{self, DigitallySignedStruct, SignatureScheme};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// What the proxy does to the login besides ending TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mitm {
    /// Passes every byte on.
    Relay,
    /// Takes SCRAM-SHA-256-PLUS out of the server's AuthenticationSASL offer.
    StripPlus,
}

/// Starts the proxy on 127.0.0.1 in front of the PostgreSQL on `pg_port`, presenting `cert`
/// and `key` (PEM) to its clients; returns its port. It serves until the test ends.
pub fn start(pg_port: u16, cert: &Path, key: &Path, mode: Mitm) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("the proxy's certificate")
        .collect::<Result<_, _>>()
        .expect("the proxy's certificates");
    let key = PrivateKeyDer::from_pem_file(key).expect("the proxy's key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("the proxy's server config");
    let client = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let connector = TlsConnector::from(Arc::new(client));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let port = listener.local_addr().expect("the proxy's address").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the proxy's runtime");
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("the proxy's listener");
            while let Ok((s, _)) = listener.accept().await {
                let (acceptor, connector) = (acceptor.clone(), connector.clone());
                tokio::spawn(async move {
                    let one = serve(s, pg_port, acceptor, connector, mode);
                    if let Err(e) = tokio::time::timeout(std::time::Duration::from_secs(30), one)
                        .await
                        .unwrap_or_else(|_| Err(io::Error::other("timed out")))
                    {
                        eprintln!("pg_mitm: a connection ended: {e}");
                    }
                });
            }
        });
    });
    port
}

/// One client: its SSLRequest answered here, TLS ended here, a TLS connection of the proxy's
/// own to the server, then the bytes passed on.
async fn serve(
    mut client: TcpStream,
    pg_port: u16,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    mode: Mitm,
) -> io::Result<()> {
    let mut ssl_request = [0u8; 8];
    client.read_exact(&mut ssl_request).await?;
    if ssl_request != [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f] {
        return Err(io::Error::other(
            "the client did not start with an SSLRequest",
        ));
    }
    client.write_all(b"S").await?;
    let mut client = acceptor.accept(client).await?;

    let mut server = TcpStream::connect(("127.0.0.1", pg_port)).await?;
    server.write_all(&ssl_request).await?;
    let mut yes = [0u8; 1];
    server.read_exact(&mut yes).await?;
    if yes != *b"S" {
        return Err(io::Error::other("the server does not offer TLS"));
    }
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let mut server = connector.connect(name, server).await?;

    if mode == Mitm::StripPlus {
        let startup = read_message(&mut client, false).await?;
        server.write_all(&startup).await?;
        let first = read_message(&mut server, true).await?;
        client.write_all(&strip_plus(&first)).await?;
    }
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

/// One whole PostgreSQL message as sent (with its type byte when `typed`).
async fn read_message<S: AsyncRead + Unpin>(s: &mut S, typed: bool) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; if typed { 5 } else { 4 }];
    s.read_exact(&mut head).await?;
    let at = head.len() - 4;
    let len = u32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]) as usize;
    if !(4..=1 << 16).contains(&len) {
        return Err(io::Error::other("a message length out of range"));
    }
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).await?;
    head.extend_from_slice(&body);
    Ok(head)
}

/// AuthenticationSASL (`R`, code 10, NUL-terminated names, an empty one last) without
/// SCRAM-SHA-256-PLUS; any other message as it was.
fn strip_plus(m: &[u8]) -> Vec<u8> {
    if m.first() != Some(&b'R') || m.get(5..9) != Some(&[0, 0, 0, 10]) {
        return m.to_vec();
    }
    let mut body = vec![0, 0, 0, 10];
    for name in m[9..].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if name != b"SCRAM-SHA-256-PLUS" {
            body.extend_from_slice(name);
            body.push(0);
        }
    }
    body.push(0);
    let mut out = vec![b'R'];
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The proxy's view of the server's certificate: whatever it is (the proxy is the attacker).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
