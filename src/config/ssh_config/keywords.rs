//! The keywords OpenSSH knows, for its "Bad configuration option" check (readconf.c
//! `parse_token`): ssh refuses a file with a keyword it does not know unless an earlier
//! `IgnoreUnknown` names it, and so does warren (the line is an error, and ignored).
//!
//! The list is OpenSSH 9.2p1's table (the differential test's oracle), with the GSSAPI and
//! keep-alive keywords of Debian's build, and the keywords of later releases
//! (`Tag`, `ChannelTimeout`, ...): warren speaks SSH itself, so a config written for a newer
//! ssh must not be refused because the ssh installed is older.

/// OpenSSH 9.2p1's keywords (readconf.c `keywords[]`), deprecated and unsupported ones
/// included: ssh accepts those lines (it ignores them, or says "Unsupported option").
const OPENSSH_9_2: &[&str] = &[
    "addkeystoagent",
    "addressfamily",
    "afstokenpassing",
    "batchmode",
    "bindaddress",
    "bindinterface",
    "canonicaldomains",
    "canonicalizefallbacklocal",
    "canonicalizehostname",
    "canonicalizemaxdots",
    "canonicalizepermittedcnames",
    "casignaturealgorithms",
    "certificatefile",
    "challengeresponseauthentication",
    "checkhostip",
    "cipher",
    "ciphers",
    "clearallforwardings",
    "compression",
    "compressionlevel",
    "connectionattempts",
    "connecttimeout",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "dsaauthentication",
    "dynamicforward",
    "enableescapecommandline",
    "enablesshkeysign",
    "escapechar",
    "exitonforwardfailure",
    "fallbacktorsh",
    "fingerprinthash",
    "forkafterauthentication",
    "forwardagent",
    "forwardx11",
    "forwardx11timeout",
    "forwardx11trusted",
    "gatewayports",
    "globalknownhostsfile",
    "globalknownhostsfile2",
    "gssapiauthentication",
    "gssapidelegatecredentials",
    "hashknownhosts",
    "host",
    "hostbasedacceptedalgorithms",
    "hostbasedauthentication",
    "hostbasedkeytypes",
    "hostkeyalgorithms",
    "hostkeyalias",
    "hostname",
    "identitiesonly",
    "identityagent",
    "identityfile",
    "identityfile2",
    "ignoreunknown",
    "include",
    "ipqos",
    "kbdinteractiveauthentication",
    "kbdinteractivedevices",
    "keepalive",
    "kerberosauthentication",
    "kerberostgtpassing",
    "kexalgorithms",
    "knownhostscommand",
    "localcommand",
    "localforward",
    "loglevel",
    "logverbose",
    "macs",
    "match",
    "nohostauthenticationforlocalhost",
    "numberofpasswordprompts",
    "passwordauthentication",
    "permitlocalcommand",
    "permitremoteopen",
    "pkcs11provider",
    "port",
    "preferredauthentications",
    "protocol",
    "proxycommand",
    "proxyjump",
    "proxyusefdpass",
    "pubkeyacceptedalgorithms",
    "pubkeyacceptedkeytypes",
    "pubkeyauthentication",
    "rekeylimit",
    "remotecommand",
    "remoteforward",
    "requesttty",
    "requiredrsasize",
    "revokedhostkeys",
    "rhostsauthentication",
    "rhostsrsaauthentication",
    "rsaauthentication",
    "securitykeyprovider",
    "sendenv",
    "serveralivecountmax",
    "serveraliveinterval",
    "sessiontype",
    "setenv",
    "skeyauthentication",
    "smartcarddevice",
    "stdinnull",
    "streamlocalbindmask",
    "streamlocalbindunlink",
    "stricthostkeychecking",
    "syslogfacility",
    "tcpkeepalive",
    "tisauthentication",
    "tunnel",
    "tunneldevice",
    "updatehostkeys",
    "useprivilegedport",
    "user",
    "userknownhostsfile",
    "userknownhostsfile2",
    "useroaming",
    "usersh",
    "verifyhostkeydns",
    "visualhostkey",
    "xauthlocation",
];

/// Keywords distributions' builds add (Debian's GSSAPI key exchange and keep-alive patches,
/// as the `ssh` of Debian 12 accepts them).
const DISTRIBUTIONS: &[&str] = &[
    "gssapiclientidentity",
    "gssapikexalgorithms",
    "gssapikeyexchange",
    "gssapirenewalforcesrekey",
    "gssapiserveridentity",
    "gssapitrustdns",
    "protocolkeepalives",
    "setuptimeout",
    "useblacklistedkeys",
];

/// Keywords of OpenSSH releases after 9.2 (9.4 to 10.x).
const LATER: &[&str] = &[
    "channeltimeout",
    "obscurekeystroketiming",
    "refuseconnection",
    "tag",
    "versionaddendum",
    "warnweakcrypto",
];

/// Whether OpenSSH knows the (lowercased) keyword.
pub fn known(keyword: &str) -> bool {
    [OPENSSH_9_2, DISTRIBUTIONS, LATER]
        .iter()
        .any(|list| list.binary_search(&keyword).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_sorted_so_that_the_search_finds_every_keyword() {
        for list in [OPENSSH_9_2, DISTRIBUTIONS, LATER] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
            assert!(list.iter().all(|k| known(k)));
        }
        assert!(!known("usekeychain"));
        assert!(!known("UseKeychain"), "keywords are compared lowercased");
    }
}
