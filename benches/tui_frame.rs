//! The TUI with a 10,000-host config: the first frame (load, build the app, draw) and a
//! filter keystroke (update and redraw), median of 7, on ratatui's TestBackend at 120x36;
//! the first frame is also shown by part (config load, the app with its rows, the draw).
//! Each is wall time, and the CPU time of the thread doing it: on a machine shared with
//! other work the wall time grows with the load, the CPU time much less.
//!
//! Run: `cargo bench --bench tui_frame`

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use warren::config::{Catalog, Context, Paths};
use warren::tui::app::{Action, App, update};
use warren::tui::theme::{Theme, ThemeName};
use warren::tui::view::render;

const HOSTS: usize = 10_000;
const RUNS: usize = 7;

/// CPU time this thread has used.
fn cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: t is a valid out-parameter; the clock id is a constant libc knows.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// A wall clock and a CPU clock started together.
struct Clocks(Instant, Duration);

impl Clocks {
    fn start() -> Self {
        Clocks(Instant::now(), cpu())
    }
    fn elapsed(&self) -> (Duration, Duration) {
        (self.0.elapsed(), cpu().saturating_sub(self.1))
    }
}

fn ms(v: Vec<(Duration, Duration)>) -> String {
    let (wall, cpu): (Vec<Duration>, Vec<Duration>) = v.into_iter().unzip();
    format!(
        "{:.1} ms ({:.1} ms CPU)",
        median(wall).as_secs_f64() * 1000.0,
        median(cpu).as_secs_f64() * 1000.0
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = String::new();
    for i in 0..HOSTS {
        let _ = write!(
            cfg,
            "Host db{i}\n    HostName 10.{}.{}.{}\n    ProxyJump bastion{}\n    LocalForward {} db{i}.internal:5432\n\n",
            i / 65536,
            (i / 256) % 256,
            i % 256,
            i % 10,
            20000 + i % 40000
        );
    }
    cfg.push_str("Host *\n    User ops\n");
    let path = dir.path().join("ssh_config");
    std::fs::write(&path, cfg).expect("write");
    let none = dir.path().join("none.toml");
    std::fs::write(&none, "").expect("write");
    let paths = Paths {
        ssh_config: Some(path),
        epoch: Some(none),
        known_hosts: None,
        epoch_is_project: false,
    };
    let ctx = Arc::new(Context::new(
        dir.path().to_path_buf(),
        "ops",
        Default::default(),
    ));
    let theme = Theme::new(ThemeName::Dark);

    let (mut first, mut key) = (Vec::new(), Vec::new());
    let (mut load, mut build, mut draw) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let t = Clocks::start();
        let catalog = Catalog::load(&paths, Arc::clone(&ctx));
        load.push(t.elapsed());
        let t1 = Clocks::start();
        let mut app = App::new(catalog.connections, Vec::new());
        build.push(t1.elapsed());
        let t2 = Clocks::start();
        let mut term = Terminal::new(TestBackend::new(120, 36)).expect("terminal");
        term.draw(|f| render(&app, f, theme)).expect("draw");
        draw.push(t2.elapsed());
        first.push(t.elapsed());
        assert_eq!(app.connections.len(), HOSTS);

        update(
            &mut app,
            Action::Key(KeyEvent::new(KeyCode::Char('/'), KeyModifiers::NONE)),
        );
        let t = Clocks::start();
        update(
            &mut app,
            Action::Key(KeyEvent::new(KeyCode::Char('9'), KeyModifiers::NONE)),
        );
        term.draw(|f| render(&app, f, theme)).expect("draw");
        key.push(t.elapsed());
    }
    println!("TUI with {HOSTS} hosts (median of {RUNS}, 120x36):");
    println!("  first frame (load + app + draw):    {}", ms(first));
    println!(
        "    of which: load {}, app {}, draw {}",
        ms(load),
        ms(build),
        ms(draw)
    );
    println!("  a filter keystroke (update + draw): {}", ms(key));
}
