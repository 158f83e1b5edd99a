//! TLS for the database probes (PostgreSQL, MySQL/MariaDB, MongoDB, Redis, SQL Server), as libpq's `sslmode`
//! does it, with rustls (no OpenSSL); the hints name each engine's own settings:
//!
//! - `prefer` and `require`: TLS, the certificate not checked; `require` checks the chain
//!   (as `verify-ca`) when a root certificate file is there, as libpq does;
//! - `verify-ca`: the chain must lead to a certificate in `sslrootcert`;
//! - `verify-full`: and the certificate must name the entry's host.
//!
//! The handshake's own signatures are always checked. Where rustls is stricter than OpenSSL
//! (no fallback to the subject's CN when a certificate has no subjectAltName; a CA certificate
//! is not accepted as a server's own), the hint says so. Client certificates (`sslcert`) are
//! not sent.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::wire::Budget;
use crate::config::model::{RootCert, SslMode};
use crate::config::{Origin, Sourced};

/// How much of the server's certificate is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checks {
    /// Nothing but the handshake's signatures (an active attacker could stand in between).
    Nothing,
    /// The chain leads to a root in `root`.
    Chain { root: String },
    /// The chain, and the certificate names `host`.
    ChainAndName { root: String, host: String },
}

/// Which server the hints speak of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Mysql,
    Mongo,
    Redis,
    Mssql,
}

impl Engine {
    /// Where the server's TLS is set up.
    fn settings(self) -> &'static str {
        match self {
            Engine::Postgres => "ssl_cert_file and ssl_key_file in postgresql.conf",
            Engine::Mysql => "ssl_cert and ssl_key in the server's my.cnf",
            Engine::Mongo => "net.tls in mongod.conf",
            Engine::Redis => "tls-port, tls-cert-file and tls-key-file in redis.conf",
            Engine::Mssql => {
                "the certificate in SQL Server Configuration Manager (Protocols, Certificate)"
            }
        }
    }
    /// How to look at the certificate by hand.
    fn s_client(self) -> &'static str {
        match self {
            Engine::Postgres => "openssl s_client -starttls postgres",
            Engine::Mysql => "openssl s_client -starttls mysql",
            Engine::Mongo | Engine::Redis | Engine::Mssql => "openssl s_client",
        }
    }
    /// Where the server asks for client certificates and sets its protocol versions.
    fn client_certs(self) -> &'static str {
        match self {
            Engine::Postgres => "clientcert in pg_hba.conf, ssl_ca_file",
            Engine::Mysql => "REQUIRE X509 on the account, ssl_ca",
            Engine::Mongo => "net.tls.CAFile without allowConnectionsWithoutCertificates",
            Engine::Redis => "tls-auth-clients yes in redis.conf",
            Engine::Mssql => "a client certificate requirement in front of the server",
        }
    }
    fn versions(self) -> &'static str {
        match self {
            Engine::Postgres => "ssl_min_protocol_version and ssl_ciphers in postgresql.conf",
            Engine::Mysql => "tls_version and ssl_cipher in my.cnf",
            Engine::Mongo => "net.tls.disabledProtocols in mongod.conf",
            Engine::Redis => "tls-protocols and tls-ciphers in redis.conf",
            Engine::Mssql => "the TLS versions allowed in the server's SCHANNEL settings",
        }
    }
}

/// A client ready to start TLS with one server.
pub struct Client {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    pub checks: Checks,
    pub mode: SslMode,
    engine: Engine,
}

/// A failure as the probe reports it: what happened, and what to do.
pub type Trouble = (String, String);

