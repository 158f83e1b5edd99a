//! `[user@]host[:port]` and `ssh://[user@]host[:port]`, as ProxyJump and `endpoint` take them.

use std::fmt;

use serde::Serialize;

/// An SSH destination as written: any part but the host may be left out.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl Destination {
    /// Parses `ssh://[user@]host[:port][/]` or `[user@]host[:port]` (the user is everything
    /// up to the last `@`; an IPv6 host is written in brackets).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (rest, uri) = match s.strip_prefix("ssh://") {
            Some(r) => (r.strip_suffix('/').unwrap_or(r), true),
            None => (s, false),
        };
        if uri && rest.contains('/') {
            return Err(format!("'{s}': an ssh:// address cannot have a path"));
        }
        let (user, hostport) = match rest.rfind('@') {
            Some(i) if uri => (
                Some(percent_decode(
                    rest[..i].split(';').next().unwrap_or_default(),
                )),
                &rest[i + 1..],
            ),
            Some(i) => (Some(rest[..i].to_string()), &rest[i + 1..]),
            None => (None, rest),
        };
        if user.as_deref() == Some("") {
            return Err(format!("'{s}': empty user name before '@'"));
        }
        let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
            let end = inner
                .find(']')
                .ok_or_else(|| format!("'{s}': '[' without its closing ']'"))?;
            let after = &inner[end + 1..];
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("'{s}': junk after ']'"))?,
                ),
            };
            (&inner[..end], port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(format!("'{s}': no host name"));
        }
        let port = match port {
            None => None,
            Some(p)
                if !p.is_empty()
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && !matches!(p.parse::<u32>(), Ok(1..=65535)) =>
            {
                return Err(format!("'{s}': port {p} is out of range (1-65535)"));
            }
            Some(p) => Some(
                crate::config::expand::port(p)
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("'{s}': '{p}' is not a port number (1-65535)"))?,
            ),
        };
        Ok(Destination {
            user,
            host: host.to_string(),
            port,
        })
    }
}

/// `%40` -> `@` in the user part of an ssh:// address (RFC 3986 percent-encoding).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        // An IPv6 address in brackets; a cloud bastion (`ssm:i-0abc`) as it is written.
        if self.host.contains(':') && !crate::config::cloud::is_preset(&self.host) {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        let d = Destination::parse("ssh://bob@b.example:2222").expect("parses");
        assert_eq!(
            d,
            Destination {
                user: Some("bob".into()),
                host: "b.example".into(),
                port: Some(2222)
            }
        );
        let d = Destination::parse("a@b@host").expect("parses");
        assert_eq!(d.user.as_deref(), Some("a@b"));
        let d = Destination::parse("[::1]:22").expect("parses");
        assert_eq!(d.host, "::1");
        assert_eq!(d.to_string(), "[::1]:22");
        assert!(Destination::parse("host:abc").is_err());
        assert!(Destination::parse("host:0").is_err());
        for p in ["99999", "65536", "0", "123456789012345678901234567890"] {
            let e = Destination::parse(&format!("db.internal:{p}")).expect_err(p);
            assert!(
                e.contains(&format!("port {p} is out of range (1-65535)")),
                "{e}"
            );
        }
        assert!(
            Destination::parse("host:abc")
                .expect_err("abc")
                .contains("is not a port number")
        );
        assert!(Destination::parse("@host").is_err());
        assert!(Destination::parse("ssh://h/path").is_err());
    }
}
