//! ProxyCommand: a hop reached through a command's stdin and stdout, as OpenSSH runs it
//! (sshconnect.c `ssh_proxy_connect`): `$SHELL -c "exec COMMAND"` (or `/bin/sh`), tokens
//! expanded ([`Hop::proxy_command_line`]), the environment kept.
//!
//! Where warren differs from ssh, and why:
//! - the command runs in a session of its own, without the terminal: warren's TUI owns the
//!   screen and a daemon has none, so a command that asks on the terminal fails at once with
//!   its own message instead of hanging (give it an agent, SSH_ASKPASS or BatchMode);
//! - its stderr is read by warren, not left on the terminal: each line (control characters
//!   escaped, cut at [`MAX_LINE`] bytes) goes to the tunnel's log, and the last
//!   [`TAIL_LINES`] are kept for the error when the command ends;
//! - when the session ends it is stopped and reaped: SIGHUP to its process group (ssh sends
//!   SIGHUP to the command alone and leaves it to init), SIGKILL after [`GRACE`], then waited
//!   for, so a reconnect or an exit never leaves a process or a zombie behind. (Dropping it
//!   may so block for up to [`GRACE`]; commands end on SIGHUP within milliseconds.)
//!
//! With ProxyUseFdpass (sshconnect.c `ssh_proxy_fdpass_connect`) the command's stdin and
//! stdout are one end of a unix socket pair instead, and the command sends a connected
//! socket back over it (SCM_RIGHTS) and exits; that socket is then the connection. ssh waits
//! for the command to exit before it takes the socket; warren takes it as soon as it
//! arrives (a command that lingers changes nothing), and a command that ends without
//! sending one is the error. Once the socket is passed, the command's exit is not a failure.
//!
//! The process is a `std` child (so that dropping it can always reap it, with or without a
//! runtime); its pipes are tokio's, so russh reads and writes them without blocking.
//!
//! Writes to the command never wait for the pipe ([`Stream`]): they go to a queue that a
//! task of its own empties into the command's stdin. russh writes its whole output before
//! it reads again, and a pipe holds 64 KiB; with a relay such as `nc`, which stops reading
//! its stdin while its stdout is full, a direct write deadlocks both sides once the data in
//! flight outgrows the pipes (a tunnel stalled after a few hundred KB). ssh never blocks on
//! the command either: its buffers grow instead. Here the queue holds what the server's
//! windows let russh send, at most [`QUEUE_MAX`]; past that the writer waits.

use std::collections::VecDeque;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::mpsc;

use crate::config::model::Hop;

/// The longest stderr line kept; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 512;
/// How many of the last stderr lines are kept for the error message.
pub const TAIL_LINES: usize = 20;
/// How long a stopped command has after SIGHUP before SIGKILL.
pub const GRACE: Duration = Duration::from_millis(200);

/// The most bytes queued for the command's stdin before a write waits: well above what the
/// server's channel windows let russh send at once (2 MiB a channel in OpenSSH).
pub const QUEUE_MAX: usize = 64 * 1024 * 1024;

/// The connection to a hop: the command's stdout to read and writes queued for its stdin
/// (see the module docs), or the socket the command passed (ProxyUseFdpass).
pub struct Stream {
    inner: Inner,
}

enum Inner {
    Pipes {
        stdout: ChildStdout,
        queue: Arc<Queue>,
    },
    Fdpass(Fdpass),
}

/// ProxyUseFdpass: the socket pair's end until the command has sent a socket, then that.
struct Fdpass {
    control: Option<tokio::net::UnixStream>,
    socket: Option<tokio::net::TcpStream>,
    /// Set once the socket has arrived: the command's exit is no longer a failure.
    passed: Arc<std::sync::atomic::AtomicBool>,
}

impl Fdpass {
    /// The passed socket, receiving it first if it has not come yet.
    fn poll_socket(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<&mut tokio::net::TcpStream>> {
        use std::os::fd::AsRawFd;
        use std::task::Poll;
        while self.socket.is_none() {
            let Some(control) = self.control.as_ref() else {
                return Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()));
            };
            std::task::ready!(control.poll_read_ready(cx))?;
            let fd = match control.try_io(tokio::io::Interest::READABLE, || {
                receive_fd(control.as_raw_fd())
            }) {
                Ok(fd) => fd,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            };
            let std = std::net::TcpStream::from(fd);
            std.set_nonblocking(true)?;
            let _ = std.set_nodelay(true);
            self.socket = Some(tokio::net::TcpStream::from_std(std)?);
            self.control = None;
            self.passed
                .store(true, std::sync::atomic::Ordering::Release);
        }
        match self.socket.as_mut() {
            Some(s) => Poll::Ready(Ok(s)),
            None => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }
}

