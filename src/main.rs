//! The `warren` binary: parses the command line and hands it to a command. Nothing else,
//! but for the two commands about the command line itself: `completions` (clap_complete's
//! dynamic completion, so connection names are completed from the configs as they are now)
//! and `man` (clap_mangen).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::{ArgValueCandidates, CompletionCandidate};
use warren::cli;
use warren::config::{Catalog, Context, Paths};

/// SSH tunnels to private databases: list, open, diagnose.
#[derive(Parser)]
#[command(name = "warren", version = env!("WARREN_VERSION"), about)]
struct Cli {
    /// Read this ssh_config instead of ~/.ssh/config and /etc/ssh/ssh_config (like ssh -F).
    #[arg(long, global = true, value_name = "PATH")]
    ssh_config: Option<PathBuf>,
    /// Read this epoch.toml (default: $EPOCH_CONFIG, ./epoch.toml, ~/.config/epoch/epoch.toml).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Check host keys against this known_hosts file only.
    #[arg(long, global = true, value_name = "PATH")]
    known_hosts: Option<PathBuf>,
    /// More detail (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Run no command from ssh_config (ProxyCommand, Match exec, KnownHostsCommand): a host
    /// that needs one is refused, naming the line. Also WARREN_NO_EXEC=1.
    #[arg(long, global = true)]
    no_exec: bool,
    /// Colour on the terminal: auto (when it is one and NO_COLOR is not set), always, never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    color: clap::ColorChoice,
    /// (For the daemon) the --config file is a directory's epoch.toml, which needs trust.
    #[arg(long, global = true, hide = true)]
    project_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Every connection: name, source, kind, local -> target, hops.
    List {
        /// One JSON array.
        #[arg(long)]
        json: bool,
        /// Only the connections with this tag.
        #[arg(long, value_name = "TAG")]
        tag: Option<String>,
    },
    /// Every effective setting of a connection, with where it came from.
    Show {
        /// A connection name (ssh:NAME / epoch:NAME when both files have it).
        #[arg(add = ArgValueCandidates::new(connection_names))]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Walk a connection step by step and say which step fails, why, and what to do.
    Doctor {
        #[arg(add = ArgValueCandidates::new(connection_names))]
        name: String,
        /// The walk as one JSON document.
        #[arg(long)]
        json: bool,
        /// A copyable report: the walk and the effective settings, secrets redacted.
        #[arg(long)]
        report: bool,
        /// Also the checks that otherwise run only after a failure: a cloud bastion's CLI
        /// credentials (`aws sts get-caller-identity`, `gcloud auth print-access-token`).
        #[arg(long)]
        deep: bool,
    },
    /// Open connections' tunnels in the foreground, like `ssh -N`; Ctrl-C closes them.
    Up {
        /// Connection names, or @TAG for every connection with that tag.
        #[arg(required = true, add = ArgValueCandidates::new(connection_names))]
        names: Vec<String>,
        /// One JSON event a line.
        #[arg(long)]
        json: bool,
        /// Hand the tunnels to the per-user daemon and return: they outlive this terminal.
        #[arg(long)]
        detach: bool,
        /// Close them by themselves after this long (30s, 10m, 8h).
        #[arg(long = "for", value_name = "DURATION", value_parser = duration_secs)]
        for_secs: Option<u64>,
        /// A local port in use is replaced by the next free one (reported).
        #[arg(long)]
        port_fallback: bool,
        /// Listen now, open the SSH session when a client first connects, close it after
        /// idle_timeout (default 10m) with no client, and open it again for the next.
        #[arg(long)]
        on_demand: bool,
    },
    /// Push back the time limit of tunnels the daemon runs (by their max_duration again, or
    /// --by).
    Extend {
        #[arg(required = true, add = ArgValueCandidates::new(connection_names))]
        names: Vec<String>,
        #[arg(long, value_name = "DURATION", value_parser = duration_secs)]
        by: Option<u64>,
    },
    /// Run a command with the connection's tunnel open and its address in the environment
    /// (PGHOST/PGPORT/..., DATABASE_URL, WARREN_HOST, WARREN_PORT); exits with its code.
    Exec {
        #[arg(add = ArgValueCandidates::new(connection_names))]
        name: String,
        /// Also put the password (password / password_file) in the environment.
        #[arg(long)]
        with_password: bool,
        /// The command and its arguments (after --).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Open the connection and run its database's own client (psql, mysql, redis-cli,
    /// mongosh, sqlcmd) on this terminal.
    Connect {
        #[arg(add = ArgValueCandidates::new(connection_names))]
        name: String,
        /// Give the client the password too (PGPASSWORD, MYSQL_PWD, REDISCLI_AUTH, ...).
        #[arg(long)]
        with_password: bool,
    },
    /// Print the connection for a client: a URL, a DSN, a JDBC URL, environment variables or
    /// a client command line (the running tunnel's local port, or the configured one).
    Url {
        #[arg(add = ArgValueCandidates::new(connection_names))]
        name: String,
        #[arg(long, value_enum, default_value = "url")]
        format: warren::handoff::Format,
        /// Include the password (never included otherwise).
        #[arg(long)]
        with_password: bool,
    },
    /// Record the host keys of a connection's hops in known_hosts, once a person confirms
    /// them (on the terminal, or with --fingerprint).
    Trust {
        #[arg(add = ArgValueCandidates::new(connection_names), required_unless_present = "repair")]
        name: Option<String>,
        /// A fingerprint (SHA256:...) checked with the host's owner; repeat for each hop.
        #[arg(long, value_name = "SHA256:...")]
        fingerprint: Vec<String>,
        /// First remove the hashed lines an earlier warren wrote corrupted from the user's
        /// known_hosts files (NAME's, or every connection's and ~/.ssh/known_hosts).
        #[arg(long)]
        repair: bool,
    },
    /// Trust a project's epoch.toml (default ./epoch.toml) once you have read it. Until then
    /// its entries run no command, read no file outside its directory and change no host-key
    /// setting; a changed file needs trusting again.
    TrustConfig {
        path: Option<PathBuf>,
        /// Forget the file instead: its entries are restricted again.
        #[arg(long)]
        revoke: bool,
    },
    /// What the daemon runs: state, local address, target, uptime, bytes, reconnects.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The daemon's and the TUI's logs, in time order (only NAME's lines with a NAME).
    Logs {
        #[arg(add = ArgValueCandidates::new(connection_names))]
        name: Option<String>,
        /// Keep printing new lines as they are written.
        #[arg(short, long, conflicts_with = "audit")]
        follow: bool,
        /// The audit log instead: what warren did and who asked (see the README).
        #[arg(long)]
        audit: bool,
        /// With --audit: the records as they are, one JSON object a line.
        #[arg(long, requires = "audit")]
        json: bool,
    },
    /// Re-establish the SSH sessions of tunnels the daemon runs, now (all when no NAME).
    Reconnect {
        #[arg(add = ArgValueCandidates::new(connection_names))]
        names: Vec<String>,
    },
    /// Close tunnels the daemon runs.
    #[command(override_usage = "warren down <NAME|@TAG>... | --all")]
    Down {
        /// The tunnels to close (NAME or @TAG); `--all` for every one.
        #[arg(add = ArgValueCandidates::new(connection_names), required_unless_present = "all")]
        names: Vec<String>,
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// Guided first-time setup: key, bastion instructions, the epoch.toml entry, a test.
    Setup(cli::setup::Answers),
    /// The TUI against an embedded demo: bastions and a database on loopback, removed on exit.
    Demo,
    /// A systemd unit that runs `warren up NAME...` (install, uninstall, status).
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// Print a shell's completion script (connection names complete too): add
    /// `source <(warren completions bash)` to ~/.bashrc, or the line for your shell.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the manual page (roff): `warren man | man -l -`.
    Man,
    /// The daemon itself (started by `up --detach`).
    #[command(hide = true)]
    Daemon,
}

/// `30s`, `10m`, `8h`, `1d`, or seconds: a whole number of seconds, at least one.
fn duration_secs(s: &str) -> Result<u64, String> {
    match warren::config::epoch::parse_duration(s) {
        Some(d) if d >= 1.0 => Ok(d.round() as u64),
        _ => Err(format!("'{s}' is not a duration: write 30s, 10m, 8h or 1d")),
    }
}

/// The runtime of the network commands. Single-threaded by default, like ssh: the bytes of a
/// connection pass through three tasks, and on one thread that is a function call where on
/// many it is a wake-up across cores (measured: see the README's performance section).
/// `WARREN_THREADS=N` gives a multi-threaded one.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    match std::env::var("WARREN_THREADS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(n) if n > 1 => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
}

/// The process's stderr, its `error:`/`warning:` coloured where colour is on.
type Stderr<W> = warren::cli::style::Stderr<anstream::AutoStream<W>>;

/// Runs an async command on a fresh runtime with stdout and stderr (colour where it is on).
fn with_runtime<F, Fut>(f: F) -> i32
where
    F: FnOnce((anstream::Stdout, Stderr<std::io::Stderr>)) -> Fut,
    Fut: std::future::Future<Output = i32>,
{
    match runtime() {
        Ok(r) => r.block_on(f((
            anstream::stdout(),
            warren::cli::style::Stderr::new(anstream::stderr()),
        ))),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            cli::exit::FAILED
        }
    }
}

/// A tunnel holds two descriptors per connection: lift the soft limit on open files to the
/// hard one (often 1024 -> 1048576), as a busy `ssh -L` would need too.
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid out-parameter for getrlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < lim.rlim_max
    {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: lim is a valid, initialised rlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

#[derive(Subcommand)]
enum ServiceAction {
    /// Write the unit (prints the enable / start commands unless --now).
    Install {
        #[arg(required = true, add = ArgValueCandidates::new(connection_names))]
        names: Vec<String>,
        /// A system unit in /etc/systemd/system instead of a user unit: it runs as the user
        /// who ran sudo (or --user), sandboxed.
        #[arg(long)]
        system: bool,
        /// The user a system unit runs as (default: the user who ran sudo; never root).
        #[arg(long, value_name = "NAME", requires = "system")]
        user: Option<String>,
        /// Also run systemctl daemon-reload and enable --now.
        #[arg(long, conflicts_with = "print")]
        now: bool,
        /// Print the unit to stdout instead of writing it.
        #[arg(long)]
        print: bool,
        /// The service listens at once and opens each SSH session when a client first
        /// connects (as `warren up --on-demand`).
        #[arg(long)]
        on_demand: bool,
    },
    /// Remove the unit.
    Uninstall {
        #[arg(required = true, add = ArgValueCandidates::new(connection_names))]
        names: Vec<String>,
        #[arg(long)]
        system: bool,
    },
    /// Whether the unit is installed and running.
    Status {
        #[arg(required = true, add = ArgValueCandidates::new(connection_names))]
        names: Vec<String>,
        #[arg(long)]
        system: bool,
    },
}

/// The shells `warren completions` writes a script for.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

/// Connection names for the shell's completion, from the configs the command line being
/// completed names (`--config`, `--ssh-config`), else the default ones.
fn connection_names() -> Vec<CompletionCandidate> {
    // While completing, the words typed so far are this process's arguments.
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.windows(2)
            .find(|w| w[0] == name)
            .map(|w| PathBuf::from(&w[1]))
            .or_else(|| {
                args.iter()
                    .find_map(|a| a.strip_prefix(&format!("{name}=")).map(PathBuf::from))
            })
    };
    let paths = Paths {
        ssh_config: flag("--ssh-config"),
        epoch: flag("--config"),
        known_hosts: None,
        epoch_is_project: false,
    };
    let mut ctx = Context::from_process();
    if args.iter().any(|a| a == "--no-exec") {
        ctx.env.insert(
            warren::config::context::NO_EXEC_VAR.to_string(),
            "1".to_string(),
        );
    }
    Catalog::load(&paths, Arc::new(ctx))
        .connections
        .iter()
        .map(|c| {
            CompletionCandidate::new(&c.display_name)
                .help(c.target().map(|t| format!("{} {t}", c.kind()).into()))
        })
        .collect()
}

/// `warren completions SHELL`: the registration script of clap_complete's dynamic completion
/// (the shell calls warren back with `COMPLETE=SHELL` to complete a word).
fn completions(shell: Shell, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let name = match shell {
        Shell::Bash => "bash",
        Shell::Zsh => "zsh",
        Shell::Fish => "fish",
        Shell::Elvish => "elvish",
        Shell::Powershell => "powershell",
    };
    // The script calls this binary: by the name it was run by, or its absolute path.
    let argv0 = std::env::args().next().unwrap_or_else(|| "warren".into());
    let completer = if argv0.contains('/') {
        std::path::absolute(&argv0)
            .map(|p| p.display().to_string())
            .unwrap_or(argv0)
    } else {
        argv0
    };
    match clap_complete::env::Shells::builtins().completer(name) {
        Some(c) => c.write_registration("COMPLETE", "warren", "warren", &completer, out),
        None => Err(std::io::Error::other(format!("no completion for {name}"))),
    }
}

fn main() -> ExitCode {
    // `COMPLETE=bash warren ...`: the shell asks for completions; answered, then exit.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                cli::exit::BAD_CONFIG
            } else {
                cli::exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    warren::cli::style::init(cli.color);
    if cli.no_exec {
        // Every part of warren reads it from the environment, and a daemon started from here
        // inherits it.
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var(warren::config::context::NO_EXEC_VAR, "1") };
    }
    // Absolute, so that a daemon started from here reads the same files from anywhere.
    let abs = |p: Option<PathBuf>| p.map(|p| std::path::absolute(&p).unwrap_or(p));
    let paths = Paths {
        ssh_config: abs(cli.ssh_config),
        epoch: abs(cli.config),
        known_hosts: abs(cli.known_hosts),
        epoch_is_project: cli.project_config,
    };
    // Read only by the commands that use it: `status`, `logs`, `daemon` and the like read no
    // config, so they run none of its commands (a `Match exec`) either.
    let catalog = {
        let paths = paths.clone();
        std::cell::LazyCell::new(move || Catalog::load(&paths, Arc::new(Context::from_process())))
    };
    let (mut out, mut err) = (
        anstream::AutoStream::auto(std::io::stdout().lock()),
        warren::cli::style::Stderr::new(anstream::AutoStream::auto(std::io::stderr().lock())),
    );
    let code = match cli.command {
        // On a terminal, the TUI; piped, the list (for scripts).
        None if std::io::IsTerminal::is_terminal(&std::io::stdout())
            && std::io::IsTerminal::is_terminal(&std::io::stdin()) =>
        {
            drop((out, err));
            let verbose = cli.verbose > 0;
            with_runtime(|_| async move {
                match warren::tui::run(paths, Arc::new(Context::from_process()), verbose, false)
                    .await
                {
                    Ok(()) => cli::exit::OK,
                    Err(e) => {
                        eprintln!("error: the terminal failed: {e}");
                        cli::exit::FAILED
                    }
                }
            })
        }
        None => cli::list::run(&catalog, false, None, &mut out, &mut err),
        Some(Command::List { json, tag }) => {
            cli::list::run(&catalog, json, tag.as_deref(), &mut out, &mut err)
        }
        Some(Command::Show { name, json }) => {
            cli::show::run(&catalog, &name, json, &mut out, &mut err)
        }
        Some(Command::Up {
            names,
            json,
            detach: true,
            for_secs,
            port_fallback,
            on_demand,
        }) => {
            drop((out, err));
            let ctx = Arc::new(Context::from_process());
            with_runtime(|(mut o, mut e)| async move {
                let ask = cli::daemon::Detach {
                    names: &names,
                    json,
                    for_secs,
                    port_fallback,
                    on_demand,
                };
                cli::daemon::up(&catalog, &ctx, &paths, ask, &mut o, &mut e).await
            })
        }
        Some(Command::Extend { names, by }) => {
            drop((out, err));
            let ctx = Context::from_process();
            with_runtime(|(mut o, mut e)| async move {
                cli::daemon::extend(&catalog, &ctx, &names, by, &mut o, &mut e).await
            })
        }
        Some(Command::Exec {
            name,
            with_password,
            command,
        }) => {
            drop((out, err));
            let ctx = Context::from_process();
            warren::audit::install(&ctx);
            with_runtime(|(_, mut e)| async move {
                cli::exec::exec(&catalog, &ctx, &name, &command, with_password, &mut e).await
            })
        }
        Some(Command::Connect {
            name,
            with_password,
        }) => {
            drop((out, err));
            let ctx = Context::from_process();
            warren::audit::install(&ctx);
            with_runtime(|(_, mut e)| async move {
                cli::exec::connect(&catalog, &ctx, &name, with_password, &mut e).await
            })
        }
        Some(Command::Url {
            name,
            format,
            with_password,
        }) => {
            drop((out, err));
            let ctx = Context::from_process();
            with_runtime(|(mut o, mut e)| async move {
                cli::exec::url(&catalog, &ctx, &name, format, with_password, &mut o, &mut e).await
            })
        }
        Some(Command::TrustConfig { path, revoke }) => {
            let ctx = Context::from_process();
            cli::trust::trust_config(&catalog, &ctx, path.as_deref(), revoke, &mut out, &mut err)
        }
        Some(Command::Trust {
            name,
            fingerprint,
            repair,
        }) => {
            drop((out, err));
            // The host keys it records are decisions for the audit log.
            warren::audit::install(&Context::from_process());
            with_runtime(|(mut o, mut e)| async move {
                if repair {
                    let code = cli::trust::repair(&catalog, name.as_deref(), &mut o, &mut e);
                    if code != 0 {
                        return code;
                    }
                }
                match name {
                    Some(name) => {
                        cli::trust::run(&catalog, &name, &fingerprint, &mut o, &mut e).await
                    }
                    None => 0,
                }
            })
        }
        Some(Command::Status { json }) => {
            drop((out, err));
            let ctx = Context::from_process();
            with_runtime(|(mut o, _)| async move {
                cli::daemon::status(&ctx, &paths, json, &mut o).await
            })
        }
        Some(Command::Logs {
            name,
            audit: true,
            json,
            ..
        }) => {
            let ctx = Context::from_process();
            cli::logs::audit(&ctx, name.as_deref(), json, &mut out, &mut err)
        }
        Some(Command::Logs { name, follow, .. }) => {
            drop((out, err));
            let ctx = Context::from_process();
            with_runtime(|(mut o, mut e)| async move {
                cli::logs::run(&ctx, name.as_deref(), follow, &mut o, &mut e).await
            })
        }
        Some(Command::Reconnect { names }) => {
            drop((out, err));
            let ctx = Context::from_process();
            with_runtime(|(mut o, mut e)| async move {
                cli::daemon::reconnect(&ctx, &names, &mut o, &mut e).await
            })
        }
        Some(Command::Down { names, all }) => {
            drop((out, err));
            let ctx = Context::from_process();
            with_runtime(|(mut o, mut e)| async move {
                cli::daemon::down(&catalog, &ctx, &names, all, &mut o, &mut e).await
            })
        }
        Some(Command::Setup(answers)) => {
            drop((out, err));
            let ctx = Arc::new(Context::from_process());
            with_runtime(|(mut o, mut e)| async move {
                cli::setup::run(&ctx, &paths, answers, &mut o, &mut e).await
            })
        }
        Some(Command::Demo) => {
            drop((out, err));
            let verbose = cli.verbose > 0;
            with_runtime(|_| async move {
                let ctx = Arc::new(Context::from_process());
                match warren::tui::run(Paths::default(), ctx, verbose, true).await {
                    Ok(()) => cli::exit::OK,
                    Err(e) => {
                        eprintln!("error: the demo failed: {e}");
                        cli::exit::FAILED
                    }
                }
            })
        }
        Some(Command::Service { action }) => {
            let ctx = Context::from_process();
            match action {
                ServiceAction::Install {
                    names,
                    system,
                    user,
                    now,
                    print,
                    on_demand,
                } => {
                    let ask = cli::service::Install {
                        names: &names,
                        system,
                        user: user.as_deref(),
                        now,
                        print,
                        on_demand,
                    };
                    cli::service::install(&catalog, &ctx, &paths, &ask, &mut out, &mut err)
                }
                ServiceAction::Uninstall { names, system } => {
                    cli::service::uninstall(&ctx, &names, system, &mut out, &mut err)
                }
                ServiceAction::Status { names, system } => {
                    cli::service::status(&ctx, &names, system, &mut out)
                }
            }
        }
        Some(Command::Completions { shell }) => match completions(shell, &mut out) {
            Ok(()) => cli::exit::OK,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                cli::exit::FAILED
            }
        },
        Some(Command::Man) => match clap_mangen::Man::new(Cli::command()).render(&mut out) {
            Ok(()) => cli::exit::OK,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                cli::exit::FAILED
            }
        },
        Some(Command::Daemon) => {
            drop((out, err));
            raise_nofile_limit();
            let ctx = Arc::new(Context::from_process());
            warren::logging::init(
                &ctx,
                "daemon.log",
                cli.verbose > 0 || std::env::var_os("WARREN_DEBUG").is_some(),
            );
            with_runtime(|_| async move {
                match warren::daemon::server::serve(paths, ctx).await {
                    Ok(()) => cli::exit::OK,
                    Err(e) => {
                        eprintln!("error: {e}");
                        cli::exit::FAILED
                    }
                }
            })
        }
        Some(Command::Up {
            names,
            json,
            detach: false,
            for_secs,
            port_fallback,
            on_demand,
        }) => {
            drop((out, err));
            raise_nofile_limit();
            if std::env::var_os(cli::launchd::SERVICE_ENV).is_some() {
                // Run by launchd: its log is where `warren logs` reads.
                warren::logging::init(&Context::from_process(), cli::launchd::LOG, cli.verbose > 0);
            }
            warren::audit::install(&Context::from_process());
            with_runtime(|(mut o, mut e)| async move {
                let opts = cli::up::Options {
                    json,
                    for_secs,
                    port_fallback,
                    on_demand,
                };
                // Read here, not through the shared cell: up lets go of it once it has its
                // connections.
                drop(catalog);
                let catalog = Catalog::load(&paths, Arc::new(Context::from_process()));
                cli::up::run(catalog, &names, opts, &mut o, &mut e).await
            })
        }
        Some(Command::Doctor {
            name,
            json,
            report,
            deep,
        }) => {
            drop((out, err));
            with_runtime(|(mut o, mut e)| async move {
                cli::doctor::run(&catalog, &name, json, report, deep, &mut o, &mut e).await
            })
        }
    };
    // Client connections' records still queued reach the audit log before warren goes.
    warren::audit::flush();
    ExitCode::from(code as u8)
}
