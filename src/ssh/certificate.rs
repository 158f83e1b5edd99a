//! `certificate_command`: a command that signs the hop's key and gives back a short-lived
//! OpenSSH user certificate (Vault's SSH engine, step-ca, a company CA), run before each
//! connect and reconnect when the certificate is missing, expired or about to expire.
//!
//! It runs as a ProxyCommand runs (`$SHELL -c`, its own process group, only when commands from
//! the config may run: see [`Hop::refusal`]), with `%r %h %p %k %n` as ProxyCommand's and `%f`
//! a temporary file holding the key's public half, which is also its stdin. It prints the
//! certificate on stdout (warren then writes it to the certificate file) or writes the file
//! itself (`cert_file`/CertificateFile, else `<key>-cert.pub`). It is bounded in time
//! ([`bound`]) and output ([`MAX_OUTPUT`]); what it writes to stderr is kept, escaped, for the
//! tunnel's log and for the error when it fails.
//!
//! Before anything is dialled the certificate is checked against the clock and the user
//! ([`check`]): a server would only say "Permission denied", so warren says which it is.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::{Certificate, PublicKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::expand::{self, ExpandError};
use crate::config::model::Hop;
use crate::config::origin::Sourced;

/// A certificate that expires within this is renewed before connecting.
pub const MARGIN: Duration = Duration::from_secs(60);
/// The most the command may print on stdout (a certificate is a few KB).
pub const MAX_OUTPUT: usize = 64 * 1024;
/// The most of its stderr that is kept.
const MAX_STDERR: usize = 16 * 1024;
/// The lines of its stderr shown in an error.
const SAID_LINES: usize = 3;

/// How long the command may run: the hop's connect_timeout, at least 30 s (a CA behind
/// SSO may take a while).
pub fn bound(hop: &Hop) -> Duration {
    hop.connect_timeout.value.0.max(Duration::from_secs(30))
}

/// The key the command signs and where its certificate lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub key: PathBuf,
    /// `KEY.pub`.
    pub public: PathBuf,
    /// The hop's first certificate file, else `KEY-cert.pub`.
    pub cert: PathBuf,
}

/// Where the key and the certificate are: the first identity file with its `.pub`.
pub fn paths(hop: &Hop) -> Result<Paths, Reason> {
    let key = hop
        .identity_files
        .iter()
        .map(|f| f.value.clone())
        .find(|k| PathBuf::from(format!("{}.pub", k.display())).is_file())
        .ok_or_else(|| {
            let files: Vec<String> = hop
                .identity_files
                .iter()
                .map(|f| f.value.display().to_string())
                .collect();
            Reason::NoKey(if files.is_empty() {
                "no identity file is set".to_string()
            } else {
                format!("none of {} has its .pub next to it", files.join(", "))
            })
        })?;
    let public = PathBuf::from(format!("{}.pub", key.display()));
    let cert = hop
        .certificate_files
        .first()
        .map(|c| c.value.clone())
        .unwrap_or_else(|| PathBuf::from(format!("{}-cert.pub", key.display())));
    Ok(Paths { key, public, cert })
}

/// The command line as the shell runs it: `%h %p %r %k %n` as in ProxyCommand, `%f` the
/// file holding the public key, `%%` a `%`.
pub fn command_line(hop: &Hop, command: &str, public: &Path) -> Result<String, ExpandError> {
    expand::percent(command, |t| {
        Some(match t {
            'h' => hop.host.value.clone(),
            'p' => hop.port.value.to_string(),
            'r' => hop.user.value.clone(),
            'k' => hop
                .host_key_alias
                .as_ref()
                .map(|a| a.value.clone())
                .unwrap_or_else(|| hop.name.clone()),
            'n' => hop.name.clone(),
            'f' => public.display().to_string(),
            _ => return None,
        })
    })
}

/// Why a certificate cannot be used for this login now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unusable {
    Expired {
        at: u64,
        now: u64,
    },
    NotYetValid {
        from: u64,
        now: u64,
    },
    Principal {
        principals: Vec<String>,
        user: String,
    },
    HostCertificate,
    OtherKey,
}

