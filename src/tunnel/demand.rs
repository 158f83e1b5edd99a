//! On-demand tunnels: the listeners stay bound with no SSH session under them; the first
//! client connection asks for one, the session's supervisor opens it, and it closes again
//! once no client connection has been open for the idle time.
//!
//! [`Demand`] is what the two sides share: each client connection holds a [`User`] for as
//! long as it waits or runs; the supervisor waits for a first user ([`Demand::wanted`]),
//! watches [`Demand::idle_for`], and tells the waiting clients when it could not open the
//! session ([`Demand::failed`]). A client that arrives shortly after such a failure gets it at
//! once (for as long as the supervisor waits before it tries again), so a tool that retries
//! in a loop does not make warren hammer the bastion.
//!
//! A client that gets no session is told why in its database's own protocol where warren
//! knows it ([`Refusal`]): PostgreSQL's ErrorResponse and MySQL's ERR packet carry a message
//! naming warren and the cause, which a BI tool shows instead of "connection reset". The
//! reads this takes from the client are bounded in size and time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, watch};

/// The session of one or more on-demand tunnels, as their clients and its supervisor see it.
#[derive(Debug)]
pub struct Demand {
    /// How long the session stays with no client connection before it closes.
    pub idle: Duration,
    users: AtomicUsize,
    idle_since: std::sync::Mutex<Instant>,
    wake: Notify,
    failure: watch::Sender<Option<Failure>>,
}

/// The last failure to open the session.
#[derive(Clone, Debug)]
pub struct Failure {
    pub why: Arc<str>,
    /// Clients arriving before this get the failure at once.
    pub until: Instant,
}

/// A client connection that needs the session (held while it waits and while it runs).
#[derive(Debug)]
pub struct User(Arc<Demand>);

impl Drop for User {
    fn drop(&mut self) {
        if self.0.users.fetch_sub(1, Ordering::AcqRel) == 1
            && let Ok(mut t) = self.0.idle_since.lock()
        {
            *t = Instant::now();
        }
    }
}

impl Demand {
    pub fn new(idle: Duration) -> Arc<Demand> {
        Arc::new(Demand {
            idle,
            users: AtomicUsize::new(0),
            idle_since: std::sync::Mutex::new(Instant::now()),
            wake: Notify::new(),
            failure: watch::Sender::new(None),
        })
    }

    /// A client connection arrived: it needs the session until the [`User`] is dropped.
    pub fn enter(self: &Arc<Self>) -> User {
        self.users.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_one();
        User(Arc::clone(self))
    }

    /// Client connections waiting or running now.
    pub fn users(&self) -> usize {
        self.users.load(Ordering::Acquire)
    }

    /// Returns once a client connection needs the session.
    pub async fn wanted(&self) {
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.users() > 0 {
                return;
            }
            woken.await;
        }
    }

    /// How long no client connection has been open (`None` while one is).
    pub fn idle_for(&self) -> Option<Duration> {
        if self.users() > 0 {
            return None;
        }
        self.idle_since.lock().ok().map(|t| t.elapsed())
    }

    /// The session could not be opened: the clients waiting are told `why`, and so is every
    /// client arriving in the next `hold`.
    pub fn failed(&self, why: &str, hold: Duration) {
        self.failure.send_replace(Some(Failure {
            why: Arc::from(why),
            until: Instant::now() + hold,
        }));
    }

    /// The session is open: no failure is held any more.
    pub fn opened(&self) {
        self.failure.send_replace(None);
    }

    /// The failures, as a client waiting for the session watches them.
    pub fn failures(&self) -> watch::Receiver<Option<Failure>> {
        self.failure.subscribe()
    }
}

/// How a client that gets no session is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The connection is closed (a protocol warren does not speak).
    Close,
    /// A PostgreSQL ErrorResponse (after declining SSL/GSS encryption requests).
    Postgres,
    /// A MySQL/MariaDB ERR packet in place of the server's greeting.
    Mysql,
}

/// The longest message put in a refusal.
const MAX_MESSAGE: usize = 1024;
/// The most a client may send before the refusal (PostgreSQL's startup packet).
const MAX_STARTUP: usize = 10_000;
/// How long a client has to send it.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Tells a client why it gets no session, in its protocol; then the caller closes it.
pub async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(sock: &mut S, how: Refusal, message: &str) {
    let mut text: String = crate::text::escape(message).into_owned();
    if text.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    let _ = tokio::time::timeout(READ_TIMEOUT, async {
        match how {
            Refusal::Close => Ok(()),
            Refusal::Postgres => postgres(sock, &text).await,
            Refusal::Mysql => sock.write_all(&mysql_error(&text)).await,
        }
    })
    .await;
    let _ = sock.shutdown().await;
}

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const PROTOCOL_3: u32 = 196_608;

