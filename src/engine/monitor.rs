//! Notices what makes every session suspect at once, so they are re-checked now instead of
//! when keepalives time out (a minute or more):
//! - a resume from sleep: the wall clock moved ahead of the monotonic one, which stops while
//!   the machine sleeps;
//! - a network change: the machine's addresses or routes changed (read from the kernel every
//!   [`POLL`]: `getifaddrs` and /proc/net/route, /proc/net/if_inet6).
//!
//! Tests inject a clock jump through `WARREN_TEST_CLOCK_SKEW_FILE`: a file holding seconds
//! added to the wall clock.

use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::Command;

/// How often the clock and the network are looked at.
pub const POLL: Duration = Duration::from_secs(1);
/// A wall clock this far ahead of the monotonic one is a resume from sleep.
pub const JUMP: Duration = Duration::from_secs(3);

fn wall() -> Duration {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let skew = std::env::var_os("WARREN_TEST_CLOCK_SKEW_FILE")
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    now + Duration::from_secs(skew)
}

/// What the network looks like: every interface address and the routing tables.
fn network() -> String {
    let mut out = String::new();
    for f in [
        "/proc/net/route",
        "/proc/net/if_inet6",
        "/proc/net/ipv6_route",
    ] {
        out.push_str(&std::fs::read_to_string(f).unwrap_or_default());
    }
    let mut addrs: Vec<String> = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut ifap) } == 0 {
        let mut p = ifap;
        while !p.is_null() {
            // SAFETY: p is a node of the list getifaddrs returned.
            let ifa = unsafe { &*p };
            if !ifa.ifa_addr.is_null() {
                // SAFETY: ifa_addr points to a sockaddr of the family it names.
                let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
                if family == libc::AF_INET {
                    // SAFETY: an AF_INET address is a sockaddr_in.
                    let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                    addrs.push(
                        std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).to_string(),
                    );
                }
            }
            p = ifa.ifa_next;
        }
        // SAFETY: the list came from getifaddrs.
        unsafe { libc::freeifaddrs(ifap) };
    }
    addrs.sort();
    out.push_str(&addrs.join(","));
    out
}

/// Watches the clock and the network until the engine stops, and sends a re-check when
/// either jumps.
pub(super) async fn run(commands: mpsc::Sender<Command>) {
    let mut last_wall = wall();
    let mut last_mono = Instant::now();
    let mut last_net = tokio::task::spawn_blocking(network)
        .await
        .unwrap_or_default();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if commands.is_closed() {
            return;
        }
        let (w, m) = (wall(), Instant::now());
        let ahead = (w.saturating_sub(last_wall)).saturating_sub(m.duration_since(last_mono));
        last_wall = w;
        last_mono = m;
        let mut why = None;
        if ahead > JUMP {
            why = Some(format!(
                "the clock jumped {}s ahead (a resume from sleep?)",
                ahead.as_secs()
            ));
        }
        let net = tokio::task::spawn_blocking(network)
            .await
            .unwrap_or_default();
        if net != last_net {
            last_net = net;
            why.get_or_insert_with(|| "the network changed".to_string());
        }
        if let Some(why) = why
            && commands.send(Command::Recheck { why }).await.is_err()
        {
            return;
        }
    }
}
