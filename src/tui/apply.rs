//! The setup form's answers carried out by the loop (this is where the files are read and
//! written), through the same `setup::plan`, `setup::summary` and `setup::apply` as
//! `warren setup`. Errors come back with the form's field to fix.

use std::path::PathBuf;
use std::sync::Arc;

use super::wizard::{Answers, Failure, Field, KeyKind, Saved, field_of};
use crate::config::{Catalog, Context, Paths};
use crate::setup::{self, KeyChoice, SetupError};

fn failure(e: SetupError) -> Failure {
    Failure {
        field: e.question().map(field_of),
        message: e.to_string(),
    }
}

/// The plan for the answers and the epoch.toml it goes into.
fn plan(a: &Answers, ctx: &Context, paths: &Paths) -> Result<(setup::Plan, PathBuf), Failure> {
    let path = || PathBuf::from(crate::config::expand::tilde(&a.key_path, &ctx.home));
    let key = match a.key {
        KeyKind::Agent => KeyChoice::Agent,
        KeyKind::Existing => KeyChoice::Existing(path()),
        KeyKind::New => KeyChoice::Generate(path()),
    };
    // A bastion named by a ~/.ssh/config alias reuses its settings.
    let catalog = Catalog::load(paths, Arc::new(ctx.clone()));
    let from_alias = setup::from_ssh_alias(&catalog.ssh, &a.bastion);
    let bastion = from_alias
        .as_ref()
        .map(|fa| fa.bastion.to_string())
        .unwrap_or_else(|| a.bastion.clone());
    let mut plan = setup::plan(
        &a.name,
        &a.engine,
        &a.target,
        &bastion,
        a.jump.as_deref(),
        key,
    )
    .map_err(|e| Failure {
        field: Some(field_of(e.question)),
        message: e.message,
    })?;
    // The alias's ProxyJump comes along unless a jump host was given.
    if a.jump.is_none() {
        plan.jump_alias = from_alias.and_then(|fa| fa.jump_alias);
    }
    let (epoch, _) = crate::config::load::epoch_path(paths, ctx);
    Ok((plan, epoch))
}

/// What will be written, checked against the files; nothing is written.
pub fn review(a: &Answers, ctx: &Context, paths: &Paths) -> Result<Vec<String>, Failure> {
    let (plan, epoch) = plan(a, ctx, paths)?;
    setup::summary(&plan, &epoch, false, a.passphrase.is_some(), &ctx.home).map_err(failure)
}

/// Writes the key and the entry: the entry's name and the bastion's instructions.
pub fn save(a: &Answers, ctx: &Context, paths: &Paths) -> Result<Saved, Failure> {
    let (plan, epoch) = plan(a, ctx, paths)?;
    let done = setup::apply(
        &plan,
        a.passphrase.as_ref().map(|p| p.expose()),
        &epoch,
        false,
        ctx,
    )
    .map_err(|e| match e {
        // A directory or file that cannot be written is not one field's fault, except the
        // key's own directory.
        SetupError::Write { ref path, .. }
            if matches!(plan.key, KeyChoice::Generate(ref k) if k.parent() == Some(path.as_path()) || k == path) =>
        {
            Failure {
                field: Some(Field::KeyPath),
                message: e.to_string(),
            }
        }
        e => failure(e),
    })?;
    Ok(Saved {
        name: a.name.clone(),
        text: format!("{}\nsaved in {}", done.text, epoch.display()),
        authorized_keys: done.authorized_keys,
    })
}

/// Writes the bastion's instructions to `~/warren-NAME-bastion.txt` (replacing an earlier
/// copy, atomically), so they can be copied to the bastion whole; returns the path.
pub fn write_instructions(name: &str, text: &str, ctx: &Context) -> Result<PathBuf, String> {
    let path = ctx.home.join(format!("warren-{name}-bastion.txt"));
    crate::fsutil::write_atomic(&path, text.as_bytes(), 0o644)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}
