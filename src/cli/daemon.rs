//! `warren up --detach`, `warren status`, `warren down`: clients of the per-user daemon.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::exit;
use crate::config::{Catalog, Context, Paths};
use crate::daemon::{self, Request, TunnelStatus};

fn line(t: &TunnelStatus) -> String {
    let local = if t.local.is_empty() {
        "-".to_string()
    } else {
        t.local.join(", ")
    };
    let mut s = format!(
        "{}  {local} -> {} via {}  {}",
        t.name, t.target, t.via, t.state
    );
    if let (Some(e), false) = (&t.last_error, t.state == "up") {
        s.push_str(&format!(" ({e})"));
    }
    s
}

/// Starts the daemon (in its own session, so it outlives this terminal) unless one answers.
pub async fn ensure_daemon(ctx: &Context, paths: &Paths) -> Result<(), String> {
    if daemon::request(ctx, Request::Status).await.is_ok() {
        return Ok(());
    }
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find warren's own binary: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    for (flag, value) in [
        ("--ssh-config", &paths.ssh_config),
        ("--config", &paths.epoch),
        ("--known-hosts", &paths.known_hosts),
    ] {
        if let Some(v) = value {
            cmd.arg(flag).arg(v);
        }
    }
    cmd.arg("daemon")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe and the child calls nothing else before exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| format!("cannot start the daemon: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if daemon::request(ctx, Request::Status).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err("the daemon did not start (see ~/.local/state/warren)".into())
}

pub async fn up(
    catalog: &Catalog,
    ctx: &Arc<Context>,
    paths: &Paths,
    names: &[String],
    json: bool,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    for n in names {
        if let Err(e) = catalog.find(n) {
            let _ = writeln!(err, "error: {e}");
            return exit::BAD_CONFIG;
        }
    }
    if let Err(e) = ensure_daemon(ctx, paths).await {
        let _ = writeln!(err, "error: {e}");
        return exit::FAILED;
    }
    let answer = match daemon::request(
        ctx,
        Request::Open {
            names: names.to_vec(),
        },
    )
    .await
    {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(err, "error: the daemon: {e}");
            return exit::FAILED;
        }
    };
    if let Some(e) = &answer.error {
        let _ = writeln!(err, "error: {e}");
        return exit::BAD_CONFIG;
    }
    if json {
        let _ = serde_json::to_writer(&mut *out, &answer.tunnels);
        let _ = writeln!(out);
    } else {
        for t in &answer.tunnels {
            let _ = writeln!(out, "{}", crate::text::escape(&line(t)));
        }
    }
    if answer.tunnels.iter().any(|t| t.state == "up") {
        exit::OK
    } else {
        exit::FAILED
    }
}

pub async fn status(ctx: &Context, json: bool, out: &mut (dyn Write + Send)) -> i32 {
    let tunnels = match daemon::request(ctx, Request::Status).await {
        Ok(a) => a.tunnels,
        // No daemon: nothing runs.
        Err(_) => Vec::new(),
    };
    if json {
        let _ = serde_json::to_writer_pretty(&mut *out, &tunnels);
        let _ = writeln!(out);
    } else if tunnels.is_empty() {
        let _ = writeln!(
            out,
            "no tunnels are running in the background (warren up --detach NAME starts one)"
        );
    } else {
        for t in &tunnels {
            let up = t
                .uptime_secs
                .map(|s| format!("{s:.0}s"))
                .unwrap_or("-".into());
            let _ = writeln!(
                out,
                "{}  up {up}  in {} B  out {} B  reconnects {}",
                crate::text::escape(&line(t)),
                t.bytes_in,
                t.bytes_out,
                t.reconnects
            );
        }
    }
    exit::OK
}

pub async fn down(
    ctx: &Context,
    names: &[String],
    all: bool,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let req = if all {
        Request::CloseAll
    } else {
        Request::Close {
            names: names.to_vec(),
        }
    };
    match daemon::request(ctx, req).await {
        Ok(a) => {
            let _ = writeln!(out, "{} tunnel(s) still running", a.tunnels.len());
            exit::OK
        }
        Err(_) => {
            let _ = writeln!(err, "no daemon is running: nothing to close");
            exit::OK
        }
    }
}
