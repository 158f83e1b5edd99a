//! An entry's `sslmode` and `sslrootcert`: how the PostgreSQL and MySQL probes use TLS, in libpq's
//! words and with libpq's defaults (`prefer`; `~/.postgresql/root.crt`); and `channel_binding`,
//! whether the PostgreSQL probe's SCRAM login is bound to that TLS (libpq's default `prefer`).
//! A value that is not one of libpq's is an error naming the line, with the nearest value as
//! the fix; a key that is one typo away from these is a warning (the entry's other keys belong
//! to Horizon Epoch and are not checked).

use super::fields::{Findings, Table, closest};
use crate::config::model::{ChannelBindingMode, RootCert, SslMode};
use crate::config::origin::{Problem, Sourced};

const KEYS: [&str; 2] = ["sslmode", "sslrootcert"];

/// The entry's `channel_binding` (default `prefer`, as libpq); `None` when it is wrong (the
/// problem is in `f`). Only the PostgreSQL probe binds: on another engine the key is a warning.
pub(super) fn channel_binding(
    engine: &str,
    t: &Table,
    f: &mut Findings,
) -> Option<Sourced<ChannelBindingMode>> {
    t.near_misses(&["channel_binding"], "", f);
    let mode = match t.string("channel_binding", f) {
        None if t.item("channel_binding").is_some() => return None,
        None => return Some(Sourced::default_value(ChannelBindingMode::Prefer)),
        Some(v) => v,
    };
    let Some(m) = ChannelBindingMode::parse(mode.value.trim()) else {
        f.push(not_one_of(
            t,
            "channel_binding",
            "a channel_binding",
            &mode,
            &ChannelBindingMode::NAMES,
            None,
        ));
        return None;
    };
    if !matches!(
        engine.to_ascii_lowercase().as_str(),
        "postgres" | "postgresql"
    ) {
        f.push(
            Problem::warning(
                mode.origin.clone(),
                format!(
                    "{}.channel_binding is ignored: only the PostgreSQL probe binds its login to TLS",
                    t.name
                ),
            )
            .with_fix("remove channel_binding"),
        );
    }
    Some(Sourced::new(m, mode.origin))
}

/// The entry's TLS settings, with their origins; `None` when one of them is wrong (the
/// problem is in `f`).
pub(super) fn settings(
    engine: &str,
    t: &Table,
    f: &mut Findings,
) -> Option<(Sourced<SslMode>, Sourced<RootCert>)> {
    let mysql = matches!(engine.to_ascii_lowercase().as_str(), "mysql" | "mariadb");
    if mysql && let Some(r) = mysql_names(t, f) {
        return r;
    }
    // `ssl_mode`, `sslmod`, `ssl_root_cert` and the like.
    t.near_misses(&KEYS, "ssl", f);
    let mode = match t.string("sslmode", f) {
        None if t.item("sslmode").is_some() => return None,
        None => Sourced::default_value(SslMode::Prefer),
        Some(v) => match SslMode::parse(v.value.trim()) {
            Some(m) => Sourced::new(m, v.origin),
            None => {
                let allow = (v.value == "allow").then(|| "warren does not try without TLS first: write sslmode = \"prefer\" (TLS when offered) or \"disable\"".to_string());
                f.push(not_one_of(
                    t,
                    "sslmode",
                    "an sslmode",
                    &v,
                    &SslMode::NAMES,
                    allow,
                ));
                return None;
            }
        },
    };
    let root = match t.string("sslrootcert", f) {
        None if t.item("sslrootcert").is_some() => return None,
        None => Sourced::default_value(RootCert::File(
            t.src.ctx.home.join(".postgresql").join("root.crt"),
        )),
        Some(v) if v.value == "system" => Sourced::new(RootCert::System, v.origin),
        Some(v) => v.map(|p| RootCert::File(t.src.resolve(&p))),
    };
    if root.value == RootCert::System && mode.value != SslMode::VerifyFull {
        // As libpq: the system's roots vouch for any name they signed, so only the name check
        // makes them mean something.
        f.push(
            Problem::error(
                root.origin.clone(),
                format!(
                    "{}: sslrootcert = \"system\" needs sslmode = \"verify-full\" (it is {})",
                    t.name, mode.value
                ),
            )
            .with_fix("write sslmode = \"verify-full\""),
        );
        return None;
    }
    let has_tls = matches!(
        engine.to_ascii_lowercase().as_str(),
        "postgres"
            | "postgresql"
            | "mysql"
            | "mariadb"
            | "mongodb"
            | "mongo"
            | "redis"
            | "mssql"
            | "sqlserver"
    );
    for (key, origin) in [("sslmode", &mode.origin), ("sslrootcert", &root.origin)] {
        if !has_tls && t.item(key).is_some() {
            f.push(
                Problem::warning(
                    origin.clone(),
                    format!(
                        "{}.{key} is ignored: the probe of this engine does not use TLS",
                        t.name
                    ),
                )
                .with_fix(format!("remove {key}")),
            );
        }
    }
    Some((mode, root))
}

