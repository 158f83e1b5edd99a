//! The host name ssh connects to after the config is read (ssh.c, OpenSSH 9.2): an address
//! written in any form the C library reads (`127.1`, `0x7f000001`, `10.1`, `0:0::1`) becomes
//! the address as `getnameinfo` prints it, whether or not CanonicalizeHostname is set, so
//! `%h`, `Match host` in a final pass and the known_hosts name are what `ssh -G` prints.
//!
//! With CanonicalizeHostname yes (or always), a name with at most CanonicalizeMaxDots dots is
//! tried with each of CanonicalDomains (`NAME.DOMAIN.`, looked up with `AI_CANONNAME`) and
//! replaced by the first that resolves, or by the CNAME target CanonicalizePermittedCNAMEs
//! allows; not found, it stays (CanonicalizeFallbackLocal yes) or is the error ssh stops with.
//! A name a ProxyCommand or ProxyJump reaches is left alone unless `always`. The config is
//! then read again with the new name (`resolve`). This is ssh.c's `resolve_canonicalize` and
//! `check_follow_cname`, with the lookup given ([`SshConfig::lookup`]) so that the rules can
//! be tested without DNS.
//!
//! Why the C library and not `std::net`: Rust's parsers accept only the dotted quad and
//! standard IPv6, while ssh asks `getaddrinfo(AI_NUMERICHOST)`, which also reads the short,
//! octal and hex forms of inet_aton(3). `AI_NUMERICHOST` never asks DNS.

use std::ffi::{CStr, CString};

/// The address family ssh resolves with (AddressFamily: any, inet, inet6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
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

/// CanonicalizeHostname.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Canonicalize {
    #[default]
    No,
    Yes,
    Always,
}

impl Canonicalize {
    /// The word `ssh -G` prints.
    pub fn as_ssh_g(self) -> &'static str {
        match self {
            Canonicalize::No => "false",
            Canonicalize::Yes => "true",
            Canonicalize::Always => "always",
        }
    }
}

/// What ssh canonicalizes a host name with.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub mode: Canonicalize,
    pub domains: &'a [String],
    pub max_dots: u32,
    pub fallback_local: bool,
    /// `(source patterns, target patterns)`; `[("none", "")]` is `none`.
    pub cnames: &'a [(String, String)],
    /// Neither a ProxyCommand nor a ProxyJump reaches the host.
    pub direct: bool,
    pub family: Family,
}

impl Rules<'_> {
    /// readconf.c `config_has_permitted_cnames`.
    fn has_cnames(&self) -> bool {
        match self.cnames {
            [] => false,
            [(src, tgt)] => !(src.eq_ignore_ascii_case("none") && tgt.is_empty()),
            _ => true,
        }
    }

    /// ssh.c `check_follow_cname`: the CNAME target when a rule allows it.
    fn follow(&self, name: &str, cname: &str) -> Option<String> {
        use super::pattern::{ListMatch, pattern_list};
        if cname.is_empty() || !self.has_cnames() || name == cname {
            return None;
        }
        if self.mode == Canonicalize::No || (!self.direct && self.mode != Canonicalize::Always) {
            return None;
        }
        self.cnames
            .iter()
            .any(|(src, tgt)| {
                pattern_list(name, src, true) == ListMatch::Positive
                    && pattern_list(cname, tgt, true) == ListMatch::Positive
            })
            .then(|| cname.to_string())
    }
}

/// A name lookup: the canonical name (`AI_CANONNAME`), or the resolver's error.
pub type Lookup = fn(&str, Family) -> Result<String, String>;

