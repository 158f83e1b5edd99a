//! The signals that end the TUI: SIGINT, SIGTERM, SIGHUP and SIGQUIT (sent by `kill`, a
//! closed terminal, or the terminal's own keys while a database client has it) end it as `q`
//! does: tunnels closed, the terminal restored, the demo's directory removed. Their default
//! action would kill warren where it stands and leave all of that behind.

use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct Signals {
    int: Option<Signal>,
    term: Option<Signal>,
    hup: Option<Signal>,
    quit: Option<Signal>,
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
        }
    }

    /// The next signal's name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = next(&mut self.int) => "SIGINT",
            _ = next(&mut self.term) => "SIGTERM",
            _ = next(&mut self.hup) => "SIGHUP",
            _ = next(&mut self.quit) => "SIGQUIT",
        }
    }

    /// After a client had the terminal: Ctrl-C and Ctrl-\ typed in it were the client's (it
    /// got them from the terminal, and warren ignored them meanwhile), so they are forgotten.
    /// SIGTERM and SIGHUP stay: they were passed to the client and end the TUI now.
    pub fn forget_terminal_keys(&mut self) {
        self.int = signal(SignalKind::interrupt()).ok();
        self.quit = signal(SignalKind::quit()).ok();
    }
}
