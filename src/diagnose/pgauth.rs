//! PostgreSQL password authentication for the probe, used only when the entry names a
//! password: SCRAM-SHA-256 and MD5 from `postgres-protocol` (the code tokio-postgres logs in
//! with; its `ScramSha256` also checks the server's signature). The password never reaches a
//! log, the screen or JSON.
//!
//! warren's own code here is only what a diagnosis needs on top:
//! - [`server_first`] reads the server's first SCRAM message *before* the crate computes
//!   anything, so a server asking for an absurd iteration count, a nonce that is not ours or
//!   an unreadable salt gets a message naming the fault (the crate refuses them too, in one
//!   generic error);
//! - PBKDF2 runs on tokio's blocking pool, not on the async runtime (in the TUI the runtime
//!   also carries every tunnel and the screen), bounded by [`MAX_SCRAM_ITERATIONS`] and by
//!   the step's deadline.
//!
//! Channel binding (SCRAM-SHA-256-PLUS) is the crate's too: warren only chooses it and
//! computes the `tls-server-end-point` data ([`super::chanbind`]).
//!
//! The client nonce is made by the crate from `rand`'s thread RNG: ChaCha12 seeded from the
//! operating system's `getrandom(2)` and reseeded, a cryptographically secure source (the
//! crate offers no way to pass a nonce, and none is needed).

use base64ct::{Base64, Encoding};
pub use postgres_protocol::authentication::sasl::ChannelBinding;
use postgres_protocol::authentication::sasl::ScramSha256;

use super::wire::Budget;

/// The most PBKDF2 iterations warren computes for a SCRAM login: the cap `postgres-protocol`
/// itself enforces (and pgjdbc adopted, CVE-2026-42198), 24 times PostgreSQL's default of
/// 4096. About 30 ms on a laptop; a server asking for more fails the step.
pub const MAX_SCRAM_ITERATIONS: u32 = 100_000;

/// What the server's first SCRAM message asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFirst {
    pub nonce: String,
    pub salt: Vec<u8>,
    pub iterations: u32,
}

