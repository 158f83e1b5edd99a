//! The headless commands: each file one command, each a client of the config model (and, in
//! later commands, of the engine). Output goes to stdout, problems to stderr.

pub mod ask;
pub mod daemon;
pub mod doctor;
pub mod exec;
pub mod launchd;
pub mod list;
pub mod logs;
pub mod service;
pub mod setup;
pub mod show;
pub mod style;
pub mod trust;
pub mod up;

use std::io::Write;

use crate::config::{Catalog, Problem};

/// Exit codes of the CLI contract.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const BAD_CONFIG: i32 = 2;
}

/// Prints every problem of the catalog to stderr, once.
pub fn report_problems(catalog: &Catalog, err: &mut dyn Write) {
    for p in &catalog.problems {
        print_problem(p, err);
    }
}

/// A problem as its `Display` writes it, but each part quotes a config file: control
/// characters are escaped.
pub fn print_problem(p: &Problem, err: &mut dyn Write) {
    use crate::text::escape;
    let level = match p.severity {
        crate::config::Severity::Warning => "warning",
        crate::config::Severity::Error => "error",
    };
    let origin = p.origin.to_string();
    let _ = writeln!(err, "{level}: {}: {}", escape(&origin), escape(&p.message));
    if let Some(fix) = &p.fix {
        let _ = writeln!(err, "  fix: {}", escape(fix));
    }
}
