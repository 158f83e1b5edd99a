//! The host name ssh connects to after the config is read (ssh.c, OpenSSH 9.2): an address
//! written in any form the C library reads (`127.1`, `0x7f000001`, `10.1`, `0:0::1`) becomes
//! the address as `getnameinfo` prints it, whether or not CanonicalizeHostname is set, so
//! `%h`, `Match host` in a final pass and the known_hosts name are what `ssh -G` prints.
//!
//! Why the C library and not `std::net`: Rust's parsers accept only the dotted quad and
//! standard IPv6, while ssh asks `getaddrinfo(AI_NUMERICHOST)`, which also reads the short,
//! octal and hex forms of inet_aton(3). `AI_NUMERICHOST` never asks DNS.

use std::ffi::{CStr, CString};

/// The address family ssh resolves with (AddressFamily: any, inet, inet6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    Any,
    Inet,
    Inet6,
}

impl Family {
    /// AddressFamily's value as ssh reads it; `None` for another word.
    pub fn parse(v: &str) -> Option<Family> {
        match v.to_ascii_lowercase().as_str() {
            "any" => Some(Family::Any),
            "inet" => Some(Family::Inet),
            "inet6" => Some(Family::Inet6),
            _ => None,
        }
    }

    fn af(self) -> libc::c_int {
        match self {
            Family::Any => libc::AF_UNSPEC,
            Family::Inet => libc::AF_INET,
            Family::Inet6 => libc::AF_INET6,
        }
    }
}

/// ssh.c `is_addr_fast`: a name that can only be an address.
fn is_addr_fast(name: &str) -> bool {
    name.contains(['%', ':']) || name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// ssh.c `is_addr`: the name is an address (so it is not lowercased).
pub fn is_addr(name: &str, family: Family) -> bool {
    is_addr_fast(name) || numeric(name, family).is_some()
}

/// ssh.c `resolve_addr`: the one address a numeric host stands for, as `getnameinfo`
/// (`NI_NUMERICHOST`) writes it; `None` for a name, or a string that is no single address.
pub fn numeric(name: &str, family: Family) -> Option<String> {
    let host = CString::new(name).ok()?;
    let port = CString::new("22").ok()?;
    // SAFETY: an all-zero addrinfo is the documented way to start the hints.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = family.af();
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_flags = libc::AI_NUMERICHOST | libc::AI_NUMERICSERV;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C strings and hints; `res` is freed below whatever happens.
    let rc = unsafe { libc::getaddrinfo(host.as_ptr(), port.as_ptr(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    let mut out = None;
    // SAFETY: `res` is the list getaddrinfo returned, read before it is freed.
    unsafe {
        let first = &*res;
        if first.ai_next.is_null() {
            let mut buf = [0 as libc::c_char; libc::NI_MAXHOST as usize];
            let rc = libc::getnameinfo(
                first.ai_addr,
                first.ai_addrlen,
                buf.as_mut_ptr(),
                buf.len() as libc::socklen_t,
                std::ptr::null_mut(),
                0,
                libc::NI_NUMERICHOST,
            );
            if rc == 0 {
                out = Some(CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned());
            }
        }
        libc::freeaddrinfo(res);
    }
    out
}

/// The host name after ssh.c's tidying: an address is not lowercased, and becomes its
/// canonical form when that differs other than in case; a name is lowercased.
pub fn tidy(name: &str, family: Family) -> String {
    if !is_addr(name, family) {
        return name.to_ascii_lowercase();
    }
    match numeric(name, family) {
        Some(addr) if !addr.eq_ignore_ascii_case(name) => addr,
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_forms_become_the_address_getnameinfo_prints() {
        let t = |s: &str| tidy(s, Family::Any);
        assert_eq!(t("127.1"), "127.0.0.1");
        assert_eq!(t("1"), "0.0.0.1");
        assert_eq!(t("10.1"), "10.0.0.1");
        assert_eq!(t("0x7f000001"), "127.0.0.1");
        assert_eq!(t("010.1"), "8.0.0.1");
        assert_eq!(t("4294967295"), "255.255.255.255");
        assert_eq!(t("0:0::1"), "::1");
        // Same address but for case: kept as written, not lowercased.
        assert_eq!(t("FE80::1"), "FE80::1");
        // Not one address: names are lowercased, the rest kept.
        assert_eq!(t("Db.Example"), "db.example");
        assert_eq!(t("4294967296"), "4294967296");
        assert_eq!(t("1.2.3.4.5"), "1.2.3.4.5");
        assert_eq!(t("127.0.0.1 "), "127.0.0.1 ");
        assert_eq!(t("1E"), "1e");
        // AddressFamily inet6: an IPv4 form is no address and stays as written.
        assert_eq!(tidy("127.1", Family::Inet6), "127.1");
    }
}
