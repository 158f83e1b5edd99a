//! `tls-server-end-point` channel binding (RFC 5929 section 4), for the PostgreSQL probe's
//! SCRAM-SHA-256-PLUS: the hash of the server's certificate (DER, as sent in the handshake),
//! with the hash function of the certificate's own signature algorithm; SHA-256 when that is
//! MD5 or SHA-1 (section 4.1). An algorithm with no single hash (Ed25519, Ed448, RSASSA-PSS,
//! whose hash is in its parameters) has no binding: PostgreSQL's server refuses to compute one
//! for such a certificate too, so the probe then logs in without binding (`prefer`) or fails
//! (`require`).
//!
//! The signature algorithm is read by a small DER walk, not an X.509 crate: warren's own
//! dependencies have none (rustls-webpki parses certificates but does not expose the
//! signature algorithm), and the walk needs only four headers — the Certificate SEQUENCE, the
//! tbsCertificate skipped whole, the signatureAlgorithm SEQUENCE and its OID — with every
//! length checked against what is left, so any bytes give an answer or `None`, never a panic
//! (a unit test feeds it every prefix and random bytes). The certificate was parsed by rustls
//! in the handshake before this runs, and the bytes hashed are exactly those the server sent,
//! which is what the server hashes for its side.

use sha2::Digest;

/// The channel binding data for a certificate, and which hash made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndPoint {
    pub data: Vec<u8>,
    /// "SHA-256", "SHA-384", ...
    pub hash: &'static str,
}

/// A hash RFC 5929 may pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub fn name(self) -> &'static str {
        match self {
            Hash::Sha224 => "SHA-224",
            Hash::Sha256 => "SHA-256",
            Hash::Sha384 => "SHA-384",
            Hash::Sha512 => "SHA-512",
        }
    }

    fn digest(self, b: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha224 => sha2::Sha224::digest(b).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(b).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(b).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(b).to_vec(),
        }
    }
}

/// What a signature algorithm means for the binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Hash the certificate with this.
    Bind(Hash),
    /// No single hash: RFC 5929 defines no binding (the name, for the message).
    NoHash(&'static str),
}

/// The content octets of `1.2.840.113549.1.1` (PKCS #1), then the algorithm's last arc.
const PKCS1: [u8; 8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
/// `1.2.840.10045.4` (ANSI X9.62 signatures).
const X962: [u8; 6] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04];
/// `2.16.840.1.101.3.4.3` (NIST signature algorithms: DSA with SHA-2).
const NIST_SIG: [u8; 8] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];

/// The hash for a signatureAlgorithm OID (its DER content octets), as OpenSSL's
/// `OBJ_find_sigid_algs` pairs them (which PostgreSQL's server uses); `None` for one warren
/// does not know.
pub fn algorithm(oid: &[u8]) -> Option<Algorithm> {
    use Algorithm::{Bind, NoHash};
    use Hash::*;
    if let Some(arc) = oid.strip_prefix(&PKCS1[..]) {
        return Some(match arc {
            // md5WithRSAEncryption, sha1WithRSAEncryption: SHA-256 (RFC 5929 4.1)
            [0x04] | [0x05] => Bind(Sha256),
            [0x0b] => Bind(Sha256),
            [0x0c] => Bind(Sha384),
            [0x0d] => Bind(Sha512),
            [0x0e] => Bind(Sha224),
            [0x0a] => NoHash("RSASSA-PSS"),
            _ => return None,
        });
    }
    if let Some(arc) = oid.strip_prefix(&X962[..]) {
        return Some(match arc {
            // ecdsa-with-SHA1
            [0x01] => Bind(Sha256),
            [0x03, 0x01] => Bind(Sha224),
            [0x03, 0x02] => Bind(Sha256),
            [0x03, 0x03] => Bind(Sha384),
            [0x03, 0x04] => Bind(Sha512),
            _ => return None,
        });
    }
    if let Some(arc) = oid.strip_prefix(&NIST_SIG[..]) {
        return Some(match arc {
            [0x01] => Bind(Sha224),
            [0x02] => Bind(Sha256),
            _ => return None,
        });
    }
    Some(match oid {
        // dsa-with-sha1 (1.2.840.10040.4.3); sha1WithRSASignature (1.3.14.3.2.29, OIW)
        [0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03] | [0x2b, 0x0e, 0x03, 0x02, 0x1d] => Bind(Sha256),
        [0x2b, 0x65, 0x70] => NoHash("Ed25519"),
        [0x2b, 0x65, 0x71] => NoHash("Ed448"),
        _ => return None,
    })
}

