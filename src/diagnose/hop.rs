//! The steps of one hop: config, certificate (a hop with a certificate_command: the command
//! run when the certificate must be renewed, its validity and principals), dns, tcp (or the
//! previous hop's channel, or `proxy`: the hop's ProxyCommand, started and watched while the
//! banner is read through it), banner, kex, host_key, auth.

use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::Handle;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::banner::{self, Banner};
use super::{Status, StepId, Walk, checks, probe};
use crate::config::model::{Connection, Hop};
use crate::prompt::Prompter;
use crate::ssh::client::{Client, ssh_config};
use crate::ssh::host_key::Found;
use crate::ssh::proxy::Proxy;
use crate::ssh::replay::Replay;

/// The `certificate` step of a hop with a certificate_command: the hop with the certificate
/// it gave offered first; `Err` when the step failed.
async fn certificate_step(w: &mut Walk<'_>, hop: &Hop, i: usize) -> Result<Option<Hop>, ()> {
    if hop.certificate_command.is_none() {
        return Ok(None);
    }
    let t = Instant::now();
    match crate::ssh::certificate::ensure(hop).await {
        Ok(Some(got)) => {
            let mut detail = got.describe();
            if let Some(ran) = got.ran.as_ref().filter(|r| !r.stderr.is_empty()) {
                detail.push_str(&crate::ssh::proxy::said(&ran.stderr, 3));
            }
            w.pass(StepId::Certificate, i, t, detail);
            if let Some(slot) = w.certified_by.get_mut(i) {
                *slot = Some(
                    got.cert
                        .signature_key()
                        .fingerprint(russh::keys::HashAlg::Sha256)
                        .to_string(),
                );
            }
            Ok(Some(got.apply(hop)))
        }
        Ok(None) => Ok(None),
        Err(failure) => {
            w.fail(
                StepId::Certificate,
                i,
                t,
                failure.to_string(),
                failure.hint(),
            );
            Err(())
        }
    }
}

