//! The daemon's Prometheus metrics: `[metrics] listen = "127.0.0.1:9750"` in the settings
//! serves `GET /metrics` there, in the Prometheus text format (0.0.4).
//!
//! Nothing is counted here: each scrape asks the engine for its status ([`render`] of
//! [`crate::engine::Engine::status`]), so the numbers are the tunnels' own counters, the ones
//! `warren status` shows, and never a second copy that could drift. The text is made by the
//! `prometheus-client` crate (names, HELP and TYPE lines, label escaping).
//!
//! The HTTP side is a small GET responder written here rather than hyper: one route, one
//! request per connection, no keep-alive, no body to read, and the few lines it takes are
//! cheaper than hyper's dependency tree and easier to bound. Whoever reaches the address is
//! a stranger (any local user, or anyone on the network for an address that is not
//! loopback), so every resource a peer can hold is capped ([`Limits`]): the request head's
//! size, the time to send it (for the whole head, so a byte a second does not keep it
//! open), the time to take the answer, and the scrapes served at once (one more gets a 503
//! at once). Anything but `GET`/`HEAD` gets 405, any path but `/metrics` gets 404, a head
//! that is not HTTP gets 400. Nothing in it panics on a peer's input.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::engine::{TunnelState, TunnelStatus};

/// What one peer may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The longest request head read (request line and headers); longer gets 431.
    pub head: usize,
    /// The time a peer has to send the whole head; slower gets 408.
    pub read: Duration,
    /// The time a peer has to take the answer.
    pub write: Duration,
    /// Scrapes served at once.
    pub scrapes: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        head: 8 * 1024,
        read: Duration::from_secs(5),
        write: Duration::from_secs(5),
        scrapes: 4,
    };
}

/// The bytes read after an answer to a peer that is still sending (so closing does not
/// reset the connection before it reads the answer), and the time given to that.
const DRAIN_BYTES: usize = 64 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// The 503s being written at once, for each scrape slot.
const REFUSALS_PER_SCRAPE: usize = 4;

/// Serves scrapes on `listener` until `stop`; `body` makes the text of each.
pub async fn serve<F, Fut>(listener: TcpListener, limits: Limits, body: F, stop: CancellationToken)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = String> + Send,
{
    let body = Arc::new(body);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.scrapes));
    // Refusals are answered by tasks of their own, so the accept loop never waits on a
    // peer; these are capped too, and a refusal beyond them is closed without a word.
    let refusals = Arc::new(tokio::sync::Semaphore::new(
        REFUSALS_PER_SCRAPE * limits.scrapes,
    ));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let conn = match accepted {
            Ok((c, _)) => c,
            // Out of file descriptors and the like: wait a little rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Told at once, in a task of its own: the peer may already have sent its request,
            // and closing with that unread would reset the connection before the 503 is read.
            if let Ok(refusal) = Arc::clone(&refusals).try_acquire_owned() {
                let stop = stop.clone();
                tokio::spawn(async move {
                    let busy = response(503, "Service Unavailable", &[], b"busy\n");
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = finish(conn, &busy, limits) => {}
                    }
                    drop(refusal);
                });
            }
            continue;
        };
        let (body, stop) = (Arc::clone(&body), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = answer(conn, limits, || (*body)()) => {}
            }
            drop(slot);
        });
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// `GET /metrics` (`HEAD`: without the body).
    Metrics {
        head_only: bool,
    },
    NotFound,
    NotAllowed,
    Bad,
}

/// The route of a request head (only its first line counts).
fn route(head: &[u8]) -> Route {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::Bad;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::Bad;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || target.is_empty() {
        return Route::Bad;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::NotAllowed,
    };
    let path = target.split('?').next().unwrap_or_default();
    if path == "/metrics" {
        Route::Metrics { head_only }
    } else {
        Route::NotFound
    }
}

/// What reading a head came to.
enum Read {
    Head(Vec<u8>),
    TooLong,
    TimedOut,
    /// The peer went before it finished.
    Gone,
}

async fn read_head<S: AsyncRead + Unpin>(conn: &mut S, limits: Limits) -> Read {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let reading = async {
        loop {
            let room = limits.head.saturating_sub(head.len());
            if room == 0 {
                return Read::TooLong;
            }
            let want = room.min(chunk.len());
            let n = match conn.read(&mut chunk[..want]).await {
                Ok(0) | Err(_) => return Read::Gone,
                Ok(n) => n,
            };
            // The end of the head may straddle two reads: look from a little before.
            let from = head.len().saturating_sub(3);
            head.extend_from_slice(&chunk[..n]);
            let tail = &head[from..];
            if tail.windows(4).any(|w| w == b"\r\n\r\n") || tail.windows(2).any(|w| w == b"\n\n") {
                return Read::Head(std::mem::take(&mut head));
            }
        }
    };
    tokio::time::timeout(limits.read, reading)
        .await
        .unwrap_or(Read::TimedOut)
}