/// Reads `r=NONCE,s=SALT,i=COUNT` (RFC 5802 section 7), refusing what warren will not compute.
pub fn server_first(data: &[u8]) -> Result<ServerFirst, String> {
    let text = std::str::from_utf8(data)
        .map_err(|_| "the server's SCRAM challenge is not UTF-8".to_string())?;
    let mut parts = text.split(',');
    let mut field = |key: &str| {
        parts
            .next()
            .and_then(|p| p.strip_prefix(key))
            .ok_or_else(|| {
                format!("the server's SCRAM challenge has no '{key}' where RFC 5802 puts it")
            })
    };
    let nonce = field("r=")?.to_string();
    let salt = field("s=")?;
    let iterations = field("i=")?;
    let salt = Base64::decode_vec(salt)
        .map_err(|_| "the server's SCRAM salt is not base64".to_string())?;
    let iterations: u32 = iterations.parse().map_err(|_| {
        format!(
            "the server's SCRAM iteration count '{}' is not a number warren can use",
            crate::text::escape(iterations)
        )
    })?;
    if iterations == 0 {
        return Err("the server asks for 0 SCRAM iterations".into());
    }
    if iterations > MAX_SCRAM_ITERATIONS {
        return Err(format!(
            "the server asks for {iterations} SCRAM iterations; warren computes at most {MAX_SCRAM_ITERATIONS} (PostgreSQL's default is 4096)"
        ));
    }
    if nonce.is_empty()
        || !nonce
            .bytes()
            .all(|c| (0x21..=0x7e).contains(&c) && c != b',')
    {
        return Err("the server's SCRAM nonce is not printable ASCII".into());
    }
    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

/// A SCRAM-SHA-256 exchange in progress.
pub struct Scram {
    inner: ScramSha256,
}

impl Scram {
    /// Starts an exchange; returns the client-first message for SASLInitialResponse. `binding`
    /// makes its GS2 header: `p=tls-server-end-point` (SCRAM-SHA-256-PLUS: the proof then
    /// covers the hash of the certificate warren was shown, and a server with another
    /// certificate refuses it), `y` (warren could bind but the server did not offer to) or `n`
    /// (no binding: no TLS, or turned off).
    pub fn start(password: &str, binding: ChannelBinding) -> (Scram, Vec<u8>) {
        let inner = ScramSha256::new(password.as_bytes(), binding);
        let first = inner.message().to_vec();
        (Scram { inner }, first)
    }

    /// Our nonce, from the client-first message.
    fn nonce(&self) -> String {
        nonce_of(self.inner.message())
    }

    /// Answers the server's challenge: the client-final message (with the proof). PBKDF2
    /// runs on the blocking pool; waiting for it ends at the step's deadline.
    pub async fn answer(
        self,
        challenge: &[u8],
        budget: &Budget,
    ) -> Result<(Scram, Vec<u8>), String> {
        let sf = server_first(challenge)?;
        if !sf.nonce.starts_with(&self.nonce()) || sf.nonce.len() == self.nonce().len() {
            return Err("the server's SCRAM nonce does not extend the one warren sent: this is not a SCRAM server, or something is in between".into());
        }
        let challenge = challenge.to_vec();
        let mut inner = self.inner;
        let job = tokio::task::spawn_blocking(move || {
            let r = inner.update(&challenge);
            (inner, r)
        });
        match budget.within(job).await {
            Err(cut) => Err(format!(
                "computing the SCRAM proof ({} iterations): {cut}",
                sf.iterations
            )),
            Ok(Err(e)) => Err(format!("computing the SCRAM proof failed: {e}")),
            Ok(Ok((_, Err(e)))) => Err(format!("the server's SCRAM challenge was refused: {e}")),
            Ok(Ok((inner, Ok(())))) => {
                let msg = inner.message().to_vec();
                Ok((Scram { inner }, msg))
            }
        }
    }

    /// Checks the server's signature in its final message: only a server that knows the
    /// password (or its SCRAM verifier) can make it.
    pub fn finish(mut self, last: &[u8]) -> Result<(), String> {
        if let Some(e) = last.strip_prefix(b"e=") {
            return Err(format!(
                "the server ended SCRAM with the error '{}'",
                crate::text::escape(&String::from_utf8_lossy(e))
            ));
        }
        self.inner.finish(last).map_err(|e| {
            format!("the server's SCRAM signature is wrong ({e}): it does not know the password, or something is in between")
        })
    }
}

/// The nonce of a client-first message `GS2-HEADER n=,r=NONCE`: what follows the first `,r=`.
/// Not the last `r=`: the crate draws the nonce from every printable character but `,`, so
/// it may hold `r=` itself (about one nonce in 380), and the user name is empty.
fn nonce_of(client_first: &[u8]) -> String {
    String::from_utf8_lossy(client_first)
        .split_once(",r=")
        .map(|(_, n)| n.to_string())
        .unwrap_or_default()
}

/// The MD5 method's answer: `md5` + md5(md5(password + user) + salt).
pub fn md5_password(password: &str, user: &str, salt: [u8; 4]) -> String {
    postgres_protocol::authentication::md5_hash(user.as_bytes(), password.as_bytes(), salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7677_challenge_reads() {
        let sf = server_first(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .expect("reads");
        assert_eq!(sf.iterations, 4096);
        assert_eq!(sf.salt.len(), 16);
    }

    #[test]
    fn absurd_challenges_are_refused_with_their_reason() {
        let e = server_first(b"r=abc,s=QUJD,i=10000000")
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("10000000") && e.contains("at most 100000"),
            "{e}"
        );
        let e = server_first(b"r=abc,s=QUJD,i=-1").err().unwrap_or_default();
        assert!(e.contains("not a number"), "{e}");
        let e = server_first(b"r=abc,s=***,i=4096")
            .err()
            .unwrap_or_default();
        assert!(e.contains("base64"), "{e}");
        let e = server_first(b"s=QUJD,r=abc,i=4096")
            .err()
            .unwrap_or_default();
        assert!(e.contains("'r='"), "{e}");
    }

    #[tokio::test]
    async fn a_nonce_that_is_not_ours_is_refused_before_any_work() {
        let (scram, first) = Scram::start("pencil", ChannelBinding::unsupported());
        assert!(first.starts_with(b"n,,n=,r="), "{first:?}");
        let b = Budget::new(std::time::Duration::from_secs(5));
        let e = scram
            .answer(b"r=someoneelse,s=QUJD,i=4096", &b)
            .await
            .err()
            .unwrap_or_default();
        assert!(e.contains("does not extend"), "{e}");
    }

    /// The GS2 header of each binding, and in the client-final message's `c=` the header with
    /// the binding data after it (RFC 5802 section 7): what the server compares with its own.
    #[tokio::test]
    async fn the_binding_is_in_the_first_message_and_covered_by_the_proof() {
        let b = Budget::new(std::time::Duration::from_secs(5));
        let cases = [
            (ChannelBinding::unsupported(), "n,,", b"n,,".to_vec()),
            (ChannelBinding::unrequested(), "y,,", b"y,,".to_vec()),
            (
                ChannelBinding::tls_server_end_point(vec![0xde, 0xad, 0xbe, 0xef]),
                "p=tls-server-end-point,,",
                b"p=tls-server-end-point,,\xde\xad\xbe\xef".to_vec(),
            ),
        ];
        for (binding, header, cbind) in cases {
            let (scram, first) = Scram::start("pencil", binding);
            let text = String::from_utf8_lossy(&first).into_owned();
            assert!(text.starts_with(&format!("{header}n=,r=")), "{text}");
            let challenge = format!("r={}srv,s=QUJDREVGR0g=,i=4096", scram.nonce());
            let (_, last) = scram
                .answer(challenge.as_bytes(), &b)
                .await
                .expect("answers");
            let last = String::from_utf8_lossy(&last).into_owned();
            assert!(
                last.starts_with(&format!("c={},", Base64::encode_string(&cbind))),
                "{header}: {last}"
            );
        }
    }

    /// A nonce holding `r=` is read whole (it used to be cut after its own `r=`, and the
    /// server's nonce then did not "extend" it: a login refused by chance).
    #[test]
    fn a_nonce_holding_r_equals_is_read_whole() {
        assert_eq!(nonce_of(b"n,,n=,r=Xr=Yr=Z"), "Xr=Yr=Z");
        assert_eq!(nonce_of(b"p=tls-server-end-point,,n=,r=abr="), "abr=");
        assert_eq!(nonce_of(b"garbage"), "");
    }

    #[test]
    fn two_exchanges_have_different_nonces() {
        let (a, _) = Scram::start("x", ChannelBinding::unsupported());
        let (b, _) = Scram::start("x", ChannelBinding::unsupported());
        assert_ne!(a.nonce(), b.nonce());
        assert_eq!(a.nonce().len(), 24);
    }

    #[test]
    fn md5_method() {
        // The vector of postgres-protocol's own test, through our argument order.
        assert_eq!(
            md5_password("password", "md5_user", [0x2a, 0x3d, 0x8f, 0xe0]),
            "md562af4dd09bbb41884907a838a3233294"
        );
    }
}
