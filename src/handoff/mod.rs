//! Handing a tunnel to a database client: the connection in the forms clients take (a URL, a
//! libpq DSN, a JDBC URL, environment variables, a client command line), the environment
//! `warren exec` gives its command, and the client `warren connect` runs. Pure: it formats
//! from the connection model and the tunnel's local address; reading a password file is the
//! one I/O, and only when a password is asked for. Running the client is [`run`].

pub mod run;

use std::path::PathBuf;

use crate::config::Origin;
use crate::config::model::{Connection, Database, DbKind, RootCert, SslMode};

/// Where the client reaches the database: the tunnel's local end (or the database itself,
/// for a direct entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    pub host: String,
    pub port: u16,
}

/// The forms `warren url` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Url,
    Dsn,
    Jdbc,
    Env,
    Psql,
}

/// What a connection string is made of.
#[derive(Clone, Debug)]
pub struct Parts {
    pub kind: DbKind,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub database: Option<String>,
    pub password: Option<zeroize::Zeroizing<String>>,
    /// PostgreSQL and Redis: the entry's TLS settings, for the client to check what doctor
    /// checks.
    pub tls: Option<ClientTls>,
}

/// The TLS a PostgreSQL client is told to use: the entry's `sslmode` (when the entry sets
/// one), its `sslrootcert`, and for verify-full the name the certificate must carry. Through
/// a tunnel the client reaches 127.0.0.1, so the forms name the database (`host=db.internal`)
/// and give the tunnel's address as `hostaddr`: libpq connects to the address and checks the
/// certificate against the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTls {
    pub sslmode: SslMode,
    pub sslrootcert: Option<String>,
    /// `Some` for verify-full: the name to check.
    pub name: Option<String>,
}

impl ClientTls {
    fn of(db: &Database) -> Option<ClientTls> {
        let wanted = match db.kind() {
            DbKind::Postgres => db.sslmode.origin != Origin::Default,
            // Redis has no STARTTLS: TLS is a different port and the `rediss` scheme.
            DbKind::Redis => db.sslmode.value >= SslMode::Require,
            _ => false,
        };
        if !wanted {
            return None;
        }
        let mode = db.sslmode.value;
        let root =
            (db.sslrootcert.origin != Origin::Default || mode >= SslMode::VerifyCa).then(|| {
                match &db.sslrootcert.value {
                    RootCert::System => "system".to_string(),
                    RootCert::File(p) => p.display().to_string(),
                }
            });
        Some(ClientTls {
            sslmode: mode,
            sslrootcert: root,
            name: (mode == SslMode::VerifyFull).then(|| db.tls_name().to_string()),
        })
    }
}