pub(super) async fn walk(
    w: &mut Walk<'_>,
    conn: &Connection,
    hop: &Hop,
    i: usize,
    prev: Option<&Arc<Handle<Client>>>,
    prompter: &Arc<Prompter>,
    open: bool,
) -> Option<(Handle<Client>, Option<Proxy>)> {
    let hops = conn.hops.len();
    let timeout = hop.connect_timeout.value.0;
    let addr = hop.address();

    // config
    let t = Instant::now();
    let mut c = checks::hop(conn, hop, i == 0, open).await;
    if let Some(why) = hop.refusal() {
        c.fail.push(why);
        c.hints.push(
            "warren connects only as ssh would, running only the commands your ssh_config names (see the README's trust model)".into(),
        );
    }
    let mut detail: Vec<String> = c.fail.iter().chain(c.warn.iter()).cloned().collect();
    detail.extend(c.info.iter().cloned());
    let status = if !c.fail.is_empty() {
        Status::Fail
    } else if !c.warn.is_empty() {
        Status::Warn
    } else {
        Status::Pass
    };
    w.push(
        StepId::Config,
        i,
        status,
        t,
        format!("{}@{addr}: {}", hop.user.value, detail.join("; ")),
        Some(c.hints.join("; ")).filter(|h| !h.is_empty()),
    );
    if status == Status::Fail {
        w.skip_rest(hops, i, StepId::Config);
        return None;
    }

    // certificate: a fresh one from the hop's certificate_command, checked before dialling.
    let certified = match certificate_step(w, hop, i).await {
        Ok(c) => c,
        Err(()) => {
            w.skip_rest(hops, i, StepId::Certificate);
            return None;
        }
    };
    let hop = certified.as_ref().unwrap_or(hop);

    if hop.proxy_command.is_some() {
        return super::proxy::steps(w, conn, hop, i, prompter).await;
    }
    let with_no_proxy = |h: Option<Handle<Client>>| h.map(|h| (h, None));
    match prev {
        None => {
            // dns
            let t = Instant::now();
            let lookup = tokio::time::timeout(
                timeout,
                tokio::net::lookup_host((hop.host.value.as_str(), hop.port.value)),
            )
            .await;
            let addrs: Vec<std::net::SocketAddr> = match lookup {
                Ok(Ok(a)) => a.collect(),
                Ok(Err(e)) => {
                    w.fail(StepId::Dns, i, t, format!("{} does not resolve: {e}", hop.host.value), format!("check the name '{}' (a typo? a VPN that must be up? an internal name your resolver does not know?) or use its IP address", hop.host.value));
                    w.skip_rest(hops, i, StepId::Dns);
                    return None;
                }
                Err(_) => {
                    w.fail(
                        StepId::Dns,
                        i,
                        t,
                        format!(
                            "resolving {} timed out after {}s",
                            hop.host.value,
                            timeout.as_secs()
                        ),
                        "the resolver does not answer: check /etc/resolv.conf and your network",
                    );
                    w.skip_rest(hops, i, StepId::Dns);
                    return None;
                }
            };
            let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            w.pass(
                StepId::Dns,
                i,
                t,
                format!("{} -> {}", hop.host.value, shown.join(", ")),
            );
            // tcp
            let t = Instant::now();
            let tcp = match tcp_connect(&addrs, timeout).await {
                Ok(s) => s,
                Err((detail, hint)) => {
                    w.fail(StepId::Tcp, i, t, detail, hint);
                    w.skip_rest(hops, i, StepId::Tcp);
                    return None;
                }
            };
            let _ = tcp.set_nodelay(true);
            w.pass(
                StepId::Tcp,
                i,
                t,
                format!(
                    "connected to {}",
                    tcp.peer_addr()
                        .map(|a| a.to_string())
                        .unwrap_or(addr.clone())
                ),
            );
            let peer = tcp.peer_addr().ok();
            with_no_proxy(ssh_steps(w, conn, hop, i, tcp, peer, None, prompter).await)
        }
        Some(prev) => {
            w.skip(
                StepId::Dns,
                i,
                &format!("{} is resolved by hop {}", hop.host.value, i - 1),
            );
            let t = Instant::now();
            let opened = tokio::time::timeout(
                timeout,
                prev.channel_open_direct_tcpip(
                    hop.host.value.clone(),
                    u32::from(hop.port.value),
                    "127.0.0.1",
                    0,
                ),
            )
            .await;
            let channel = match opened {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    let (detail, hint) = channel_failure(&e, &addr, i - 1);
                    w.fail(StepId::Tcp, i, t, detail, hint);
                    w.skip_rest(hops, i, StepId::Tcp);
                    return None;
                }
                Err(_) => {
                    w.fail(StepId::Tcp, i, t, format!("hop {} did not open a connection to {addr} within {}s", i - 1, timeout.as_secs()), "the previous hop cannot reach this one: a firewall between them drops the packets");
                    w.skip_rest(hops, i, StepId::Tcp);
                    return None;
                }
            };
            w.pass(
                StepId::Tcp,
                i,
                t,
                format!("hop {} connected to {addr}", i - 1),
            );
            with_no_proxy(
                ssh_steps(w, conn, hop, i, channel.into_stream(), None, None, prompter).await,
            )
        }
    }
}

async fn tcp_connect(
    addrs: &[std::net::SocketAddr],
    timeout: Duration,
) -> Result<tokio::net::TcpStream, (String, String)> {
    let mut last = None;
    for a in addrs {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(a)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last = Some((a, Some(e))),
            Err(_) => last = Some((a, None)),
        }
    }
    let Some((a, e)) = last else {
        return Err((
            "no address to connect to".into(),
            "the name resolved to nothing".into(),
        ));
    };
    Err(match e {
        None => (
            format!("connecting to {a} timed out after {}s", timeout.as_secs()),
            "nothing answers: a firewall, security group or allowlist drops the packets (ask for your egress IP to be allowed), or the host is down".into(),
        ),
        Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => (
            format!("{a} refused the connection"),
            "nothing listens on that port: sshd is down, or listens on another port (check port / Port)".into(),
        ),
        Some(e) if matches!(e.raw_os_error(), Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH)) => (
            format!("{a} is unreachable: {e}"),
            "there is no route to it: a VPN is down, or the address is on a network you are not on".into(),
        ),
        Some(e) => (format!("connecting to {a} failed: {e}"), "check the address and your network".into()),
    })
}