/// recvmsg's flags: the received descriptor is close-on-exec from the start.
#[cfg(target_os = "linux")]
const RECV_FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC;
/// macOS has no MSG_CMSG_CLOEXEC: the descriptor is marked close-on-exec just after.
#[cfg(not(target_os = "linux"))]
const RECV_FLAGS: libc::c_int = 0;

/// Receives one file descriptor sent with SCM_RIGHTS on a unix socket (as ssh's
/// `mm_receive_fd`): EOF without one is an error that says so.
fn receive_fd(sock: std::os::fd::RawFd) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // Room for one descriptor, aligned as cmsghdr needs.
    let mut space = [0u64; 8];
    // SAFETY: an all-zero msghdr is valid; the buffers outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen =
        unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as _;
    // SAFETY: `msg` points at live buffers of the sizes given.
    let n = unsafe { libc::recvmsg(sock, &mut msg, RECV_FLAGS) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the header and data pointers come from the kernel's answer in `space`.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null()
            && (*cmsg).cmsg_level == libc::SOL_SOCKET
            && (*cmsg).cmsg_type == libc::SCM_RIGHTS
        {
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            if RECV_FLAGS == 0 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
            return Ok(std::os::fd::OwnedFd::from_raw_fd(fd));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        if n == 0 {
            "the ProxyCommand closed its output without passing a connected socket (ProxyUseFdpass yes)"
        } else {
            "the ProxyCommand wrote data instead of passing a connected socket (ProxyUseFdpass yes)"
        },
    ))
}

/// What is waiting to go to the command's stdin.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    /// Wakes the task that writes to stdin.
    more: tokio::sync::Notify,
}

#[derive(Default)]
struct QueueState {
    chunks: VecDeque<Vec<u8>>,
    len: usize,
    /// No more writes will come: stdin is closed once the queue is empty.
    closed: bool,
    /// Writing to stdin failed (the command ended): later writes fail with it.
    failed: Option<(std::io::ErrorKind, String)>,
    /// A write waiting for room.
    writer: Option<std::task::Waker>,
}

impl Stream {
    fn new(stdout: ChildStdout, stdin: ChildStdin) -> Stream {
        let queue = Arc::new(Queue::default());
        tokio::spawn(feed_stdin(stdin, Arc::clone(&queue)));
        Stream {
            inner: Inner::Pipes { stdout, queue },
        }
    }

