//! Reading from a peer that may lie: every probe reads through a [`Budget`], which ends at the
//! step's deadline and after [`TOTAL_CAP`] bytes, whatever the peer says or does. Lengths a
//! peer announces are checked against [`MESSAGE_CAP`] before anything is allocated for them.
//!
//! The parsers themselves are pure functions over the bytes read here (see `pgwire`,
//! `probe`, `banner`), so they can be fuzzed without a socket.

use std::fmt;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// What one probe reads in all: a database's greeting and login answer are a few hundred
/// bytes; a server that sends more is streaming something else.
pub const TOTAL_CAP: usize = 1 << 20;

/// The largest single message a probe accepts (a PostgreSQL message, a MySQL packet, a
/// MongoDB reply, a Redis line). Real greetings and errors are far smaller.
pub const MESSAGE_CAP: usize = 64 << 10;

/// Why reading stopped before the answer was whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The step's time ran out.
    Timeout(Duration),
    /// The peer closed the connection.
    Closed,
    /// The peer sent [`TOTAL_CAP`] bytes without finishing its answer.
    Spent,
    /// Reading or writing failed.
    Io(String),
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cut::Timeout(t) => write!(f, "no whole answer within {}s", t.as_secs_f64()),
            Cut::Closed => f.write_str("the connection was closed"),
            Cut::Spent => write!(
                f,
                "more than {} KiB without a whole answer (warren stops reading there)",
                TOTAL_CAP >> 10
            ),
            Cut::Io(e) => f.write_str(e),
        }
    }
}

/// The time and the bytes one probe step may still spend on a peer.
#[derive(Debug)]
pub struct Budget {
    deadline: Instant,
    timeout: Duration,
    left: usize,
}

impl Budget {
    pub fn new(timeout: Duration) -> Self {
        Budget {
            deadline: Instant::now() + timeout,
            timeout,
            left: TOTAL_CAP,
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The step's whole timeout (for messages).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Bytes read so far.
    pub fn spent(&self) -> usize {
        TOTAL_CAP - self.left
    }

    /// Runs `fut` until the deadline.
    pub async fn within<T>(&self, fut: impl std::future::Future<Output = T>) -> Result<T, Cut> {
        tokio::time::timeout_at(self.deadline, fut)
            .await
            .map_err(|_| Cut::Timeout(self.timeout))
    }

    /// Reads what the peer has sent (at least one byte) onto `buf`.
    pub async fn read_more<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
        buf: &mut BytesMut,
    ) -> Result<usize, Cut> {
        if self.left == 0 {
            return Err(Cut::Spent);
        }
        let mut chunk = [0u8; 8192];
        let max = chunk.len().min(self.left);
        match self.within(s.read(&mut chunk[..max])).await? {
            Ok(0) => Err(Cut::Closed),
            Ok(n) => {
                self.left -= n;
                buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e) => Err(Cut::Io(e.to_string())),
        }
    }

    /// Reads until `buf` holds at least `n` bytes (`n` is checked by the caller against
    /// [`MESSAGE_CAP`]).
    pub async fn fill<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
        buf: &mut BytesMut,
        n: usize,
    ) -> Result<(), Cut> {
        while buf.len() < n {
            self.read_more(s, buf).await?;
        }
        Ok(())
    }

    /// Writes all of `bytes` (a peer that does not read cannot hold the step either).
    pub async fn write<S: AsyncWrite + Unpin>(&self, s: &mut S, bytes: &[u8]) -> Result<(), Cut> {
        let fut = async {
            s.write_all(bytes).await?;
            s.flush().await
        };
        self.within(fut)
            .await?
            .map_err(|e| Cut::Io(format!("sending failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_endless_peer_is_cut_at_the_cap() {
        let (mut ours, mut theirs) = tokio::io::duplex(64 << 10);
        let writer = tokio::spawn(async move {
            let block = vec![b'N'; 8192];
            while theirs.write_all(&block).await.is_ok() {}
        });
        let mut b = Budget::new(Duration::from_secs(30));
        let mut buf = BytesMut::new();
        let cut = loop {
            if let Err(c) = b.read_more(&mut ours, &mut buf).await {
                break c;
            }
        };
        assert_eq!(cut, Cut::Spent);
        assert_eq!(buf.len(), TOTAL_CAP);
        drop(ours);
        let _ = writer.await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_cut_at_the_deadline() {
        let (mut ours, _theirs) = tokio::io::duplex(64);
        let mut b = Budget::new(Duration::from_secs(5));
        let mut buf = BytesMut::new();
        let r = b.fill(&mut ours, &mut buf, 5).await;
        assert_eq!(r, Err(Cut::Timeout(Duration::from_secs(5))));
    }
}
