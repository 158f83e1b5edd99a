//! Cloud bastions as hops: `host = "ssm:i-0abc123"` (AWS Systems Manager) and
//! `host = "iap:instance@project/zone"` (Google Cloud IAP TCP forwarding) in an epoch.toml
//! `ssh_tunnel` or `jump_host` table stand for the ProxyCommand each vendor documents for
//! SSH, so that nobody has to write (or get wrong) the plumbing:
//!
//! - `ssm:TARGET[@PROFILE[/REGION]]` ->
//!   `aws ssm start-session --target TARGET --document-name AWS-StartSSHSession --parameters portNumber=%p [--profile PROFILE] [--region REGION]`
//! - `iap:INSTANCE[@PROJECT[/ZONE]]` ->
//!   `gcloud compute start-iap-tunnel INSTANCE %p --listen-on-stdin [--project PROJECT] [--zone ZONE]`
//!
//! (either part after `@` may be left empty: `ssm:i-0abc@/eu-west-1` names only the region;
//! what is not given comes from the tool's own configuration, as it would on the command
//! line.)
//!
//! The hop is then the instance: its name, and so the name its host key is looked up and
//! recorded under, is the instance id, as ssh does for a `Host i-0abc123` with such a
//! ProxyCommand. The command is held as a ProxyCommand in every way (it runs aws or gcloud):
//! `--no-exec` and an untrusted project file refuse it.
//!
//! The parts are put into a command line that a shell reads, so each is held to the
//! characters such names have (letters, digits, `-`, `_`, `.`, and `:` in a project id): a
//! shell metacharacter, a space or a `%` is refused with the file and line, never quoted.

use std::fmt;

/// A cloud bastion as written in `host`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloudBastion {
    /// AWS Systems Manager Session Manager, through `aws ssm start-session`.
    Ssm {
        target: String,
        profile: Option<String>,
        region: Option<String>,
    },
    /// Google Cloud Identity-Aware Proxy, through `gcloud compute start-iap-tunnel`.
    Iap {
        instance: String,
        project: Option<String>,
        zone: Option<String>,
    },
}

/// Why a `host = "ssm:..."` or `"iap:..."` cannot be used, and how to write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The fix of a bad `ssm:` value.
const SSM_FIX: &str = "write host = \"ssm:i-0abc123\" (the instance id), or \"ssm:i-0abc123@profile/region\" to name the AWS profile and region";
/// The fix of a bad `iap:` value.
const IAP_FIX: &str = "write host = \"iap:instance-name@project/zone\" (or \"iap:instance-name\" to use gcloud's configured project and zone)";

/// Whether `host` is written as a cloud bastion (`ssm:` or `iap:`, any case), good or bad.
pub fn is_preset(host: &str) -> bool {
    prefix(host).is_some()
}

fn prefix(host: &str) -> Option<(&'static str, &str)> {
    let head = host.get(..4)?;
    let rest = &host[4..];
    if head.eq_ignore_ascii_case("ssm:") {
        Some(("ssm", rest))
    } else if head.eq_ignore_ascii_case("iap:") {
        Some(("iap", rest))
    } else {
        None
    }
}

/// Which characters a part may hold.
#[derive(Clone, Copy)]
enum Charset {
    /// An instance id or name, an AWS profile: letters, digits, `-`, `_`, `.`.
    Name,
    /// A region or zone: lowercase letters, digits, `-`.
    Place,
    /// A Google Cloud project id (`my-project`, `example.com:my-project`).
    Project,
}

impl Charset {
    fn allows(self, c: char) -> bool {
        match self {
            Charset::Name => c.is_ascii_alphanumeric() || "-_.".contains(c),
            Charset::Place => c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
            Charset::Project => c.is_ascii_alphanumeric() || "-_.:".contains(c),
        }
    }

    fn said(self) -> &'static str {
        match self {
            Charset::Name => "letters, digits, '-', '_' and '.'",
            Charset::Place => "lowercase letters, digits and '-'",
            Charset::Project => "letters, digits, '-', '_', '.' and ':'",
        }
    }
}