    fn close(&self) {
        if let Inner::Pipes { queue, .. } = &self.inner {
            if let Ok(mut q) = queue.state.lock() {
                q.closed = true;
            }
            queue.more.notify_one();
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.close();
    }
}

/// Empties the queue into the command's stdin, chunk by chunk, until it is closed and empty
/// or a write fails; then drops stdin (the command sees EOF).
async fn feed_stdin(mut stdin: ChildStdin, queue: Arc<Queue>) {
    use tokio::io::AsyncWriteExt;
    loop {
        let next = {
            let Ok(mut q) = queue.state.lock() else {
                return;
            };
            match q.chunks.pop_front() {
                Some(c) => {
                    q.len -= c.len();
                    if let Some(w) = q.writer.take() {
                        w.wake();
                    }
                    Some(c)
                }
                None if q.closed => return,
                None => None,
            }
        };
        match next {
            Some(chunk) => {
                if let Err(e) = stdin.write_all(&chunk).await {
                    if let Ok(mut q) = queue.state.lock() {
                        q.failed = Some((e.kind(), e.to_string()));
                        q.chunks.clear();
                        q.len = 0;
                        if let Some(w) = q.writer.take() {
                            w.wake();
                        }
                    }
                    return;
                }
            }
            None => queue.more.notified().await,
        }
    }
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match &mut self.inner {
            Inner::Pipes { stdout, .. } => std::pin::Pin::new(stdout).poll_read(cx, buf),
            Inner::Fdpass(f) => {
                let s = std::task::ready!(f.poll_socket(cx))?;
                std::pin::Pin::new(s).poll_read(cx, buf)
            }
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        let queue = match &mut self.inner {
            Inner::Pipes { queue, .. } => queue,
            Inner::Fdpass(f) => {
                let s = std::task::ready!(f.poll_socket(cx))?;
                return std::pin::Pin::new(s).poll_write(cx, buf);
            }
        };
        let Ok(mut q) = queue.state.lock() else {
            return Poll::Ready(Err(std::io::Error::other("ProxyCommand queue poisoned")));
        };
        if let Some((kind, msg)) = &q.failed {
            return Poll::Ready(Err(std::io::Error::new(*kind, msg.clone())));
        }
        if q.closed {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if q.len >= QUEUE_MAX {
            q.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(QUEUE_MAX - q.len);
        q.chunks.push_back(buf[..n].to_vec());
        q.len += n;
        drop(q);
        queue.more.notify_one();
        Poll::Ready(Ok(n))
    }

    /// Queued is as far as a flush goes: waiting for the pipe is what deadlocks.
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let queue = match &mut self.inner {
            Inner::Pipes { queue, .. } => queue,
            Inner::Fdpass(f) => {
                return match f.socket.as_mut() {
                    Some(s) => std::pin::Pin::new(s).poll_flush(cx),
                    None => std::task::Poll::Ready(Ok(())),
                };
            }
        };
        let failed = queue.state.lock().ok().and_then(|q| q.failed.clone());
        std::task::Poll::Ready(match failed {
            Some((kind, msg)) => Err(std::io::Error::new(kind, msg)),
            None => Ok(()),
        })
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if let Inner::Fdpass(f) = &mut self.inner {
            return match f.socket.as_mut() {
                Some(s) => std::pin::Pin::new(s).poll_shutdown(cx),
                None => std::task::Poll::Ready(Ok(())),
            };
        }
        self.close();
        std::task::Poll::Ready(Ok(()))
    }
}

/// Why a ProxyCommand could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Refused(String),
    #[error("cannot run {shell}: {source}")]
    Spawn {
        shell: String,
        source: std::io::Error,
    },
}

/// A running ProxyCommand. Dropping it stops the command and reaps it.
pub struct Proxy {
    /// The command line given to the shell (`exec ...`).
    pub command: String,
    pid: i32,
    child: Option<std::process::Child>,
    status: Option<ExitStatus>,
    tail: Arc<Mutex<VecDeque<String>>>,
    reader: Option<tokio::task::JoinHandle<()>>,
    /// ProxyUseFdpass yes: the command is to pass back a socket.
    fdpass: bool,
    /// ProxyUseFdpass: the socket has been passed (the command's exit is expected).
    passed: Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    /// Starts the hop's ProxyCommand. `index` and `label` (the tunnel) name its stderr lines;
    /// each one is also sent on `lines` when given (dropped, but logged, if the channel is
    /// full).
    pub fn start(
        hop: &Hop,
        index: usize,
        label: &str,
        lines: Option<mpsc::Sender<String>>,
    ) -> Result<(Proxy, Stream), StartError> {
        if let Some(why) = hop.refusal() {
            return Err(StartError::Refused(why));
        }
        let command = match hop.proxy_command_line() {
            Some(Ok(c)) => c,
            Some(Err(e)) => return Err(StartError::Refused(format!("ProxyCommand: {e}"))),
            None => return Err(StartError::Refused("no ProxyCommand is set".into())),
        };
        let shell = user_shell();
        let spawn_err = |source| StartError::Spawn {
            shell: shell.clone(),
            source,
        };
        // ProxyUseFdpass: the command's stdin and stdout are one end of a socket pair.
        let pair = if hop.proxy_use_fdpass.value {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(spawn_err)?;
            let out = theirs.try_clone().map_err(spawn_err)?;
            Some((ours, theirs, out))
        } else {
            None
        };
        let mut cmd = std::process::Command::new(&shell);
        cmd.arg("-c").arg(&command).stderr(Stdio::piped());
        let ours = match pair {
            Some((ours, theirs, out)) => {
                cmd.stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
                    .stdout(Stdio::from(std::os::fd::OwnedFd::from(out)));
                Some(ours)
            }
            None => {
                cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
                None
            }
        };
        // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(spawn_err)?;
        // The command's ends of the pair are closed here: its exit is then EOF.
        drop(cmd);
        let pid = child.id() as i32;
        let mut proxy = Proxy {
            command,
            pid,
            child: None,
            status: None,
            tail: Arc::new(Mutex::new(VecDeque::new())),
            reader: None,
            fdpass: ours.is_some(),
            passed: Arc::default(),
        };
        let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        // From here on, dropping `proxy` stops and reaps the child.
        proxy.child = Some(child);
        let Some(stderr) = pipes.2 else {
            return Err(spawn_err(std::io::Error::other("no pipes")));
        };
        let stderr = ChildStderr::from_std(stderr).map_err(spawn_err)?;
        let stream = match (ours, pipes.0, pipes.1) {
            (Some(ours), _, _) => {
                ours.set_nonblocking(true).map_err(spawn_err)?;
                Stream {
                    inner: Inner::Fdpass(Fdpass {
                        control: Some(tokio::net::UnixStream::from_std(ours).map_err(spawn_err)?),
                        socket: None,
                        passed: Arc::clone(&proxy.passed),
                    }),
                }
            }
            (None, Some(stdin), Some(stdout)) => Stream::new(
                ChildStdout::from_std(stdout).map_err(spawn_err)?,
                ChildStdin::from_std(stdin).map_err(spawn_err)?,
            ),
            _ => return Err(spawn_err(std::io::Error::other("no pipes"))),
        };
        let tail = Arc::clone(&proxy.tail);
        let label = label.to_string();
        proxy.reader = Some(tokio::spawn(read_stderr(stderr, tail, label, index, lines)));
        tracing::debug!(
            "ProxyCommand of hop {index} started (pid {pid}): {}",
            proxy.command
        );
        Ok((proxy, stream))
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// How it ended, if it has.
    pub fn status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Some(c) = self.child.as_mut()
            && let Ok(Some(s)) = c.try_wait()
        {
            self.status = Some(s);
        }
        self.status
    }