/// Percent-encodes a URL component (user, password, database).
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A libpq DSN value: quoted when it holds spaces, quotes or backslashes.
fn dsn_value(s: &str) -> String {
    if !s.is_empty() && !s.contains([' ', '\'', '\\']) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A POSIX shell word.
fn shell(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/:@=,+%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Why a connection cannot be handed over.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandoffError {
    #[error("{0} is not a database entry of epoch.toml: warren knows no client for it")]
    NoDatabase(String),
    #[error("{0} has no client protocol warren knows (engine '{1}')")]
    UnknownEngine(String, String),
    #[error("there is no {0} form for {1}")]
    NoForm(&'static str, &'static str),
    #[error("cannot read the password file {0}: {1}")]
    Password(PathBuf, String),
}

impl Parts {
    /// The parts of `conn`'s database reached at `local`; the password only when asked.
    pub fn of(
        conn: &Connection,
        local: &Local,
        with_password: bool,
    ) -> Result<Parts, HandoffError> {
        let db = conn
            .database
            .as_ref()
            .ok_or_else(|| HandoffError::NoDatabase(conn.display_name.clone()))?;
        let kind = db.kind();
        if kind == DbKind::Other {
            return Err(HandoffError::UnknownEngine(
                conn.display_name.clone(),
                db.engine.clone(),
            ));
        }
        let password = if !with_password {
            None
        } else if let Some(p) = &db.password {
            Some(p.value.copied())
        } else if let Some(f) = &db.password_file {
            let text = crate::config::read_secret_file(&f.value)
                .map_err(|e| HandoffError::Password(f.value.clone(), e.to_string()))?;
            Some(text)
        } else {
            None
        };
        Ok(Parts {
            kind,
            host: local.host.clone(),
            port: local.port,
            user: db.username.as_ref().map(|u| u.value.clone()),
            database: db.database.as_ref().map(|d| d.value.clone()),
            password,
            tls: ClientTls::of(db),
        })
    }

    /// The host a PostgreSQL client is given: the name verify-full checks, with the tunnel's
    /// address as `hostaddr`; else the tunnel's address.
    fn pg_host(&self) -> (&str, Option<&str>) {
        match self.tls.as_ref().and_then(|t| t.name.as_deref()) {
            Some(name) => (name, Some(self.host.as_str())),
            None => (self.host.as_str(), None),
        }
    }

    fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `postgresql://user:pass@127.0.0.1:15432/db`
    pub fn url(&self) -> String {
        let scheme = match (&self.tls, self.kind) {
            (Some(_), DbKind::Redis) => "rediss",
            _ => self.kind.scheme().unwrap_or("tcp"),
        };
        let auth = match (&self.user, &self.password) {
            (Some(u), Some(p)) => format!("{}:{}@", enc(u), enc(p)),
            (Some(u), None) => format!("{}@", enc(u)),
            // redis-cli 7 sends `:PASS@` as AUTH "" PASS, which fails: the user without a name
            // is `default`.
            (None, Some(p)) if self.kind == DbKind::Redis => format!("default:{}@", enc(p)),
            (None, Some(p)) => format!(":{}@", enc(p)),
            (None, None) => String::new(),
        };
        let db = self
            .database
            .as_ref()
            .map(|d| format!("/{}", enc(d)))
            .unwrap_or_default();
        let Some(tls) = self.tls.as_ref().filter(|_| self.kind == DbKind::Postgres) else {
            return format!("{scheme}://{auth}{}{db}", self.host_port());
        };
        let (host, addr) = self.pg_host();
        let mut query = Vec::new();
        if let Some(a) = addr {
            query.push(format!("hostaddr={}", enc(a)));
        }
        query.push(format!("sslmode={}", tls.sslmode));
        if let Some(r) = &tls.sslrootcert {
            query.push(format!("sslrootcert={}", enc(r)));
        }
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let db = if db.is_empty() { "/".to_string() } else { db };
        format!(
            "{scheme}://{auth}{host}:{}{db}?{}",
            self.port,
            query.join("&")
        )
    }

    /// The engine's own key=value form (libpq for PostgreSQL; the Go driver's for MySQL;
    /// ADO.NET for SQL Server).
    pub fn dsn(&self) -> Result<String, HandoffError> {
        Ok(match self.kind {
            DbKind::Postgres => {
                let (host, addr) = self.pg_host();
                let mut parts = vec![format!("host={}", dsn_value(host))];
                if let Some(a) = addr {
                    parts.push(format!("hostaddr={}", dsn_value(a)));
                }
                parts.push(format!("port={}", self.port));
                if let Some(u) = &self.user {
                    parts.push(format!("user={}", dsn_value(u)));
                }
                if let Some(d) = &self.database {
                    parts.push(format!("dbname={}", dsn_value(d)));
                }
                if let Some(p) = &self.password {
                    parts.push(format!("password={}", dsn_value(p)));
                }
                if let Some(t) = &self.tls {
                    parts.push(format!("sslmode={}", t.sslmode));
                    if let Some(r) = &t.sslrootcert {
                        parts.push(format!("sslrootcert={}", dsn_value(r)));
                    }
                }
                parts.join(" ")
            }
            DbKind::Mysql => {
                let auth = match (&self.user, &self.password) {
                    (Some(u), Some(p)) => format!("{u}:{}@", p.as_str()),
                    (Some(u), None) => format!("{u}@"),
                    _ => String::new(),
                };
                format!(
                    "{auth}tcp({})/{}",
                    self.host_port(),
                    self.database.clone().unwrap_or_default()
                )
            }
            DbKind::Mssql => {
                let mut parts = vec![format!("Server=tcp:{},{}", self.host, self.port)];
                if let Some(d) = &self.database {
                    parts.push(format!("Database={d}"));
                }
                if let Some(u) = &self.user {
                    parts.push(format!("User Id={u}"));
                }
                if let Some(p) = &self.password {
                    parts.push(format!("Password={}", p.as_str()));
                }
                parts.join(";")
            }
            DbKind::Redis | DbKind::Mongodb => self.url(),
            DbKind::Other => return Err(HandoffError::NoForm("DSN", "this engine")),
        })
    }

    /// `jdbc:postgresql://127.0.0.1:15432/db?user=u`
    pub fn jdbc(&self) -> Result<String, HandoffError> {
        let mut query: Vec<String> = Vec::new();
        if let Some(u) = &self.user {
            query.push(format!("user={}", enc(u)));
        }
        if let Some(p) = &self.password {
            query.push(format!("password={}", enc(p)));
        }
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{}", query.join("&"))
        };
        let db = self.database.clone().unwrap_or_default();
        Ok(match self.kind {
            DbKind::Postgres => format!("jdbc:postgresql://{}/{}{q}", self.host_port(), enc(&db)),
            DbKind::Mysql => format!("jdbc:mysql://{}/{}{q}", self.host_port(), enc(&db)),
            DbKind::Mssql => {
                let mut s = format!("jdbc:sqlserver://{}:{}", self.host, self.port);
                if !db.is_empty() {
                    s.push_str(&format!(";databaseName={db}"));
                }
                if let Some(u) = &self.user {
                    s.push_str(&format!(";user={u}"));
                }
                if let Some(p) = &self.password {
                    s.push_str(&format!(";password={}", p.as_str()));
                }
                s
            }
            DbKind::Redis => return Err(HandoffError::NoForm("JDBC", "Redis")),
            DbKind::Mongodb => return Err(HandoffError::NoForm("JDBC", "MongoDB")),
            DbKind::Other => return Err(HandoffError::NoForm("JDBC", "this engine")),
        })
    }

    /// The environment a client reads: `DATABASE_URL`, `WARREN_HOST`, `WARREN_PORT`, and the
    /// engine's own variables where its clients read any (PG*, MYSQL_*, REDISCLI_AUTH).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("DATABASE_URL".to_string(), self.url()),
            ("WARREN_HOST".to_string(), self.host.clone()),
            ("WARREN_PORT".to_string(), self.port.to_string()),
        ];
        let mut put = |k: &str, v: Option<&String>| {
            if let Some(v) = v {
                env.push((k.to_string(), v.clone()));
            }
        };
        match self.kind {
            DbKind::Postgres => {
                let (host, addr) = self.pg_host();
                put("PGHOST", Some(&host.to_string()));
                put("PGHOSTADDR", addr.map(str::to_string).as_ref());
                if let Some(t) = &self.tls {
                    put("PGSSLMODE", Some(&t.sslmode.to_string()));
                    put("PGSSLROOTCERT", t.sslrootcert.as_ref());
                }
                put("PGPORT", Some(&self.port.to_string()));
                put("PGUSER", self.user.as_ref());
                put("PGDATABASE", self.database.as_ref());
                put("PGPASSWORD", self.password.as_deref());
            }
            DbKind::Mysql => {
                put("MYSQL_HOST", Some(&self.host));
                put("MYSQL_TCP_PORT", Some(&self.port.to_string()));
                put("MYSQL_PWD", self.password.as_deref());
            }
            DbKind::Redis => put("REDISCLI_AUTH", self.password.as_deref()),
            DbKind::Mssql => put("SQLCMDPASSWORD", self.password.as_deref()),
            DbKind::Mongodb | DbKind::Other => {}
        }
        env
    }

    /// The variable the engine's client reads its password from, when it has one (mongosh
    /// has none: it asks).
    fn password_var(&self) -> Option<&'static str> {
        match self.kind {
            DbKind::Postgres => Some("PGPASSWORD"),
            DbKind::Mysql => Some("MYSQL_PWD"),
            DbKind::Redis => Some("REDISCLI_AUTH"),
            DbKind::Mssql => Some("SQLCMDPASSWORD"),
            DbKind::Mongodb | DbKind::Other => None,
        }
    }

    /// The engine's own client and its arguments (`connect` runs it; `--format psql` prints
    /// it).
    ///
    /// The password is never an argument (every local user can read a process's arguments in
    /// /proc): it goes in the client's own variable ([`Parts::env`]), or mongosh asks for it.
    pub fn client(&self) -> Result<(&'static str, Vec<String>), HandoffError> {
        let port = self.port.to_string();
        let quiet = Parts {
            password: None,
            ..self.clone()
        };
        Ok(match self.kind {
            // psql reads PG* from the environment; the DSN makes the command complete on its own.
            DbKind::Postgres => ("psql", vec![quiet.dsn()?]),
            DbKind::Mysql => {
                let mut a = vec![
                    "-h".into(),
                    self.host.clone(),
                    "-P".into(),
                    port,
                    "--protocol=TCP".into(),
                ];
                if let Some(u) = &self.user {
                    a.extend(["-u".to_string(), u.clone()]);
                }
                if let Some(d) = &self.database {
                    a.push(d.clone());
                }
                ("mysql", a)
            }
            DbKind::Redis => {
                // The password goes in REDISCLI_AUTH (see `env`), never in the arguments.
                let mut a = vec!["-h".into(), self.host.clone(), "-p".into(), port];
                if let Some(u) = &self.user {
                    a.extend(["--user".to_string(), u.clone()]);
                }
                if let Some(d) = &self.database {
                    a.extend(["-n".to_string(), d.clone()]);
                }
                if let Some(t) = &self.tls {
                    a.push("--tls".into());
                    if let Some(n) = &t.name {
                        a.extend(["--sni".to_string(), n.clone()]);
                    }
                    match t.sslrootcert.as_deref() {
                        Some("system") => {}
                        Some(f) => a.extend(["--cacert".to_string(), f.to_string()]),
                        // require: TLS, the certificate not checked, as doctor does.
                        None => a.push("--insecure".into()),
                    }
                }
                ("redis-cli", a)
            }
            DbKind::Mongodb => ("mongosh", vec![quiet.url()]),
            DbKind::Mssql => {
                let mut a = vec!["-S".into(), format!("tcp:{},{}", self.host, self.port)];
                if let Some(u) = &self.user {
                    a.extend(["-U".to_string(), u.clone()]);
                }
                if let Some(d) = &self.database {
                    a.extend(["-d".to_string(), d.clone()]);
                }
                ("sqlcmd", a)
            }
            DbKind::Other => return Err(HandoffError::NoForm("client", "this engine")),
        })
    }

    /// One form, as `warren url` prints it.
    pub fn format(&self, f: Format) -> Result<String, HandoffError> {
        Ok(match f {
            Format::Url => self.url(),
            Format::Dsn => self.dsn()?,
            Format::Jdbc => self.jdbc()?,
            Format::Env => self
                .env()
                .iter()
                .map(|(k, v)| format!("export {k}={}", shell(v)))
                .collect::<Vec<_>>()
                .join("\n"),
            Format::Psql => {
                let (cmd, args) = self.client()?;
                // The password, when asked for, as a variable of the command (not an argument).
                let var = match (self.password_var(), &self.password) {
                    (Some(v), Some(p)) => Some(format!("{v}={}", shell(p))),
                    _ => None,
                };
                var.into_iter()
                    .chain(std::iter::once(cmd.to_string()))
                    .chain(args.iter().map(|a| shell(a)))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        })
    }
}