/// Reads one request and answers it, within the limits.
async fn answer<S, F, Fut>(mut conn: S, limits: Limits, body: F)
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce() -> Fut,
    Fut: Future<Output = String>,
{
    let text = match read_head(&mut conn, limits).await {
        Read::Gone => return,
        Read::TimedOut => response(408, "Request Timeout", &[], b"request head too slow\n"),
        Read::TooLong => response(
            431,
            "Request Header Fields Too Large",
            &[],
            format!("request head longer than {} bytes\n", limits.head).as_bytes(),
        ),
        Read::Head(head) => match route(&head) {
            Route::Bad => response(400, "Bad Request", &[], b"not an HTTP/1 request\n"),
            Route::NotAllowed => response(
                405,
                "Method Not Allowed",
                &[("Allow", "GET, HEAD")],
                b"only GET /metrics\n",
            ),
            Route::NotFound => response(404, "Not Found", &[], b"the metrics are at /metrics\n"),
            Route::Metrics { head_only } => {
                let text = body().await;
                let mut r = response(
                    200,
                    "OK",
                    &[(
                        "Content-Type",
                        prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                    )],
                    text.as_bytes(),
                );
                if head_only {
                    r.truncate(r.len() - text.len());
                }
                r
            }
        },
    };
    finish(conn, &text, limits).await;
}

