//! The embedded store on a disk that fills up, and on one that is read-only (a small tmpfs the test
//! mounts, so it needs root, as CI has): commands are refused with a 503 problem that says nothing
//! was recorded, `/ready` says why, nothing acknowledged is lost, and once space returns the server
//! takes commands again by itself; a read-only data directory stops `serve` with one sentence; the
//! chain verifies and the read models equal a rebuild afterwards.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vantage_tests::process::{
    ServeProcess, assert_verify_and_replay_pass, eventually, vantage_binary,
};

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root (as CI has): {status}"
        );
        Self(dir.to_path_buf())
    }

    fn remount(&self, mode: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode}: {status}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the disk refuses; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 << 10];
    let mut written = 0;
    loop {
        match file.write(&chunk) {
            Ok(0) => return written,
            Ok(n) => written += n as u64,
            Err(error) => {
                assert_eq!(
                    error.raw_os_error(),
                    Some(28),
                    "filling stops at ENOSPC: {error}"
                );
                return written;
            }
        }
    }
}

async fn create_scan(
    http: &reqwest::Client,
    serve: &ServeProcess,
    key: &str,
) -> (StatusCode, Value) {
    let response = http
        .post(serve.url("/api/v1/scans"))
        .bearer_auth(key)
        .json(&json!({ "target": "http://93.184.215.14/", "ports": [80] }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    if !status.is_success() {
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{status}"
        );
    }
    (status, response.json().await.unwrap())
}

async fn ready(http: &reqwest::Client, serve: &ServeProcess) -> (StatusCode, Value) {
    let response = http.get(serve.url("/ready")).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_commands_clearly_and_recovers_and_a_read_only_one_stops_serve() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    let disk = Tmpfs::mount(&data, "16m");
    let data_flag = data.display().to_string();
    // The server's log, beside the small disk rather than on it, shown when an assertion fails.
    let log_path = base.path().join("serve.log");
    let log = || {
        std::thread::sleep(Duration::from_millis(300)); // what the failing request logged
        std::fs::read_to_string(&log_path).unwrap_or_default()
    };
    let serve = ServeProcess::start(
        &[
            "--data-dir",
            &data_flag,
            "--scan-workers",
            "0",
            "--scan-rate-limit-per-minute",
            "100000",
        ],
        &[],
        std::fs::File::create(&log_path).unwrap(),
    )
    .await;
    let key = serve
        .key
        .clone()
        .expect("a first start prints its admin key");
    let http = vantage_tests::http_client();
    let mut acknowledged = Vec::new();
    for _ in 0..5 {
        let (status, body) = create_scan(&http, &serve, &key).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        acknowledged.push(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ready(&http, &serve).await.0, StatusCode::OK);

    // The disk fills up (another process's file): not ready, and why.
    let filler = data.join("filler");
    let filled = fill(&filler);
    assert!(
        filled > 1 << 20,
        "the filler took the free space ({filled} bytes)"
    );
    let (status, body) = ready(&http, &serve).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("the event store cannot write") && detail.contains("free"),
        "{detail}"
    );
    // Commands are refused with a problem that says nothing was recorded (a few may still fit in
    // space SQLite had already taken), and the server stays up.
    let mut refused = 0;
    for _ in 0..40 {
        let (status, body) = create_scan(&http, &serve, &key).await;
        if status == StatusCode::ACCEPTED {
            acknowledged.push(body["id"].as_str().unwrap().to_owned());
            continue;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}\n{}", log());
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("cannot write now (its disk is full or read-only); nothing was recorded"),
            "{body}"
        );
        refused += 1;
    }
    assert!(refused > 0, "a full disk refused no command");
    let health = http.get(serve.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // Space returns: ready again by itself, and commands are taken.
    std::fs::remove_file(&filler).unwrap();
    eventually("ready once space returns", || async {
        ready(&http, &serve).await.0 == StatusCode::OK
    })
    .await;
    for _ in 0..3 {
        let (status, body) = create_scan(&http, &serve, &key).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        acknowledged.push(body["id"].as_str().unwrap().to_owned());
    }
    // Every acknowledged scan is there, once; the read models caught up after the outage.
    eventually("every acknowledged scan listed", || async {
        let list: Value = http
            .get(serve.url("/api/v1/scans?limit=100"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let listed: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        listed.len() == acknowledged.len()
            && acknowledged.iter().all(|id| listed.contains(&id.as_str()))
    })
    .await;
    serve.stop().await;
    assert_verify_and_replay_pass(&data);

    // A read-only data directory: `serve` stops at once with one sentence, and changes nothing.
    disk.remount("ro");
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking({
            let data = data.clone();
            move || {
                Command::new(vantage_binary())
                    .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                    .arg(&data)
                    .env("VANTAGE_LOG", "off")
                    .output()
                    .unwrap()
            }
        }),
    )
    .await
    .expect("serve on a read-only disk ends at once")
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("read-only"),
        "{stderr}"
    );
    disk.remount("rw");
    assert_verify_and_replay_pass(&data);
}
