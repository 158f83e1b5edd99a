//! The `%` tokens of a resolved host and the values ssh expands with them: paths
//! (IdentityFile, UserKnownHostsFile, IdentityAgent...), unix socket forwards, and
//! KnownHostsCommand's words.

use super::HostConfig;
use super::exec;
use crate::config::command::HostsCommand;
use crate::config::expand;
use crate::config::forward::Forward;
use crate::config::origin::Sourced;

impl HostConfig {
    /// The `%` token values of this host, as `ssh` computes them.
    fn token(&self, t: char) -> Option<String> {
        let ctx = &self.ctx;
        Some(match t {
            'h' => self.hostname.value.clone(),
            'p' => self.port.value.to_string(),
            'r' => self.user.value.clone(),
            'n' => self.alias.clone(),
            'k' => match &self.host_key_alias {
                Some(a) => a.value.to_ascii_lowercase(),
                None => self.alias.clone(),
            },
            'C' => self.connection_hash(),
            'u' => ctx.local_user.clone(),
            'd' => ctx.user_home.display().to_string(),
            'i' => ctx.uid.to_string(),
            'l' => ctx.local_host.clone(),
            'L' => ctx
                .local_host
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string(),
            'j' => self
                .proxy_jump
                .as_ref()
                .and_then(|j| j.value.last())
                .map(|d| d.host.clone())
                .unwrap_or_default(),
            _ => return None,
        })
    }
}

impl HostConfig {
    /// KnownHostsCommand split into words, the tokens known now expanded; `None` when unset
    /// or `none`.
    pub fn hosts_command(&self) -> Option<Sourced<HostsCommand>> {
        let c = self
            .known_hosts_command
            .as_ref()
            .filter(|c| !c.value.eq_ignore_ascii_case("none"))?;
        let parsed = HostsCommand::parse(
            &c.value,
            super::lex::command_words,
            |t| self.token(t),
            |v| self.ctx.env.get(v).cloned(),
        );
        Some(Sourced::new(parsed, c.origin.clone()))
    }

    /// `%C`: the SHA1 of `%l%h%p%r`, in hex (OpenSSH 9.2's `ssh_connection_hash`).
    fn connection_hash(&self) -> String {
        exec::connection_hash(
            &self.ctx.local_host,
            &self.hostname.value,
            &self.port.value.to_string(),
            &self.user.value,
        )
    }

    /// `~`, `%` tokens and `${VAR}` in a path (IdentityFile, CertificateFile,
    /// UserKnownHostsFile, IdentityAgent), as ssh expands them.
    pub fn expand_path(&self, raw: &str) -> Result<String, expand::ExpandError> {
        // Most paths (the default identity and known_hosts files of every host) have no token
        // and no variable: one copy, not three.
        let t = expand::tilde(raw, &self.ctx.user_home);
        let t = if t.contains('%') {
            expand::percent(&t, |c| self.token(c))?
        } else {
            t
        };
        if t.contains('$') {
            expand::dollar(&t, |v| self.ctx.env.get(v).cloned())
        } else {
            Ok(t)
        }
    }

    pub(super) fn expand_forward(&self, mut f: Forward) -> Result<Forward, expand::ExpandError> {
        use crate::config::forward::Endpoint;
        let fix = |e: &mut Endpoint| -> Result<(), expand::ExpandError> {
            if let Endpoint::Unix(p) = e {
                *p = expand::percent(&p.to_string_lossy(), |c| self.token(c))?.into();
            }
            Ok(())
        };
        fix(&mut f.listen)?;
        if let Some(c) = f.connect.as_mut() {
            fix(c)?;
        }
        Ok(f)
    }
}