/// Writes `answer` within the write limit, closes the sending side, then reads (a little,
/// briefly) and drops what the peer still sends: closing a socket with unread data resets
/// it, and the peer may lose the answer.
async fn finish<S: AsyncRead + AsyncWrite + Unpin>(mut conn: S, answer: &[u8], limits: Limits) {
    let wrote = tokio::time::timeout(limits.write, async {
        conn.write_all(answer).await?;
        conn.shutdown().await
    })
    .await;
    if !matches!(wrote, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut sink = [0u8; 4096];
        let mut left = DRAIN_BYTES;
        while left > 0 {
            match conn.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// A whole HTTP/1.1 response; the connection closes after it.
fn response(code: u16, reason: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {code} {reason}\r\n");
    if !headers.iter().any(|(k, _)| *k == "Content-Type") {
        head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The labels of a tunnel's series: its name and its tags (comma-separated, as written).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    name: String,
    tags: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    name: String,
    tags: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TagLabels {
    name: String,
    tag: String,
}

/// The states `warren_tunnel_state` has a series for.
pub const STATES: [&str; 8] = [
    "down",
    "connecting",
    "up",
    "reconnecting",
    "failed",
    "expired",
    "on_demand",
    "needs_you",
];

fn state_word(s: &TunnelState) -> &'static str {
    match s {
        TunnelState::Down => "down",
        TunnelState::Connecting => "connecting",
        TunnelState::Up => "up",
        TunnelState::Reconnecting { .. } => "reconnecting",
        TunnelState::Failed { .. } => "failed",
        TunnelState::Expired { .. } => "expired",
        TunnelState::OnDemand { .. } => "on_demand",
        TunnelState::NeedsYou { .. } => "needs_you",
    }
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The metrics text of these tunnels.
pub fn render(tunnels: &[TunnelStatus]) -> String {
    let mut reg = Registry::with_prefix("warren");
    let up = Family::<Labels, Gauge>::default();
    let state = Family::<StateLabels, Gauge>::default();
    let received = Family::<Labels, Counter>::default();
    let sent = Family::<Labels, Counter>::default();
    let open = Family::<Labels, Gauge>::default();
    let connections = Family::<Labels, Counter>::default();
    let failed = Family::<Labels, Counter>::default();
    let reconnects = Family::<Labels, Counter>::default();
    let uptime = Family::<Labels, FloatGauge>::default();
    let opened = Family::<Labels, FloatGauge>::default();
    let health = Family::<Labels, Gauge>::default();
    let latency = Family::<Labels, FloatGauge>::default();
    let tag = Family::<TagLabels, Gauge>::default();
    reg.register(
        "tunnel_up",
        "1 while the tunnel is up (its SSH session carries connections), else 0",
        up.clone(),
    );
    reg.register(
        "tunnel_state",
        "The tunnel's state: 1 for the one it is in, 0 for the others",
        state.clone(),
    );
    reg.register_with_unit(
        "tunnel_received",
        "Bytes from the far end to local clients since the tunnel was opened",
        Unit::Bytes,
        received.clone(),
    );
    reg.register_with_unit(
        "tunnel_sent",
        "Bytes from local clients to the far end since the tunnel was opened",
        Unit::Bytes,
        sent.clone(),
    );
    reg.register(
        "tunnel_connections_open",
        "Client connections open now",
        open.clone(),
    );
    reg.register(
        "tunnel_connections",
        "Client connections accepted since the tunnel was opened",
        connections.clone(),
    );
    reg.register(
        "tunnel_failed_connections",
        "Client connections that could not be carried (channel refused, session down)",
        failed.clone(),
    );
    reg.register(
        "tunnel_reconnects",
        "Times the SSH session under the tunnel was re-established",
        reconnects.clone(),
    );
    reg.register_with_unit(
        "tunnel_uptime",
        "Seconds since the tunnel's session last came up (only while up)",
        Unit::Seconds,
        uptime.clone(),
    );
    reg.register_with_unit(
        "tunnel_open",
        "Seconds from the open to the first time the tunnel was up",
        Unit::Seconds,
        opened.clone(),
    );
    reg.register(
        "tunnel_health_ok",
        "1 if the last check of the database behind the tunnel passed, 0 if it failed",
        health.clone(),
    );
    reg.register_with_unit(
        "tunnel_health_latency",
        "How long the last passing check of the database took",
        Unit::Seconds,
        latency.clone(),
    );
    reg.register(
        "tunnel_tag_info",
        "1 for each tag of each tunnel (join on name to group by tag)",
        tag.clone(),
    );
    for t in tunnels {
        let l = Labels {
            name: t.name.clone(),
            tags: t.tags.join(","),
        };
        let now = state_word(&t.state);
        up.get_or_create(&l).set(i64::from(now == "up"));
        for s in STATES {
            state
                .get_or_create(&StateLabels {
                    name: l.name.clone(),
                    tags: l.tags.clone(),
                    state: s,
                })
                .set(i64::from(s == now));
        }
        received.get_or_create(&l).inc_by(t.stats.bytes_in);
        sent.get_or_create(&l).inc_by(t.stats.bytes_out);
        open.get_or_create(&l)
            .set(i64::try_from(t.stats.active).unwrap_or(i64::MAX));
        connections.get_or_create(&l).inc_by(t.stats.total);
        failed.get_or_create(&l).inc_by(t.stats.failed);
        reconnects.get_or_create(&l).inc_by(t.stats.reconnects);
        if let Some(s) = t.stats.uptime_secs.filter(|_| t.state == TunnelState::Up) {
            uptime.get_or_create(&l).set(s);
        }
        if let Some(s) = t.stats.open_secs {
            opened.get_or_create(&l).set(s);
        }
        if let Some(h) = &t.health {
            health.get_or_create(&l).set(i64::from(h.ok));
            if let Some(ms) = h.latency_ms.filter(|_| h.ok) {
                latency.get_or_create(&l).set(ms as f64 / 1000.0);
            }
        }
        for name in &t.tags {
            tag.get_or_create(&TagLabels {
                name: t.name.clone(),
                tag: name.clone(),
            })
            .set(1);
        }
    }
    let mut out = String::new();
    // Writing to a String cannot fail; an encoder error would be a bug of the crate, and a
    // scrape then gets what was written.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &reg);
    out
}

/// The warning for an address others can reach, or none for a loopback one.
pub fn exposure(addr: &std::net::SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "metrics on {addr}, which is not a loopback address: anyone who can reach it can read the metrics (tunnel names, tags, traffic)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Health, TunnelStats};
    use tokio::net::TcpStream;

    fn tunnel(name: &str, tags: &[&str], state: TunnelState) -> TunnelStatus {
        TunnelStatus {
            name: name.into(),
            state,
            local: vec!["127.0.0.1:5432".into()],
            target: "db:5432".into(),
            via: "bastion".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            stats: TunnelStats {
                bytes_in: 4096,
                bytes_out: 512,
                active: 2,
                total: 7,
                failed: 1,
                reconnects: 3,
                uptime_secs: Some(12.5),
                open_secs: Some(0.25),
                ..Default::default()
            },
            idle_timeout_secs: None,
            on_demand: false,
            log: Vec::new(),
            health: Some(Health {
                ok: true,
                detail: "PostgreSQL 16".into(),
                latency_ms: Some(3),
                brief: None,
                checked_at: "2026-01-01T00:00:00Z".into(),
            }),
            health_history: Vec::new(),
        }
    }

    #[test]
    fn the_text_names_each_tunnels_counters_with_units_and_help() {
        let text = render(&[
            tunnel("orders", &["prod", "eu"], TunnelState::Up),
            tunnel(
                "we \"quote\"",
                &[],
                TunnelState::Failed { error: "x".into() },
            ),
        ]);
        for line in [
            "# HELP warren_tunnel_received_bytes_total Bytes from the far end",
            "# TYPE warren_tunnel_received_bytes_total counter",
            "warren_tunnel_received_bytes_total{name=\"orders\",tags=\"prod,eu\"} 4096",
            "warren_tunnel_sent_bytes_total{name=\"orders\",tags=\"prod,eu\"} 512",
            "warren_tunnel_up{name=\"orders\",tags=\"prod,eu\"} 1",
            "warren_tunnel_state{name=\"orders\",tags=\"prod,eu\",state=\"up\"} 1",
            "warren_tunnel_state{name=\"orders\",tags=\"prod,eu\",state=\"reconnecting\"} 0",
            "warren_tunnel_connections_open{name=\"orders\",tags=\"prod,eu\"} 2",
            "warren_tunnel_connections_total{name=\"orders\",tags=\"prod,eu\"} 7",
            "warren_tunnel_failed_connections_total{name=\"orders\",tags=\"prod,eu\"} 1",
            "warren_tunnel_reconnects_total{name=\"orders\",tags=\"prod,eu\"} 3",
            "warren_tunnel_uptime_seconds{name=\"orders\",tags=\"prod,eu\"} 12.5",
            "warren_tunnel_open_seconds{name=\"orders\",tags=\"prod,eu\"} 0.25",
            "warren_tunnel_health_ok{name=\"orders\",tags=\"prod,eu\"} 1",
            "warren_tunnel_health_latency_seconds{name=\"orders\",tags=\"prod,eu\"} 0.003",
            "warren_tunnel_tag_info{name=\"orders\",tag=\"eu\"} 1",
            "warren_tunnel_up{name=\"we \\\"quote\\\"\",tags=\"\"} 0",
            "warren_tunnel_state{name=\"we \\\"quote\\\"\",tags=\"\",state=\"failed\"} 1",
        ] {
            assert!(text.lines().any(|l| l.starts_with(line)), "{line}\n{text}");
        }
        assert!(
            !text.contains("warren_tunnel_uptime_seconds{name=\"we"),
            "no uptime when not up:\n{text}"
        );
    }

    #[test]
    fn routes() {
        let r = |s: &str| route(s.as_bytes());
        assert_eq!(
            r("GET /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            r("GET /metrics?x=1 HTTP/1.0\r\nHost: a\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            r("HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(r("GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(r("GET /metrics/x HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(r("POST /metrics HTTP/1.1\r\n\r\n"), Route::NotAllowed);
        assert_eq!(r("DELETE / HTTP/1.1\r\n\r\n"), Route::NotAllowed);
        for bad in [
            "\r\n\r\n",
            "GET\r\n\r\n",
            "GET /metrics\r\n\r\n",
            "GET /metrics SSH-2.0\r\n\r\n",
            "GET  /metrics HTTP/1.1\r\n\r\n",
            "GET /metrics HTTP/1.1 x\r\n\r\n",
        ] {
            assert_eq!(r(bad), Route::Bad, "{bad:?}");
        }
        assert_eq!(route(b"\xff\xfe /metrics HTTP/1.1\r\n\r\n"), Route::Bad);
    }

    /// A responder on a loopback port with these limits, answering "text\n".
    async fn responder(limits: Limits) -> (std::net::SocketAddr, CancellationToken) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let stop = CancellationToken::new();
        tokio::spawn(serve(
            l,
            limits,
            || async { "text\n".to_string() },
            stop.clone(),
        ));
        (addr, stop)
    }

    /// Sends `bytes`, then reads the answer to the end (bounded, so a hang fails the test).
    async fn ask(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let _ = c.write_all(bytes).await;
        read_all(&mut c).await
    }

    async fn read_all(c: &mut TcpStream) -> String {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), c.read_to_end(&mut out))
            .await
            .expect("an answer, then the end")
            .expect("read");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn get_metrics_is_answered_and_everything_else_is_refused() {
        let (addr, stop) = responder(Limits::DEFAULT).await;
        let ok = ask(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Content-Type: text/plain; version=0.0.4"),
            "{ok}"
        );
        assert!(ok.contains("Content-Length: 5\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\ntext\n"), "{ok}");
        let head = ask(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        let post = ask(
            addr,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        )
        .await;
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        assert!(post.contains("Allow: GET, HEAD\r\n"), "{post}");
        let other = ask(addr, b"GET /debug HTTP/1.1\r\n\r\n").await;
        assert!(other.starts_with("HTTP/1.1 404 "), "{other}");
        let junk = ask(addr, b"\x16\x03\x01\x02\x00\x01\x00\n\n").await;
        assert!(junk.starts_with("HTTP/1.1 400 "), "{junk}");
        // A peer that goes without a whole head gets nothing, and the responder goes on.
        drop(TcpStream::connect(addr).await.expect("connect"));
        let again = ask(addr, b"GET /metrics HTTP/1.1\n\n").await;
        assert!(again.starts_with("HTTP/1.1 200 "), "{again}");
        stop.cancel();
    }

    #[tokio::test]
    async fn an_oversized_head_is_refused_whole() {
        let (addr, stop) = responder(Limits::DEFAULT).await;
        let mut big = b"GET /metrics HTTP/1.1\r\n".to_vec();
        while big.len() < 3 * Limits::DEFAULT.head {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        big.extend_from_slice(b"\r\n");
        let r = ask(addr, &big).await;
        assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
        assert!(!r.contains("text\n"), "no metrics for it: {r}");
        stop.cancel();
    }

    #[tokio::test]
    async fn a_slow_client_is_cut_off_however_it_trickles() {
        let limits = Limits {
            read: Duration::from_millis(300),
            ..Limits::DEFAULT
        };
        let (addr, stop) = responder(limits).await;
        // Silent.
        let mut quiet = TcpStream::connect(addr).await.expect("connect");
        assert!(read_all(&mut quiet).await.starts_with("HTTP/1.1 408 "));
        // A byte at a time, each well within the limit: the limit is on the whole head.
        // It sends until the answer comes, then reads it to the end.
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let (mut r, mut w) = c.split();
        let mut bytes = b"GET /metrics HTTP/1.1\r\nX: "
            .iter()
            .copied()
            .chain(std::iter::repeat(b'y'));
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let talk = async {
            loop {
                tokio::select! {
                    n = r.read(&mut buf) => match n {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    },
                    _ = tokio::time::sleep(Duration::from_millis(50)), if got.is_empty() => {
                        let b = bytes.next().unwrap_or(b'y');
                        if w.write_all(&[b]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), talk)
            .await
            .expect("an answer, then the end");
        let got = String::from_utf8_lossy(&got);
        assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
        stop.cancel();
    }

    #[tokio::test]
    async fn scrapes_at_once_are_capped_and_the_slots_come_back() {
        let limits = Limits {
            read: Duration::from_secs(2),
            scrapes: 2,
            ..Limits::DEFAULT
        };
        let (addr, stop) = responder(limits).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut c = TcpStream::connect(addr).await.expect("connect");
            // A partial head: the slot is taken until the read limit.
            c.write_all(b"GET /met").await.expect("write");
            held.push(c);
        }
        // The accept loop takes connections in order: the two above hold both slots. This
        // one is told at once, and its whole request, sent before the answer and never read
        // by the responder, does not reset the connection under the 503.
        for _ in 0..8 {
            let busy = ask(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
            assert!(busy.starts_with("HTTP/1.1 503 "), "{busy}");
        }
        for mut c in held {
            assert!(read_all(&mut c).await.starts_with("HTTP/1.1 408 "));
        }
        // A slot comes back when its task ends (after the peer's end is read): a scrape just
        // after may still be told 503, never anything else, and soon gets its answer.
        let mut answers = Vec::new();
        for _ in 0..100 {
            let r = ask(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
            let done = r.starts_with("HTTP/1.1 200 ");
            answers.push(r);
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            answers
                .iter()
                .all(|r| r.starts_with("HTTP/1.1 503 ") || r.starts_with("HTTP/1.1 200 ")),
            "{answers:?}"
        );
        let ok = answers.pop().unwrap_or_default();
        assert!(
            ok.starts_with("HTTP/1.1 200 "),
            "the slots are free again: {ok}"
        );
        stop.cancel();
    }

    #[test]
    fn only_an_address_others_can_reach_is_warned_about() {
        let warn = |a: &str| exposure(&a.parse().expect("addr"));
        assert!(warn("127.0.0.1:9750").is_none());
        assert!(warn("127.0.3.17:9750").is_none());
        assert!(warn("[::1]:9750").is_none());
        let w = warn("0.0.0.0:9750").expect("a warning");
        assert!(
            w.contains("anyone who can reach it can read the metrics"),
            "{w}"
        );
        assert!(warn("192.168.1.5:9750").is_some());
    }
}