/// A MySQL entry written with the mysql client's names, `ssl_mode` (DISABLED ... VERIFY_IDENTITY)
/// and `ssl_ca`: the same settings; `None` when it uses neither (the libpq names are read
/// then). Both spellings of one setting in one entry are an error.
fn mysql_names(
    t: &Table,
    f: &mut Findings,
) -> Option<Option<(Sourced<SslMode>, Sourced<RootCert>)>> {
    if t.item("ssl_mode").is_none() && t.item("ssl_ca").is_none() {
        return None;
    }
    for (ours, theirs) in [("sslmode", "ssl_mode"), ("sslrootcert", "ssl_ca")] {
        if let (Some((_, o)), Some(_)) = (t.item(ours), t.item(theirs)) {
            f.push(
                Problem::error(o, format!("{}: both {ours} and {theirs} are set", t.name))
                    .with_fix(format!(
                        "keep one of them ({theirs} is the mysql client's name for {ours})"
                    )),
            );
            return Some(None);
        }
    }
    let mode = match t.string("ssl_mode", f) {
        None if t.item("ssl_mode").is_some() => return Some(None),
        None => match t.string("sslmode", f) {
            Some(v) => match SslMode::parse(v.value.trim()) {
                Some(m) => Sourced::new(m, v.origin),
                None => {
                    f.push(
                        Problem::error(
                            v.origin,
                            format!(
                                "{}.sslmode: '{}' is not an sslmode ({})",
                                t.name,
                                v.value,
                                SslMode::NAMES.join(", ")
                            ),
                        )
                        .with_fix(format!("write one of: {}", SslMode::NAMES.join(", "))),
                    );
                    return Some(None);
                }
            },
            None => Sourced::default_value(SslMode::Prefer),
        },
        Some(v) => match SslMode::parse_mysql(v.value.trim()) {
            Some(m) => Sourced::new(m, v.origin),
            None => {
                f.push(
                    Problem::error(
                        v.origin,
                        format!(
                            "{}.ssl_mode: '{}' is not an ssl_mode ({})",
                            t.name,
                            v.value,
                            SslMode::MYSQL_NAMES.join(", ")
                        ),
                    )
                    .with_fix(format!("write one of: {}", SslMode::MYSQL_NAMES.join(", "))),
                );
                return Some(None);
            }
        },
    };
    let root = match t.string("ssl_ca", f).or_else(|| t.string("sslrootcert", f)) {
        Some(v) if v.value == "system" => Sourced::new(RootCert::System, v.origin),
        Some(v) => v.map(|p| RootCert::File(t.src.resolve(&p))),
        None => Sourced::default_value(RootCert::File(
            t.src.ctx.home.join(".postgresql").join("root.crt"),
        )),
    };
    Some(Some((mode, root)))
}

/// `NAME.KEY: 'VALUE' is not WHAT (the names)`: an error whose fix is the nearest name,
/// else `otherwise`, else the list to choose from.
fn not_one_of(
    t: &Table,
    key: &str,
    what: &str,
    v: &Sourced<String>,
    names: &[&str],
    otherwise: Option<String>,
) -> Problem {
    let fix = closest(&v.value.to_ascii_lowercase(), names)
        .map(|best| format!("did you mean '{best}'?"))
        .or(otherwise)
        .unwrap_or_else(|| format!("write one of: {}", names.join(", ")));
    Problem::error(
        v.origin.clone(),
        format!(
            "{}.{key}: '{}' is not {what} ({})",
            t.name,
            v.value,
            names.join(", ")
        ),
    )
    .with_fix(fix)
}
