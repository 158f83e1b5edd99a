//! The options of `ssh -G` that warren does not use: how ssh reads each (its keyword and
//! aliases, the kind of value) and what it prints when it is not set (OpenSSH 9.2p1 on
//! Debian).

/// How ssh reads and prints an option warren does not use.
pub(super) enum Kind {
    /// yes/true or no/false, printed yes or no.
    Flag(bool),
    /// Words ssh accepts and what it prints for each; the default (printed).
    Words(&'static [(&'static str, &'static str)], &'static str),
    Int(u32),
    /// A time (`convtime`), printed in seconds.
    Time(u32),
    /// As written (one word, or the whole line); `None`: printed only when set.
    Text(Option<&'static str>),
}

pub(super) const YES_TRUE: &[(&str, &str)] = &[
    ("yes", "true"),
    ("true", "true"),
    ("no", "false"),
    ("false", "false"),
    ("ask", "ask"),
];

/// Options warren does not use, in `ssh -G` order, each under its keyword and aliases.
pub(super) fn table(key: &str) -> Option<(&'static [&'static str], Kind)> {
    use Kind::*;
    Some(match key {
        "addressfamily" => (
            &["addressfamily"],
            Words(
                &[("any", "any"), ("inet", "inet"), ("inet6", "inet6")],
                "any",
            ),
        ),
        "compression" => (&["compression"], Flag(false)),
        "controlmaster" => (
            &["controlmaster"],
            Words(
                &[
                    ("yes", "true"),
                    ("true", "true"),
                    ("no", "false"),
                    ("false", "false"),
                    ("ask", "ask"),
                    ("auto", "auto"),
                    ("autoask", "autoask"),
                ],
                "false",
            ),
        ),
        "enablesshkeysign" => (&["enablesshkeysign"], Flag(false)),
        "fingerprinthash" => (
            &["fingerprinthash"],
            Words(&[("md5", "MD5"), ("sha256", "SHA256")], "SHA256"),
        ),
        "forwardx11" => (&["forwardx11"], Flag(false)),
        "forwardx11trusted" => (&["forwardx11trusted"], Flag(true)),
        "gatewayports" => (&["gatewayports"], Flag(false)),
        "gssapiauthentication" => (&["gssapiauthentication"], Flag(false)),
        "gssapikeyexchange" => (&["gssapikeyexchange"], Flag(false)),
        "gssapidelegatecredentials" => (&["gssapidelegatecredentials"], Flag(false)),
        "gssapitrustdns" => (&["gssapitrustdns"], Flag(false)),
        "gssapirenewalforcesrekey" => (&["gssapirenewalforcesrekey"], Flag(false)),
        "gssapikexalgorithms" => (
            &["gssapikexalgorithms"],
            Text(Some(
                "gss-group14-sha256-,gss-group16-sha512-,gss-nistp256-sha256-,gss-curve25519-sha256-,gss-group14-sha1-,gss-gex-sha1-",
            )),
        ),
        "hostbasedauthentication" => (&["hostbasedauthentication"], Flag(false)),
        "nohostauthenticationforlocalhost" => (&["nohostauthenticationforlocalhost"], Flag(false)),
        "permitlocalcommand" => (&["permitlocalcommand"], Flag(false)),
        "pubkeyauthentication" => (
            &["pubkeyauthentication", "dsaauthentication"],
            Words(
                &[
                    ("yes", "true"),
                    ("true", "true"),
                    ("no", "false"),
                    ("false", "false"),
                    ("unbound", "unbound"),
                    ("host-bound", "host-bound"),
                ],
                "true",
            ),
        ),
        "requesttty" => (
            &["requesttty"],
            Words(
                &[
                    ("yes", "true"),
                    ("true", "true"),
                    ("no", "false"),
                    ("false", "false"),
                    ("force", "force"),
                    ("auto", "auto"),
                ],
                "auto",
            ),
        ),
        "sessiontype" => (
            &["sessiontype"],
            Words(
                &[
                    ("none", "none"),
                    ("subsystem", "subsystem"),
                    ("default", "default"),
                ],
                "default",
            ),
        ),
        "stdinnull" => (&["stdinnull"], Flag(false)),
        "forkafterauthentication" => (&["forkafterauthentication"], Flag(false)),
        "streamlocalbindunlink" => (&["streamlocalbindunlink"], Flag(false)),
        "tcpkeepalive" => (&["tcpkeepalive", "keepalive"], Flag(true)),
        "tunnel" => (
            &["tunnel"],
            Words(
                &[
                    ("yes", "point-to-point"),
                    ("true", "point-to-point"),
                    ("point-to-point", "point-to-point"),
                    ("ethernet", "ethernet"),
                    ("no", "false"),
                    ("false", "false"),
                ],
                "false",
            ),
        ),
        "verifyhostkeydns" => (&["verifyhostkeydns"], Words(YES_TRUE, "false")),
        "visualhostkey" => (&["visualhostkey"], Flag(false)),
        "enableescapecommandline" => (&["enableescapecommandline"], Flag(false)),
        "connectionattempts" => (&["connectionattempts"], Int(1)),
        "forwardx11timeout" => (&["forwardx11timeout"], Time(1200)),
        "requiredrsasize" => (&["requiredrsasize"], Int(1024)),
        "bindaddress" => (&["bindaddress"], Text(None)),
        "bindinterface" => (&["bindinterface"], Text(None)),
        "hostbasedacceptedalgorithms" => (
            &["hostbasedacceptedalgorithms", "hostbasedkeytypes"],
            Text(Some(
                "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256",
            )),
        ),
        "ignoreunknown" => (&["ignoreunknown"], Text(None)),
        "kbdinteractivedevices" => (&["kbdinteractivedevices"], Text(None)),
        "casignaturealgorithms" => (
            &["casignaturealgorithms"],
            Text(Some(
                "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256",
            )),
        ),
        "loglevel" => (
            &["loglevel"],
            Words(
                &[
                    ("quiet", "SILENT"),
                    ("fatal", "FATAL"),
                    ("error", "ERROR"),
                    ("info", "INFO"),
                    ("verbose", "VERBOSE"),
                    ("debug", "DEBUG"),
                    ("debug1", "DEBUG1"),
                    ("debug2", "DEBUG2"),
                    ("debug3", "DEBUG3"),
                ],
                "INFO",
            ),
        ),
        "pkcs11provider" => (&["pkcs11provider", "smartcarddevice"], Text(None)),
        "securitykeyprovider" => (&["securitykeyprovider"], Text(Some("internal"))),
        "xauthlocation" => (&["xauthlocation"], Text(Some("/usr/bin/xauth"))),
        "logverbose" => (&["logverbose"], Text(Some("none"))),
        "permitremoteopen" => (&["permitremoteopen"], Text(Some("any"))),
        "forwardagent" => (&["forwardagent"], Text(Some("no"))),
        "tunneldevice" => (&["tunneldevice"], Text(Some("any:any"))),
        "escapechar" => (&["escapechar"], Text(Some("~"))),
        "streamlocalbindmask" => (&["streamlocalbindmask"], Text(Some("0177"))),
        "syslogfacility" => (&["syslogfacility"], Text(Some("USER"))),
        _ => return None,
    })
}
