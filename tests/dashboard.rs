//! The operator dashboard in a real browser: headless Chromium, driven by Selenium from
//! `tests/browser/dashboard.py`, against the real binary with decisions made by real requests.
//!
//! Needs Debian's `chromium` and `chromium-driver` and Python `selenium`; `tests/run.sh` installs
//! them. When they are missing this test fails (it never skips silently).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{ADMIN_TOKEN, TestOrigin, TestProxy, curl};
use sha2::{Digest, Sha256};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// robots.txt of the test origin; rule 2 blocks `/private`, rule 3 carries markup the page must
/// show as text, never as HTML.
const ROBOTS: &str = "User-agent: *\nDisallow: /private\nDisallow: /x<b id=pwn>\n";

/// Fails with what to do when the browser tooling is absent.
fn require_browser_tools() {
    let mut missing = Vec::new();
    for path in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(path).exists() {
            missing.push(path.to_string());
        }
    }
    let selenium = Command::new("python3").args(["-c", "import selenium"]).output();
    if !selenium.is_ok_and(|o| o.status.success()) {
        missing.push("python3 module selenium".into());
    }
    assert!(
        missing.is_empty(),
        "the browser test needs {}: run tests/run.sh (it installs Debian's chromium and chromium-driver and \
         `pip install selenium`)",
        missing.join(", ")
    );
}

#[tokio::test]
async fn operator_logs_in_filters_and_explains_a_block_in_the_dashboard() {
    require_browser_tools();
    let origin = TestOrigin::plain().await;
    origin.robots(ROBOTS);
    let store = tempfile::tempdir().expect("tempdir");
    let port = origin.port();
    let proxy = TestProxy::loopback(&format!(
        "[storage]\nurl = \"sqlite://{}\"\n\
         [upstream]\nresolve = {{ \"docs.test:{port}\" = \"127.0.0.1:{port}\" }}\n\
         [[crawlers]]\nname = \"default\"\ntoken = \"Consentry\"\npurposes = [\"ai-train\"]\n\
         [[crawlers]]\nname = \"watcher\"\npassword = \"pw\"\ntoken = \"WatchBot\"\npurposes = [\"ai-train\"]\n\
         mode = \"monitor\"\n",
        store.path().join("audit.db").display()
    ));

    // The scenario tests/browser/dashboard.py expects, oldest first.
    let docs = |path: &str| format!("http://docs.test:{port}{path}");
    let requests: Vec<(Vec<String>, String, u16)> = vec![
        (vec![], origin.url("/hello"), 200),
        (vec![], origin.url("/private/a"), 451),
        (vec![], docs("/public/page"), 200),
        (vec![], origin.url("/private/b"), 451),
        (vec!["-U".into(), "watcher:pw".into()], origin.url("/private/watched"), 200),
        (vec![], origin.url("/x%3Cb%20id=pwn%3E"), 451),
        (vec![], docs("/private/c"), 451),
    ];
    let proxy_url = proxy.url();
    for (extra, url, status) in &requests {
        let mut args: Vec<&str> = vec!["-x", &proxy_url];
        args.extend(extra.iter().map(String::as_str));
        args.push(url);
        let res = curl(&args).await;
        assert_eq!(res.status, *status, "{url}: {} {}\n{}", res.text(), res.stderr, proxy.stderr());
    }

    let screenshot_dir = tempfile::tempdir().expect("tempdir");
    let screenshot = screenshot_dir.path().join("dashboard.png");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.py");
    let robots_sha256 = common::hex(&Sha256::digest(ROBOTS.as_bytes()));
    let args = vec![
        script.display().to_string(),
        proxy.admin_url("/"),
        ADMIN_TOKEN.to_string(),
        screenshot.display().to_string(),
        "--robots-sha256".to_string(),
        robots_sha256,
    ];
    let started = Instant::now();
    // The origin runs on this runtime: the browser is driven from a blocking thread.
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(&args)
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .output()
            .expect("run python3")
    })
    .await
    .expect("browser thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- proxy\n{}",
        output.status,
        proxy.stderr()
    );
    eprintln!("{stdout}browser run took {:.1}s", started.elapsed().as_secs_f64());
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is a PNG");
    assert!(png.len() > 10_000, "the screenshot has content: {} bytes", png.len());
    if let Ok(dir) = std::env::var("DASHBOARD_SCREENSHOT_DIR") {
        for name in ["dashboard.png", "dashboard-decision.png"] {
            let _ = std::fs::copy(screenshot_dir.path().join(name), Path::new(&dir).join(name));
        }
    }
}
