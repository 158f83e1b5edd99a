//! The SOCKS side of a dynamic forward (`DynamicForward`, `ssh -D`): SOCKS5 with the "no
//! authentication" method only, and SOCKS4 / SOCKS4a; CONNECT only. The requested address
//! becomes a direct-tcpip channel from the last hop.

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

/// Reads a client's greeting and CONNECT request: the protocol, the host and the port.
/// Requests warren does not serve are answered (and the error says why).
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
) -> Result<(Version, String, u16), String> {
    let ver = s.read_u8().await.map_err(|e| e.to_string())?;
    match ver {
        5 => {
            let n = s.read_u8().await.map_err(|e| e.to_string())?;
            let mut methods = vec![0u8; usize::from(n)];
            s.read_exact(&mut methods)
                .await
                .map_err(|e| e.to_string())?;
            if !methods.contains(&0) {
                // Only "no authentication": the proxy listens on loopback for its user.
                let _ = s.write_all(&[5, 0xff]).await;
                return Err(
                    "the client offered no method warren accepts (only 'no authentication')".into(),
                );
            }
            s.write_all(&[5, 0]).await.map_err(|e| e.to_string())?;
            let mut head = [0u8; 4];
            s.read_exact(&mut head).await.map_err(|e| e.to_string())?;
            if head[1] != 1 {
                let _ = s.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]).await;
                return Err(format!(
                    "SOCKS command {} is not supported (only CONNECT)",
                    head[1]
                ));
            }
            let host = match head[3] {
                1 => {
                    let mut a = [0u8; 4];
                    s.read_exact(&mut a).await.map_err(|e| e.to_string())?;
                    Ipv4Addr::from(a).to_string()
                }
                3 => {
                    let len = s.read_u8().await.map_err(|e| e.to_string())?;
                    let mut name = vec![0u8; usize::from(len)];
                    s.read_exact(&mut name).await.map_err(|e| e.to_string())?;
                    String::from_utf8(name)
                        .map_err(|_| "the requested host name is not UTF-8".to_string())?
                }
                4 => {
                    let mut a = [0u8; 16];
                    s.read_exact(&mut a).await.map_err(|e| e.to_string())?;
                    Ipv6Addr::from(a).to_string()
                }
                t => {
                    let _ = s.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]).await;
                    return Err(format!("SOCKS address type {t} is not supported"));
                }
            };
            let port = s.read_u16().await.map_err(|e| e.to_string())?;
            Ok((Version::Five, host, port))
        }
        4 => {
            let cmd = s.read_u8().await.map_err(|e| e.to_string())?;
            let port = s.read_u16().await.map_err(|e| e.to_string())?;
            let mut ip = [0u8; 4];
            s.read_exact(&mut ip).await.map_err(|e| e.to_string())?;
            read_cstr(s).await?; // user id, unused
            if cmd != 1 {
                let _ = s.write_all(&[0, 0x5b, 0, 0, 0, 0, 0, 0]).await;
                return Err(format!(
                    "SOCKS4 command {cmd} is not supported (only CONNECT)"
                ));
            }
            // SOCKS4a: 0.0.0.x (x != 0) means "the name follows".
            let host = if ip[..3] == [0, 0, 0] && ip[3] != 0 {
                read_cstr(s).await?
            } else {
                Ipv4Addr::from(ip).to_string()
            };
            Ok((Version::Four, host, port))
        }
        v => Err(format!("not a SOCKS request (version byte {v})")),
    }
}

async fn read_cstr<S: AsyncRead + Unpin>(s: &mut S) -> Result<String, String> {
    let mut out = Vec::new();
    loop {
        let b = s.read_u8().await.map_err(|e| e.to_string())?;
        if b == 0 {
            return String::from_utf8(out).map_err(|_| "not UTF-8".into());
        }
        if out.len() > 255 {
            return Err("a SOCKS4 field is too long".into());
        }
        out.push(b);
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
