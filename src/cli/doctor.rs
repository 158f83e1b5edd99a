//! `warren doctor NAME [--json] [--report]`: the diagnostics, each step shown as it finishes
//! with its mark, time and, on trouble, the likely cause and the fix. Exit 0 if no step
//! failed, 1 if one did, 2 for an unknown name.

use std::io::Write;

use std::sync::Arc;

use super::ask::{self, TerminalAsker};
use super::exit;
use crate::config::Catalog;
use crate::diagnose::{self, Status, Step};
use crate::prompt::{Answer, Notice, Prompter};
use crate::text::escape;

fn mark(s: Status) -> &'static str {
    match s {
        Status::Pass => "ok  ",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
        Status::Skip => "skip",
    }
}

/// One step as a line (and its hint on the next), for the terminal and the report. The
/// detail and hint quote servers and config files: their control characters are escaped.
pub fn step_text(s: &Step) -> String {
    styled_step(s, false)
}

/// [`step_text`], its mark coloured when `colour` (for the terminal; the stream drops the
/// colour where it is off).
fn styled_step(s: &Step, colour: bool) -> String {
    let mark = match (colour, s.status) {
        (false, st) => mark(st).to_string(),
        (true, Status::Pass) => super::style::paint(super::style::OK, mark(s.status)),
        (true, Status::Warn) => super::style::paint(super::style::WARN, mark(s.status)),
        (true, Status::Fail) => super::style::paint(super::style::FAIL, mark(s.status)),
        (true, Status::Skip) => super::style::paint(super::style::DIM, mark(s.status)),
    };
    let mut line = format!(
        "[{mark}] hop {} {:<9} {:>6} ms  {}",
        s.hop,
        s.id,
        s.duration_ms,
        escape(&s.detail)
    );
    if let Some(h) = &s.hint {
        line.push_str(&format!("\n       -> {}", escape(h)));
    }
    line
}

pub async fn run(
    catalog: &Catalog,
    name: &str,
    json: bool,
    report: bool,
    deep: bool,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let conn = match catalog.find(name) {
        Ok(c) => c.clone(),
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape(&e.to_string()));
            return exit::BAD_CONFIG;
        }
    };
    let live = !json && !report;
    if live {
        let via = conn
            .hops
            .iter()
            .map(|h| h.address())
            .collect::<Vec<_>>()
            .join(" -> ");
        let _ = writeln!(
            out,
            "doctor {}: {}",
            escape(&conn.display_name),
            escape(if via.is_empty() { "direct" } else { &via })
        );
        let _ = out.flush();
    }
    let mut print = |s: &Step| {
        if live {
            let _ = writeln!(out, "{}", styled_step(s, true));
            let _ = out.flush();
        }
    };
    // On a terminal, questions (an unknown host key under `ask`, a passphrase) are asked
    // there; otherwise nobody is asked and nothing is written.
    let (atx, mut arx) = tokio::sync::mpsc::unbounded_channel::<(u64, Answer)>();
    let asker = if live && ask::available() {
        TerminalAsker::start(move |id, a| {
            let _ = atx.send((id, a));
        })
    } else {
        None
    };
    let (ntx, mut nrx) = tokio::sync::mpsc::unbounded_channel::<Notice>();
    let prompter = Arc::new(if asker.is_some() {
        Prompter::new(true, move |n| {
            let _ = ntx.send(n);
        })
    } else {
        Prompter::headless()
    });
    let p = Arc::clone(&prompter);
    let answers = tokio::spawn(async move {
        while let Some((id, a)) = arx.recv().await {
            p.answer(id, a);
        }
    });
    let result = {
        let walk = diagnose::run_deep(&conn, false, deep, &prompter, &mut print);
        tokio::pin!(walk);
        loop {
            tokio::select! {
                r = &mut walk => break r,
                Some(n) = nrx.recv() => {
                    if let Some(a) = &asker {
                        a.notice(n);
                    }
                }
            }
        }
    };
    if let Some(a) = asker {
        a.stop().await;
    }
    answers.abort();
    if json {
        let _ = serde_json::to_writer_pretty(&mut *out, &result);
        let _ = writeln!(out);
    } else if report {
        let _ = writeln!(
            out,
            "warren doctor report: {}\n",
            escape(&conn.display_name)
        );
        for s in &result.steps {
            let _ = writeln!(out, "{}", step_text(s));
        }
        let _ = writeln!(
            out,
            "\nresult: {}\n\neffective settings (secrets redacted):",
            if result.ok {
                "no step failed"
            } else {
                "a step FAILED"
            }
        );
        super::show::human(&conn, out);
    } else {
        let _ = writeln!(
            out,
            "{}",
            if result.ok {
                "no step failed"
            } else {
                "a step failed: see the hint under it"
            }
        );
    }
    if result.ok { exit::OK } else { exit::FAILED }
}