/// `2026-12-07T10:02:00Z` for a Unix time.
pub fn utc(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::Expired { at, now } => write!(
                f,
                "it expired at {}, the clock is {} ({}s ago)",
                utc(*at),
                utc(*now),
                now.saturating_sub(*at)
            ),
            Unusable::NotYetValid { from, now } => write!(
                f,
                "it is valid from {}, the clock is {} ({}s early: is this machine's or the CA's clock wrong?)",
                utc(*from),
                utc(*now),
                from.saturating_sub(*now)
            ),
            Unusable::Principal { principals, user } => {
                let names: Vec<String> = principals
                    .iter()
                    .map(|p| format!("`{}`", crate::text::escape(p)))
                    .collect();
                write!(
                    f,
                    "it is a certificate for principal {} but User is `{user}`",
                    names.join(", ")
                )
            }
            Unusable::HostCertificate => f.write_str("it is a host certificate, not a user one"),
            Unusable::OtherKey => f.write_str("it certifies another key than the one signed"),
        }
    }
}

/// Whether `cert` can log in as `user` at `now` (Unix seconds), for `key` when given.
pub fn check(
    cert: &Certificate,
    user: &str,
    key: Option<&PublicKey>,
    now: u64,
) -> Result<(), Unusable> {
    if cert.cert_type() != CertType::User {
        return Err(Unusable::HostCertificate);
    }
    if key.is_some_and(|k| k.key_data() != cert.public_key()) {
        return Err(Unusable::OtherKey);
    }
    if now < cert.valid_after() {
        return Err(Unusable::NotYetValid {
            from: cert.valid_after(),
            now,
        });
    }
    if now >= cert.valid_before() {
        return Err(Unusable::Expired {
            at: cert.valid_before(),
            now,
        });
    }
    // No principals: valid for any user (sshd's rule).
    let principals = cert.valid_principals();
    if !principals.is_empty() && !principals.iter().any(|p| p == user) {
        return Err(Unusable::Principal {
            principals: principals.to_vec(),
            user: user.to_string(),
        });
    }
    Ok(())
}

/// Whether a usable certificate still has `margin` left.
pub fn lasts(cert: &Certificate, now: u64, margin: Duration) -> bool {
    cert.valid_before() > now.saturating_add(margin.as_secs())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seconds until the certificate in `path` expires (negative: it has); `None` without one.
pub fn expires_in(path: &Path) -> Option<i64> {
    let cert = Certificate::read_file(path).ok()?;
    Some(cert.valid_before().min(i64::MAX as u64) as i64 - now() as i64)
}

/// The certificate a hop's certificate_command last gave, as `show` and `status` tell it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Current {
    pub path: PathBuf,
    /// None: there is none yet (or it cannot be read), and the next connect runs the command.
    pub valid_before: Option<String>,
    pub expires_in_secs: Option<i64>,
    pub principals: Vec<String>,
}

/// The hop's current certificate, when it has a certificate_command.
pub fn current(hop: &Hop) -> Option<Current> {
    let path = cert_path(hop)?;
    let cert = Certificate::read_file(&path).ok();
    Some(Current {
        valid_before: cert.as_ref().map(|c| utc(c.valid_before())),
        expires_in_secs: cert.as_ref().and_then(|_| expires_in(&path)),
        principals: cert
            .map(|c| c.valid_principals().to_vec())
            .unwrap_or_default(),
        path,
    })
}

impl fmt::Display for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.valid_before, self.expires_in_secs) {
            (Some(until), Some(left)) if left > 0 => write!(
                f,
                "{} valid until {until} ({left}s left)",
                self.path.display()
            ),
            (Some(until), _) => write!(
                f,
                "{} expired at {until}: the next connect runs the command",
                self.path.display()
            ),
            _ => write!(
                f,
                "{}: none yet, the next connect runs the command",
                self.path.display()
            ),
        }
    }
}

