//! Forwards: what a tunnel listens on and where it connects, and OpenSSH's forward
//! specification syntax (`[bind:]port host:hostport`, unix socket paths, `[ipv6]`).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// Which way a forward goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardKind {
    /// `-L`: listen here, connect from the last hop.
    Local,
    /// `-R`: listen on the last hop, connect from here.
    Remote,
    /// `-D`: a SOCKS proxy here.
    Dynamic,
}

impl ForwardKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardKind::Local => "local",
            ForwardKind::Remote => "remote",
            ForwardKind::Dynamic => "dynamic",
        }
    }
}

/// One end of a forward.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A TCP address. `host` is `None` when no bind address was given.
    Tcp { host: Option<String>, port: u16 },
    /// A unix domain socket.
    Unix(PathBuf),
}

impl Endpoint {
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Endpoint::Tcp {
            host: Some(host.into()),
            port,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host: None, port } => write!(f, "{port}"),
            Endpoint::Tcp {
                host: Some(h),
                port,
            } if h.contains(':') => write!(f, "[{h}]:{port}"),
            Endpoint::Tcp {
                host: Some(h),
                port,
            } => write!(f, "{h}:{port}"),
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A forward of a connection. `connect` is `None` for dynamic (SOCKS) forwards.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Forward {
    pub kind: ForwardKind,
    pub listen: Endpoint,
    pub connect: Option<Endpoint>,
}

impl Endpoint {
    /// How a local end is shown: `localhost:15432`, `127.0.0.1:auto` (a port picked when the
    /// tunnel opens), `[::1]:5432`, or a socket path.
    pub fn local_text(&self) -> String {
        match self {
            Endpoint::Tcp { host, port } => {
                let host = match host.as_deref() {
                    None | Some("") => "localhost",
                    Some("*") => "0.0.0.0",
                    Some(h) => h,
                };
                let port = if *port == 0 {
                    "auto".to_string()
                } else {
                    port.to_string()
                };
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            }
            Endpoint::Unix(p) => p.display().to_string(),
        }
    }
}

impl Forward {
    /// The local end and the target, as `list` and `show` print them (`socks` for a dynamic
    /// forward's target).
    pub fn ends(&self) -> (Option<String>, Option<String>) {
        let local = self.local_end().map(Endpoint::local_text);
        let target = match self.kind {
            ForwardKind::Dynamic => Some("socks".to_string()),
            _ => self.far_end().map(Endpoint::to_string),
        };
        (local, target)
    }

    /// `local -> target`, `remote target -> local`, `local (SOCKS)`.
    pub fn summary(&self) -> String {
        let (local, target) = self.ends();
        let local = local.unwrap_or_else(|| "-".into());
        let target = target.unwrap_or_else(|| "-".into());
        match self.kind {
            ForwardKind::Local => format!("{local} -> {target}"),
            ForwardKind::Remote if self.connect.is_none() => format!("remote {target} (SOCKS)"),
            ForwardKind::Remote => format!("remote {target} -> {local}"),
            ForwardKind::Dynamic => format!("{local} (SOCKS)"),
        }
    }

    /// Where the user's client connects: the local end.
    pub fn local_end(&self) -> Option<&Endpoint> {
        match self.kind {
            ForwardKind::Local | ForwardKind::Dynamic => Some(&self.listen),
            ForwardKind::Remote => self.connect.as_ref(),
        }
    }

    /// The far end: what the forward reaches (local) or exposes (remote).
    pub fn far_end(&self) -> Option<&Endpoint> {
        match self.kind {
            ForwardKind::Local => self.connect.as_ref(),
            ForwardKind::Remote => Some(&self.listen),
            ForwardKind::Dynamic => None,
        }
    }
}

/// One field of a forward spec, and whether it looked like a path.
struct Field {
    text: String,
    is_path: bool,
}

/// Splits a spec at unbracketed colons, as OpenSSH's `parse_fwd_field`.
fn fields(spec: &str) -> Option<Vec<Field>> {
    let mut out = Vec::new();
    let mut rest = spec.trim_start();
    while !rest.is_empty() {
        if out.len() == 4 {
            return None; // trailing garbage
        }
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            let text = &inner[..end];
            let after = &inner[end + 1..];
            if !(after.is_empty() || after.starts_with(':')) {
                return None;
            }
            out.push(Field {
                text: text.to_string(),
                is_path: text.contains('/'),
            });
            rest = after.strip_prefix(':').unwrap_or(after);
            continue;
        }
        let mut text = String::new();
        let mut is_path = false;
        let mut chars = rest.char_indices();
        let mut next = rest.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e)) => text.push(e),
                    None => return None,
                },
                '/' => {
                    is_path = true;
                    text.push(c);
                }
                ':' => {
                    next = i + 1;
                    break;
                }
                _ => text.push(c),
            }
        }
        out.push(Field { text, is_path });
        rest = &rest[next.min(rest.len())..];
    }
    Some(out)
}

