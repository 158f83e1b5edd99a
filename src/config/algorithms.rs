//! Algorithm lists (`Ciphers`, `KexAlgorithms`, `HostKeyAlgorithms`, `MACs`,
//! `PubkeyAcceptedAlgorithms`) as OpenSSH 9.2 reads and assembles them: a value is checked
//! when the line is read (`readconf.c`), then combined with the default list
//! (`kex.c: kex_assemble_names`): `+list` appends to the default, `-list` removes from it
//! (wildcards allowed), `^list` puts names first, a plain list replaces it. The result is what
//! `ssh -G` prints, and what the SSH layer offers (less what its library cannot do).
//!
//! The default and "all" lists are OpenSSH 9.2's (`ssh -G`, `ssh -Q`); the differential test
//! against `ssh -G` checks them.

use super::ssh_config::pattern::wildcard;

/// Which list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlgorithmKind {
    Ciphers,
    Kex,
    HostKey,
    Macs,
    Pubkey,
}

const CIPHERS_ALL: &[&str] = &[
    "3des-cbc",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
];
const CIPHERS_DEFAULT: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
];
const KEX_ALL: &[&str] = &[
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group-exchange-sha256",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
];
const KEX_DEFAULT: &[&str] = &[
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
];
const MACS_ALL: &[&str] = &[
    "hmac-sha1",
    "hmac-sha1-96",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-md5",
    "hmac-md5-96",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1-96-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
];
const MACS_DEFAULT: &[&str] = &[
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
];
/// Key and signature algorithms (`ssh -Q HostKeyAlgorithms`, the same for
/// PubkeyAcceptedAlgorithms).
const KEYS_ALL: &[&str] = &[
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-512-cert-v01@openssh.com",
];
const KEYS_DEFAULT: &[&str] = &[
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

impl AlgorithmKind {
    pub const ALL: [AlgorithmKind; 5] = [
        AlgorithmKind::Ciphers,
        AlgorithmKind::Kex,
        AlgorithmKind::HostKey,
        AlgorithmKind::Macs,
        AlgorithmKind::Pubkey,
    ];

    /// The ssh_config keyword (as `ssh -G` prints it, lowercased).
    pub fn keyword(self) -> &'static str {
        match self {
            AlgorithmKind::Ciphers => "Ciphers",
            AlgorithmKind::Kex => "KexAlgorithms",
            AlgorithmKind::HostKey => "HostKeyAlgorithms",
            AlgorithmKind::Macs => "MACs",
            AlgorithmKind::Pubkey => "PubkeyAcceptedAlgorithms",
        }
    }

    /// The epoch.toml key in an `ssh_tunnel` table.
    pub fn epoch_key(self) -> &'static str {
        match self {
            AlgorithmKind::Ciphers => "ciphers",
            AlgorithmKind::Kex => "kex_algorithms",
            AlgorithmKind::HostKey => "host_key_algorithms",
            AlgorithmKind::Macs => "macs",
            AlgorithmKind::Pubkey => "pubkey_accepted_algorithms",
        }
    }

    /// The ssh_config keywords (lowercased) that set this list, old names included.
    pub fn from_keyword(k: &str) -> Option<AlgorithmKind> {
        Some(match k {
            "ciphers" => AlgorithmKind::Ciphers,
            "kexalgorithms" => AlgorithmKind::Kex,
            "hostkeyalgorithms" => AlgorithmKind::HostKey,
            "macs" => AlgorithmKind::Macs,
            "pubkeyacceptedalgorithms" | "pubkeyacceptedkeytypes" => AlgorithmKind::Pubkey,
            _ => return None,
        })
    }

    /// OpenSSH 9.2's default list.
    pub fn default_list(self) -> &'static [&'static str] {
        match self {
            AlgorithmKind::Ciphers => CIPHERS_DEFAULT,
            AlgorithmKind::Kex => KEX_DEFAULT,
            AlgorithmKind::HostKey | AlgorithmKind::Pubkey => KEYS_DEFAULT,
            AlgorithmKind::Macs => MACS_DEFAULT,
        }
    }

    /// Every name OpenSSH 9.2 knows for this list (`ssh -Q`).
    pub fn known(self) -> &'static [&'static str] {
        match self {
            AlgorithmKind::Ciphers => CIPHERS_ALL,
            AlgorithmKind::Kex => KEX_ALL,
            AlgorithmKind::HostKey | AlgorithmKind::Pubkey => KEYS_ALL,
            AlgorithmKind::Macs => MACS_ALL,
        }
    }

    /// Whether the positive names of a value may be wildcard patterns (readconf.c checks
    /// key algorithm lists with `sshkey_names_valid2(.., 1)`, the others name by name).
    fn wildcards(self) -> bool {
        matches!(self, AlgorithmKind::HostKey | AlgorithmKind::Pubkey)
    }
}