    /// Waits up to `within` for it to end; then waits (a little) for the rest of its stderr.
    /// `None` too for a command that passed its socket (ProxyUseFdpass): it was meant to end.
    pub async fn exited(&mut self, within: Duration) -> Option<ExitStatus> {
        if self.has_passed() {
            return None;
        }
        let deadline = Instant::now() + within;
        while self.status().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let status = self.status()?;
        if let Some(r) = &self.reader {
            let settle = Instant::now() + Duration::from_millis(300);
            while !r.is_finished() && Instant::now() < settle {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        Some(status)
    }

    /// The last lines it wrote to stderr (escaped), oldest first.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the command has passed its socket (ProxyUseFdpass yes).
    fn has_passed(&self) -> bool {
        self.passed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// "exited with status 1; it said: ..." for an ended command, with its last lines;
    /// `None` while it runs or once it has passed its socket.
    pub fn ending(&mut self) -> Option<String> {
        if self.has_passed() {
            return None;
        }
        let status = self.status()?;
        Some(format!(
            "{}{}{}",
            describe(status),
            if self.fdpass {
                " without passing a connected socket (ProxyUseFdpass yes)"
            } else {
                ""
            },
            said(&self.stderr_tail(), 5)
        ))
    }
}

/// `exited with status N` or `was killed by signal N`.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "ended".to_string(),
    }
}

/// `; it said: a | b` with the last `n` lines, or nothing.
pub fn said(lines: &[String], n: usize) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let from = lines.len().saturating_sub(n);
    format!("; it said: {}", lines[from..].join(" | "))
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let pid = self.pid;
        // SAFETY: a negative pid signals the process group the command leads (setsid).
        unsafe { libc::kill(-pid, libc::SIGHUP) };
        // Reaped here, so that none outlives a warren that exits right after (a zombie
        // handed to init is not always reaped): a command that has not ended after GRACE is
        // killed, which ends it at once.
        let deadline = Instant::now() + GRACE;
        loop {
            match child.try_wait() {
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Ok(None) => {
                    // SAFETY: as above; the leader has not been reaped, so the group is
                    // still this command's.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                    let _ = child.wait();
                    return;
                }
                _ => return,
            }
        }
    }
}

