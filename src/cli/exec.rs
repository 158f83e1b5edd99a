//! `warren exec NAME [--] CMD [ARGS...]`, `warren connect NAME` and `warren url NAME`: the
//! tunnel handed to a database client.
//!
//! `exec` uses the daemon's tunnel when it runs NAME, else opens one in this process (asking
//! on the terminal as `warren up` does) and closes it when CMD ends. CMD gets the terminal and
//! the connection in its environment (see [`crate::handoff`]); Ctrl-C and the like reach it
//! from the terminal, SIGTERM and SIGHUP sent to warren are passed on; warren exits with CMD's
//! code (128 + the signal when a signal ended it).

use std::io::Write;

use super::ask::{self, TerminalAsker};
use super::exit;
use crate::config::forward::{Endpoint, ForwardKind};
use crate::config::{Catalog, Connection, Context};
use crate::daemon::client::{DaemonClient, QUICK};
use crate::daemon::protocol::Request;
use crate::engine::Engine;
use crate::handoff::run::{local_of, not_installed, spawn_and_wait};
use crate::handoff::{Format, Local, Parts};

/// The local end a connection will have without running it: its configured local port, or
/// the database itself for a direct entry. `None` for a port picked when it opens.
fn configured(conn: &Connection) -> Option<Local> {
    if conn.hops.is_empty() {
        let db = conn.database.as_ref()?;
        return Some(Local {
            host: db.host.value.clone(),
            port: db.port.value,
        });
    }
    conn.forwards
        .iter()
        .find_map(|f| match (&f.value.kind, &f.value.listen) {
            (ForwardKind::Local, Endpoint::Tcp { host, port }) if *port != 0 => Some(Local {
                host: host
                    .clone()
                    .filter(|h| !h.is_empty() && h != "localhost" && h != "*")
                    .unwrap_or_else(|| "127.0.0.1".into()),
                port: *port,
            }),
            _ => None,
        })
}

/// What the daemon runs of `name`, if it runs it up.
async fn in_daemon(ctx: &Context, name: &str) -> Option<Local> {
    let client = DaemonClient::connect(ctx).await.ok()?;
    let r = client.request(Request::Status, QUICK).await.ok()?;
    r.tunnels
        .into_iter()
        .find(|t| t.name == name && t.state.serves())
        .and_then(|t| local_of(&t.local))
}

/// `warren url NAME [--format ...] [--with-password]`
pub async fn url(
    catalog: &Catalog,
    ctx: &Context,
    name: &str,
    format: Format,
    with_password: bool,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let conn = match catalog.find(name) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return exit::BAD_CONFIG;
        }
    };
    let local = match in_daemon(ctx, &conn.display_name)
        .await
        .or_else(|| configured(conn))
    {
        Some(l) => l,
        None => {
            let _ = writeln!(
                err,
                "error: {} picks its local port when it opens, and it is not open: run warren up --detach {} first (or set local_port)",
                conn.display_name, conn.display_name
            );
            return exit::FAILED;
        }
    };
    match Parts::of(conn, &local, with_password).and_then(|p| p.format(format)) {
        Ok(text) => {
            let _ = writeln!(out, "{text}");
            exit::OK
        }
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            exit::BAD_CONFIG
        }
    }
}

/// `warren connect NAME`: `exec` with the engine's own client.
pub async fn connect(
    catalog: &Catalog,
    ctx: &Context,
    name: &str,
    with_password: bool,
    err: &mut (dyn Write + Send),
) -> i32 {
    let conn = match catalog.find(name) {
        Ok(c) => c.clone(),
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return exit::BAD_CONFIG;
        }
    };
    // The client and its arguments, for a placeholder address: only the command's name and
    // shape matter before the tunnel is open.
    let probe = Local {
        host: "127.0.0.1".into(),
        port: 1,
    };
    let client = match Parts::of(&conn, &probe, false).and_then(|p| p.client()) {
        Ok((c, _)) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return exit::BAD_CONFIG;
        }
    };
    if let Some(missing) = not_installed(client) {
        let _ = writeln!(
            err,
            "error: {missing} (or use warren exec {} -- YOUR-CLIENT)",
            conn.display_name
        );
        return exit::FAILED;
    }
    run(ctx, &conn, None, with_password, err).await
}

/// `warren exec NAME [--] CMD [ARGS...]`
pub async fn exec(
    catalog: &Catalog,
    ctx: &Context,
    name: &str,
    command: &[String],
    with_password: bool,
    err: &mut (dyn Write + Send),
) -> i32 {
    let conn = match catalog.find(name) {
        Ok(c) => c.clone(),
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return exit::BAD_CONFIG;
        }
    };
    if command.is_empty() {
        let _ = writeln!(
            err,
            "error: no command: warren exec {name} -- CMD [ARGS...]"
        );
        return exit::BAD_CONFIG;
    }
    run(ctx, &conn, Some(command), with_password, err).await
}

