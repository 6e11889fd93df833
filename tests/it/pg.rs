//! The two hub backends for the conformance suite, and throw-away
//! PostgreSQL databases for its PostgreSQL half.
//!
//! The PostgreSQL half needs a server: `BADGESTATION_TEST_PG_URL` names one
//! (a superuser URL; `scripts/pg_test_cluster.sh start DIR` starts a
//! throw-away cluster and prints it). Each test gets a database of its own,
//! created from that URL and dropped afterwards. Without the variable the
//! PostgreSQL tests return at once with a note on stderr, so developers can
//! run the SQLite half alone; under CI (`CI=true`) a missing server is a
//! failure, never a silent skip.

#![allow(dead_code)]

use std::path::Path;

/// The variable naming the test server.
pub const PG_URL_ENV: &str = "BADGESTATION_TEST_PG_URL";

/// Which storage a hub under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's temporary directory.
    Sqlite,
    /// A fresh database on the test server.
    Postgres,
}

impl Backend {
    /// `Some(Postgres)` when a test server is configured; `None` (with a
    /// note) for a developer without one; a panic under CI.
    pub fn postgres() -> Option<Backend> {
        if admin_url().is_some() {
            return Some(Backend::Postgres);
        }
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
            "{PG_URL_ENV} is not set, and CI=true: the hub's PostgreSQL conformance tests must run in CI. \
             .ci/run starts a cluster with scripts/pg_test_cluster.sh and sets {PG_URL_ENV}"
        );
        eprintln!("note: {PG_URL_ENV} is not set; skipping a PostgreSQL hub test (scripts/pg_test_cluster.sh starts a server)");
        None
    }
}

/// The test server's URL, if any.
pub fn admin_url() -> Option<String> {
    std::env::var(PG_URL_ENV).ok().filter(|v| !v.trim().is_empty())
}

/// `url` with its database name replaced.
pub fn with_dbname(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let query = tail.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}

/// Runs SQL on `url` (a test's own connection, not the hub's).
pub fn execute(url: &str, sql: &str) {
    try_execute(url, sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

/// [`execute`], for SQL the database is expected to refuse: its error.
pub fn try_execute(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (client, connection) =
            tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("connect: {e}"));
        let driver = tokio::spawn(connection);
        let result = client.batch_execute(sql).await;
        drop(client);
        let _ = driver.await;
        result
    })
}

/// Runs a query and returns the first column of each row as text.
pub fn query_strings(url: &str, sql: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        let driver = tokio::spawn(connection);
        let mut out = Vec::new();
        for message in client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}")) {
            if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                out.push(row.get(0).unwrap_or("").to_owned());
            }
        }
        drop(client);
        let _ = driver.await;
        out
    })
}

/// A database for one test: a SQLite path, or a PostgreSQL database that is
/// dropped with this value.
#[derive(Debug)]
pub struct TestDb {
    /// What `--database` gets.
    pub url: String,
    /// The PostgreSQL database's name.
    pg_name: Option<String>,
}

impl TestDb {
    /// A fresh, empty database.
    pub fn new(backend: Backend, dir: &Path) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb { url: dir.join("hub.db").display().to_string(), pg_name: None },
            Backend::Postgres => {
                let admin = admin_url().expect("Backend::Postgres without a test server");
                let name = format!("bs_test_{}_{:016x}", std::process::id(), fastrand::u64(..));
                execute(&admin, &format!("CREATE DATABASE {name}"));
                TestDb { url: with_dbname(&admin, &name), pg_name: Some(name) }
            }
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        if self.pg_name.is_some() { Backend::Postgres } else { Backend::Sqlite }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let (Some(name), Some(admin)) = (&self.pg_name, admin_url()) {
            execute(&admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// A PostgreSQL cluster of a test's own (`scripts/pg_test_cluster.sh`), for
/// what must not happen to the shared test server: a real restart. Stopped
/// and removed on drop.
#[derive(Debug)]
pub struct PrivateCluster {
    dir: std::path::PathBuf,
    /// Its superuser URL.
    pub url: String,
}

impl PrivateCluster {
    /// Starts one (initdb and start take a few seconds). Needs the server
    /// binaries, which are there wherever the shared test server runs.
    pub fn start() -> PrivateCluster {
        // Under the system's temp directory, not a private tempdir: the cluster runs as an
        // unprivileged user (`nobody` when the tests run as root), which must reach it.
        let dir = std::env::temp_dir().join(format!("bs-pg-{}-{:08x}", std::process::id(), fastrand::u32(..)));
        let out = std::process::Command::new(script())
            .arg("start")
            .arg(&dir)
            .output()
            .expect("run scripts/pg_test_cluster.sh");
        assert!(out.status.success(), "a private PostgreSQL cluster did not start: {}", String::from_utf8_lossy(&out.stderr));
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        PrivateCluster { dir, url }
    }

    /// A real restart: fast shutdown (every connection cut), `down` without
    /// a server, then up again on the same port.
    pub fn restart(&self, down: std::time::Duration) {
        let out = std::process::Command::new(script())
            .arg("restart")
            .arg(&self.dir)
            .arg(format!("{:.1}", down.as_secs_f64()))
            .output()
            .expect("run scripts/pg_test_cluster.sh restart");
        assert!(out.status.success(), "restart failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script()).arg("stop").arg(&self.dir).output();
    }
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg_test_cluster.sh")
}