/// The client for `mode` towards `host`; an error when the root certificates it needs
/// cannot be read.
pub fn client(mode: SslMode, root: &Sourced<RootCert>, host: &str) -> Result<Client, Trouble> {
    let provider = Arc::new(crypto::aws_lc_rs::default_provider());
    let explicit = root.origin != Origin::Default;
    let root_there = match &root.value {
        RootCert::File(p) => p.exists(),
        RootCert::System => true,
    };
    let checks = match mode {
        SslMode::Disable | SslMode::Prefer => Checks::Nothing,
        SslMode::Require if !explicit && !root_there => Checks::Nothing,
        SslMode::Require | SslMode::VerifyCa => Checks::Chain {
            root: root.value.to_string(),
        },
        SslMode::VerifyFull => Checks::ChainAndName {
            root: root.value.to_string(),
            host: host.to_string(),
        },
    };
    let name = ServerName::try_from(host.to_string()).or_else(|e| {
        if matches!(checks, Checks::ChainAndName { .. }) {
            Err((
                format!("the host '{host}' cannot be checked against a certificate: {e}"),
                "verify-full needs the entry's host to be a DNS name or an IP address".to_string(),
            ))
        } else {
            // Only sent as SNI (and not even that for an address); nothing is checked.
            Ok(ServerName::try_from("localhost").map_err(|e| (e.to_string(), String::new()))?)
        }
    })?;
    let webpki = match &checks {
        Checks::Nothing => None,
        _ => {
            let roots = roots(mode, root)?;
            let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| {
                    (
                        format!("the root certificates cannot be used: {e}"),
                        root_hint(mode),
                    )
                })?;
            Some(v)
        }
    };
    let verifier = Verifier {
        webpki,
        check_name: matches!(checks, Checks::ChainAndName { .. }),
        provider: provider.clone(),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| (format!("TLS cannot be set up: {e}"), String::new()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Client {
        config: Arc::new(config),
        name,
        checks,
        mode,
        engine: Engine::Postgres,
    })
}

impl Client {
    /// The same client, its hints naming `engine`'s settings.
    pub fn for_engine(mut self, engine: Engine) -> Client {
        self.engine = engine;
        self
    }
}

fn root_hint(mode: SslMode) -> String {
    format!(
        "put the certificate of the CA that signed the server's certificate (PEM) there, or point sslrootcert at it (sslrootcert = \"system\" for a public CA, with verify-full); or lower sslmode (it is {mode})"
    )
}

fn roots(mode: SslMode, root: &Sourced<RootCert>) -> Result<RootCertStore, Trouble> {
    let mut store = RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = match &root.value {
        RootCert::System => rustls_native_certs::load_native_certs().certs,
        RootCert::File(p) => read_pem(p).map_err(|e| {
            (
                format!(
                    "sslmode = {mode} needs the root certificate file {} ({}): {e}",
                    p.display(),
                    root.origin
                ),
                root_hint(mode),
            )
        })?,
    };
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err((
            format!(
                "sslrootcert {} ({}) holds no certificate warren can use",
                root.value, root.origin
            ),
            root_hint(mode),
        ));
    }
    Ok(store)
}

fn read_pem(p: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(p).map_err(|e| e.to_string())?;
    CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file ({e})"))
}

