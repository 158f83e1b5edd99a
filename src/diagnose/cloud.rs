//! The `proxy` step for a hop reached through a cloud CLI: `aws ssm start-session` (AWS
//! Systems Manager) or `gcloud compute start-iap-tunnel` (Google Cloud IAP), whether written
//! as `host = "ssm:..."` / `"iap:..."` ([`crate::config::cloud`]) or as a ProxyCommand by hand.
//!
//! When the command ended before the server answered, its words say why, in the tools' own
//! texts: a missing binary (and the package that brings it), the Session Manager plugin not
//! installed, SSM's `TargetNotConnected`, IAP's 4003 (the instance is not reachable on that
//! port) and 4033 (you may not open the tunnel). Anything else may be credentials that ran
//! out, which the tools say in many ways: so warren asks the tool itself, with the
//! credentials the command would use — `aws sts get-caller-identity` or `gcloud auth
//! print-access-token` — bounded by [`CHECK_TIMEOUT`], and reads its error. Only after a
//! failure: a passing walk runs no extra command. The token `gcloud` prints is never read.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::ssh::proxy;

/// How long the credentials check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to get each tool.
const AWS_CLI: &str = "the AWS CLI v2 (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)";
const SSM_PLUGIN: &str = "the Session Manager plugin for the AWS CLI, package session-manager-plugin (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html)";
const GCLOUD_CLI: &str =
    "the Google Cloud CLI, package google-cloud-cli (https://cloud.google.com/sdk/docs/install)";

/// The cloud CLI a ProxyCommand runs, with what its credentials check needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cli {
    /// `aws ... ssm start-session ...`.
    Aws {
        /// As written (`aws`, or a path).
        program: String,
        profile: Option<String>,
        region: Option<String>,
    },
    /// `gcloud ... compute start-iap-tunnel ...`.
    Gcloud { program: String },
}

impl Cli {
    /// The cloud CLI `command` (a ProxyCommand line, `exec ` in front or not) runs, if it is
    /// one warren knows.
    pub fn of(command: &str) -> Option<Cli> {
        let words: Vec<&str> = command
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '\'' || c == '"'))
            .collect();
        let words = match words.first() {
            Some(&"exec") => &words[1..],
            _ => &words[..],
        };
        let program = words.first()?.to_string();
        let base = Path::new(&program).file_name()?.to_str()?.to_string();
        let value = |flag: &str| -> Option<String> {
            let eq = format!("{flag}=");
            words.iter().enumerate().find_map(|(i, w)| {
                if *w == flag {
                    words.get(i + 1).map(|v| v.to_string())
                } else {
                    w.strip_prefix(&eq).map(str::to_string)
                }
            })
        };
        match base.as_str() {
            "aws" if words.contains(&"start-session") => Some(Cli::Aws {
                program,
                profile: value("--profile"),
                region: value("--region"),
            }),
            "gcloud" if words.contains(&"start-iap-tunnel") => Some(Cli::Gcloud { program }),
            _ => None,
        }
    }

    fn program(&self) -> &str {
        match self {
            Cli::Aws { program, .. } | Cli::Gcloud { program } => program,
        }
    }

    /// The command that tells whether its credentials work.
    fn check_words(&self) -> Vec<String> {
        match self {
            Cli::Aws {
                program,
                profile,
                region,
            } => {
                let mut w = vec![program.clone(), "sts".into(), "get-caller-identity".into()];
                for (flag, v) in [("--profile", profile), ("--region", region)] {
                    if let Some(v) = v {
                        w.push(flag.into());
                        w.push(v.clone());
                    }
                }
                w
            }
            Cli::Gcloud { program } => {
                vec![program.clone(), "auth".into(), "print-access-token".into()]
            }
        }
    }

    /// How to log in again.
    fn login(&self) -> String {
        match self {
            Cli::Aws { profile, .. } => {
                let p = profile
                    .as_ref()
                    .map(|p| format!(" --profile {p}"))
                    .unwrap_or_default();
                format!(
                    "log in again (`aws sso login{p}`; with access keys, renew them in ~/.aws/credentials or the environment)"
                )
            }
            Cli::Gcloud { .. } => {
                "log in again (`gcloud auth login`; for a service account, `gcloud auth activate-service-account`)".into()
            }
        }
    }
}