/// Where a hop's certificate is kept, when it has a certificate_command.
pub fn cert_path(hop: &Hop) -> Option<PathBuf> {
    hop.certificate_command.as_ref()?;
    paths(hop).ok().map(|p| p.cert)
}

/// Why no usable certificate was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    NoKey(String),
    Tokens(ExpandError),
    Start(String),
    TimedOut(u64),
    /// It exited with a failure (`exited with status 3`).
    Exited(String),
    /// It succeeded but produced no certificate (or one that does not parse).
    NoCertificate(String),
    Unusable(Unusable),
}

/// The command failed to give a usable certificate: what, with the command, the file and what
/// it said.
#[derive(Clone, Debug)]
pub struct Failure {
    pub command: String,
    pub cert: Option<PathBuf>,
    pub reason: Reason,
    /// Its exit status, when it ran.
    pub status: Option<i32>,
    /// Its stderr lines, escaped.
    pub stderr: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cert = self
            .cert
            .as_ref()
            .map(|c| format!(" (certificate {})", c.display()))
            .unwrap_or_default();
        write!(f, "certificate_command `{}`{cert}: ", self.command)?;
        match &self.reason {
            Reason::NoKey(why) => write!(f, "no key to sign: {why}")?,
            Reason::Tokens(e) => write!(f, "{e}; its tokens are %h %p %r %k %n %f and %%")?,
            Reason::Start(e) => write!(f, "could not be started: {e}")?,
            Reason::TimedOut(s) => write!(f, "did not finish within {s}s")?,
            Reason::Exited(how) => f.write_str(how)?,
            Reason::NoCertificate(why) => f.write_str(why)?,
            Reason::Unusable(u) => write!(f, "the certificate cannot be used: {u}")?,
        }
        f.write_str(&super::proxy::said(&self.stderr, SAID_LINES))
    }
}

impl Failure {
    /// The likely cause and the fix.
    pub fn hint(&self) -> String {
        match &self.reason {
            Reason::NoKey(_) => "certificate_command signs the public half of the hop's key: set key_file (IdentityFile) to a key with its .pub beside it".into(),
            Reason::Tokens(_) => "write %% for a literal %".into(),
            Reason::Start(_) => "check $SHELL and that the command exists".into(),
            Reason::TimedOut(_) => "the command waits for something (a login in the browser, a prompt with no terminal): run it by hand once, or log in to the CA first (vault login, step ssh login)".into(),
            Reason::Exited(_) => "run the command by hand to see why it fails: an expired CA login (vault login, step ssh login), a wrong role, or no permission to sign for this user".into(),
            Reason::NoCertificate(_) => "the command must print the certificate (ssh-ed25519-cert-v01@openssh.com ...) on stdout or write it to the certificate file".into(),
            Reason::Unusable(Unusable::Principal { user, .. }) => format!("ask the CA for a certificate for principal `{user}` (the command's role or -n), or set User to one of its principals"),
            Reason::Unusable(Unusable::NotYetValid { .. }) => "the clocks differ: sync this machine's clock (or the CA's); certificates are often signed a little in the past for this (ssh-keygen -V -5m:+1h)".into(),
            Reason::Unusable(Unusable::Expired { .. }) => "the command gave an expired certificate: check the CA's TTL and the clocks".into(),
            Reason::Unusable(Unusable::HostCertificate) => "sign the key as a user certificate (ssh-keygen -s without -h)".into(),
            Reason::Unusable(Unusable::OtherKey) => "the command must sign the key it is given (%f or its stdin)".into(),
        }
    }
}

/// What the command did when it ran.
#[derive(Clone, Debug, Default)]
pub struct Ran {
    pub status: i32,
    /// Its stderr lines, escaped.
    pub stderr: Vec<String>,
    /// It printed the certificate (else it wrote the file).
    pub printed: bool,
}

