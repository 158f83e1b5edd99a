//! The signals that end the TUI: SIGINT, SIGTERM, SIGHUP and SIGQUIT (sent by `kill`, a
//! closed terminal, or the terminal's own keys while a database client has it) end it as `q`
//! does: tunnels closed, the terminal restored, the demo's directory removed. Their default
//! action would kill warren where it stands and leave all of that behind.

use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind, signal};

/// How long after a client exits a Ctrl-C or Ctrl-\ is still taken as the client's: the
/// terminal sent it to the client and to warren at once, and warren's runtime may hand it
/// over only after the client is gone (seen under load).
const GRACE: Duration = Duration::from_secs(1);

pub struct Signals {
    int: Option<Signal>,
    term: Option<Signal>,
    hup: Option<Signal>,
    quit: Option<Signal>,
    /// When a client last gave the terminal back.
    forgotten: Option<Instant>,
}

async fn next(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

impl Signals {
    pub fn new() -> Self {
        Self {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
            hup: signal(SignalKind::hangup()).ok(),
            quit: signal(SignalKind::quit()).ok(),
            forgotten: None,
        }
    }

    /// The next signal's name (a terminal key meant for a client that just exited is not
    /// one).
    pub async fn recv(&mut self) -> &'static str {
        loop {
            let name = tokio::select! {
                _ = next(&mut self.int) => "SIGINT",
                _ = next(&mut self.term) => "SIGTERM",
                _ = next(&mut self.hup) => "SIGHUP",
                _ = next(&mut self.quit) => "SIGQUIT",
            };
            let late = self.forgotten.is_some_and(|t| t.elapsed() < GRACE);
            if late && matches!(name, "SIGINT" | "SIGQUIT") {
                tracing::debug!("{name} just after the client exited: the client's");
                continue;
            }
            return name;
        }
    }

    /// After a client had the terminal: Ctrl-C and Ctrl-\ typed in it were the client's (it
    /// got them from the terminal, and warren ignored them meanwhile), so they are forgotten.
    /// SIGTERM and SIGHUP stay: they were passed to the client and end the TUI now.
    pub fn forget_terminal_keys(&mut self) {
        self.int = signal(SignalKind::interrupt()).ok();
        self.quit = signal(SignalKind::quit()).ok();
        self.forgotten = Some(Instant::now());
    }
}
