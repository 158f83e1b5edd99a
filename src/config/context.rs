//! The local facts a config is evaluated against: who we are, where home is, the environment.
//!
//! Captured once at start-up and passed down, so the resolvers never read process globals and
//! tests can evaluate a config for any user and environment without touching the real `~`.

use std::collections::HashMap;
use std::ffi::CStr;
use std::path::PathBuf;

/// The facts OpenSSH would take from the process when it evaluates a config.
#[derive(Clone, Debug)]
pub struct Context {
    /// `$HOME`: where `Include ~/...` and relative Includes resolve (glob's tilde).
    pub home: PathBuf,
    /// The home used for `~` and `%d` in paths (OpenSSH uses the passwd entry's; warren
    /// uses `$HOME` — see [`Context::from_process`]).
    pub user_home: PathBuf,
    /// The local user name (`%u`, `Match localuser`, the default remote user).
    pub local_user: String,
    pub uid: u32,
    /// This machine's host name (`%l`; `%L` is its first label).
    pub local_host: String,
    /// The environment, for `${VAR}` and the `EPOCH_SSH_*` defaults.
    pub env: HashMap<String, String>,
}

impl Context {
    /// The facts of the running process.
    pub fn from_process() -> Self {
        let env: HashMap<String, String> = std::env::vars().collect();
        // SAFETY: getuid never fails and has no preconditions.
        let uid = unsafe { libc::getuid() };
        let (pw_name, pw_dir) = passwd_entry(uid).unwrap_or_default();
        let home = env
            .get("HOME")
            .map(PathBuf::from)
            .or_else(dirs::home_dir)
            .unwrap_or_else(|| PathBuf::from(&pw_dir));
        // OpenSSH expands `~` with the passwd home; warren uses $HOME for both, so that a
        // sandbox (or a test) that moves HOME never reaches the real ~/.ssh. They differ
        // only when HOME was changed on purpose.
        let user_home = home.clone();
        let local_user = if pw_name.is_empty() {
            env.get("USER").cloned().unwrap_or_default()
        } else {
            pw_name
        };
        Context {
            home,
            user_home,
            local_user,
            uid,
            local_host: local_hostname(),
            env,
        }
    }

    /// A context for a given home, user and environment (tests, previews).
    pub fn new(home: PathBuf, local_user: &str, env: HashMap<String, String>) -> Self {
        Context {
            user_home: home.clone(),
            home,
            local_user: local_user.to_string(),
            uid: 1000,
            local_host: "localhost".to_string(),
            env,
        }
    }

    /// Whether commands are off because the names come from an untrusted epoch.toml (not
    /// because of `--no-exec`).
    pub fn untrusted_names(&self) -> bool {
        self.var(NO_EXEC_VAR) == Some(UNTRUSTED_NAMES)
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// Whether commands from the config (ProxyCommand, `Match exec`, KnownHostsCommand) may
    /// run: not when [`NO_EXEC_VAR`] is set (which `--no-exec` sets for the whole process and
    /// the daemon it starts).
    pub fn run_commands(&self) -> bool {
        !self
            .var(NO_EXEC_VAR)
            .is_some_and(|v| !matches!(v, "" | "0" | "no" | "false"))
    }
}

/// The environment variable that forbids running commands from the config (`--no-exec`).
pub const NO_EXEC_VAR: &str = "WARREN_NO_EXEC";

/// [`NO_EXEC_VAR`]'s value while warren resolves names an untrusted epoch.toml gives (a
/// `jump_host` alias): the user's own `Match exec` lines do not get them as `%h`.
pub const UNTRUSTED_NAMES: &str = "untrusted epoch.toml";

/// The home directory of a named user, from the passwd database.
pub fn user_home(name: &str) -> Option<String> {
    user_entry(name).map(|(_, dir)| dir)
}

/// `(uid, pw_dir)` of a named user, from the passwd database.
pub fn user_entry(name: &str) -> Option<(u32, String)> {
    let cname = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value for the out-parameter.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the duration of the call and buf's length is passed.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success pw_dir points to a NUL-terminated string inside buf.
    let dir = unsafe { CStr::from_ptr(pwd.pw_dir) }
        .to_string_lossy()
        .into_owned();
    Some((pwd.pw_uid, dir))
}

/// `(pw_name, pw_dir)` for a uid, from the passwd database.
pub fn passwd_entry(uid: u32) -> Option<(String, String)> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value for the out-parameter.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the duration of the call and buf's length is passed.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success pw_name and pw_dir point to NUL-terminated strings inside buf.
    let name = unsafe { CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: as above.
    let dir = unsafe { CStr::from_ptr(pwd.pw_dir) }
        .to_string_lossy()
        .into_owned();
    Some((name, dir))
}

fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for writes of its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::from("localhost");
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