pub(super) fn channel_failure(e: &russh::Error, target: &str, from: usize) -> (String, String) {
    use russh::ChannelOpenFailure as F;
    match e {
        russh::Error::ChannelOpenFailure(F::AdministrativelyProhibited) => (
            format!("hop {from} refused to forward to {target} (administratively prohibited)"),
            "the bastion forbids forwarding: AllowTcpForwarding no or a PermitOpen list in its sshd_config, or restrict / permitopen on the key in authorized_keys".into(),
        ),
        russh::Error::ChannelOpenFailure(F::ConnectFailed) => (
            format!("hop {from} could not connect to {target}"),
            "from the bastion the target does not answer: the service is down, its firewall or security group does not allow the bastion, or the host or port is wrong".into(),
        ),
        other => (format!("hop {from} could not open a channel to {target}: {other}"), "see the bastion's sshd log".into()),
    }
}

/// Reads the server's identification line ([`banner::parse`]); returns it and every byte read.
pub(super) async fn read_banner<S: AsyncRead + Unpin>(
    s: &mut S,
    timeout: Duration,
) -> Result<(String, Vec<u8>), (String, String)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match banner::parse(&got) {
            Banner::Line(line) => return Ok((line, got)),
            Banner::NotSsh => return Err(not_ssh(&got)),
            Banner::TooLong => return Err((
                format!("the server's identification line goes on past {} bytes without ending: {}", banner::MAX_LINE, probe::show_bytes(&got)),
                "an SSH server ends its first line within 255 bytes (RFC 4253): something else answers on this port, or a broken proxy".into(),
            )),
            Banner::More => {}
        }
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) if got.is_empty() => return Err(("the server closed the connection without a word".into(), "sshd drops us before the banner: MaxStartups reached, a TCP wrapper or firewall (DenyHosts, fail2ban) rejects our address, or a proxy in between closes it".into())),
            Ok(Ok(0)) => return Err(not_ssh(&got)),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return Err((format!("reading the banner failed: {e}"), "the connection broke: check the server".into())),
            Err(_) if got.is_empty() => return Err(("the port accepts connections but says nothing (timed out)".into(), "this is not an SSH server (or it is hung): SSH servers speak first; check the port".into())),
            Err(_) => return Err(not_ssh(&got)),
        }
    }
}