/// `what` ('instance id', ...) checked against `set`: the problem, if any.
fn check(what: &str, value: &str, set: Charset) -> Result<(), String> {
    if value.starts_with('-') {
        return Err(format!(
            "{what} '{}' starts with '-', which the command would read as an option",
            crate::text::escape(value)
        ));
    }
    if let Some(c) = value.chars().find(|c| !set.allows(*c)) {
        let shown = match c {
            ' ' => "a space".to_string(),
            c if c.is_control() || c.is_whitespace() => {
                crate::text::escape(&c.to_string()).into_owned()
            }
            c => format!("'{c}'"),
        };
        return Err(format!(
            "{what} '{}' holds {shown}: it goes into a command line, so it may hold only {}",
            crate::text::escape(value),
            set.said()
        ));
    }
    Ok(())
}

impl CloudBastion {
    /// `None` when `host` is not a cloud bastion (no `ssm:` or `iap:` in front); otherwise
    /// the bastion, or why it cannot be used.
    pub fn parse(host: &str) -> Option<Result<CloudBastion, Invalid>> {
        let (kind, rest) = prefix(host)?;
        let (fix, what, first, second) = match kind {
            "ssm" => (SSM_FIX, "instance id", "profile", "region"),
            _ => (IAP_FIX, "instance name", "project", "zone"),
        };
        let bad = |message: String| {
            Some(Err(Invalid {
                message,
                fix: fix.to_string(),
            }))
        };
        let (name, after) = match rest.split_once('@') {
            Some((n, a)) => (n, Some(a)),
            None => (rest, None),
        };
        if name.is_empty() {
            return bad(format!("'{kind}:' names no instance"));
        }
        if let Err(e) = check(what, name, Charset::Name) {
            return bad(e);
        }
        let (a, b) = match after {
            None => (None, None),
            Some(after) => {
                let (a, b) = match after.split_once('/') {
                    Some((a, b)) => (a, Some(b)),
                    None => (after, None),
                };
                let a = Some(a).filter(|a| !a.is_empty());
                let b = b.filter(|b| !b.is_empty());
                if a.is_none() && b.is_none() {
                    return bad(format!(
                        "nothing after '@': name the {first}, the {second}, or both ({first}/{second})"
                    ));
                }
                (a, b)
            }
        };
        let (a_set, b_set) = match kind {
            "ssm" => (Charset::Name, Charset::Place),
            _ => (Charset::Project, Charset::Place),
        };
        if let Some(a) = a
            && let Err(e) = check(first, a, a_set)
        {
            return bad(e);
        }
        if let Some(b) = b
            && let Err(e) = check(second, b, b_set)
        {
            return bad(format!(
                "{e}{}",
                if b.contains('/') {
                    " (only one '/' goes after '@')"
                } else {
                    ""
                }
            ));
        }
        let (name, a, b) = (
            name.to_string(),
            a.map(str::to_string),
            b.map(str::to_string),
        );
        Some(Ok(match kind {
            "ssm" => CloudBastion::Ssm {
                target: name,
                profile: a,
                region: b,
            },
            _ => CloudBastion::Iap {
                instance: name,
                project: a,
                zone: b,
            },
        }))
    }

    /// The instance: the hop's name, and the name its host key is known by.
    pub fn instance(&self) -> &str {
        match self {
            CloudBastion::Ssm { target, .. } => target,
            CloudBastion::Iap { instance, .. } => instance,
        }
    }