/// A usable certificate for the hop.
#[derive(Clone, Debug)]
pub struct Obtained {
    pub path: PathBuf,
    pub cert: Box<Certificate>,
    /// `None`: the one in the file was still good.
    pub ran: Option<Ran>,
}

impl Obtained {
    /// The hop with this certificate offered first.
    pub fn apply(&self, hop: &Hop) -> Hop {
        let mut h = hop.clone();
        let origin = hop
            .certificate_command
            .as_ref()
            .map(|c| c.origin.clone())
            .unwrap_or(crate::config::Origin::Default);
        h.certificate_files.retain(|c| c.value != self.path);
        h.certificate_files
            .insert(0, Sourced::new(self.path.clone(), origin));
        h
    }

    /// "certificate PATH (principals ...), valid until ..., N s left; ..." for the report.
    pub fn describe(&self) -> String {
        let c = &self.cert;
        let principals = if c.valid_principals().is_empty() {
            "any principal".to_string()
        } else {
            format!(
                "principals {}",
                crate::text::escape(&c.valid_principals().join(", "))
            )
        };
        let how = match &self.ran {
            None => "still valid, the command was not run".to_string(),
            Some(r) => format!(
                "the command ran (exit {}) and {} it",
                r.status,
                if r.printed { "printed" } else { "wrote" }
            ),
        };
        format!(
            "certificate {} (key id '{}', {principals}), valid until {}, {}s left; {how}",
            self.path.display(),
            crate::text::escape(c.key_id()),
            utc(c.valid_before()),
            c.valid_before().saturating_sub(now())
        )
    }
}

/// A usable certificate for `hop`: the one in its file while it lasts [`MARGIN`] more, else
/// a fresh one from its certificate_command. `Ok(None)`: the hop has no certificate_command.
pub async fn ensure(hop: &Hop) -> Result<Option<Obtained>, Box<Failure>> {
    ensure_with(hop, MARGIN).await
}