/// The host name ssh connects to, from the name after `%h` (ssh.c, between the two reads of
/// the config); `Err` is the error ssh stops with.
pub fn canonical_name(
    host: &str,
    rules: &Rules,
    lookup: &dyn Fn(&str) -> Result<String, String>,
) -> Result<String, String> {
    let was_addr = is_addr(host, rules.family);
    let mut host = if was_addr {
        host.to_string()
    } else {
        host.to_ascii_lowercase()
    };
    let mut found = false;
    if rules.mode != Canonicalize::No || was_addr {
        if let Some(addr) = numeric(&host, rules.family) {
            if !addr.eq_ignore_ascii_case(&host) {
                host = addr;
            }
            found = true;
        } else if is_addr_fast(&host)
            || rules.mode == Canonicalize::No
            || (!rules.direct && rules.mode != Canonicalize::Always)
        {
            // An address that does not parse, or not to be canonicalized: as it is.
        } else if let Some(name) = by_domains(&host, rules, lookup)? {
            host = name;
            found = true;
        }
    }
    if !found && rules.has_cnames() && (rules.direct || rules.mode == Canonicalize::Always) {
        match lookup(&host) {
            Err(e) if rules.direct => {
                return Err(format!("Could not resolve hostname {host}: {e}"));
            }
            Err(_) => {}
            Ok(cname) => {
                if let Some(c) = rules.follow(&host, &cname) {
                    host = c;
                }
            }
        }
    }
    Ok(host)
}