impl Client {
    /// The TLS handshake over `s`, within the step's time; on success a line for the
    /// diagnosis (the version, and what was checked).
    pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        s: S,
        budget: &Budget,
    ) -> Result<(TlsStream<S>, String), Trouble> {
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config));
        let tls = match budget.within(connector.connect(self.name.clone(), s)).await {
            Err(cut) => {
                return Err((
                    format!("the TLS handshake did not finish: {cut}"),
                    "the server said it speaks TLS but stopped answering: check its log".into(),
                ));
            }
            Ok(Err(e)) => return Err(self.explain(&e)),
            Ok(Ok(t)) => t,
        };
        let version = match tls.get_ref().1.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
            _ => "TLS",
        };
        let checked = match &self.checks {
            Checks::Nothing => format!("certificate not verified (sslmode = {})", self.mode),
            Checks::Chain { root } => format!(
                "certificate verified against {root} (sslmode = {}; the host name is not checked)",
                self.mode
            ),
            Checks::ChainAndName { root, host } => format!(
                "certificate verified against {root} for {host} (sslmode = {})",
                self.mode
            ),
        };
        Ok((tls, format!("{version}, {checked}")))
    }

    fn explain(&self, e: &std::io::Error) -> Trouble {
        let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
        let detail = format!("the TLS handshake failed: {e}");
        let root = match &self.checks {
            Checks::Chain { root } | Checks::ChainAndName { root, .. } => root.as_str(),
            Checks::Nothing => "",
        };
        let hint = match inner {
            Some(rustls::Error::InvalidCertificate(c)) => match c {
                CertificateError::UnknownIssuer => format!("the server's certificate is not signed by a certificate in sslrootcert ({root}): get the CA certificate that signed it from the database's admin, or check that sslrootcert names the right file"),
                CertificateError::NotValidForName => format!("the certificate does not name {}: set tls_server_name to the name it was issued for (or use that name as the entry's host), or sslmode = \"verify-ca\"", self.host()),
                CertificateError::NotValidForNameContext { presented, .. } if presented.is_empty() => format!("the certificate has no subjectAltName, so it names no host; warren (like browsers) does not fall back to its CN as libpq does: reissue it with subjectAltName = DNS:{}, or use sslmode = \"verify-ca\"", self.host()),
                CertificateError::NotValidForNameContext { presented, .. } => format!("the certificate is for {} and not for {}: if that is the database, set tls_server_name to that name (or use it as the entry's host); else something else answers; or sslmode = \"verify-ca\"", presented.iter().map(|p| san(p)).collect::<Vec<_>>().join(", "), self.host()),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => "the server's certificate has expired: renew it (or check this machine's clock)".into(),
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "the server's certificate is not valid yet: check this machine's clock".into(),
                CertificateError::Other(o) if o.to_string().contains("CaUsedAsEndEntity") => "the server presents a CA certificate as its own (a self-signed CA:TRUE certificate, as `openssl req -x509` makes by default): OpenSSL accepts that, rustls does not; issue the server a certificate signed by that CA, or use sslmode = \"require\"".into(),
                _ => format!("the server's certificate was refused: {c}; check it with `{}`", self.engine.s_client()),
            },
            Some(rustls::Error::AlertReceived(a)) if format!("{a:?}").contains("CertificateRequired") || format!("{a:?}").contains("HandshakeFailure") => format!("the server refused the handshake: it may ask for a client certificate ({}), which warren's probe does not send, or accept no cipher warren offers", self.engine.client_certs()),
            Some(rustls::Error::AlertReceived(_)) => format!("the server ended the handshake: check {}, and the server's log", self.engine.versions()),
            _ => format!("the server said it speaks TLS but the handshake failed: check {}, and the server's log", self.engine.settings()),
        };
        (detail, hint)
    }

    fn host(&self) -> String {
        match &self.checks {
            Checks::ChainAndName { host, .. } => host.clone(),
            _ => self.name.to_str().into_owned(),
        }
    }
}

/// The certificate the server presented as its own (DER, as it was sent): the first of its
/// chain, what `tls-server-end-point` channel binding hashes.
pub fn peer_certificate<S>(tls: &TlsStream<S>) -> Option<Vec<u8>> {
    tls.get_ref()
        .1
        .peer_certificates()?
        .first()
        .map(|c| c.as_ref().to_vec())
}

/// A subjectAltName as rustls describes it (`DnsName("db.example")`) as a user writes it.
fn san(p: &str) -> &str {
    match (p.find('('), p.rfind(')')) {
        (Some(a), Some(b)) if a < b => p[a + 1..b].trim_matches('"'),
        _ => p,
    }
}

/// rustls' own certificate checks (webpki), of which `verify-ca` keeps all but the name.
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // The name is checked after the chain: this error means the chain was good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_alt_names_read_as_written() {
        assert_eq!(san("DnsName(\"db.example\")"), "db.example");
        assert_eq!(san("IpAddress(10.0.0.5)"), "10.0.0.5");
        assert_eq!(san("plain"), "plain");
    }

    #[test]
    fn verify_modes_need_their_root_file() {
        let root = Sourced::new(
            RootCert::File("/nonexistent/root.crt".into()),
            Origin::Flag("test"),
        );
        let e = client(SslMode::VerifyCa, &root, "db.example").err();
        let (detail, hint) = e.unwrap_or_default();
        assert!(detail.contains("/nonexistent/root.crt"), "{detail}");
        assert!(hint.contains("sslrootcert"), "{hint}");
        assert!(client(SslMode::Prefer, &root, "db.example").is_ok());
    }
}