/// Declines encryption requests, reads the startup packet, answers with a FATAL error.
async fn postgres<S: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut S,
    text: &str,
) -> std::io::Result<()> {
    // SSLRequest and GSSENCRequest may both come first; a third request is not one.
    for _ in 0..3 {
        let mut head = [0u8; 8];
        sock.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let code = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        match code {
            SSL_REQUEST | GSSENC_REQUEST if len == 8 => sock.write_all(b"N").await?,
            _ if (8..=MAX_STARTUP).contains(&len) => {
                let mut rest = vec![0u8; len - 8];
                sock.read_exact(&mut rest).await?;
                if code >> 16 == PROTOCOL_3 >> 16 {
                    return sock.write_all(&postgres_error(text)).await;
                }
                return Ok(());
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// A PostgreSQL ErrorResponse: FATAL, SQLSTATE 08001 (the client could not connect).
fn postgres_error(text: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (tag, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "08001"),
        (b'M', text),
    ] {
        body.push(tag);
        body.extend(value.bytes().filter(|&b| b != 0));
        body.push(0);
    }
    body.push(0);
    let mut out = vec![b'E'];
    out.extend(((body.len() + 4) as u32).to_be_bytes());
    out.extend(body);
    out
}

/// A MySQL ERR packet as the first packet (before capabilities are agreed, so without the
/// SQL state marker): error 1105, "unknown error", whose text the client shows.
fn mysql_error(text: &str) -> Vec<u8> {
    let mut payload = vec![0xff];
    payload.extend(1105u16.to_le_bytes());
    payload.extend(text.as_bytes());
    let len = payload.len() as u32;
    let mut out = len.to_le_bytes()[..3].to_vec();
    out.push(0);
    out.extend(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_first_user_wakes_the_supervisor_and_the_last_starts_the_idle_clock() {
        let d = Demand::new(Duration::from_secs(60));
        assert!(d.idle_for().is_some());
        let waiting = tokio::spawn({
            let d = Arc::clone(&d);
            async move { d.wanted().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let a = d.enter();
        let b = d.enter();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(d.idle_for(), None);
        drop(a);
        assert_eq!(d.idle_for(), None, "one connection is still open");
        drop(b);
        assert!(d.idle_for().expect("idle") < Duration::from_secs(1));
        // A wake that came while nobody waited does not count once the user has gone.
        let d2 = Demand::new(Duration::from_secs(60));
        drop(d2.enter());
        let again = tokio::time::timeout(Duration::from_millis(100), d2.wanted()).await;
        assert!(again.is_err(), "no user: wanted() must keep waiting");
    }

    #[tokio::test]
    async fn a_postgres_client_gets_an_error_response_after_its_ssl_request_is_declined() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let refusing = tokio::spawn(async move {
            refuse(
                &mut server,
                Refusal::Postgres,
                "warren: bastion down\u{1b}[2J",
            )
            .await;
        });
        client
            .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
            .await
            .expect("ssl request");
        let mut n = [0u8; 1];
        client.read_exact(&mut n).await.expect("answer");
        assert_eq!(&n, b"N");
        let mut startup = vec![0, 0, 0, 0, 0, 3, 0, 0];
        startup.extend(b"user\0me\0\0");
        let len = startup.len() as u32;
        startup[..4].copy_from_slice(&len.to_be_bytes());
        client.write_all(&startup).await.expect("startup");
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.expect("reply");
        refusing.await.expect("refused");
        assert_eq!(reply[0], b'E');
        let text = String::from_utf8_lossy(&reply);
        assert!(text.contains("08001"), "{text}");
        assert!(text.contains("warren: bastion down"), "{text}");
        assert!(
            !text.contains('\u{1b}'),
            "control characters escaped: {text:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_or_oversized_postgres_client_is_closed_without_waiting_long() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client
            .write_all(&[0x7f, 0, 0, 0, 0, 3, 0, 0])
            .await
            .expect("head");
        tokio::time::timeout(
            Duration::from_secs(2),
            refuse(&mut server, Refusal::Postgres, "x"),
        )
        .await
        .expect("an oversized startup packet ends it at once");
    }

    #[test]
    fn a_mysql_refusal_is_one_err_packet() {
        let p = mysql_error("warren: no session");
        let len = u32::from_le_bytes([p[0], p[1], p[2], 0]) as usize;
        assert_eq!(len, p.len() - 4);
        assert_eq!(p[3], 0, "sequence 0");
        assert_eq!(p[4], 0xff);
        assert_eq!(u16::from_le_bytes([p[5], p[6]]), 1105);
        assert_eq!(&p[7..], b"warren: no session");
    }
}
