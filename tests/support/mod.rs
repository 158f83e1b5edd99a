//! Test harness: scratch homes with no trace of the user's own config, the warren binary
//! with a clean environment, and checks for the tools a test needs.
#![allow(dead_code)]

pub mod agent;
pub mod certs;
pub mod daemon;
pub mod db;
pub mod fake;
pub mod mariadb;
pub mod mfa;
pub mod net;
pub mod pg_mitm;
pub mod postgres;
pub mod redis;
pub mod sshd;
pub mod tmux;
pub mod tunnel;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Whether a program is on PATH (or at an absolute path).
pub fn have(program: &str) -> bool {
    if program.starts_with('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Returns false (and says so) when a program is missing; under CI=true a missing program
/// fails the test instead: CI must never skip.
pub fn require(program: &str) -> bool {
    if have(program) {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{program} is not installed, and CI=true: run scripts/test, which installs it");
    }
    eprintln!("SKIPPED: {program} is not installed (scripts/test installs it)");
    false
}

/// A scratch HOME: nothing in it comes from the user's real home.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file under the scratch dir (creating parents) and returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        if rel == "epoch.toml" {
            // The scratch home's own epoch.toml is the one in the directory warren runs in:
            // a project file, which warren restricts until it is trusted. The tests' user
            // has trusted it, as `warren trust-config` records (tests/trust_config.rs checks
            // the untrusted case with a file of its own).
            self.trust_file(&p, text.as_bytes());
        }
        p
    }

    /// Records `bytes` as the trusted content of `path`, as `warren trust-config` does.
    pub fn trust_file(&self, path: &Path, bytes: &[u8]) {
        use sha2::Digest;
        let hash: String = sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let abs = std::fs::canonicalize(path).expect("canonical path");
        let store = self.dir.path().join(".config/warren/trusted-configs");
        std::fs::create_dir_all(store.parent().expect("parent")).expect("mkdir");
        let suffix = format!(" {}", abs.display());
        let mut text: String = std::fs::read_to_string(&store)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.ends_with(&suffix))
            .map(|l| format!("{l}\n"))
            .collect();
        text.push_str(&format!("{hash} {}\n", abs.display()));
        std::fs::write(&store, text).expect("write the trust record");
    }

    /// `warren ARGS` with HOME set to this scratch dir, run in it, with no EPOCH_* or
    /// XDG variables from the caller's environment.
    pub fn warren(&self, args: &[&str]) -> Run {
        self.warren_env(args, &[])
    }

    /// `warren` with no ssh_config and the scratch dir's `known_hosts`, then `args`: how the
    /// tunnel tests run it.
    pub fn warren_kh(&self, args: &[&str]) -> Run {
        let mut all = vec!["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];
        all.extend_from_slice(args);
        self.warren(&all)
    }

    pub fn warren_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_env(Path::new(env!("CARGO_BIN_EXE_warren")), args, env)
    }

    /// As [`Scratch::warren_env`], with the warren binary at `exe` (a copy elsewhere).
    pub fn run_env(&self, exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .current_dir(self.path())
            .env("HOME", self.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("EPOCH_") || k.starts_with("XDG_") || k == "SSH_AUTH_SOCK" {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        // A binary just copied may still be open for writing in a child another test thread
        // forked meanwhile (ETXTBSY) until that child execs: try again briefly.
        let mut tries = 0;
        let output = loop {
            match cmd.output() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r.expect("run warren"),
            }
        };
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            output,
        }
    }

    /// As [`Scratch::warren_env`], with `input` on warren's stdin (which a client it runs
    /// inherits).
    pub fn warren_stdin(&self, args: &[&str], env: &[(&str, &str)], input: &str) -> Run {
        use std::io::Write;
        use std::process::Stdio;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.args(args)
            .current_dir(self.path())
            .env("HOME", self.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("EPOCH_") || k.starts_with("XDG_") || k == "SSH_AUTH_SOCK" {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run warren");
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(input.as_bytes());
        }
        let output = child.wait_with_output().expect("wait for warren");
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            output,
        }
    }
}

/// The result of running warren, printed in full when an assertion about it fails.
pub struct Run {
    pub args: Vec<String>,
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.describe()))
    }
    pub fn describe(&self) -> String {
        format!(
            "warren {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
            self.args.join(" "),
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "unexpected exit code:\n{}",
            self.describe()
        );
        self
    }
    #[track_caller]
    pub fn expect_stderr(&self, needle: &str) -> &Self {
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.describe()
        );
        self
    }
    #[track_caller]
    pub fn expect_stdout(&self, needle: &str) -> &Self {
        assert!(
            self.stdout().contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.describe()
        );
        self
    }
}

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path, replace: &[(&str, String)]) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read corpus dir") {
        let entry = entry.expect("entry");
        let dest = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &dest, replace);
        } else {
            let bytes = std::fs::read(entry.path()).expect("read corpus file");
            // Files that are not UTF-8 (on purpose) are copied as they are.
            let out = match String::from_utf8(bytes) {
                Ok(mut text) => {
                    for (from, to) in replace {
                        text = text.replace(from, to);
                    }
                    text.into_bytes()
                }
                Err(e) => e.into_bytes(),
            };
            std::fs::write(dest, out).expect("write corpus file");
        }
    }
}

/// A user's home directory, from `getent passwd`.
#[allow(dead_code)]
pub fn user_home(name: &str) -> String {
    let out = Command::new("getent")
        .args(["passwd", name])
        .output()
        .expect("getent");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(':')
        .nth(5)
        .unwrap_or_else(|| panic!("no passwd entry for {name}"))
        .to_string()
}