/// One DER element at the start of `b`: its tag, its contents and what follows it. `None`
/// for a high tag number, an indefinite or over-long length, or a length past the end.
fn element(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, b) = b.split_first()?;
    let (len, b) = if first < 0x80 {
        (usize::from(first), b)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (octets, rest) = b.split_at_checked(n)?;
        let len = octets
            .iter()
            .fold(0usize, |acc, &o| (acc << 8) | usize::from(o));
        (len, rest)
    };
    let (contents, rest) = b.split_at_checked(len)?;
    Some((tag, contents, rest))
}

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;

/// The signatureAlgorithm OID of an X.509 certificate (its content octets):
/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, ... }`,
/// `AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }`.
pub fn signature_oid(cert: &[u8]) -> Option<&[u8]> {
    let (SEQUENCE, certificate, _) = element(cert)? else {
        return None;
    };
    let (SEQUENCE, _tbs, rest) = element(certificate)? else {
        return None;
    };
    let (SEQUENCE, identifier, _) = element(rest)? else {
        return None;
    };
    let (OID, oid, _) = element(identifier)? else {
        return None;
    };
    (!oid.is_empty()).then_some(oid)
}

/// An OID's content octets in dotted form, for a message.
pub fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<String> = Vec::new();
    let mut v: u128 = 0;
    for &b in oid.iter().take(64) {
        v = (v << 7) | u128::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let (first, second) = match v {
                    0..40 => (0, v),
                    40..80 => (1, v - 40),
                    _ => (2, v - 80),
                };
                arcs.push(first.to_string());
                arcs.push(second.to_string());
            } else {
                arcs.push(v.to_string());
            }
            v = 0;
        }
    }
    arcs.join(".")
}

/// The `tls-server-end-point` binding data for the server's certificate `cert` (DER), or why
/// there is none.
pub fn server_end_point(cert: &[u8]) -> Result<EndPoint, String> {
    let Some(oid) = signature_oid(cert) else {
        return Err(
            "the server's certificate cannot be read as X.509 (no signatureAlgorithm where RFC 5280 puts it)"
                .into(),
        );
    };
    match algorithm(oid) {
        Some(Algorithm::Bind(h)) => Ok(EndPoint {
            data: h.digest(cert),
            hash: h.name(),
        }),
        Some(Algorithm::NoHash(name)) => Err(format!(
            "the server's certificate is signed with {name}, for which RFC 5929 defines no tls-server-end-point hash (PostgreSQL cannot bind to it either)"
        )),
        None => Err(format!(
            "the server's certificate is signed with an algorithm warren has no tls-server-end-point hash for (OID {})",
            dotted(oid)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64ct::{Base64, Encoding};
    use proptest::prelude::*;

    /// A self-signed P-256 certificate signed with ecdsa-with-SHA384 (`openssl req -x509
    /// -newkey ec -sha384`), and `openssl dgst -sha384` of it.
    const EC_SHA384: &str = "MIIBcDCCARWgAwIBAgIUVEP0CFf9J2mDeGVEAErK1DONtNgwCgYIKoZIzj0EAwMwDTELMAkGA1UEAwwCY2IwHhcNMjYxMjA3MDIxNDAwWhcNMzYxMjA0MDIxNDAwWjANMQswCQYDVQQDDAJjYjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFLvnN3OUCYQimY2vTS48qU4IPAErd4Jee3hu9SNDS8ntVjIo3eSxcH5ihiRCPZKynDzjQvQRI2uW0ZPUoGwgFGjUzBRMB0GA1UdDgQWBBS9KnKzqFFVzmEtO8NmiRrMETzbgDAfBgNVHSMEGDAWgBS9KnKzqFFVzmEtO8NmiRrMETzbgDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMDA0kAMEYCIQCRV+JJuoUZyff5d4MTMog2Xj1azLQHxoCooh8jYOl6NwIhAKttuW+lHLoS5C5uBJmKzrx/lEYr7dLw+gpSwGPQx0nh";
    const EC_SHA384_DIGEST: &str = "da75637c1fbba7e1ed642fbc54e82e53a4018f0a312c62f8329aa3047051e163ec9b0de5c6acb6cd02d8ba95fb47db28";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match contents.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(contents);
        out
    }

    /// A certificate's shape with signatureAlgorithm `oid` (a long tbsCertificate, so that
    /// lengths take the long form).
    fn cert_with(oid: &[u8]) -> Vec<u8> {
        let tbs = der(SEQUENCE, &der(0x04, &[7u8; 300]));
        let mut alg = der(OID, oid);
        alg.extend([0x05, 0x00]);
        let mut body = tbs;
        body.extend(der(SEQUENCE, &alg));
        body.extend(der(0x03, &[0x00, 0x01, 0x02]));
        der(SEQUENCE, &body)
    }

    fn oid(dotted_tail: &[u8], arcs: &[u8]) -> Vec<u8> {
        [dotted_tail, arcs].concat()
    }

    #[test]
    fn a_real_certificate_is_hashed_with_its_signature_hash() {
        let cert = Base64::decode_vec(EC_SHA384).expect("base64");
        assert_eq!(
            signature_oid(&cert).map(dotted).as_deref(),
            Some("1.2.840.10045.4.3.3")
        );
        let ep = server_end_point(&cert).expect("binds");
        assert_eq!(ep.hash, "SHA-384");
        assert_eq!(hex(&ep.data), EC_SHA384_DIGEST);
    }

    #[test]
    fn md5_and_sha1_signatures_bind_with_sha256_and_the_others_with_their_own() {
        let cases: [(Vec<u8>, &str, usize); 14] = [
            (oid(&PKCS1, &[0x04]), "SHA-256", 32), // md5WithRSAEncryption
            (oid(&PKCS1, &[0x05]), "SHA-256", 32), // sha1WithRSAEncryption
            (oid(&PKCS1, &[0x0b]), "SHA-256", 32),
            (oid(&PKCS1, &[0x0c]), "SHA-384", 48),
            (oid(&PKCS1, &[0x0d]), "SHA-512", 64),
            (oid(&PKCS1, &[0x0e]), "SHA-224", 28),
            (oid(&X962, &[0x01]), "SHA-256", 32), // ecdsa-with-SHA1
            (oid(&X962, &[0x03, 0x01]), "SHA-224", 28),
            (oid(&X962, &[0x03, 0x02]), "SHA-256", 32),
            (oid(&X962, &[0x03, 0x03]), "SHA-384", 48),
            (oid(&X962, &[0x03, 0x04]), "SHA-512", 64),
            (
                vec![0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03],
                "SHA-256",
                32,
            ), // dsa-with-sha1
            (oid(&NIST_SIG, &[0x02]), "SHA-256", 32), // dsa-with-sha256
            (vec![0x2b, 0x0e, 0x03, 0x02, 0x1d], "SHA-256", 32), // OIW sha1WithRSA
        ];
        for (o, name, len) in cases {
            let cert = cert_with(&o);
            let ep = server_end_point(&cert).unwrap_or_else(|e| panic!("{}: {e}", dotted(&o)));
            assert_eq!((ep.hash, ep.data.len()), (name, len), "{}", dotted(&o));
            let whole = match name {
                "SHA-224" => sha2::Sha224::digest(&cert).to_vec(),
                "SHA-256" => sha2::Sha256::digest(&cert).to_vec(),
                "SHA-384" => sha2::Sha384::digest(&cert).to_vec(),
                _ => sha2::Sha512::digest(&cert).to_vec(),
            };
            assert_eq!(ep.data, whole, "the whole certificate is hashed");
        }
    }

    #[test]
    fn algorithms_without_one_hash_have_no_binding_and_say_why() {
        let e = server_end_point(&cert_with(&[0x2b, 0x65, 0x70])).err();
        assert!(
            e.as_deref().unwrap_or_default().contains("Ed25519"),
            "{e:?}"
        );
        let e = server_end_point(&cert_with(&oid(&PKCS1, &[0x0a]))).err();
        assert!(
            e.as_deref().unwrap_or_default().contains("RSASSA-PSS"),
            "{e:?}"
        );
        // sm2-with-SM3 (1.2.156.10197.1.501): unknown, named by its OID.
        let sm2 = [0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x75];
        let e = server_end_point(&cert_with(&sm2)).err().unwrap_or_default();
        assert!(e.contains("OID 1.2.156.10197.1.501"), "{e}");
    }

    #[test]
    fn bytes_that_are_not_a_certificate_are_refused() {
        let e = server_end_point(b"not a certificate")
            .err()
            .unwrap_or_default();
        assert!(e.contains("cannot be read as X.509"), "{e}");
        let cert = Base64::decode_vec(EC_SHA384).expect("base64");
        // Every prefix of a certificate is cut short somewhere the walk reads.
        for n in 0..cert.len() {
            assert!(signature_oid(&cert[..n]).is_none(), "prefix {n}");
        }
        // Indefinite length (BER), and a length of 5 octets.
        assert!(element(&[0x30, 0x80, 0x00, 0x00]).is_none());
        assert!(element(&[0x30, 0x85, 1, 0, 0, 0, 0]).is_none());
        // A length past the end.
        assert!(element(&[0x30, 0x82, 0xff, 0xff, 0x00]).is_none());
    }

    proptest! {
        #[test]
        fn any_bytes_give_an_answer_not_a_panic(b in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = server_end_point(&b);
            let _ = dotted(&b);
        }

        #[test]
        fn a_certificate_with_one_byte_changed_does_not_panic(i in 0usize..372, x in any::<u8>()) {
            let mut cert = Base64::decode_vec(EC_SHA384).expect("base64");
            cert[i] = x;
            let _ = server_end_point(&cert);
        }
    }
}
