//! The SOCKS side of a dynamic forward (`DynamicForward`, `ssh -D`): SOCKS5 with the "no
//! authentication" method only, and SOCKS4 / SOCKS4a; CONNECT only. The requested address
//! becomes a direct-tcpip channel from the last hop. The client's messages are read by pure
//! functions over bytes ([`greeting5`], [`request5`], [`request4`]), fuzzed and property-tested;
//! every field is bounded by its one-byte length or by 255 bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Which protocol the client spoke (the reply must match it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Four,
    Five,
}

/// Why a channel could not be opened, in SOCKS terms.
#[derive(Clone, Copy, Debug)]
pub enum Refusal {
    General,
    NotAllowed,
    Unreachable,
    Refused,
}

/// What the client's bytes so far are: the parsers below are pure functions over them, so
/// they can be fuzzed; [`handshake`] reads exactly the bytes they ask for, never more (what
/// follows the request belongs to the tunnel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parse<T> {
    /// At least this many more bytes are needed.
    More(usize),
    /// The message, and how many bytes it took.
    Done(T, usize),
    /// A request warren does not serve: the reply to send (if any) and why.
    Refuse(Option<Vec<u8>>, String),
}

/// The longest SOCKS4 user id or host name warren reads.
const MAX_FIELD: usize = 255;

/// A SOCKS5 greeting: version, method count, methods. Only "no authentication" is taken:
/// the proxy listens on loopback for its user.
pub fn greeting5(b: &[u8]) -> Parse<()> {
    let Some(&n) = b.get(1) else {
        return Parse::More(2 - b.len());
    };
    let end = 2 + usize::from(n);
    match b.get(2..end) {
        None => Parse::More(end - b.len()),
        Some(methods) if !methods.contains(&0) => Parse::Refuse(
            Some(vec![5, 0xff]),
            "the client offered no method warren accepts (only 'no authentication')".into(),
        ),
        Some(_) => Parse::Done((), end),
    }
}

/// A SOCKS5 request: version, command, reserved, address type, address, port. CONNECT only.
pub fn request5(b: &[u8]) -> Parse<(String, u16)> {
    let Some(head) = b.get(..4) else {
        return Parse::More(4 - b.len());
    };
    if head[1] != 1 {
        return Parse::Refuse(
            Some(vec![5, 7, 0, 1, 0, 0, 0, 0, 0, 0]),
            format!("SOCKS command {} is not supported (only CONNECT)", head[1]),
        );
    }
    let (start, len) = match head[3] {
        1 => (4, 4),
        3 => match b.get(4) {
            Some(&n) => (5, usize::from(n)),
            None => return Parse::More(1),
        },
        4 => (4, 16),
        t => {
            return Parse::Refuse(
                Some(vec![5, 8, 0, 1, 0, 0, 0, 0, 0, 0]),
                format!("SOCKS address type {t} is not supported"),
            );
        }
    };
    let end = start + len + 2;
    let Some(rest) = b.get(start..end) else {
        return Parse::More(end - b.len());
    };
    let (addr, port) = rest.split_at(len);
    let host = match head[3] {
        1 => Ipv4Addr::from([addr[0], addr[1], addr[2], addr[3]]).to_string(),
        4 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(addr);
            Ipv6Addr::from(a).to_string()
        }
        _ => match String::from_utf8(addr.to_vec()) {
            Ok(h) => h,
            Err(_) => {
                return Parse::Refuse(None, "the requested host name is not UTF-8".into());
            }
        },
    };
    Parse::Done((host, u16::from_be_bytes([port[0], port[1]])), end)
}

/// A NUL-terminated field from `at`: its text and where it ends, or what is missing.
fn cstr(b: &[u8], at: usize) -> Result<(String, usize), Parse<(String, u16)>> {
    let field = b.get(at..).unwrap_or_default();
    match field.iter().position(|&c| c == 0) {
        Some(i) if i <= MAX_FIELD => match String::from_utf8(field[..i].to_vec()) {
            Ok(s) => Ok((s, at + i + 1)),
            Err(_) => Err(Parse::Refuse(None, "not UTF-8".into())),
        },
        None if field.len() <= MAX_FIELD => Err(Parse::More(1)),
        _ => Err(Parse::Refuse(None, "a SOCKS4 field is too long".into())),
    }
}

/// A SOCKS4 or SOCKS4a request: version, command, port, address, user id, and for 4a
/// (address 0.0.0.x, x != 0) the host name. CONNECT only.
pub fn request4(b: &[u8]) -> Parse<(String, u16)> {
    let Some(head) = b.get(..8) else {
        return Parse::More(8 - b.len());
    };
    let (cmd, port) = (head[1], u16::from_be_bytes([head[2], head[3]]));
    let ip = [head[4], head[5], head[6], head[7]];
    let end = match cstr(b, 8) {
        Ok((_user, end)) => end, // the user id is not used
        Err(p) => return p,
    };
    if cmd != 1 {
        return Parse::Refuse(
            Some(vec![0, 0x5b, 0, 0, 0, 0, 0, 0]),
            format!("SOCKS4 command {cmd} is not supported (only CONNECT)"),
        );
    }
    if ip[..3] == [0, 0, 0] && ip[3] != 0 {
        match cstr(b, end) {
            Ok((host, end)) => Parse::Done((host, port), end),
            Err(p) => p,
        }
    } else {
        Parse::Done((Ipv4Addr::from(ip).to_string(), port), end)
    }
}