    /// The program the command runs.
    pub fn program(&self) -> &'static str {
        match self {
            CloudBastion::Ssm { .. } => "aws",
            CloudBastion::Iap { .. } => "gcloud",
        }
    }

    /// The ProxyCommand, as the vendor documents it for SSH, with `%p` for the hop's port
    /// (expanded as every ProxyCommand is, [`crate::config::model::Hop::proxy_command_line`]).
    pub fn command(&self) -> String {
        let opt = |flag: &str, v: &Option<String>| {
            v.as_ref()
                .map(|v| format!(" --{flag} {v}"))
                .unwrap_or_default()
        };
        match self {
            CloudBastion::Ssm {
                target,
                profile,
                region,
            } => format!(
                "aws ssm start-session --target {target} --document-name AWS-StartSSHSession --parameters portNumber=%p{}{}",
                opt("profile", profile),
                opt("region", region)
            ),
            CloudBastion::Iap {
                instance,
                project,
                zone,
            } => format!(
                "gcloud compute start-iap-tunnel {instance} %p --listen-on-stdin{}{}",
                opt("project", project),
                opt("zone", zone)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(host: &str) -> CloudBastion {
        match CloudBastion::parse(host) {
            Some(Ok(c)) => c,
            other => panic!("{host}: {other:?}"),
        }
    }

    fn err(host: &str) -> Invalid {
        match CloudBastion::parse(host) {
            Some(Err(e)) => e,
            other => panic!("{host} was accepted: {other:?}"),
        }
    }

    #[test]
    fn ssm_expands_to_the_documented_command() {
        let c = ok("ssm:i-0abc123");
        assert_eq!(c.instance(), "i-0abc123");
        assert_eq!(
            c.command(),
            "aws ssm start-session --target i-0abc123 --document-name AWS-StartSSHSession --parameters portNumber=%p"
        );
        assert_eq!(
            ok("ssm:i-0abc123@prod/eu-west-1").command(),
            "aws ssm start-session --target i-0abc123 --document-name AWS-StartSSHSession --parameters portNumber=%p --profile prod --region eu-west-1"
        );
        assert_eq!(
            ok("ssm:mi-0123456789abcdef0@prod").command(),
            "aws ssm start-session --target mi-0123456789abcdef0 --document-name AWS-StartSSHSession --parameters portNumber=%p --profile prod"
        );
        assert_eq!(
            ok("SSM:i-0abc@/us-east-1"),
            CloudBastion::Ssm {
                target: "i-0abc".into(),
                profile: None,
                region: Some("us-east-1".into())
            }
        );
    }

    #[test]
    fn iap_expands_to_the_documented_command() {
        let c = ok("iap:db-bastion@my-project/europe-west1-b");
        assert_eq!(c.instance(), "db-bastion");
        assert_eq!(c.program(), "gcloud");
        assert_eq!(
            c.command(),
            "gcloud compute start-iap-tunnel db-bastion %p --listen-on-stdin --project my-project --zone europe-west1-b"
        );
        assert_eq!(
            ok("iap:vm").command(),
            "gcloud compute start-iap-tunnel vm %p --listen-on-stdin"
        );
        assert_eq!(
            ok("iap:vm@example.com:proj").command(),
            "gcloud compute start-iap-tunnel vm %p --listen-on-stdin --project example.com:proj"
        );
    }

    #[test]
    fn other_hosts_are_not_presets() {
        for h in [
            "bastion.example.com",
            "10.0.0.1",
            "ssm",
            "ssmx:i-1",
            "[::1]",
            "",
        ] {
            assert!(CloudBastion::parse(h).is_none(), "{h}");
            assert!(!is_preset(h), "{h}");
        }
        assert!(is_preset("iap:"));
    }

    #[test]
    fn bad_values_say_what_and_how_to_write_it() {
        let e = err("ssm:");
        assert_eq!(e.message, "'ssm:' names no instance");
        assert!(e.fix.contains("ssm:i-0abc123@profile/region"), "{}", e.fix);
        assert!(
            err("iap:@p/z")
                .fix
                .contains("iap:instance-name@project/zone")
        );
        assert!(err("ssm:i-0abc@").message.contains("nothing after '@'"));
        assert!(err("ssm:i-0abc@/").message.contains("nothing after '@'"));
        // Shell metacharacters, spaces, tokens, options: refused, never quoted.
        for (host, has) in [
            ("ssm:i-0abc;rm -rf ~", "holds ';'"),
            ("ssm:i-0abc$(id)", "holds '$'"),
            ("ssm:i-0abc`id`", "holds '`'"),
            ("ssm:i-0 abc", "holds a space"),
            ("ssm:i-0abc|nc", "holds '|'"),
            ("ssm:i-0abc%h", "holds '%'"),
            ("ssm:i-0abc\n", "holds \\n"),
            ("ssm:--target", "starts with '-'"),
            ("ssm:i-0abc@prod&/eu-west-1", "profile 'prod&' holds '&'"),
            ("ssm:i-0abc@prod/EU-west-1", "region 'EU-west-1' holds 'E'"),
            ("ssm:i-0abc@prod/eu/west", "only one '/'"),
            ("iap:vm'x@p/z", "instance name"),
            ("iap:vm@p>q/z", "project 'p>q' holds '>'"),
            ("iap:vm@p/z;id", "zone 'z;id' holds ';'"),
        ] {
            let e = err(host);
            assert!(e.message.contains(has), "{host:?}: {}", e.message);
            assert!(!e.message.contains('\n'), "escaped: {:?}", e.message);
        }
    }

    fn load(text: &str) -> crate::config::epoch::EpochFile {
        let ctx = std::sync::Arc::new(crate::config::Context::new(
            "/home/me".into(),
            "me",
            Default::default(),
        ));
        let ssh =
            crate::config::ssh_config::SshConfig::from_texts(std::sync::Arc::clone(&ctx), &[]);
        crate::config::epoch::load(std::path::Path::new("/cfg/epoch.toml"), text, &ctx, &ssh)
    }

    const DB: &str = "[storage.postgres.orders]\nhost = \"db.internal\"\n\n[storage.postgres.orders.ssh_tunnel]\n";

    #[test]
    fn an_ssm_host_is_the_instance_reached_through_its_command() {
        let f = load(&format!(
            "{DB}host = \"ssm:i-0abc123@prod/eu-west-1\"\nuser = \"ec2-user\"\n"
        ));
        assert!(f.problems.is_empty(), "{:#?}", f.problems);
        let hop = &f.connections[0].hops[0];
        assert_eq!(hop.name, "i-0abc123");
        assert_eq!(hop.host.value, "i-0abc123");
        assert_eq!(hop.host.origin.to_string(), "/cfg/epoch.toml:5");
        let pc = hop.proxy_command.as_ref().expect("a ProxyCommand");
        assert_eq!(pc.origin.to_string(), "/cfg/epoch.toml:5");
        assert_eq!(
            hop.proxy_command_line().and_then(Result::ok).as_deref(),
            Some(
                "exec aws ssm start-session --target i-0abc123 --document-name AWS-StartSSHSession --parameters portNumber=22 --profile prod --region eu-west-1"
            )
        );
        assert_eq!(
            hop.preset.as_ref().map(|p| p.value.as_str()),
            Some("ssm:i-0abc123@prod/eu-west-1")
        );
        // Its host key is known by the instance id, as ssh's `Host i-0abc123` would know it.
        assert!(hop.host_key_alias.is_none());
    }

    #[test]
    fn an_iap_jump_host_carries_the_bastion_behind_it() {
        let f = load(&format!(
            "{DB}host = \"10.0.0.5\"\nport = 2222\njump_host = {{ host = \"iap:edge@proj/europe-west1-b\" }}\n"
        ));
        assert!(f.problems.is_empty(), "{:#?}", f.problems);
        let hops = &f.connections[0].hops;
        assert_eq!(hops.len(), 2);
        assert_eq!(hops[0].name, "edge");
        assert_eq!(
            hops[0].proxy_command_line().and_then(Result::ok).as_deref(),
            Some(
                "exec gcloud compute start-iap-tunnel edge 22 --listen-on-stdin --project proj --zone europe-west1-b"
            )
        );
        assert!(hops[1].proxy_command.is_none() && hops[1].preset.is_none());
    }

    #[test]
    fn bad_cloud_hosts_are_errors_with_file_line_and_fix() {
        for (lines, line, has, fix) in [
            ("host = \"ssm:\"\n", 5, "names no instance", "ssm:i-0abc123"),
            (
                "host = \"ssm:i-0abc$(reboot)\"\n",
                5,
                "holds '$'",
                "ssm:i-0abc123",
            ),
            (
                "user = \"ubuntu\"\nhost = \"iap:vm@proj/zone;id\"\n",
                6,
                "zone 'zone;id' holds ';'",
                "iap:instance-name@project/zone",
            ),
            (
                "host = \"ssm:i-0abc123\"\nproxy_command = \"nc %h %p\"\n",
                6,
                "both host = \"ssm:i-0abc123\" (at /cfg/epoch.toml:5) and proxy_command",
                "keep one",
            ),
            (
                "host = \"ssm:i-0abc123\"\njump_host = \"edge\"\n",
                6,
                "and jump_host say how to reach the host",
                "runs `aws`",
            ),
        ] {
            let f = load(&format!("{DB}{lines}"));
            assert!(f.connections.is_empty(), "{lines}: loaded");
            let b = &f.broken[0];
            assert_eq!(
                b.error.origin.to_string(),
                format!("/cfg/epoch.toml:{line}"),
                "{lines}"
            );
            assert!(
                b.error.message.contains(has),
                "{lines}: {}",
                b.error.message
            );
            assert!(
                b.error.fix.as_deref().is_some_and(|f| f.contains(fix)),
                "{lines}: {:?}",
                b.error.fix
            );
        }
    }
}