/// Where `program` is found on warren's PATH (the command's PATH), if it is.
fn on_path(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Why the cloud CLI ended before the server answered: more for the step's detail (what was
/// found out), and the hint (the cause and the fix).
pub async fn explain(
    cli: &Cli,
    command: &str,
    status: ExitStatus,
    said: &[String],
) -> (String, String) {
    let text = said.join("\n").to_ascii_lowercase();
    let has = |w: &str| text.contains(w);
    let program = cli.program();
    let missing = on_path(program).is_none();
    if missing || status.code() == Some(127) {
        let (tool, package) = match cli {
            Cli::Aws { .. } => ("aws", AWS_CLI),
            Cli::Gcloud { .. } => ("gcloud", GCLOUD_CLI),
        };
        return (
            if missing {
                format!("; `{program}` is not on warren's PATH")
            } else {
                String::new()
            },
            format!(
                "`{tool}` is not installed, or not on the PATH warren runs with (a service's PATH is short): install {package}, or put its directory on that PATH"
            ),
        );
    }
    if let Cli::Aws { region, .. } = cli {
        if has("sessionmanagerplugin is not found") || has("session-manager-plugin") {
            let where_ = match on_path("session-manager-plugin") {
                Some(p) => format!("; session-manager-plugin is at {}", p.display()),
                None => "; session-manager-plugin is not on warren's PATH".into(),
            };
            return (
                where_,
                format!(
                    "the AWS Session Manager plugin is missing: `aws ssm start-session` hands the connection to session-manager-plugin, which is not installed or not on warren's PATH; install {SSM_PLUGIN}, then run warren doctor again"
                ),
            );
        }
        if has("targetnotconnected") {
            let region = region
                .as_ref()
                .map(|r| format!(" (here {r})"))
                .unwrap_or_else(|| " (--region, AWS_REGION or the profile's)".into());
            return (
                String::new(),
                format!(
                    "Systems Manager does not reach the instance (TargetNotConnected): its SSM agent is not running, or it has no instance profile with the AmazonSSMManagedInstanceCore policy, or it cannot reach the SSM endpoints (no NAT, or no VPC endpoints for ssm, ssmmessages and ec2messages); or it is in another region than the one used{region}. Check that it is online under Systems Manager > Fleet Manager, then run warren doctor again"
                ),
            );
        }
        if has("accessdeniedexception") || has("not authorized to perform") {
            return (
                String::new(),
                "AWS refused you the session (AccessDenied): your role needs ssm:StartSession on the instance and on the AWS-StartSSHSession document; ask your AWS admin for it".into(),
            );
        }
    }
    if let Cli::Gcloud { .. } = cli {
        if has("4003") || has("failed to connect to backend") {
            return (
                String::new(),
                "IAP let you in but could not reach the instance on that port (4003: failed to connect to backend): allow ingress from IAP's range 35.235.240.0/20 to the SSH port in a VPC firewall rule, check that sshd listens on that port and that the instance is running, then run warren doctor again".into(),
            );
        }
        if has("4033") || has("not authorized") {
            return (
                String::new(),
                "IAP refused you the tunnel (4033: not authorized): your account needs the IAP-secured Tunnel User role (roles/iap.tunnelResourceAccessor) on the project or the instance; ask your project's admin for it (the instance itself is not the problem)".into(),
            );
        }
    }
    // Anything else: are the credentials still good? Ask the tool.
    let (shown, checked) = check(cli).await;
    match checked {
        Checked::Works(_) => (
            format!("; `{shown}` succeeded: the credentials work"),
            format!(
                "the credentials work, so the command failed for another reason: run it by hand to see why (`{command}`); it should print a line starting with SSH-2.0 and keep running"
            ),
        ),
        Checked::Fails(st, lines) => {
            let detail = format!(
                "; `{shown}` {}{}",
                proxy::describe(st),
                proxy::said(&lines, 3)
            );
            let hint = if expired(&lines, &text) {
                format!(
                    "the credentials are expired or missing (`{shown}` fails too): {}, then run warren doctor again",
                    cli.login()
                )
            } else {
                format!(
                    "`{shown}` fails too: the CLI itself cannot reach its API or is not set up; run it by hand, fix what it says, then run warren doctor again"
                )
            };
            (detail, hint)
        }
        Checked::NotRun(why) => (
            format!("; `{shown}`: {why}"),
            format!(
                "the credentials could not be checked ({why}): a credential_process or SSO that waits for a person, or no network to the cloud's API; run `{shown}` by hand"
            ),
        ),
    }
}

/// `doctor --deep` on a session that opened: whose credentials the CLI uses, or (the detail,
/// the hint) when its own check fails.
pub async fn credentials(cli: &Cli) -> Result<String, (String, String)> {
    let (shown, checked) = check(cli).await;
    match checked {
        Checked::Works(Some(arn)) => Ok(format!("`{shown}` succeeded: the credentials are {arn}")),
        Checked::Works(None) => Ok(match cli {
            Cli::Gcloud { .. } => {
                format!("`{shown}` succeeded: the credentials work (the token was not read)")
            }
            Cli::Aws { .. } => format!("`{shown}` succeeded: the credentials work"),
        }),
        Checked::Fails(st, lines) => {
            let detail = format!(
                "`{shown}` {}{}",
                proxy::describe(st),
                proxy::said(&lines, 3)
            );
            let hint = if expired(&lines, "") {
                format!("the credentials are expired or missing: {}", cli.login())
            } else {
                format!(
                    "`{shown}` fails: the CLI cannot reach its API or is not set up; run it by hand and fix what it says"
                )
            };
            Err((detail, hint))
        }
        Checked::NotRun(why) => Err((
            format!("`{shown}`: {why}"),
            format!("the credentials could not be checked ({why}); run `{shown}` by hand"),
        )),
    }
}

/// What the CLI's own credentials check said.
enum Checked {
    /// It succeeded; for AWS, the caller's ARN (escaped).
    Works(Option<String>),
    /// It failed: its exit status and its last stderr lines.
    Fails(ExitStatus, Vec<String>),
    /// It could not be run, or did not finish in time.
    NotRun(String),
}

/// Runs the CLI's credentials check, bounded by [`CHECK_TIMEOUT`]: the command as shown, and
/// what it said. Only AWS's stdout is read (its identity); gcloud's is a token, never read.
async fn check(cli: &Cli) -> (String, Checked) {
    let words = cli.check_words();
    let shown = words.join(" ");
    let keep = matches!(cli, Cli::Aws { .. });
    let checked = match run_bounded(&words, CHECK_TIMEOUT, keep).await {
        Ok((st, _, out)) if st.success() => Checked::Works(arn(&out)),
        Ok((st, lines, _)) => Checked::Fails(st, lines),
        Err(why) => Checked::NotRun(why),
    };
    (shown, checked)
}

/// The `Arn` of `aws sts get-caller-identity`'s JSON, escaped and cut short.
fn arn(out: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(out).ok()?;
    let arn: String = v.get("Arn")?.as_str()?.chars().take(200).collect();
    Some(crate::text::escape(&arn).into_owned())
}

/// Whether the words of the check (or of the command) say the credentials ran out.
fn expired(lines: &[String], command_said: &str) -> bool {
    let their = lines.join("\n").to_ascii_lowercase();
    [
        "expired",
        "unable to locate credentials",
        "no credentials",
        "reauthentication",
        "refresh",
        "invalid_grant",
        "gcloud auth login",
        "sso login",
        "invalidclienttokenid",
        "credentials",
    ]
    .iter()
    .any(|w| their.contains(w) || command_said.contains(w))
}

/// Runs `words` (no shell) with stdin closed, at most `within`: its exit status, its last
/// stderr lines (escaped) and, with `keep_stdout`, the first 16 KiB of its stdout (else
/// dropped unread: gcloud prints a token there).
async fn run_bounded(
    words: &[String],
    within: Duration,
    keep_stdout: bool,
) -> Result<(ExitStatus, Vec<String>, Vec<u8>), String> {
    let Some(program) = words.first() else {
        return Err("no command".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&words[1..])
        .stdin(Stdio::null())
        .stdout(if keep_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    crate::ssh::proxy::in_own_session(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run it: {e}"))?;
    let pid = child.id();
    let mut err = child.stderr.take();
    let mut out = child.stdout.take();
    let work = async {
        let (mut buf, mut kept) = (Vec::new(), Vec::new());
        // Both at once: a full pipe on one side must not stall the other.
        let errs = async {
            if let Some(e) = err.as_mut() {
                let _ = e.take(16 * 1024).read_to_end(&mut buf).await;
            }
        };
        let outs = async {
            if let Some(o) = out.as_mut() {
                let _ = o.take(16 * 1024).read_to_end(&mut kept).await;
            }
        };
        tokio::join!(errs, outs);
        (child.wait().await, buf, kept)
    };
    match tokio::time::timeout(within, work).await {
        Ok((Ok(status), buf, kept)) => {
            let text = String::from_utf8_lossy(&buf);
            let lines = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| crate::text::escape(l).into_owned())
                .collect();
            Ok((status, lines, kept))
        }
        Ok((Err(e), _, _)) => Err(format!("waitpid: {e}")),
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: the negative pid is the group the command leads (setsid above).
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            Err(format!(
                "it did not finish within {} s and was stopped",
                within.as_secs()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn knows_the_cloud_clis_by_their_command() {
        assert_eq!(
            Cli::of(
                "exec aws ssm start-session --target i-0abc --document-name AWS-StartSSHSession --parameters portNumber=22 --profile prod --region eu-west-1"
            ),
            Some(Cli::Aws {
                program: "aws".into(),
                profile: Some("prod".into()),
                region: Some("eu-west-1".into())
            })
        );
        assert_eq!(
            Cli::of("/opt/aws/bin/aws --profile=dev ssm start-session --target i-1"),
            Some(Cli::Aws {
                program: "/opt/aws/bin/aws".into(),
                profile: Some("dev".into()),
                region: None
            })
        );
        assert_eq!(
            Cli::of("exec gcloud compute start-iap-tunnel vm 22 --listen-on-stdin --zone z"),
            Some(Cli::Gcloud {
                program: "gcloud".into()
            })
        );
        assert_eq!(Cli::of("exec aws s3 ls"), None);
        assert_eq!(Cli::of("exec nc %h %p"), None);
        assert_eq!(Cli::of(""), None);
    }

    fn exit(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    #[tokio::test]
    async fn iap_4003_and_4033_are_told_apart() {
        // `sh` is on PATH everywhere: it stands in for gcloud (only its words matter here).
        let cli = Cli::Gcloud {
            program: "sh".into(),
        };
        let (_, hint) = explain(
            &cli,
            "exec gcloud compute start-iap-tunnel vm 22 --listen-on-stdin",
            exit(1),
            &["ERROR: (gcloud.compute.start-iap-tunnel) Error while connecting [4003: 'failed to connect to backend'].".into()],
        )
        .await;
        assert!(hint.contains("35.235.240.0/20"), "{hint}");
        assert!(!hint.contains("Tunnel User"), "{hint}");
        let (_, hint) = explain(
            &cli,
            "exec gcloud compute start-iap-tunnel vm 22 --listen-on-stdin",
            exit(1),
            &["ERROR: (gcloud.compute.start-iap-tunnel) Error while connecting [4033: 'not authorized'].".into()],
        )
        .await;
        assert!(hint.contains("IAP-secured Tunnel User"), "{hint}");
        assert!(!hint.contains("35.235.240.0/20"), "{hint}");
    }

    #[tokio::test]
    async fn a_missing_tool_names_its_package() {
        let cli = Cli::Gcloud {
            program: "warren-no-such-gcloud".into(),
        };
        let (detail, hint) = explain(
            &cli,
            "exec warren-no-such-gcloud",
            exit(127),
            &["sh: 1: exec: not found".into()],
        )
        .await;
        assert!(detail.contains("not on warren's PATH"), "{detail}");
        assert!(hint.contains("Google Cloud CLI"), "{hint}");
    }
}
