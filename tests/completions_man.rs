//! The command line about itself: `warren completions SHELL` loaded in a real bash completes
//! connection names from the user's config; `warren man` is a man page `man -l` reads without
//! a warning; `--version` names the commit warren was built from.

mod support;

use std::process::Command;

use support::Scratch;

const SSH: &str = "Host orders\n    HostName orders.example.com\n    LocalForward 15432 db.internal:5432\n\nHost billing\n    HostName billing.example.com\n";

/// Runs `script` in a bash with no rc files, HOME the scratch dir, no EPOCH_*/XDG_* from the
/// caller; returns stdout (and panics with everything on a failure).
fn bash(s: &Scratch, script: &str) -> String {
    let mut cmd = Command::new("bash");
    cmd.args(["--norc", "--noprofile", "-c", script])
        .current_dir(s.path())
        .env("HOME", s.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("EPOCH_") || k.starts_with("XDG_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bash failed:\n{script}\n--- stdout\n{stdout}--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn bash_completes_warren_up_o_tab_to_a_configured_name() {
    if !support::require("bash") {
        return;
    }
    let s = Scratch::new();
    s.write(".ssh/config", SSH);
    let run = s.warren(&["completions", "bash"]);
    run.expect_code(0);
    s.write("warren.bash", &run.stdout());
    // The script registers a completion function for `warren`; bash calls it on TAB with
    // COMP_WORDS / COMP_CWORD set, as here for `warren up o<TAB>`.
    let registered = bash(&s, "source ./warren.bash; complete -p warren");
    assert!(
        registered.contains("-F _clap_complete_warren") && registered.trim().ends_with("warren"),
        "{registered}"
    );
    let tab = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let script = format!(
            "source ./warren.bash; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT={}; COMP_TYPE=9; \
             _clap_complete_warren warren '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            words.join(" "),
            words.len() - 1,
            line.len(),
            words[words.len() - 1],
            words[words.len() - 2],
        );
        bash(&s, &script)
            .split(['\n', '\u{b}'])
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(tab("warren up o"), ["orders"]);
    for command in ["down", "show", "doctor"] {
        assert_eq!(
            tab(&format!("warren {command} b")),
            ["billing"],
            "{command}"
        );
    }
    // With --ssh-config on the line, names come from that file.
    s.write("other_config", "Host ops-db\n    HostName x\n");
    assert_eq!(tab("warren --ssh-config other_config show o"), ["ops-db"]);

    // --no-exec on the line: completing runs no command of the config either.
    s.write(
        "exec_config",
        "Match exec \"touch exec-ran\"\n    User x\nHost ops-exec\n    HostName x\n",
    );
    assert_eq!(
        tab("warren --no-exec --ssh-config exec_config show o"),
        ["ops-exec"]
    );
    assert!(
        !s.path().join("exec-ran").exists(),
        "completion under --no-exec ran Match exec"
    );

    // A directory's epoch.toml (not trusted) is completed from, and runs nothing: its
    // jump host alias is resolved with the user's Match exec lines not run.
    s.write(
        ".ssh/config",
        &format!("Match exec \"test %h = jumpbox && touch jump-ran\"\n    User x\n{SSH}"),
    );
    std::fs::write(
        s.path().join("epoch.toml"),
        "[storage.postgres.evil]\nhost = \"db\"\n[storage.postgres.evil.ssh_tunnel]\nhost = \"bastion\"\njump_host = \"jumpbox\"\n\n[storage.postgres.evil2]\nhost = \"db\"\n[storage.postgres.evil2.ssh_tunnel]\nhost = \"bastion\"\nproxy_command = \"touch proxy-ran\"\n",
    )
    .expect("write");
    assert_eq!(tab("warren up e"), ["evil", "evil2"]);
    for marker in ["jump-ran", "proxy-ran"] {
        assert!(
            !s.path().join(marker).exists(),
            "completing from an untrusted epoch.toml ran {marker}"
        );
    }
}

#[test]
fn every_shell_gets_a_script() {
    let s = Scratch::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = s.warren(&["completions", shell]);
        run.expect_code(0);
        assert!(
            run.stdout().contains("COMPLETE") && run.stdout().contains("warren"),
            "{shell}:\n{}",
            run.describe()
        );
    }
    s.warren(&["completions", "tcsh"])
        .expect_code(2)
        .expect_stderr("possible values: bash, zsh, fish, elvish, powershell");
}

#[test]
fn the_man_page_reads_in_man_without_warnings() {
    if !support::require("man") {
        return;
    }
    let s = Scratch::new();
    let run = s.warren(&["man"]);
    run.expect_code(0);
    let page = s.write("warren.1", &run.stdout());
    let out = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("man");
    let text = String::from_utf8_lossy(&out.stdout);
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man failed: {warnings}");
    assert!(warnings.trim().is_empty(), "man warns:\n{warnings}");
    for part in [
        "NAME",
        "SYNOPSIS",
        "SUBCOMMANDS",
        "completions",
        "--ssh-config",
    ] {
        assert!(text.contains(part), "{part} missing:\n{text}");
    }
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let s = Scratch::new();
    let run = s.warren(&["--version"]);
    run.expect_code(0);
    let version = run.stdout();
    assert!(
        version.starts_with(&format!("warren {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "--short=9", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match head {
        Ok(o) if o.status.success() => {
            let commit = String::from_utf8_lossy(&o.stdout).trim().to_string();
            assert!(
                version.contains(&format!("({commit} ")),
                "{version} lacks {commit}"
            );
        }
        // Not built from git: the version alone.
        _ => assert_eq!(
            version.trim(),
            format!("warren {}", env!("CARGO_PKG_VERSION"))
        ),
    }
}