/// As [`ensure`], renewing a certificate that expires within `margin`.
pub async fn ensure_with(hop: &Hop, margin: Duration) -> Result<Option<Obtained>, Box<Failure>> {
    let Some(cmd) = &hop.certificate_command else {
        return Ok(None);
    };
    let fail = |cert: Option<PathBuf>, reason: Reason| {
        Box::new(Failure {
            command: cmd.value.clone(),
            cert,
            reason,
            status: None,
            stderr: Vec::new(),
        })
    };
    let paths = paths(hop).map_err(|r| fail(None, r))?;
    let some_cert = || Some(paths.cert.clone());
    let public_text = std::fs::read_to_string(&paths.public).map_err(|e| {
        fail(
            some_cert(),
            Reason::NoKey(format!("cannot read {}: {e}", paths.public.display())),
        )
    })?;
    let public = PublicKey::from_openssh(public_text.trim()).map_err(|e| {
        fail(
            some_cert(),
            Reason::NoKey(format!(
                "{} is not a public key: {e}",
                paths.public.display()
            )),
        )
    })?;
    let user = hop.user.value.as_str();
    if let Ok(c) = Certificate::read_file(&paths.cert)
        && check(&c, user, Some(&public), now()).is_ok()
        && lasts(&c, now(), margin)
    {
        return Ok(Some(Obtained {
            path: paths.cert,
            cert: Box::new(c),
            ran: None,
        }));
    }
    // The public half as a file of its own for %f (the user's .pub may not be readable by a
    // helper, and the command may not touch it).
    let mut file = tempfile::Builder::new()
        .prefix("warren-key-")
        .suffix(".pub")
        .tempfile()
        .map_err(|e| fail(some_cert(), Reason::Start(format!("temporary file: {e}"))))?;
    file.write_all(public_text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| fail(some_cert(), Reason::Start(format!("temporary file: {e}"))))?;
    let line =
        command_line(hop, &cmd.value, file.path()).map_err(|e| fail(None, Reason::Tokens(e)))?;
    let before = std::fs::metadata(&paths.cert)
        .and_then(|m| m.modified())
        .ok();
    let Output {
        status,
        stdout,
        stderr,
    } = run(&line, public_text.as_bytes(), bound(hop))
        .await
        .map_err(|r| fail(some_cert(), r))?;
    drop(file);
    let failure = |reason: Reason| {
        Box::new(Failure {
            command: cmd.value.clone(),
            cert: some_cert(),
            reason,
            status: status.code(),
            stderr: stderr.clone(),
        })
    };
    if !status.success() {
        return Err(failure(Reason::Exited(super::proxy::describe(status))));
    }
    let printed = String::from_utf8_lossy(&stdout)
        .lines()
        .map(str::trim)
        .find(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|t| t.ends_with("-cert-v01@openssh.com"))
        })
        .map(str::to_string);
    let printed_it = printed.is_some();
    let cert = match printed {
        Some(text) => {
            let cert = Certificate::from_openssh(&text).map_err(|e| {
                failure(Reason::NoCertificate(format!(
                    "it printed a certificate that does not parse ({e})"
                )))
            })?;
            check(&cert, user, Some(&public), now()).map_err(|u| failure(Reason::Unusable(u)))?;
            write_cert(&paths.cert, &text).map_err(|e| {
                failure(Reason::NoCertificate(format!(
                    "cannot write the certificate it printed to {}: {e}",
                    paths.cert.display()
                )))
            })?;
            cert
        }
        None => {
            let after = std::fs::metadata(&paths.cert)
                .and_then(|m| m.modified())
                .ok();
            let cert = Certificate::read_file(&paths.cert).map_err(|e| {
                failure(Reason::NoCertificate(format!(
                    "it printed no certificate on stdout and {} cannot be read ({e})",
                    paths.cert.display()
                )))
            })?;
            if let Err(u) = check(&cert, user, Some(&public), now()) {
                let unchanged = after.is_some() && after == before;
                return Err(failure(if unchanged {
                    Reason::NoCertificate(format!(
                        "it printed no certificate on stdout and left {} as it was ({u})",
                        paths.cert.display()
                    ))
                } else {
                    Reason::Unusable(u)
                }));
            }
            cert
        }
    };
    Ok(Some(Obtained {
        path: paths.cert,
        cert: Box::new(cert),
        ran: Some(Ran {
            status: status.code().unwrap_or(0),
            stderr,
            printed: printed_it,
        }),
    }))
}

/// Writes a printed certificate beside the key, replacing the file in one rename.
fn write_cert(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let mut tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))?;
    writeln!(tmp, "{text}")?;
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// What a finished command left: its status, stdout and (escaped) stderr lines.
struct Output {
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<String>,
}