/// The Debian package that provides a client.
pub fn package_of(client: &str) -> &'static str {
    match client {
        "psql" => "postgresql-client",
        "mysql" => "default-mysql-client (or mariadb-client)",
        "redis-cli" => "redis-tools",
        "mongosh" => "mongodb-mongosh (from MongoDB's own repository)",
        "sqlcmd" => "mssql-tools18 (from Microsoft's repository)",
        _ => "the database's client tools",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg() -> Parts {
        Parts {
            kind: DbKind::Postgres,
            host: "127.0.0.1".into(),
            port: 15432,
            user: Some("app user".into()),
            database: Some("orders".into()),
            password: Some(String::from("p@ss w'rd").into()),
            tls: None,
        }
    }

    #[test]
    fn verify_full_keeps_the_name_and_connects_to_the_tunnel() {
        let mut p = pg();
        p.password = None;
        p.tls = Some(ClientTls {
            sslmode: SslMode::VerifyFull,
            sslrootcert: Some("/etc/ssl/db ca.pem".into()),
            name: Some("db.internal".into()),
        });
        assert_eq!(
            p.url(),
            "postgresql://app%20user@db.internal:15432/orders?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Fdb%20ca.pem"
        );
        assert_eq!(
            p.dsn().unwrap_or_default(),
            "host=db.internal hostaddr=127.0.0.1 port=15432 user='app user' dbname=orders sslmode=verify-full sslrootcert='/etc/ssl/db ca.pem'"
        );
        let env = p.env();
        assert!(env.contains(&("PGHOST".into(), "db.internal".into())));
        assert!(env.contains(&("PGHOSTADDR".into(), "127.0.0.1".into())));
        assert!(env.contains(&("PGSSLMODE".into(), "verify-full".into())));
    }

    #[test]
    fn forms_escape_what_they_must() {
        let p = pg();
        assert_eq!(
            p.url(),
            "postgresql://app%20user:p%40ss%20w%27rd@127.0.0.1:15432/orders"
        );
        assert_eq!(
            p.dsn().unwrap_or_default(),
            "host=127.0.0.1 port=15432 user='app user' dbname=orders password='p@ss w\\'rd'"
        );
        assert!(
            p.jdbc()
                .unwrap_or_default()
                .starts_with("jdbc:postgresql://127.0.0.1:15432/orders?user=app%20user")
        );
        let env = p.format(Format::Env).unwrap_or_default();
        assert!(env.contains("export PGPASSWORD='p@ss w'\\''rd'"), "{env}");
        let mut no = pg();
        no.password = None;
        assert!(
            !no.format(Format::Env)
                .unwrap_or_default()
                .contains("PASSWORD")
        );
    }
}