fn port(s: &str) -> Option<u16> {
    crate::config::expand::port(s)
}

/// Parses a forward as OpenSSH's `parse_forward` does. For Local and Remote, `spec` is the
/// listen argument and the connect argument joined by `:`; for Dynamic, the listen argument.
/// A remote forward with no connect argument is a remote dynamic forward (`connect` = None).
pub fn parse(kind: ForwardKind, spec: &str, dynamic: bool) -> Option<Forward> {
    let f = fields(spec)?;
    let tcp = |host: Option<&Field>, p: &Field| -> Option<Endpoint> {
        Some(Endpoint::Tcp {
            host: host.map(|h| h.text.clone()),
            port: port(&p.text)?,
        })
    };
    let unix = |p: &Field| Endpoint::Unix(PathBuf::from(&p.text));
    let (listen, connect) = match f.len() {
        1 if dynamic => {
            let l = if f[0].is_path {
                unix(&f[0])
            } else {
                tcp(None, &f[0])?
            };
            (l, None)
        }
        2 if dynamic => (tcp(Some(&f[0]), &f[1])?, None),
        2 if f[0].is_path && f[1].is_path => (unix(&f[0]), Some(unix(&f[1]))),
        2 if f[1].is_path => (tcp(None, &f[0])?, Some(unix(&f[1]))),
        3 if !dynamic && f[0].is_path => (unix(&f[0]), Some(tcp(Some(&f[1]), &f[2])?)),
        3 if !dynamic && f[2].is_path => (tcp(Some(&f[0]), &f[1])?, Some(unix(&f[2]))),
        3 if !dynamic => (tcp(None, &f[0])?, Some(tcp(Some(&f[1]), &f[2])?)),
        4 if !dynamic => (tcp(Some(&f[0]), &f[1])?, Some(tcp(Some(&f[2]), &f[3])?)),
        _ => return None,
    };
    if let Some(Endpoint::Tcp { port: 0, .. }) = connect {
        return None;
    }
    // Port 0 (pick one) is only meaningful for a remote listener.
    if kind != ForwardKind::Remote && matches!(listen, Endpoint::Tcp { port: 0, .. }) {
        return None;
    }
    Some(Forward {
        kind,
        listen,
        connect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> Option<Forward> {
        parse(ForwardKind::Local, s, false)
    }

    #[test]
    fn local_forward_shapes() {
        let f = local("15432:db.internal:5432").expect("parses");
        assert_eq!(
            f.listen,
            Endpoint::Tcp {
                host: None,
                port: 15432
            }
        );
        assert_eq!(f.connect, Some(Endpoint::tcp("db.internal", 5432)));

        let f = local("127.0.0.1:15432:db:5432").expect("parses");
        assert_eq!(f.listen, Endpoint::tcp("127.0.0.1", 15432));

        let f = local("[::1]:15432:[fd00::5]:5432").expect("parses");
        assert_eq!(f.listen, Endpoint::tcp("::1", 15432));
        assert_eq!(f.connect, Some(Endpoint::tcp("fd00::5", 5432)));

        let f = local("/tmp/pg.sock:db:5432").expect("parses");
        assert_eq!(f.listen, Endpoint::Unix("/tmp/pg.sock".into()));

        let f = local("5432:/run/postgresql/.s.PGSQL.5432").expect("parses");
        assert_eq!(
            f.connect,
            Some(Endpoint::Unix("/run/postgresql/.s.PGSQL.5432".into()))
        );
    }

    #[test]
    fn bad_forwards_are_rejected() {
        assert_eq!(local("15432"), None);
        assert_eq!(local("abc:db:5432"), None);
        assert_eq!(local("0:db:5432"), None);
        assert_eq!(local("1:db:0"), None);
        assert_eq!(local("70000:db:5432"), None);
        assert_eq!(local("a:1:b:2:c"), None);
    }

    #[test]
    fn dynamic_and_remote() {
        let d = parse(ForwardKind::Dynamic, "127.0.0.1:1080", true).expect("parses");
        assert_eq!(d.listen, Endpoint::tcp("127.0.0.1", 1080));
        assert_eq!(d.connect, None);
        let r = parse(ForwardKind::Remote, "0:localhost:80", false).expect("remote port 0 ok");
        assert_eq!(
            r.listen,
            Endpoint::Tcp {
                host: None,
                port: 0
            }
        );
    }
}