/// Reads exactly the bytes `parse` asks for until it has its message or refuses it (the
/// refusal's reply is sent).
async fn read_message<S, T>(
    s: &mut S,
    buf: &mut Vec<u8>,
    parse: fn(&[u8]) -> Parse<T>,
) -> Result<T, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match parse(buf) {
            Parse::Done(t, n) => {
                buf.drain(..n);
                return Ok(t);
            }
            Parse::Refuse(reply, why) => {
                if let Some(r) = reply {
                    let _ = s.write_all(&r).await;
                }
                return Err(why);
            }
            Parse::More(n) => {
                let at = buf.len();
                buf.resize(at + n, 0);
                s.read_exact(&mut buf[at..])
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
}

/// Reads a client's greeting and CONNECT request: the protocol, the host and the port.
/// Requests warren does not serve are answered (and the error says why).
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
) -> Result<(Version, String, u16), String> {
    let ver = s.read_u8().await.map_err(|e| e.to_string())?;
    let mut buf = vec![ver];
    match ver {
        5 => {
            read_message(s, &mut buf, greeting5).await?;
            s.write_all(&[5, 0]).await.map_err(|e| e.to_string())?;
            let (host, port) = read_message(s, &mut buf, request5).await?;
            Ok((Version::Five, host, port))
        }
        4 => {
            let (host, port) = read_message(s, &mut buf, request4).await?;
            Ok((Version::Four, host, port))
        }
        v => Err(format!("not a SOCKS request (version byte {v})")),
    }
}

/// Every parser over `b` as a client's first bytes: what the fuzz target and the property
/// tests run (no panic, whatever the bytes).
pub fn parse_any(b: &[u8]) {
    match b.first() {
        Some(5) => {
            if let Parse::Done((), n) = greeting5(b) {
                let _ = request5(&b[n..]);
            }
            let _ = request5(b);
        }
        _ => {
            let _ = request4(b);
        }
    }
}

/// Tells the client whether its connection is made.
pub async fn reply<S: AsyncWrite + Unpin>(
    s: &mut S,
    v: Version,
    result: Result<(), Refusal>,
) -> std::io::Result<()> {
    let bytes: Vec<u8> = match (v, result) {
        (Version::Five, Ok(())) => vec![5, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        (Version::Five, Err(r)) => {
            let code = match r {
                Refusal::General => 1,
                Refusal::NotAllowed => 2,
                Refusal::Unreachable => 4,
                Refusal::Refused => 5,
            };
            vec![5, code, 0, 1, 0, 0, 0, 0, 0, 0]
        }
        (Version::Four, Ok(())) => vec![0, 0x5a, 0, 0, 0, 0, 0, 0],
        (Version::Four, Err(_)) => vec![0, 0x5b, 0, 0, 0, 0, 0, 0],
    };
    s.write_all(&bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socks5_by_name_and_by_address() {
        let greeting = [5, 2, 0, 2];
        assert_eq!(greeting5(&greeting), Parse::Done((), 4));
        assert_eq!(greeting5(&greeting[..3]), Parse::More(1));
        let by_name = b"\x05\x01\x00\x03\x09localhost\x1f\x90";
        assert_eq!(
            request5(by_name),
            Parse::Done(("localhost".into(), 8080), by_name.len())
        );
        assert_eq!(request5(&by_name[..7]), Parse::More(by_name.len() - 7));
        let by_v6 = [[5u8, 1, 0, 4].as_slice(), &[0; 15], &[1, 0, 22]].concat();
        assert_eq!(request5(&by_v6), Parse::Done(("::1".into(), 22), 22));
    }

    #[test]
    fn socks4a_reads_the_name_after_the_user() {
        let req = b"\x04\x01\x00\x50\x00\x00\x00\x01me\x00db.internal\x00";
        assert_eq!(
            request4(req),
            Parse::Done(("db.internal".into(), 80), req.len())
        );
        assert_eq!(request4(&req[..12]), Parse::More(1));
    }

    #[test]
    fn what_warren_does_not_serve_is_refused_with_its_reply() {
        assert!(matches!(greeting5(&[5, 1, 2]), Parse::Refuse(Some(r), _) if r == [5, 0xff]));
        assert!(matches!(request5(&[5, 2, 0, 1]), Parse::Refuse(Some(r), _) if r[1] == 7));
        let long = [[4u8, 1, 0, 80, 1, 2, 3, 4].as_slice(), &[b'u'; 300]].concat();
        assert!(matches!(request4(&long), Parse::Refuse(None, why) if why.contains("too long")));
    }
}