/// Opens (or finds) the tunnel, runs the command (`None`: the engine's client), closes.
async fn run(
    ctx: &Context,
    conn: &Connection,
    command: Option<&[String]>,
    with_password: bool,
    err: &mut (dyn Write + Send),
) -> i32 {
    // The daemon's tunnel if it runs it; else one of our own, closed afterwards.
    let mut engine: Option<Engine> = None;
    let mut asker = None;
    let local = match in_daemon(ctx, &conn.display_name).await {
        Some(l) => l,
        None if conn.hops.is_empty() => match configured(conn) {
            Some(l) => l,
            None => {
                let _ = writeln!(err, "error: {} has no address", conn.display_name);
                return exit::BAD_CONFIG;
            }
        },
        None => {
            let interactive = ask::available();
            let e = Engine::start_with(interactive);
            if interactive {
                let a = e.clone();
                asker = TerminalAsker::start(move |id, answer| {
                    a.answer(id, answer);
                });
            }
            let mut events = e.subscribe();
            let opener = e.clone();
            let by = crate::audit::By::Cli {
                command: crate::audit::CliCommand::Exec,
            };
            crate::audit::record(&conn.display_name, crate::audit::Kind::OpenRequested { by });
            let opened = opener.open(conn.clone());
            tokio::pin!(opened);
            // Questions (host key, passphrase, second factor) on this terminal meanwhile.
            let status = loop {
                tokio::select! {
                    s = &mut opened => break s,
                    ev = events.recv() => {
                        if let (Some(a), Ok(ev)) = (&asker, ev) {
                            forward_question(a, std::sync::Arc::unwrap_or_clone(ev));
                        }
                    }
                }
            };
            engine = Some(e);
            match status {
                Some(s) if s.state.serves() => match local_of(&s.local) {
                    Some(l) => l,
                    None => {
                        let _ = writeln!(
                            err,
                            "error: {} does not listen on a TCP port (a unix socket?): exec needs one",
                            conn.display_name
                        );
                        return close(engine, asker, exit::FAILED).await;
                    }
                },
                Some(s) => {
                    let _ = writeln!(
                        err,
                        "error: {}: {}",
                        conn.display_name,
                        crate::text::escape_lines(&s.state.to_string())
                    );
                    return close(engine, asker, exit::FAILED).await;
                }
                None => return close(engine, asker, exit::FAILED).await,
            }
        }
    };
    let parts = match Parts::of(conn, &local, with_password) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return close(engine, asker, exit::BAD_CONFIG).await;
        }
    };
    let (program, args): (String, Vec<String>) = match command {
        Some(c) => (c[0].clone(), c[1..].to_vec()),
        None => match parts.client() {
            Ok((p, a)) => (p.to_string(), a),
            Err(e) => {
                let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
                return close(engine, asker, exit::BAD_CONFIG).await;
            }
        },
    };
    // redis-cli logs in, says "AUTH failed" and goes on (exiting 0 at the end): the login is
    // checked here first, so that `connect` fails when the client could not log in.
    if command.is_none()
        && let Some(f) = redis_refuses(conn, &parts).await
    {
        let _ = writeln!(
            err,
            "error: {}: {}",
            conn.display_name,
            crate::text::escape_lines(&f.detail)
        );
        if let Some(h) = &f.hint {
            let _ = writeln!(err, "  {}", crate::text::escape_lines(h));
        }
        return close(engine, asker, exit::FAILED).await;
    }
    // The terminal goes to the command.
    if let Some(a) = asker.take() {
        a.stop().await;
    }
    let code = spawn_and_wait(&program, &args, &parts.env(), err).await;
    close(engine, None, code).await
}

/// For Redis: the login the client is about to make, made first through the tunnel; the
/// finding when the server refuses it.
async fn redis_refuses(
    conn: &Connection,
    parts: &Parts,
) -> Option<crate::diagnose::probe::Finding> {
    use crate::config::model::DbKind;
    let db = conn.database.as_ref()?;
    if parts.kind != DbKind::Redis {
        return None;
    }
    // The client is about to send the password this way itself (AUTH is cleartext unless
    // the entry says TLS), so the check may too: what doctor keeps back, `connect` was asked
    // to send.
    let sslmode = if db.sslmode.value >= crate::config::model::SslMode::Require {
        db.sslmode.clone()
    } else {
        crate::config::Sourced::new(
            crate::config::model::SslMode::Disable,
            db.sslmode.origin.clone(),
        )
    };
    let target = crate::diagnose::probe::Target {
        host: db.tls_name().to_string(),
        user: parts.user.clone().unwrap_or_default(),
        database: parts.database.clone().unwrap_or_default(),
        password: parts.password.clone(),
        sslmode,
        sslrootcert: db.sslrootcert.clone(),
    };
    let (host, port) = (parts.host.clone(), parts.port);
    let open = || async {
        tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .ok()
    };
    let f = crate::diagnose::login_check(&target, open).await;
    (!f.ok).then_some(f)
}

fn forward_question(a: &TerminalAsker, ev: crate::engine::Event) {
    use crate::engine::Event;
    use crate::prompt::Notice;
    match ev {
        Event::Prompt {
            id,
            name,
            prompt,
            timeout_secs,
        } => a.notice(Notice::Ask {
            id,
            connection: name,
            prompt,
            timeout: std::time::Duration::from_secs(timeout_secs),
        }),
        Event::PromptWithdrawn { id, name } => a.notice(Notice::Withdrawn {
            id,
            connection: name,
        }),
        _ => {}
    }
}

async fn close(engine: Option<Engine>, asker: Option<TerminalAsker>, code: i32) -> i32 {
    if let Some(a) = asker {
        a.stop().await;
    }
    if let Some(e) = engine {
        e.shutdown().await;
    }
    code
}
