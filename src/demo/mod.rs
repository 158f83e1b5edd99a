//! `warren demo`: warren working with no infrastructure at all. In this process and on
//! loopback only: three SSH bastions (russh servers with their own host keys) that allow
//! direct-tcpip only to their private targets, a small database that speaks enough PostgreSQL
//! for the probe and for `select 1` in psql ([`database`]), and a throwaway config for them
//! in a temp dir. The connections show warren working, and failing: a bastion whose host key
//! changed, one that refuses the key, a database that is down. Everything is removed when
//! the [`World`] stops.
//!
//! `warren demo` opens the TUI on it; the TUI also starts it in process when `D` is pressed on
//! an empty list. This module starts servers only: it imports nothing of the TUI.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::ssh_key::{Algorithm, LineEnding, PrivateKey, PublicKey};
use russh::server::{self, Auth, Msg, Session};
use russh::{Channel, ChannelOpenFailure};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::config::Paths;

mod database;

/// Names the demo bastions route, and where each really is on loopback (`None`: down).
type Routes = Arc<HashMap<String, Option<u16>>>;

#[derive(Clone)]
struct Bastion {
    /// The one client key it accepts; `None`: it accepts no key.
    accepts: Option<PublicKey>,
    routes: Routes,
}

impl server::Handler for Bastion {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(match &self.accepts {
            Some(k) if k.key_data() == key.public_key.key_data() => Auth::Accept,
            _ => Auth::reject(),
        })
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _oa: &str,
        _op: u32,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(target) = self.routes.get(&format!("{host}:{port}")).copied() else {
            // Not one of its private targets: administratively prohibited, like PermitOpen.
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let connected = match target {
            Some(p) => {
                tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(("127.0.0.1", p)))
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            None => None,
        };
        match connected {
            Some(mut tcp) => {
                reply.accept().await;
                tokio::spawn(async move {
                    let mut stream = channel.into_stream();
                    let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
                });
            }
            None => reply.reject(ChannelOpenFailure::ConnectFailed).await,
        }
        Ok(())
    }
}

async fn serve_bastion(
    listener: TcpListener,
    key: PrivateKey,
    bastion: Bastion,
    stop: CancellationToken,
) {
    let config = Arc::new(server::Config {
        keys: vec![key],
        auth_rejection_time: Duration::from_millis(10),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(3600)),
        ..Default::default()
    });
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((sock, _)) = accepted else { continue };
        let (config, handler, stop) = (Arc::clone(&config), bastion.clone(), stop.clone());
        tokio::spawn(async move {
            if let Ok(session) = server::run_stream(config, sock, handler).await {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = session => {}
                }
            }
        });
    }
}

async fn bind() -> std::io::Result<(TcpListener, u16)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let p = l.local_addr()?.port();
    Ok((l, p))
}

fn random_key() -> std::io::Result<PrivateKey> {
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).map_err(std::io::Error::other)
}

/// The demo's servers and config, running in this process until [`World::stop`].
pub struct World {
    /// Removed when the world is dropped.
    _dir: tempfile::TempDir,
    stop: CancellationToken,
    /// The throwaway config: open the TUI (or load a catalog) with these.
    pub paths: Paths,
}

impl World {
    /// Stops the servers and removes the temp dir.
    pub async fn stop(self) {
        self.stop.cancel();
        // Let the servers notice before the temp dir goes (with `self`).
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts the demo world: bastions, the database and the config, all on loopback.
pub async fn start() -> std::io::Result<World> {
    let dir = tempfile::Builder::new().prefix("warren-demo-").tempdir()?;
    let stop = CancellationToken::new();
    let client = random_key()?;
    let key_path = dir.path().join("demo_key");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let text = client
            .to_openssh(LineEnding::LF)
            .map_err(std::io::Error::other)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
    }
    let (db_listener, db_port) = bind().await?;
    tokio::spawn(database::serve(db_listener, stop.clone()));
    let routes: Routes = Arc::new(HashMap::from([
        ("db.demo.internal:5432".to_string(), Some(db_port)),
        ("down.demo.internal:5432".to_string(), None),
    ]));
    let mut known = String::new();
    let mut ports = HashMap::new();
    for (name, accepts, changed) in [
        ("good", true, false),
        ("rebuilt", true, true),
        ("locked", false, false),
    ] {
        let (l, port) = bind().await?;
        let host_key = random_key()?;
        // The "rebuilt" bastion's known_hosts line holds the key it had before.
        let listed = if changed {
            random_key()?
        } else {
            host_key.clone()
        };
        let line = listed
            .public_key()
            .to_openssh()
            .map_err(std::io::Error::other)?;
        let mut parts = line.split_whitespace();
        known.push_str(&format!(
            "[127.0.0.1]:{port} {} {}\n",
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default()
        ));
        let bastion = Bastion {
            accepts: accepts.then(|| client.public_key().clone()),
            routes: Arc::clone(&routes),
        };
        tokio::spawn(serve_bastion(l, host_key, bastion, stop.clone()));
        ports.insert(name, port);
    }
    std::fs::write(dir.path().join("known_hosts"), known)?;
    let entry = |name: &str, bastion: &str, target: &str| {
        format!(
            "[storage.postgres.{name}]\nhost = \"{target}\"\nusername = \"demo\"\ndatabase = \"demo\"\n\n[storage.postgres.{name}.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"demo\"\nkey_file = \"{}\"\nconnect_timeout = 5\n\n",
            ports[bastion],
            key_path.display()
        )
    };
    let epoch = format!(
        "# warren demo: a throwaway config, removed on exit\n{}{}{}{}",
        entry("demo-db", "good", "db.demo.internal"),
        entry("demo-db-down", "good", "down.demo.internal"),
        entry("demo-host-key-changed", "rebuilt", "db.demo.internal"),
        entry("demo-key-refused", "locked", "db.demo.internal"),
    );
    std::fs::write(dir.path().join("epoch.toml"), epoch)?;
    let paths = Paths {
        ssh_config: Some("/dev/null".into()),
        epoch: Some(dir.path().join("epoch.toml")),
        known_hosts: Some(dir.path().join("known_hosts")),
        epoch_is_project: false,
    };
    Ok(World {
        _dir: dir,
        stop,
        paths,
    })
}