/// Runs `line` with `$SHELL -c` in its own process group, `input` on its stdin, for at most
/// `bound`.
async fn run(line: &str, input: &[u8], bound: Duration) -> Result<Output, Reason> {
    let shell = super::proxy::user_shell();
    let mut command = tokio::process::Command::new(&shell);
    command
        .arg("-c")
        .arg(line)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    super::proxy::in_own_session(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| Reason::Start(format!("{shell}: {e}")))?;
    let pid = child.id().map(|p| p as i32);
    let (mut stdin, mut out, mut err) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let work = async {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let feed = async {
            if let Some(mut i) = stdin.take() {
                // A command that does not read its stdin closes it: not an error.
                let _ = i.write_all(input).await;
            }
        };
        let read_out = async {
            if let Some(o) = out.as_mut() {
                let _ = o.take(MAX_OUTPUT as u64 + 1).read_to_end(&mut stdout).await;
            }
        };
        let read_err = async {
            if let Some(e) = err.as_mut() {
                let _ = e.take(MAX_STDERR as u64).read_to_end(&mut stderr).await;
            }
        };
        tokio::join!(feed, read_out, read_err);
        if stdout.len() > MAX_OUTPUT {
            return Err(Reason::NoCertificate(format!(
                "it printed more than {MAX_OUTPUT} bytes"
            )));
        }
        let status = child
            .wait()
            .await
            .map_err(|e| Reason::Start(format!("waitpid: {e}")))?;
        Ok((status, stdout, stderr))
    };
    let result = tokio::time::timeout(bound, work).await;
    let kill = || {
        if let Some(pid) = pid {
            // SAFETY: a negative pid signals the process group the command leads (setsid).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    };
    let (status, stdout, stderr) = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            kill();
            return Err(e);
        }
        Err(_) => {
            kill();
            return Err(Reason::TimedOut(bound.as_secs()));
        }
    };
    let lines = String::from_utf8_lossy(&stderr)
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .map(|l| crate::text::escape(l).into_owned())
        .collect();
    Ok(Output {
        status,
        stdout,
        stderr: lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::ssh_key::{Algorithm, PrivateKey, certificate::Builder};

    fn cert(principals: &[&str], after: u64, before: u64) -> (Certificate, PublicKey) {
        let ca = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).expect("ca");
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).expect("key");
        let mut b = Builder::new(vec![7u8; 32], key.public_key(), after, before).expect("builder");
        b.cert_type(CertType::User).expect("type");
        b.key_id("test").expect("id");
        if principals.is_empty() {
            b.all_principals_valid().expect("all");
        }
        for p in principals {
            b.valid_principal(*p).expect("principal");
        }
        (b.sign(&ca).expect("sign"), key.public_key().clone())
    }

    #[test]
    fn validity_and_principals_are_checked_with_the_reason() {
        let (c, key) = cert(&["deploy"], 1000, 2000);
        assert_eq!(check(&c, "deploy", Some(&key), 1500), Ok(()));
        let wrong = check(&c, "ubuntu", Some(&key), 1500).expect_err("principal");
        assert_eq!(
            wrong.to_string(),
            "it is a certificate for principal `deploy` but User is `ubuntu`"
        );
        let early = check(&c, "deploy", Some(&key), 760).expect_err("early");
        assert!(
            early.to_string().starts_with(
                "it is valid from 1970-01-01T00:16:40Z, the clock is 1970-01-01T00:12:40Z (240s early"
            ),
            "{early}"
        );
        assert_eq!(
            check(&c, "deploy", Some(&key), 2000),
            Err(Unusable::Expired {
                at: 2000,
                now: 2000
            })
        );
        let (_, other) = cert(&[], 0, 10);
        assert_eq!(
            check(&c, "deploy", Some(&other), 1500),
            Err(Unusable::OtherKey)
        );
        // No principal listed: any user.
        let (any, key) = cert(&[], 1000, 2000);
        assert_eq!(check(&any, "whoever", Some(&key), 1500), Ok(()));
        assert!(lasts(&any, 1500, Duration::from_secs(60)));
        assert!(!lasts(&any, 1950, Duration::from_secs(60)));
    }

    fn hop() -> Hop {
        let ctx = crate::config::Context::new("/tmp".into(), "me", Default::default());
        let ssh = crate::config::ssh_config::SshConfig::from_texts(std::sync::Arc::new(ctx), &[]);
        let (mut hops, _) = crate::config::from_ssh::hops(&ssh, ssh.resolve("bastion"));
        let mut h = hops.remove(0);
        h.host = Sourced::default_value("bastion.example.com".into());
        h.port = Sourced::default_value(2222);
        h.user = Sourced::default_value("deploy".into());
        h
    }

    #[test]
    fn tokens_expand_like_proxy_command_with_the_key_file() {
        let h = hop();
        let line = command_line(
            &h,
            "sign %r@%h:%p %k %n -f %f 100%%",
            Path::new("/tmp/k.pub"),
        )
        .expect("expands");
        assert_eq!(
            line,
            "sign deploy@bastion.example.com:2222 bastion bastion -f /tmp/k.pub 100%"
        );
        assert_eq!(
            command_line(&h, "sign %q", Path::new("/k")),
            Err(ExpandError::UnknownToken('q'))
        );
    }
}
