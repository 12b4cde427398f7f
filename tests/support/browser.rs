//! A real browser for anything a person looks at: Debian's `chromium`, headless, started fresh for
//! each call with its own profile and none of its background traffic (the flags of a closed
//! network). Screenshots go to [`artifacts_dir`] and stay after the run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where tests keep what a person may want to look at after a run (screenshots):
/// `$VANTAGE_ARTIFACTS_DIR`, else `test-artifacts/` in the build's profile directory (beside
/// `deps/`, where the test binary runs from).
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("VANTAGE_ARTIFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            let profile = exe
                .parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new("."));
            profile.join("test-artifacts")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium(args: &[String]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    crate::process::succeeded(
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args),
        "chromium (Debian package chromium; .ci/run installs it)",
    )
}

/// The DOM of `url` after the page loaded, serialised.
pub fn rendered_dom(url: &str) -> String {
    let output = chromium(&["--dump-dom".to_owned(), url.to_owned()]);
    String::from_utf8(output.stdout).unwrap()
}

/// The DOM of `url` after its scripts ran for up to `milliseconds` of virtual time (pages that
/// render after fetching data).
pub fn rendered_dom_after(url: &str, milliseconds: u32) -> String {
    let output = chromium(&[
        format!("--virtual-time-budget={milliseconds}"),
        "--dump-dom".to_owned(),
        url.to_owned(),
    ]);
    String::from_utf8(output.stdout).unwrap()
}

/// A PNG of `url` at `width`×`height`, written to `path`.
pub fn screenshot(url: &str, path: &Path, width: u32, height: u32) {
    let _ = std::fs::remove_file(path);
    chromium(&[
        format!("--screenshot={}", path.display()),
        format!("--window-size={width},{height}"),
        url.to_owned(),
    ]);
    let png = std::fs::read(path).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
}
