//! `local_bind = "auto"`: each connection gets its own loopback address, derived from its
//! name, on the database's own port, so `orders` and `users` can both be on 5432 and keep
//! their addresses across runs and machines (a BI tool's saved connection keeps working).
//!
//! The address is 127.A.B.C from a 64-bit FNV-1a hash of the name (stable by definition,
//! unlike std's hasher): A in 1..=254 (never 127.0.x.x, where 127.0.0.1 and its neighbours
//! are in common use), B any, C in 1..=254 (no .0 or .255). Linux answers on all of
//! 127.0.0.0/8. macOS answers only on the addresses given to lo0 (127.0.0.1 by default): there
//! the connection falls back to 127.0.0.1 on a port derived from the same hash, and says how
//! to add the alias. Two names that derive the same address and port are reported by
//! [`collisions`].

use std::net::Ipv4Addr;

/// The value of `local_bind` that asks for a derived address.
pub const AUTO: &str = "auto";

/// 64-bit FNV-1a.
fn fnv1a(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The loopback address of the connection named `name`.
pub fn address(name: &str) -> Ipv4Addr {
    let h = fnv1a(name);
    let a = (h >> 16) as u8 % 254 + 1;
    let b = (h >> 8) as u8;
    let c = h as u8 % 254 + 1;
    Ipv4Addr::new(127, a, b, c)
}

/// The port on 127.0.0.1 of `name` where its own address cannot be had: in 20000..=59999,
/// clear of the usual database ports; another program may hold it, which binding reports as
/// for any local port.
pub fn fallback_port(name: &str) -> u16 {
    (20_000 + (fnv1a(name) >> 32) % 40_000) as u16
}

/// Where `name` listens under `local_bind = "auto"`: its own address on `port`; where this
/// machine does not answer on that address (macOS without the lo0 alias), 127.0.0.1 on
/// `fixed` (a port the config set) or the name's fallback port, with a warning at `origin`
/// that says how to get the address.
pub fn listen(
    name: &str,
    port: u16,
    fixed: Option<u16>,
    origin: &crate::config::Origin,
) -> (
    crate::config::forward::Endpoint,
    Option<crate::config::Problem>,
) {
    use crate::config::forward::Endpoint;
    let addr = address(name);
    if cfg!(target_os = "linux") || is_up(addr) {
        return (Endpoint::tcp(addr.to_string(), port), None);
    }
    let p = fixed.unwrap_or_else(|| fallback_port(name));
    let problem = crate::config::Problem::warning(
        origin.clone(),
        format!(
            "local_bind = \"auto\" gives '{name}' {addr}, which is not up on loopback here (macOS gives lo0 only 127.0.0.1): it listens on 127.0.0.1:{p}, the same port every time"
        ),
    )
    .with_fix(format!("sudo ifconfig lo0 alias {addr} up, then reload"));
    (Endpoint::tcp("127.0.0.1", p), Some(problem))
}

/// Whether this machine answers on `addr` (binding it, port 0, and letting go).
pub fn is_up(addr: Ipv4Addr) -> bool {
    std::net::TcpListener::bind((addr, 0)).is_ok()
}

/// Pairs of names whose derived endpoints are the same (address and port), each pair once,
/// the earlier name first.
pub fn collisions<'a>(endpoints: &[(&'a str, Ipv4Addr, u16)]) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    for (i, (a, addr_a, port_a)) in endpoints.iter().enumerate() {
        for (b, addr_b, port_b) in &endpoints[i + 1..] {
            if addr_a == addr_b && port_a == port_b {
                out.push((*a, *b));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_fixed_by_the_name_alone() {
        // The same on every machine and in every release: a change here moves every user's
        // saved connections, so these values are part of the contract.
        // (Computed independently with Python's FNV-1a.)
        assert_eq!(address("orders"), Ipv4Addr::new(127, 191, 139, 77));
        assert_eq!(address("users"), Ipv4Addr::new(127, 141, 51, 52));
        assert_eq!(fallback_port("orders"), 23602);
        assert_eq!(fallback_port("users"), 51601);
        assert_ne!(address("orders"), address("users"));
    }

    #[test]
    fn every_address_is_loopback_and_none_is_the_usual_one() {
        for i in 0..20_000 {
            let a = address(&format!("db-{i}"));
            let o = a.octets();
            assert!(a.is_loopback(), "{a}");
            assert!(o[1] != 0 && o[1] != 255 && o[3] != 0 && o[3] != 255, "{a}");
            let p = fallback_port(&format!("db-{i}"));
            assert!((20_000..60_000).contains(&p), "{p}");
        }
    }

    #[test]
    fn collisions_name_both() {
        let x: Ipv4Addr = Ipv4Addr::new(127, 1, 2, 3);
        let y: Ipv4Addr = Ipv4Addr::new(127, 1, 2, 4);
        let eps = [
            ("a", x, 5432),
            ("b", y, 5432),
            ("c", x, 5432),
            ("d", x, 3306),
        ];
        assert_eq!(collisions(&eps), vec![("a", "c")]);
    }
}
