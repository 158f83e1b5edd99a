//! The SSH server's identification line (RFC 4253 section 4.2), read as a pure function over
//! the bytes so far: a line of at most 255 bytes that starts with `SSH-`. The `banner` step
//! reads at most one line's worth past that limit, so a server that never ends its line
//! cannot grow what warren holds.

/// RFC 4253's limit for the identification line, CR LF included.
pub const MAX_LINE: usize = 255;

/// What the bytes so far are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Banner {
    /// The identification line, without its line end.
    Line(String),
    /// Not a whole line yet.
    More,
    /// It starts like SSH, but no line end within [`MAX_LINE`] bytes.
    TooLong,
    /// Something else speaks on this port.
    NotSsh,
}

pub fn parse(b: &[u8]) -> Banner {
    match b.iter().position(|&c| c == b'\n') {
        Some(pos) if b.starts_with(b"SSH-") && pos < MAX_LINE => {
            Banner::Line(String::from_utf8_lossy(&b[..pos]).trim_end().to_string())
        }
        Some(_) if b.starts_with(b"SSH-") => Banner::TooLong,
        Some(_) => Banner::NotSsh,
        None if b.len() >= MAX_LINE && b.starts_with(b"SSH-") => Banner::TooLong,
        None if b.len() >= MAX_LINE => Banner::NotSsh,
        None => Banner::More,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(
            parse(b"SSH-2.0-OpenSSH_9.6\r\n"),
            Banner::Line("SSH-2.0-OpenSSH_9.6".into())
        );
        assert_eq!(parse(b"SSH-2.0-Open"), Banner::More);
        assert_eq!(parse(b"220 smtp ESMTP\r\n"), Banner::NotSsh);
        assert_eq!(parse(&[b'A'; 300]), Banner::NotSsh);
        let mut endless = b"SSH-2.0-".to_vec();
        endless.resize(400, b'x');
        assert_eq!(parse(&endless), Banner::TooLong);
        endless.push(b'\n');
        assert_eq!(parse(&endless), Banner::TooLong);
    }
}