/// Reads the command's stderr until it closes: each line escaped, cut at [`MAX_LINE`], kept
/// in `tail` and sent on `lines` (logged when there is no channel or it is full).
async fn read_stderr(
    mut err: ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
    label: String,
    hop: usize,
    lines: Option<mpsc::Sender<String>>,
) {
    let emit = |raw: &[u8]| {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            return;
        }
        let shown = crate::text::escape(text).into_owned();
        if let Ok(mut t) = tail.lock() {
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(shown.clone());
        }
        let line = format!("ProxyCommand (hop {hop}): {shown}");
        match &lines {
            Some(tx) if tx.try_send(line.clone()).is_ok() => {}
            _ => tracing::info!(tunnel = %label, "{line}"),
        }
    };
    let mut buf = [0u8; 4096];
    let mut line: Vec<u8> = Vec::with_capacity(MAX_LINE);
    loop {
        let n = match err.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                emit(&line);
                line.clear();
            } else if line.len() < MAX_LINE {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        emit(&line);
    }
}

/// The shell a user's command runs in, as OpenSSH picks it: `$SHELL`, else `/bin/sh`.
pub fn user_shell() -> String {
    std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into())
}

/// Starts `command` in a session of its own (as OpenSSH does for ProxyCommand), so the
/// terminal's signals reach warren, not it, and its whole group can be ended with it.
pub fn in_own_session(command: &mut tokio::process::Command) {
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::origin::Sourced;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn hop(cmd: &str) -> Hop {
        let ctx = crate::config::Context::new("/tmp".into(), "me", Default::default());
        let ssh = crate::config::ssh_config::SshConfig::from_texts(std::sync::Arc::new(ctx), &[]);
        let (mut hops, _) = crate::config::from_ssh::hops(&ssh, ssh.resolve("db.example"));
        let mut h = hops.remove(0);
        h.proxy_command = Some(Sourced::default_value(cmd.to_string()));
        h
    }

    #[tokio::test]
    async fn carries_bytes_tokens_and_stderr_and_reports_the_exit() {
        let (mut p, mut s) = Proxy::start(
            // `exec` is put in front, as ssh does: a list needs a shell of its own.
            &hop("sh -c 'echo to-stderr %h:%p >&2; exec cat'"),
            0,
            "t",
            None,
        )
        .expect("starts");
        s.write_all(b"ping").await.expect("write");
        let mut got = [0u8; 4];
        s.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping");
        drop(s);
        let status = p
            .exited(Duration::from_secs(5))
            .await
            .expect("cat ends on EOF");
        assert!(status.success());
        assert_eq!(p.stderr_tail(), ["to-stderr db.example:22"]);
        assert!(p.command.starts_with("exec sh -c"));

        let (mut p, _s) = Proxy::start(
            &hop("sh -c \"echo 'no such \u{1b}[31mthing' >&2; exit 3\""),
            0,
            "t",
            None,
        )
        .expect("starts");
        let ending = {
            p.exited(Duration::from_secs(5)).await;
            p.ending().expect("ended")
        };
        assert_eq!(
            ending,
            "exited with status 3; it said: no such \\x1b[31mthing"
        );
    }

    #[tokio::test]
    async fn dropping_it_stops_the_whole_group_and_reaps_it() {
        let (p, _s) = Proxy::start(&hop("sleep 60 & sleep 60"), 0, "t", None).expect("starts");
        let pid = p.pid();
        // Wait for the background sleep to exist.
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(p);
        let deadline = Instant::now() + Duration::from_secs(5);
        // No process of the group remains, and the leader is not a zombie.
        loop {
            let out = std::process::Command::new("ps")
                .args(["-o", "pid=,stat=", "-s", &pid.to_string()])
                .output()
                .expect("ps");
            let left = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "still there: {left}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn refused_without_commands() {
        let mut h = hop("true");
        h.run_commands = Sourced::new(false, crate::config::Origin::Env("WARREN_NO_EXEC".into()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let r = rt.block_on(async { Proxy::start(&h, 0, "t", None).map(|_| ()) });
        let Err(StartError::Refused(why)) = r else {
            panic!("not refused")
        };
        assert!(why.contains("--no-exec"), "{why}");
    }
}