/// `resolve_canonicalize` for a name: the first `NAME.DOMAIN` that resolves (or its allowed
/// CNAME); `None` to keep the name; `Err` when not found and CanonicalizeFallbackLocal is no.
fn by_domains(
    host: &str,
    rules: &Rules,
    lookup: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Option<String>, String> {
    let found = |full: &str, cname: &str| {
        let full = full.strip_suffix('.').unwrap_or(full);
        rules
            .follow(full, cname)
            .unwrap_or_else(|| full.to_string())
    };
    if host.ends_with('.') {
        if let Ok(cname) = lookup(host) {
            return Ok(Some(found(host, &cname)));
        }
    } else {
        let dots = host.bytes().filter(|&b| b == b'.').count();
        if dots > rules.max_dots as usize {
            return Ok(None);
        }
        for d in rules.domains {
            if d.eq_ignore_ascii_case("none") {
                break;
            }
            let full = format!("{host}.{d}.");
            if let Ok(cname) = lookup(&full) {
                return Ok(Some(found(&full, &cname)));
            }
        }
    }
    if rules.fallback_local {
        Ok(None)
    } else {
        Err(format!("Could not resolve host \"{host}\""))
    }
}

/// ssh.c `resolve_host` with a canonical name asked for: the name the resolver gives
/// (`/etc/hosts`, DNS), or `gai_strerror`'s words.
pub fn lookup(name: &str, family: Family) -> Result<String, String> {
    let host = CString::new(name).map_err(|_| "a NUL in the name".to_string())?;
    let port = CString::new("22").map_err(|_| "port".to_string())?;
    // SAFETY: an all-zero addrinfo is the documented way to start the hints.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = family.af();
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_flags = libc::AI_CANONNAME;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C strings and hints; `res` is freed below when set.
    let rc = unsafe { libc::getaddrinfo(host.as_ptr(), port.as_ptr(), &hints, &mut res) };
    if rc != 0 {
        // SAFETY: gai_strerror returns a static string for any code.
        let why = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) };
        return Err(why.to_string_lossy().into_owned());
    }
    if res.is_null() {
        return Err("no address".to_string());
    }
    // SAFETY: `res` is the list getaddrinfo returned, read before it is freed.
    unsafe {
        let c = (*res).ai_canonname;
        let name = if c.is_null() {
            String::new()
        } else {
            CStr::from_ptr(c).to_string_lossy().into_owned()
        };
        libc::freeaddrinfo(res);
        Ok(name)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolver that knows these names only (as /etc/hosts lines: the first is canonical).
    fn fake(name: &str) -> Result<String, String> {
        match name {
            "db.corp.example." => Ok("db.corp.example".into()),
            "web.corp.example." | "www.corp.example." => Ok("lb.cdn.example".into()),
            "app.prod.example." => Ok("app.prod.example".into()),
            "alias" => Ok("real.corp.example".into()),
            "anchored.example." => Ok("anchored.example".into()),
            _ => Err("Name or service not known".into()),
        }
    }

    fn rules<'a>(
        mode: Canonicalize,
        domains: &'a [String],
        cnames: &'a [(String, String)],
    ) -> Rules<'a> {
        Rules {
            mode,
            domains,
            max_dots: 1,
            fallback_local: true,
            cnames,
            direct: true,
            family: Family::Any,
        }
    }

    fn t(s: &str) -> String {
        canonical_name(s, &rules(Canonicalize::No, &[], &[]), &fake).expect("no error")
    }

    #[test]
    fn numeric_forms_become_the_address_getnameinfo_prints() {
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
        let mut v6 = rules(Canonicalize::No, &[], &[]);
        v6.family = Family::Inet6;
        assert_eq!(canonical_name("127.1", &v6, &fake), Ok("127.1".into()));
    }

    #[test]
    fn canonical_domains_are_tried_in_order_within_max_dots_and_direct_only_unless_always() {
        let domains = vec!["none.example".to_string(), "corp.example".to_string()];
        let yes = rules(Canonicalize::Yes, &domains, &[]);
        let c = |h: &str, r: &Rules| canonical_name(h, r, &fake);
        assert_eq!(c("DB", &yes), Ok("db.corp.example".into()));
        // Not found anywhere: the name as it is (CanonicalizeFallbackLocal yes) ...
        assert_eq!(c("nosuch", &yes), Ok("nosuch".into()));
        // ... or ssh's error.
        let strict = Rules {
            fallback_local: false,
            ..yes
        };
        assert_eq!(
            c("nosuch", &strict),
            Err("Could not resolve host \"nosuch\"".into())
        );
        // More dots than CanonicalizeMaxDots: left alone, not an error.
        assert_eq!(c("app.prod.x", &strict), Ok("app.prod.x".into()));
        let two = Rules { max_dots: 2, ..yes };
        assert_eq!(c("db.x", &two), Ok("db.x".into()));
        // A name ending in a dot is looked up as it is.
        assert_eq!(c("anchored.example.", &yes), Ok("anchored.example".into()));
        // Through a ProxyCommand or ProxyJump: only with `always`.
        let proxied = Rules {
            direct: false,
            ..yes
        };
        assert_eq!(c("db", &proxied), Ok("db".into()));
        let always = Rules {
            mode: Canonicalize::Always,
            ..proxied
        };
        assert_eq!(c("db", &always), Ok("db.corp.example".into()));
        // `none` stops the list.
        let none = vec!["none".to_string(), "corp.example".to_string()];
        assert_eq!(
            c("db", &rules(Canonicalize::Yes, &none, &[])),
            Ok("db".into())
        );
        // CanonicalizeHostname no: no lookup at all.
        assert_eq!(
            c(
                "db",
                &Rules {
                    mode: Canonicalize::No,
                    ..yes
                }
            ),
            Ok("db".into())
        );
    }

    #[test]
    fn a_cname_is_followed_only_when_a_rule_permits_it() {
        let domains = vec!["corp.example".to_string()];
        let cdn = vec![("*.corp.example".to_string(), "*.cdn.example".to_string())];
        let other = vec![("*.corp.example".to_string(), "*.elsewhere".to_string())];
        let c = |h: &str, r: &Rules| canonical_name(h, r, &fake);
        assert_eq!(
            c("web", &rules(Canonicalize::Yes, &domains, &cdn)),
            Ok("lb.cdn.example".into())
        );
        assert_eq!(
            c("web", &rules(Canonicalize::Yes, &domains, &other)),
            Ok("web.corp.example".into())
        );
        assert_eq!(
            c("web", &rules(Canonicalize::Yes, &domains, &[])),
            Ok("web.corp.example".into())
        );
        // Not found by the domains: the bare name is looked up for its CNAME ...
        let any = vec![("*".to_string(), "*".to_string())];
        assert_eq!(
            c("alias", &rules(Canonicalize::Yes, &[], &any)),
            Ok("real.corp.example".into())
        );
        // ... and a direct host whose bare name does not resolve is ssh's error, whatever
        // CanonicalizeHostname says; `none` is no rule.
        assert_eq!(
            c("nosuch", &rules(Canonicalize::No, &[], &any)),
            Err("Could not resolve hostname nosuch: Name or service not known".into())
        );
        let none = vec![("none".to_string(), String::new())];
        assert_eq!(
            c("nosuch", &rules(Canonicalize::No, &[], &none)),
            Ok("nosuch".into())
        );
    }

    #[test]
    fn the_c_library_resolves_a_name_of_etc_hosts_without_dns() {
        assert_eq!(lookup("localhost", Family::Any), Ok("localhost".into()));
        assert!(lookup("127.0.0.1", Family::Inet6).is_err());
    }
}