fn not_ssh(b: &[u8]) -> (String, String) {
    match probe::name_protocol(b) {
        Some(p) => (
            format!("this port speaks {p}, not SSH: {}", probe::show_bytes(b)),
            "the port is wrong: sshd usually listens on 22 (check port / Port)".into(),
        ),
        None => (
            format!("this port does not speak SSH: {}", probe::show_bytes(b)),
            "the port is wrong, or a proxy answers for it (check port / Port)".into(),
        ),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn ssh_steps<S>(
    w: &mut Walk<'_>,
    conn: &Connection,
    hop: &Hop,
    i: usize,
    mut stream: S,
    peer: Option<std::net::SocketAddr>,
    banner: Option<Vec<u8>>,
    prompter: &Arc<Prompter>,
) -> Option<Handle<Client>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let hops = conn.hops.len();
    let timeout = hop.connect_timeout.value.0;
    // banner (already read, and its step given, when the caller watched something with it)
    let raw = match banner {
        Some(raw) => raw,
        None => {
            let t = Instant::now();
            match read_banner(&mut stream, timeout).await {
                Ok((banner, raw)) => {
                    w.pass(StepId::Banner, i, t, banner);
                    raw
                }
                Err((detail, hint)) => {
                    w.fail(StepId::Banner, i, t, detail, hint);
                    w.skip_rest(hops, i, StepId::Banner);
                    return None;
                }
            }
        }
    };

    // kex and host_key
    let t = Instant::now();
    let ordered = match crate::ssh::client::order_lines(hop).await {
        Ok(l) => l,
        Err(e) => {
            let at = hop
                .known_hosts_command
                .as_ref()
                .map(|c| c.origin.to_string())
                .unwrap_or_default();
            w.fail(
                StepId::Kex,
                i,
                t,
                format!("before key exchange: {e}"),
                format!("the KnownHostsCommand at {at} failed (ssh stops too): run it by hand; it must exit 0 and print known_hosts lines"),
            );
            w.skip_rest(hops, i, StepId::Kex);
            return None;
        }
    };
    let offer = match crate::ssh::client::offer_for(hop, &ordered) {
        Ok(o) => o,
        Err(e) => {
            w.fail(
                StepId::Kex,
                i,
                t,
                e.to_string(),
                "choose algorithms warren implements (listed above) in Ciphers / KexAlgorithms / MACs / HostKeyAlgorithms, or the matching epoch.toml key",
            );
            w.skip_rest(hops, i, StepId::Kex);
            return None;
        }
    };
    let mut client = Client::new(hop, peer, prompter, &conn.display_name);
    client.dry_run = true;
    let (seen, negotiated) = (Arc::clone(&client.seen), Arc::clone(&client.negotiated));
    let connected = bounded_unless_asked(
        timeout,
        prompter,
        &conn.display_name,
        russh::client::connect_stream(ssh_config(hop, &offer), Replay::new(raw, stream), client),
    )
    .await;
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let negotiated = negotiated.lock().ok().and_then(|n| n.clone());
    // What was asked for: the lists the config sets (the rest are OpenSSH's defaults).
    let asked = {
        let set: Vec<String> = hop
            .algorithms
            .lists()
            .filter(|(_, l)| l.origin != crate::config::Origin::Default)
            .map(|(kind, l)| {
                let mut t = format!("{} {} ({})", kind.keyword(), l.value.join(","), l.origin);
                if let Some((_, out)) = offer.left_out.iter().find(|(k, _)| *k == kind) {
                    t.push_str(&format!(", not implemented by warren: {}", out.join(",")));
                }
                t
            })
            .collect();
        if set.is_empty() {
            "asked for OpenSSH's default lists".to_string()
        } else {
            format!("asked for {}", set.join("; "))
        }
    };
    let handle = match connected {
        Err(_) => {
            w.fail(
                StepId::Kex,
                i,
                t,
                format!("key exchange did not finish within {}s", timeout.as_secs()),
                "the server stopped answering during key exchange: check its load and logs",
            );
            w.skip_rest(hops, i, StepId::Kex);
            return None;
        }
        Ok(Err(russh::Error::NoCommonAlgo { kind, ours, theirs })) => {
            w.fail(StepId::Kex, i, t, format!("no common {kind:?} algorithm: warren offers {}; the server offers {}", ours.join(","), theirs.join(",")), "the lists have nothing in common: widen the list on this side (Ciphers / KexAlgorithms / MACs / HostKeyAlgorithms, or the epoch.toml key), or ask for a modern algorithm on the server (curve25519-sha256, ssh-ed25519, aes256-gcm)");
            w.skip_rest(hops, i, StepId::Kex);
            return None;
        }
        Ok(Err(e)) if seen.key.is_none() => {
            w.fail(
                StepId::Kex,
                i,
                t,
                format!(
                    "key exchange failed: {e}; {asked}; offered {}",
                    offer.summary()
                ),
                "see the server's sshd log",
            );
            w.skip_rest(hops, i, StepId::Kex);
            return None;
        }
        Ok(r) => r,
    };
    let key_type = seen
        .key
        .as_ref()
        .map(|k| k.algorithm().as_str().to_string())
        .unwrap_or_default();
    w.pass(
        StepId::Kex,
        i,
        t,
        format!(
            "negotiated {}; {asked}",
            negotiated.unwrap_or_else(|| format!("host key {key_type}"))
        ),
    );
    let t = Instant::now();
    let fp = seen
        .key
        .as_ref()
        .map(crate::ssh::known_hosts::fingerprint)
        .unwrap_or_default();
    let user_file = hop
        .known_hosts_files
        .value
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(none: UserKnownHostsFile none)".into());
    match (&seen.refused, &seen.found) {
        (Some(msg), found) => {
            let hint = match found {
                Some(Found::New) => format!(
                    "first connection to this host: confirm {fp} with the bastion's owner, then add it: warren trust {} (or answer yes when warren up asks in a terminal); it is recorded in {user_file}",
                    conn.display_name
                ),
                Some(Found::Changed(at)) if at.is_command() => format!(
                    "the key your KnownHostsCommand printed ({at}) differs from the server's {fp}: the server was rebuilt, or someone is in the middle; confirm {fp} with its owner, then fix what the command prints"
                ),
                Some(Found::Changed(at)) => format!(
                    "the server's key changed: it was rebuilt, or someone is in the middle. Confirm {fp} with its owner, then run ssh-keygen -R '{}' -f {}",
                    seen.name,
                    at.path.display()
                ),
                Some(Found::Revoked(_)) | Some(Found::RevokedByFile(_)) => {
                    "the key is revoked: do not connect; ask the bastion's owner".into()
                }
                Some(Found::CommandFailed(_)) => format!(
                    "the KnownHostsCommand at {} failed (ssh stops too): run it by hand; it must exit 0 and print known_hosts lines",
                    hop.known_hosts_command
                        .as_ref()
                        .map(|c| c.origin.to_string())
                        .unwrap_or_default()
                ),
                _ => "see the message".into(),
            };
            w.fail(StepId::HostKey, i, t, msg.clone(), hint);
            w.skip_rest(hops, i, StepId::HostKey);
            return None;
        }
        (None, Some(Found::Known(at))) | (None, Some(Found::KnownBare(at))) => {
            let detail = format!("{key_type} {fp} matches {at}");
            match &seen.warning {
                Some(warn) => w.push(
                    StepId::HostKey,
                    i,
                    Status::Warn,
                    t,
                    format!("{detail}; {warn}"),
                    Some("see the warning".into()),
                ),
                None => w.pass(StepId::HostKey, i, t, detail),
            }
        }
        (None, Some(Found::ByCa(at))) => w.pass(
            StepId::HostKey,
            i,
            t,
            format!("host certificate signed by the CA at {at}"),
        ),
        // An unknown key a person confirmed on the terminal.
        (None, Some(Found::New))
            if seen.recorded.is_some()
                || hop.host_key_policy.value == crate::config::model::HostKeyPolicy::Ask =>
        {
            let how = seen
                .recorded
                .clone()
                .unwrap_or_else(|| "accepted for this walk".into());
            w.pass(
                StepId::HostKey,
                i,
                t,
                format!("{key_type} {fp} confirmed on the terminal: {how}"),
            );
        }
        (None, _) => {
            let warning = seen.warning.unwrap_or_else(|| format!("{key_type} {fp}"));
            w.push(StepId::HostKey, i, Status::Warn, t, warning, Some("host key checking is off or lenient for this hop: set strict_host_key_checking = true once the key is known".into()));
        }
    }
    let mut handle = match handle {
        Ok(h) => h,
        Err(e) => {
            w.fail(
                StepId::Auth,
                i,
                Instant::now(),
                format!("the connection ended after the host key check: {e}"),
                "see the server's sshd log",
            );
            w.skip_rest(hops, i, StepId::Auth);
            return None;
        }
    };

    // auth
    let t = Instant::now();
    let report = match tokio::time::timeout(
        timeout,
        crate::ssh::auth::authenticate(&mut handle, hop, &offer, prompter, &conn.display_name),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => {
            w.fail(
                StepId::Auth,
                i,
                t,
                format!(
                    "authentication did not finish within {}s",
                    timeout.as_secs()
                ),
                "the server is slow to answer: check its load (and UseDNS)",
            );
            w.skip_rest(hops, i, StepId::Auth);
            return None;
        }
    };
    match report.used {
        Some(used) => {
            w.pass(
                StepId::Auth,
                i,
                t,
                format!(
                    "{}@{}: server offers {}; accepted {used}",
                    hop.user.value,
                    hop.address(),
                    report.offered
                ),
            );
            Some(handle)
        }
        None => {
            let detail = format!(
                "{}@{}: {}",
                hop.user.value,
                hop.address(),
                report.failure.unwrap_or_default()
            );
            w.fail(
                StepId::Auth,
                i,
                t,
                detail,
                auth_hint(
                    hop,
                    &report.offered,
                    &report.tried,
                    w.certified_by.get(i).cloned().flatten().as_deref(),
                ),
            );
            w.skip_rest(hops, i, StepId::Auth);
            None
        }
    }
}

/// `ca`: the fingerprint of the CA of a certificate the `certificate` step checked (valid
/// now, for this user): when the server refuses it, the CA is what it does not know.
fn auth_hint(hop: &Hop, offered: &str, tried: &[String], ca: Option<&str>) -> String {
    let user = &hop.user.value;
    let joined = tried.join(" ");
    let mut hints = Vec::new();
    if !offered.contains("publickey") {
        hints.push(format!("the server does not offer publickey (it offers {offered}): keys cannot work here; ask for PubkeyAuthentication yes"));
    }
    if joined.contains("encrypted, and no key_passphrase") {
        hints.push("the key is encrypted: set key_passphrase, or ssh-add it to the agent".into());
    }
    if joined.contains("holds no keys") || joined.contains("no SSH_AUTH_SOCK") {
        hints.push("the agent has no key: ssh-add your key".into());
    }
    match ca {
        Some(ca) if joined.contains("certificate") => hints.push(format!(
            "the bastion refused the certificate from certificate_command, though it is valid now and names user '{user}': it does not trust the CA that signed it ({ca}): add that CA's public key to the file TrustedUserCAKeys names in the bastion's sshd_config (or, when it uses AuthorizedPrincipalsFile/AuthorizedPrincipalsCommand, list one of the certificate's principals there for '{user}')"
        )),
        _ if joined.contains("certificate") => hints.push("a certificate was refused: check it is not expired and names this user (ssh-keygen -L -f CERT)".into()),
        _ => {}
    }
    if joined.contains("refused") || hints.is_empty() {
        hints.push(format!(
            "the public key is not in ~{user}/.ssh/authorized_keys on {} (add the line of your .pub file), or sshd ignores it because ~/.ssh is not 0700 / authorized_keys not 0600 (StrictModes), or '{user}' is the wrong user",
            hop.host.value
        ));
    }
    hints.join("; ")
}

/// A step bounded by `timeout`, except while a question of this connection waits for a
/// person (the question has its own timeout).
async fn bounded_unless_asked<T>(
    timeout: Duration,
    prompter: &Prompter,
    connection: &str,
    f: impl std::future::Future<Output = T>,
) -> Result<T, ()> {
    tokio::pin!(f);
    let mut deadline = tokio::time::Instant::now() + timeout;
    loop {
        tokio::select! {
            r = &mut f => return Ok(r),
            _ = tokio::time::sleep_until(deadline) => {
                if prompter.waiting(connection) {
                    deadline = tokio::time::Instant::now() + timeout;
                    continue;
                }
                prompter.withdraw_all(connection);
                return Err(());
            }
        }
    }
}
