//! How long warren takes to load configs with 10,000 hosts: ssh_config (parse, then resolve
//! every host as `ssh -G` would, jump chains included) and epoch.toml (10,000 entries).
//! Prints a table (median of 7 runs) and writes target/bench-config-load.json.
//!
//! Run: `cargo bench --bench config_load`

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use warren::config::{Catalog, Context, Paths};

const HOSTS: usize = 10_000;
const RUNS: usize = 7;

/// A realistic large ssh_config: defaults first and last, wildcard blocks, a Match block,
/// jump hosts, forwards, and a drop-in Include.
fn ssh_config(dir: &std::path::Path) -> PathBuf {
    let mut s =
        String::from("Host *\n    ServerAliveInterval 30\n\nHost *.staging\n    User staging\n\n");
    for i in 0..HOSTS {
        let _ = write!(
            s,
            "Host host{i}\n    HostName 10.{}.{}.{}\n    User user{i}\n    IdentityFile ~/.ssh/id_{}\n",
            i / 65536,
            (i / 256) % 256,
            i % 256,
            i % 7
        );
        if i % 3 == 0 {
            let _ = writeln!(s, "    ProxyJump host{}", i / 3 + 1);
        }
        if i % 2 == 0 {
            let _ = writeln!(
                s,
                "    LocalForward {} db{i}.internal:5432",
                20000 + i % 40000
            );
        }
        s.push('\n');
    }
    s.push_str("Include conf.d/*.conf\n\nMatch user deploy*\n    IdentitiesOnly yes\n\nHost *\n    User fallback\n    StrictHostKeyChecking accept-new\n");
    std::fs::create_dir_all(dir.join(".ssh/conf.d")).expect("mkdir");
    std::fs::write(
        dir.join(".ssh/conf.d/extra.conf"),
        "Host extra\n    HostName extra.example\n",
    )
    .expect("write");
    let p = dir.join(".ssh/config");
    std::fs::write(&p, s).expect("write");
    p
}

fn epoch_toml(dir: &std::path::Path) -> PathBuf {
    let mut s = String::from("metadata_url = \"postgresql://meta\"\n\n");
    for i in 0..HOSTS {
        let _ = write!(
            s,
            "[storage.postgres.db{i}]\nhost = \"db{i}.internal\"\ndatabase = \"app\"\nusername = \"reader\"\n\n[storage.postgres.db{i}.ssh_tunnel]\nhost = \"bastion{}.example.com\"\nuser = \"ops\"\nkey_file = \"~/.ssh/id_ed25519\"\n",
            i % 10
        );
        if i % 4 == 0 {
            s.push_str("jump_host = { host = \"edge.example.com\", port = 2222 }\n");
        }
        s.push('\n');
    }
    let p = dir.join("epoch.toml");
    std::fs::write(&p, s).expect("write");
    p
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn measure(paths: &Paths, ctx: &Arc<Context>, expect: usize) -> (Duration, Duration, Duration) {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let catalog = Catalog::load(paths, Arc::clone(ctx));
        times.push(t.elapsed());
        assert!(
            catalog.connections.len() >= expect,
            "loaded {} connections",
            catalog.connections.len()
        );
        assert!(catalog.problems.is_empty(), "{:?}", &catalog.problems[..1]);
    }
    let min = *times.iter().min().unwrap_or(&Duration::ZERO);
    let max = *times.iter().max().unwrap_or(&Duration::ZERO);
    (median(times), min, max)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ctx = Arc::new(Context::new(
        dir.path().to_path_buf(),
        "deploy",
        Default::default(),
    ));
    let ssh = ssh_config(dir.path());
    let epoch = epoch_toml(dir.path());
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").expect("write");
    let none = dir.path().join("none.toml");
    std::fs::write(&none, "").expect("write");

    let cases = [
        (
            "ssh_config, 10,000 hosts",
            Paths {
                ssh_config: Some(ssh.clone()),
                epoch: Some(none.clone()),
                known_hosts: None,
                epoch_is_project: false,
            },
            HOSTS,
        ),
        (
            "epoch.toml, 10,000 entries",
            Paths {
                ssh_config: Some(empty.clone()),
                epoch: Some(epoch.clone()),
                known_hosts: None,
                epoch_is_project: false,
            },
            HOSTS,
        ),
        (
            "both",
            Paths {
                ssh_config: Some(ssh),
                epoch: Some(epoch),
                known_hosts: None,
                epoch_is_project: false,
            },
            2 * HOSTS,
        ),
    ];
    println!(
        "{:<30} {:>12} {:>12} {:>12}",
        "config load (median of 7)", "median", "min", "max"
    );
    let mut json = Vec::new();
    for (name, paths, expect) in &cases {
        let (med, min, max) = measure(paths, &ctx, *expect);
        println!(
            "{name:<30} {:>10.1}ms {:>10.1}ms {:>10.1}ms",
            ms(med),
            ms(min),
            ms(max)
        );
        json.push(format!(
            "{{\"case\":\"{name}\",\"median_ms\":{:.2},\"min_ms\":{:.2},\"max_ms\":{:.2}}}",
            ms(med),
            ms(min),
            ms(max)
        ));
    }
    let target =
        PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()));
    let _ = std::fs::create_dir_all(&target);
    let out = target.join("bench-config-load.json");
    if std::fs::write(&out, format!("[{}]\n", json.join(","))).is_ok() {
        println!("written: {}", out.display());
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
