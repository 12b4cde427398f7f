//! Real processes for tests: the `vantage` binary (`vantage serve` as a process, with its key and
//! address), a PostgreSQL database of its own, and a NATS server of its own that a test can stop and
//! start again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What a finished command printed, standard output then standard error, as text (for asserting
/// on a tool's report wherever it writes it).
pub fn printed(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `command` to its end and returns what it printed; panics, naming `what` and quoting its
/// standard error, when it cannot start or does not succeed.
pub fn succeeded(command: &mut Command, what: &str) -> std::process::Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what} does not run: {error}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A process a test started, killed (and reaped) when dropped.
#[derive(Debug)]
pub struct KilledOnDrop(pub Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `vantage` binary built beside the test binary (`target/<profile>/vantage`).
pub fn vantage_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let binary = dir.join("vantage");
    assert!(
        binary.exists(),
        "{} is missing: build the workspace (cargo build --workspace) before the tests",
        binary.display()
    );
    binary
}

/// `vantage verify` and `vantage replay` on the embedded data directory `dir` (no server running):
/// the chain is whole and every read model equals a rebuild from the log.
pub fn assert_verify_and_replay_pass(dir: &std::path::Path) {
    for command in ["verify", "replay"] {
        let out = succeeded(
            Command::new(vantage_binary())
                .arg(command)
                .arg("--data-dir")
                .arg(dir)
                .env("VANTAGE_LOG", "error"),
            &format!("vantage {command}"),
        );
        if command == "replay" {
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("every read model equals a rebuild")
            );
        }
    }
}

/// Waits (at most 30 s) until `check` holds; fails naming `what`.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(what, Duration::from_secs(30), check).await;
}

/// Waits (at most `limit`) until `check` holds; fails naming `what`.
pub async fn eventually_within<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running `vantage serve` (killed when dropped, so a failing test leaves no process behind).
#[derive(Debug)]
pub struct ServeProcess {
    child: Option<Child>,
    /// The bootstrap admin key, when this start printed one.
    pub key: Option<String>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl ServeProcess {
    /// `vantage serve --listen 127.0.0.1:0 <args>` with `env` (and `VANTAGE_LOG=info` unless `env`
    /// says otherwise), stderr to `stderr`; returns once it says where it listens.
    pub async fn start(args: &[&str], env: &[(&str, &str)], stderr: impl Into<Stdio>) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(vantage_binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("VANTAGE_DATABASE_URL")
            .env("VANTAGE_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (key, base) = tokio::task::spawn_blocking(move || {
            let mut key = None;
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                if line.starts_with("vtg_") {
                    key = Some(line);
                } else if let Some(rest) = line.strip_prefix("Vantage listening on ") {
                    let base = rest.split_whitespace().next().unwrap().to_owned();
                    return (key, base);
                }
            }
            panic!("vantage serve never said where it listens");
        })
        .await
        .unwrap();
        Self {
            child: Some(child),
            key,
            base,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGKILL (no chance to finish anything) and waits for the process to be gone.
    pub async fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        tokio::task::spawn_blocking(move || {
            child.kill().unwrap();
            child.wait().unwrap()
        })
        .await
        .unwrap();
    }

    /// Sends SIGTERM and expects a clean exit.
    pub async fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        signal(&child, "TERM");
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        assert!(
            status.success(),
            "SIGTERM must end serve cleanly, got {status}"
        );
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// A database of its own on the test PostgreSQL server, dropped by [`ScratchDatabase::drop`].
#[derive(Debug)]
pub struct ScratchDatabase {
    pub admin: sqlx::PgPool,
    pub name: String,
    pub url: String,
}

impl ScratchDatabase {
    pub async fn new() -> Self {
        let base = crate::database_url();
        let admin = sqlx::PgPool::connect(&base).await.unwrap();
        let name = format!("vantage_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        let (server, _) = base.rsplit_once('/').unwrap();
        let url = format!("{server}/{name}");
        Self { admin, name, url }
    }

    pub async fn drop(self) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&self.admin)
        .await
        .unwrap();
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A NATS server with JetStream of this test's own, on a loopback port, storing in a temporary
/// directory that outlives a stop, so a test can take it away and bring it back with its streams.
#[derive(Debug)]
pub struct OwnNats {
    pub port: u16,
    monitor: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnNats {
    pub async fn start() -> Self {
        let mut nats = Self {
            port: free_port(),
            monitor: free_port(),
            store: tempfile::tempdir().unwrap(),
            child: None,
        };
        nats.resume().await;
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port and store; returns once JetStream is up.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "the NATS server is running");
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor.to_string(), "-js", "-sd"])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be installed for these tests");
        self.child = Some(child);
        let health = format!(
            "http://127.0.0.1:{}/healthz?js-enabled-only=true",
            self.monitor
        );
        let client = crate::http_client();
        eventually("the NATS server is up", || {
            let request = client.get(&health).send();
            async move { request.await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
    }

    /// Stops the server (SIGTERM) and waits until it has gone.
    pub async fn pause(&mut self) {
        let mut child = self.child.take().expect("the NATS server is not running");
        signal(&child, "TERM");
        tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A distributed deployment for tests: a PostgreSQL database of its own (migrated), a NATS server
/// of its own with a fresh prefix, one secrets key and one admin key shared by every `vantage serve`
/// replica started from it.
#[derive(Debug)]
pub struct Deployment {
    pub db: ScratchDatabase,
    pub nats: OwnNats,
    pub prefix: String,
    /// The bootstrap admin key every replica accepts.
    pub admin: String,
    secrets: tempfile::TempDir,
}

impl Deployment {
    pub async fn new() -> Self {
        let db = ScratchDatabase::new().await;
        let nats = OwnNats::start().await;
        let prefix = format!("vr{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let secrets = tempfile::tempdir().unwrap();
        std::fs::write(
            secrets.path().join("secrets.key"),
            vantage_app::Keyring::generate().to_hex(),
        )
        .unwrap();
        let admin = format!(
            "vtg_default_{}_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let migrated = Command::new(vantage_binary())
            .args(["migrate", "--database-url", &db.url])
            .env("VANTAGE_LOG", "error")
            .output()
            .unwrap();
        assert!(migrated.status.success(), "{migrated:?}");
        Self {
            db,
            nats,
            prefix,
            admin,
            secrets,
        }
    }

    /// Starts a `vantage serve` replica of this deployment with `extra` arguments; scan targets on
    /// loopback are allowed and names resolve nowhere. Its log, at level `log`, goes to `stderr`.
    pub async fn serve(&self, extra: &[&str], log: &str, stderr: impl Into<Stdio>) -> ServeProcess {
        let key_file = self.secrets.path().join("secrets.key");
        let nats_url = self.nats.url();
        let mut args = vec![
            "--database-url",
            &self.db.url,
            "--nats-url",
            &nats_url,
            "--nats-prefix",
            &self.prefix,
            "--secrets-key-file",
            key_file.to_str().unwrap(),
            "--allow-cidr",
            "127.0.0.0/8",
            "--resolver",
            "127.0.0.1:9",
        ];
        args.extend_from_slice(extra);
        let env = [
            ("VANTAGE_BOOTSTRAP_ADMIN_KEY", self.admin.as_str()),
            ("VANTAGE_LOG", log),
        ];
        ServeProcess::start(&args, &env, stderr).await
    }

    /// Drops the database (the NATS server and the key go with `self`).
    pub async fn drop(self) {
        self.db.drop().await;
    }
}