/// Checks a value as `ssh` does when it reads the line; the error names the bad algorithm.
pub fn check(kind: AlgorithmKind, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{}: missing argument", kind.keyword()));
    }
    // `-list` is not checked by ssh: its patterns only remove.
    if value.starts_with('-') {
        return Ok(());
    }
    let names = value.strip_prefix(['+', '^']).unwrap_or(value);
    for name in names.split(',') {
        let ok = if kind.wildcards() {
            // sshkey_names_valid2 with wildcards: a pattern must match some algorithm, and
            // negation is not allowed.
            !name.starts_with('!') && kind.known().iter().any(|k| wildcard(k, name))
        } else {
            kind.known().contains(&name)
        };
        if !ok {
            return Err(format!(
                "{} '{value}': unknown algorithm '{name}'",
                kind.keyword()
            ));
        }
    }
    Ok(())
}

/// Appends the names of `b` that `a` does not already hold (kex.c `kex_names_cat`).
fn cat(a: &mut Vec<String>, b: impl IntoIterator<Item = String>) {
    for n in b {
        if !a.contains(&n) {
            a.push(n);
        }
    }
}

/// Whether `name` matches a comma-separated pattern list (match.c `match_pattern_list`).
fn matches_list(name: &str, patterns: &str) -> bool {
    use super::ssh_config::pattern::{ListMatch, pattern_list};
    pattern_list(name, patterns, false) == ListMatch::Positive
}

/// An algorithm list, shared: every host that sets none holds OpenSSH's default, and a
/// 10,000-host config would otherwise make 20,000 copies of five lists.
pub type List = std::sync::Arc<[String]>;

/// OpenSSH's default list of a kind, made once.
pub fn default_list(kind: AlgorithmKind) -> List {
    static LISTS: std::sync::OnceLock<Vec<List>> = std::sync::OnceLock::new();
    let lists = LISTS.get_or_init(|| {
        AlgorithmKind::ALL
            .iter()
            .map(|k| k.default_list().iter().map(|s| s.to_string()).collect())
            .collect()
    });
    let i = AlgorithmKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default();
    std::sync::Arc::clone(&lists[i])
}

/// The effective list for a value (`None`: the default), as `kex_assemble_names` makes it.
pub fn assemble(kind: AlgorithmKind, value: Option<&str>) -> Result<List, String> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(default_list(kind));
    };
    assemble_set(kind, value).map(List::from)
}

fn assemble_set(kind: AlgorithmKind, value: &str) -> Result<Vec<String>, String> {
    let def: Vec<String> = kind.default_list().iter().map(|s| s.to_string()).collect();
    let list: Vec<String> = if let Some(rest) = value.strip_prefix('+') {
        let mut l = def;
        cat(&mut l, rest.split(',').map(str::to_string));
        l
    } else if let Some(rest) = value.strip_prefix('-') {
        // match_filter_denylist: the default less what any pattern names; no more filtering.
        let out: Vec<String> = def.into_iter().filter(|n| !matches_list(n, rest)).collect();
        if out.is_empty() {
            return Err(format!(
                "{} '{value}' removes every algorithm",
                kind.keyword()
            ));
        }
        return Ok(out);
    } else if let Some(rest) = value.strip_prefix('^') {
        let mut l: Vec<String> = Vec::new();
        cat(&mut l, rest.split(',').map(str::to_string));
        cat(&mut l, def);
        l
    } else {
        value.split(',').map(str::to_string).collect()
    };
    // Each name (or pattern) is expanded against the known algorithms, in their order.
    let mut out: Vec<String> = Vec::new();
    for pattern in &list {
        if pattern.starts_with('!') {
            return Err(format!(
                "{} '{value}': negation ('{pattern}') is not allowed here",
                kind.keyword()
            ));
        }
        let matching = kind
            .known()
            .iter()
            .filter(|k| wildcard(k, pattern))
            .map(|k| k.to_string());
        cat(&mut out, matching);
    }
    if out.is_empty() {
        return Err(format!(
            "{} '{value}' names no known algorithm",
            kind.keyword()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> List {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn plus_minus_caret_and_plain() {
        let c = AlgorithmKind::Ciphers;
        assert_eq!(
            assemble(c, Some("chacha20-poly1305@openssh.com")).ok(),
            Some(s(&["chacha20-poly1305@openssh.com"]))
        );
        let plus = assemble(c, Some("+aes128-cbc")).unwrap_or_default();
        assert_eq!(plus.last().map(String::as_str), Some("aes128-cbc"));
        assert_eq!(plus.len(), CIPHERS_DEFAULT.len() + 1);
        let minus = assemble(c, Some("-aes*-ctr")).unwrap_or_default();
        assert_eq!(
            minus,
            s(&[
                "chacha20-poly1305@openssh.com",
                "aes128-gcm@openssh.com",
                "aes256-gcm@openssh.com"
            ])
        );
        let caret = assemble(c, Some("^aes256-gcm@openssh.com")).unwrap_or_default();
        assert_eq!(caret[0], "aes256-gcm@openssh.com");
        assert_eq!(caret.len(), CIPHERS_DEFAULT.len());
    }

    #[test]
    fn checks_names_as_ssh_does() {
        assert!(check(AlgorithmKind::Ciphers, "aes128-ctr,blowfish").is_err());
        assert!(check(AlgorithmKind::Ciphers, "-anything*").is_ok());
        assert!(check(AlgorithmKind::HostKey, "+ssh-rsa*").is_ok());
        assert!(check(AlgorithmKind::Kex, "curve25519-*").is_err());
    }
}
