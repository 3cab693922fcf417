//! The transparency log end to end, with the real binary: a creator with a verified domain
//! downloads a receipt and `consentry verify` checks it offline; tampering with the stored
//! records, the receipt or the tree is caught and named; a restart continues the same tree; a
//! crash before sequencing loses nothing; the public tiles and checkpoint are what other C2SP
//! tools expect (checked with `signed_note` and a tree rebuilt from the tiles).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Canned, TestOrigin, TestProxy, curl};
use serde_json::{Value, json};

use common::TRAINER as CRAWLER;

/// Config for a proxy that reaches the TLS `origin` as `site.test:443` and the plain `other` as
/// `other.example:<port>`, sequencing every 100 ms.
fn config(origin: &TestOrigin, other: &TestOrigin, extra: &str) -> String {
    format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nallow_private_destinations = true\n{CRAWLER}\n\
         [tls]\nupstream_roots = [\"{ca}\"]\n\
         [upstream]\nresolve = {{ \"site.test:443\" = \"{addr}\", \"other.example:{port}\" = \"{other_addr}\" }}\n\
         [tlog]\nbatch_interval = \"100ms\"\n{extra}",
        ca = origin.ca_path().display(),
        addr = origin.addr,
        port = other.port(),
        other_addr = other.addr,
    )
}

async fn origins() -> (TestOrigin, TestOrigin) {
    let origin = TestOrigin::tls().await;
    origin.robots("User-agent: *\nDisallow: /private/\n");
    origin.set("/page", Canned::body("page"));
    origin.set("/private/x", Canned::body("secret"));
    let other = TestOrigin::plain().await;
    other.set("/page", Canned::body("other"));
    (origin, other)
}

async fn crawl(proxy: &TestProxy, ca: &str, url: &str) -> common::CurlResult {
    curl(&["-x", &proxy.url(), "-U", "trainer:pw", "--cacert", ca, url]).await
}

async fn public(proxy: &TestProxy, path: &str, key: Option<&str>) -> common::CurlResult {
    let url = proxy.public_url(path);
    match key {
        Some(key) => curl(&["-H", &format!("Authorization: Bearer {key}"), &url]).await,
        None => curl(&[&url]).await,
    }
}

/// Claims `site.test`, publishes the HTTP challenge on `origin`, verifies; returns the API key.
async fn verified_key(proxy: &TestProxy, origin: &TestOrigin) -> String {
    let body = json!({ "domain": "site.test", "contact": "owner@site.test" }).to_string();
    let url = proxy.public_url("/v1/claims");
    let claim = curl(&["-H", "Content-Type: application/json", "--data-binary", &body, &url]).await.json();
    let token = claim["token"].as_str().expect("token");
    origin.set(&format!("/.well-known/consentry-challenge/{token}"), Canned::body(token.to_string()));
    let verify = proxy.public_url(&format!("/v1/claims/{}/verify", claim["claim_id"].as_str().expect("id")));
    let verified = curl(&["-X", "POST", &verify]).await.json();
    verified["api_key"].as_str().unwrap_or_else(|| panic!("not verified: {verified}")).to_string()
}

/// Tree size of the current checkpoint.
async fn tree_size(proxy: &TestProxy) -> u64 {
    let checkpoint = public(proxy, "/tlog/checkpoint", None).await.text();
    checkpoint.lines().nth(1).and_then(|size| size.parse().ok()).unwrap_or_else(|| panic!("{checkpoint}"))
}

/// Waits (bounded) until the tree holds at least `size` leaves.
async fn wait_for_size(proxy: &TestProxy, size: u64) -> u64 {
    let started = Instant::now();
    loop {
        let now = tree_size(proxy).await;
        if now >= size {
            return now;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the tree stayed at {now} leaves, wanted {size}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

/// Runs `consentry verify <args>`; returns (exit code, stdout).
fn verify(args: &[&str]) -> (i32, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_consentry"))
        .arg("verify")
        .args(args)
        .output()
        .expect("consentry verify");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

fn verifier_key(proxy: &TestProxy) -> String {
    let (code, key, err) = proxy.cli(&["ca", "--tlog-key"]);
    assert_eq!(code, 0, "{err}");
    key.trim().to_string()
}

async fn sqlite(proxy: &TestProxy) -> sqlx::SqlitePool {
    let path = proxy.dir.path().join("data/consentry.db");
    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.expect("open the proxy's database")
}

#[tokio::test]
async fn a_creator_verifies_a_receipt_offline_and_every_tampering_is_named() {
    let (origin, other) = origins().await;
    let proxy = TestProxy::start(&config(&origin, &other, ""));
    let ca = proxy.ca_file().display().to_string();
    let key = verified_key(&proxy, &origin).await;

    let mut ids = Vec::new();
    for path in ["/page", "/private/x", "/page", "/page"] {
        let res = crawl(&proxy, &ca, &format!("https://site.test{path}")).await;
        assert_eq!(res.status, if path == "/page" { 200 } else { 451 });
        ids.push(res.header("consentry-request-id").expect("request id").to_string());
    }
    let other_page = format!("http://other.example:{}/page", other.port());
    assert_eq!(crawl(&proxy, &ca, &other_page).await.status, 200);

    // Every answered request is in the tree within a few batches (plus the portal's own
    // challenge fetch, which went through the proxy's upstream client, not through a decision).
    let size = wait_for_size(&proxy, 5).await;
    let vkey = verifier_key(&proxy);
    assert_eq!(public(&proxy, "/tlog/key", None).await.text().trim(), vkey);

    let decisions = public(&proxy, "/v1/domains/site.test/decisions", Some(&key)).await;
    assert_eq!(decisions.status, 200, "{}", decisions.text());
    let decisions = decisions.json();
    assert_eq!(decisions["tree_size"], size);
    let records = decisions["records"].as_array().expect("records");
    let listed: Vec<String> = records
        .iter()
        .map(|r| serde_json::from_str::<Value>(r["record"].as_str().expect("record")).expect("record json"))
        .map(|r| r["request_id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(listed, ids, "exactly this domain's records, in order");

    let receipt_res = public(&proxy, "/v1/domains/site.test/receipt", Some(&key)).await;
    assert_eq!(receipt_res.status, 200);
    assert!(receipt_res.header("content-disposition").is_some_and(|d| d.contains("attachment")));
    let receipt_text = receipt_res.text();
    let dir = proxy.dir.path();
    let receipt = write(dir, "receipt.json", &receipt_text);
    let (code, out) = verify(&["receipt", receipt.to_str().expect("path"), "--key", &vkey]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("4 records of site.test verified against checkpoint size {size}")), "{out}");

    // The checkpoint verifies with an independent signed-note implementation.
    let receipt_json: Value = serde_json::from_str(&receipt_text).expect("receipt");
    let note = signed_note::Note::from_bytes(receipt_json["checkpoint"].as_str().expect("note").as_bytes())
        .expect("a signed note");
    let theirs = signed_note::StandardVerifier::new(&vkey).expect("the verifier key parses");
    note.verify(&signed_note::VerifierList::new(vec![Box::new(theirs)])).expect("signed_note verifies it");

    // Tampering with the receipt file: an edited record, a dropped one.
    let mut edited = receipt_json.clone();
    let blocked = edited["records"][1]["record"].as_str().expect("record").replace("\"block\"", "\"allow\"");
    edited["records"][1]["record"] = Value::String(blocked);
    let edited = write(dir, "edited.json", &edited.to_string());
    let (code, out) = verify(&["receipt", edited.to_str().expect("path"), "--key", &vkey]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL record 2 (leaf") && out.contains(&ids[1]) && out.contains("altered"), "{out}");

    let mut dropped = receipt_json.clone();
    dropped["records"].as_array_mut().expect("records").remove(2);
    let dropped = write(dir, "dropped.json", &dropped.to_string());
    let (code, out) = verify(&["receipt", dropped.to_str().expect("path"), "--key", &vkey]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL chain of host site.test") && out.contains("dropped"), "{out}");

    // Another key of the same name (someone else's log, or a forger's).
    let name = vkey.split('+').next().expect("key name");
    let stranger = consentry::tlog::NoteSigner::new(name, ed25519_dalek::SigningKey::from_bytes(&[9; 32]))
        .expect("signer")
        .verifier_key();
    let (code, out) = verify(&["receipt", receipt.to_str().expect("path"), "--key", &stranger]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL checkpoint") && out.contains("not validly signed"), "{out}");

    // Tampering with the operator's own database: an edited record, a deleted one. The receipt
    // the log then serves no longer verifies, and says which records are wrong.
    let db = sqlite(&proxy).await;
    sqlx::query("UPDATE decisions SET decision = 'allow', verdict = 'allow' WHERE request_id = ?")
        .bind(&ids[1])
        .execute(&db)
        .await
        .expect("edit");
    sqlx::query("DELETE FROM decisions WHERE request_id = ?").bind(&ids[2]).execute(&db).await.expect("delete");
    let tampered = public(&proxy, "/v1/domains/site.test/receipt", Some(&key)).await.text();
    let tampered = write(dir, "tampered.json", &tampered);
    let (code, out) = verify(&["receipt", tampered.to_str().expect("path"), "--key", &vkey]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("request {}): inclusion: not in the log", ids[1])), "{out}");
    assert!(out.contains("FAIL chain of host site.test") && out.contains("dropped"), "{out}");

    // A creator sees only their own domain.
    let refused = public(&proxy, "/v1/domains/other.example/decisions", Some(&key)).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(public(&proxy, "/v1/domains/site.test/receipt", None).await.status, 401);
    assert_eq!(public(&proxy, "/v1/domains/site.test/receipt", Some("csk_wrong")).await.status, 401);
}

/// RFC 6962 root of a list of leaf hashes (the level-0 tile), computed here from scratch.
fn root_of(leaves: &[[u8; 32]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    match leaves.len() {
        1 => leaves[0],
        n => {
            let split = n.next_power_of_two() / 2;
            let (left, right) = (root_of(&leaves[..split]), root_of(&leaves[split..]));
            Sha256::new().chain_update([1u8]).chain_update(left).chain_update(right).finalize().into()
        }
    }
}

#[tokio::test]
async fn public_tiles_rebuild_the_signed_root_and_entries_stay_private() {
    let (origin, other) = origins().await;
    let proxy = TestProxy::start(&config(&origin, &other, ""));
    let page = format!("http://other.example:{}/page", other.port());
    for _ in 0..7 {
        assert_eq!(crawl(&proxy, "/dev/null", &page).await.status, 200);
    }
    let size = wait_for_size(&proxy, 7).await;
    let checkpoint = public(&proxy, "/tlog/checkpoint", None).await.text();
    let root_line = checkpoint.lines().nth(2).expect("root line");

    let tile = public(&proxy, &format!("/tlog/tile/0/000.p/{size}"), None).await;
    assert_eq!(tile.status, 200);
    assert_eq!(tile.body.len() as u64, size * 32);
    let leaves: Vec<[u8; 32]> = tile.body.chunks(32).map(|c| c.try_into().expect("32 bytes")).collect();
    use base64::Engine as _;
    let rebuilt = base64::engine::general_purpose::STANDARD.encode(root_of(&leaves));
    assert_eq!(rebuilt, root_line, "the level-0 tile rebuilds the signed root");

    assert_eq!(public(&proxy, &format!("/tlog/tile/0/000.p/{}", size + 1), None).await.status, 404);
    assert_eq!(public(&proxy, "/tlog/tile/0/000", None).await.status, 404, "no full tile yet");
    let entries = public(&proxy, "/tlog/tile/entries/000.p/1", None).await;
    assert_eq!(entries.status, 404);
    assert_eq!(entries.json()["error"], "entries_private");
    assert_eq!(public(&proxy, "/tlog/tile/0/x/000", None).await.status, 404);
    let proof = public(&proxy, &format!("/tlog/proof/consistency?old=1&new={size}"), None).await;
    assert_eq!(proof.status, 200);
    assert!(proof.json()["proof"].as_array().is_some_and(|p| !p.is_empty()));
    let bad = public(&proxy, &format!("/tlog/proof/consistency?old=2&new={}", size + 5), None).await;
    assert_eq!(bad.status, 422);
    assert!(bad.json()["reason"].as_str().is_some_and(|r| r.contains("current tree size")));
}

/// A proxy on a config file kept in `home`, so it can be stopped and started again.
fn start_in(home: &Path, extra: &str) -> TestProxy {
    let config = TestProxy::write_config(home, extra);
    TestProxy::start_with_file(tempfile::tempdir().expect("tempdir"), config)
}

fn cli_in(home: &Path, args: &[&str]) -> (i32, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(args)
        .arg("-c")
        .arg(home.join("consentry.toml"))
        .output()
        .expect("consentry");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test]
async fn a_restart_continues_the_tree_and_a_rebuilt_log_is_caught_as_a_fork() {
    let (origin, other) = origins().await;
    let home = tempfile::tempdir().expect("tempdir");
    let extra = config(&origin, &other, "");
    let page = format!("http://other.example:{}/page", other.port());

    let first = start_in(home.path(), &extra);
    for _ in 0..3 {
        assert_eq!(crawl(&first, "/dev/null", &page).await.status, 200);
    }
    wait_for_size(&first, 3).await;
    let before = write(home.path(), "before.ckpt", &public(&first, "/tlog/checkpoint", None).await.text());
    assert!(first.terminate().success());

    let second = start_in(home.path(), &extra);
    for _ in 0..4 {
        assert_eq!(crawl(&second, "/dev/null", &page).await.status, 200);
    }
    wait_for_size(&second, 7).await;
    let after = write(home.path(), "after.ckpt", &public(&second, "/tlog/checkpoint", None).await.text());
    let (_, vkey) = cli_in(home.path(), &["ca", "--tlog-key"]);
    let vkey = vkey.trim();
    let consistency = |new: &Path, from: &str| {
        let (old, new) = (before.to_str().expect("path"), new.to_str().expect("path"));
        verify(&["consistency", "--key", vkey, "--old", old, "--new", new, "--from", from])
    };
    let (code, out) = consistency(&after, &second.public_url(""));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok   consistency"), "{out}");
    assert!(second.terminate().success());

    // The operator throws the tree away and starts a new one with the same key: the new
    // checkpoints are validly signed, but they do not extend what creators saw before.
    let db_path = home.path().join("data/consentry.db");
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", db_path.display())).await.expect("db");
    for table in ["tlog_state", "tlog_hashes", "tlog_leaves", "tlog_host_heads"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(&db).await.expect("delete");
    }
    db.close().await;
    let forked = start_in(home.path(), &extra);
    for _ in 0..8 {
        assert_eq!(crawl(&forked, "/dev/null", &page).await.status, 200);
    }
    wait_for_size(&forked, 8).await;
    let fork = write(home.path(), "fork.ckpt", &public(&forked, "/tlog/checkpoint", None).await.text());
    let (code, out) = consistency(&fork, &forked.public_url(""));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL consistency") && out.contains("does not extend"), "{out}");
}

#[tokio::test]
async fn records_written_before_a_crash_get_their_leaves_after_the_restart() {
    let (origin, other) = origins().await;
    let home = tempfile::tempdir().expect("tempdir");
    // One batch at start-up and then not for an hour: what is written now stays pending.
    let extra = config(&origin, &other, "").replace("batch_interval = \"100ms\"", "batch_interval = \"1h\"");
    let page = format!("http://other.example:{}/page", other.port());
    let proxy = start_in(home.path(), &extra);
    let key = verified_key(&proxy, &origin).await;
    let ca = proxy.ca_file().display().to_string();
    for _ in 0..3 {
        assert_eq!(crawl(&proxy, &ca, "https://site.test/page").await.status, 200);
    }
    assert_eq!(crawl(&proxy, &ca, &page).await.status, 200);
    let decisions = public(&proxy, "/v1/domains/site.test/decisions", Some(&key)).await.json();
    assert_eq!(decisions["pending"].as_array().map(Vec::len), Some(3), "{decisions}");
    assert_eq!(tree_size(&proxy).await, 0);
    // kill -9: no drain, no final batch.
    drop(proxy);

    let restarted = start_in(home.path(), &extra);
    assert_eq!(wait_for_size(&restarted, 4).await, 4, "every record written before the crash has a leaf");
    let decisions = public(&restarted, "/v1/domains/site.test/decisions", Some(&key)).await.json();
    assert_eq!(decisions["records"].as_array().map(Vec::len), Some(3), "{decisions}");
    assert_eq!(decisions["pending"].as_array().map(Vec::len), Some(0));
}

/// Runs `tests/browser/portal.py` against `proxy`'s page; panics with its report on failure.
async fn browser_check(proxy: &TestProxy, key: &str, verified: u32, failed: u32) {
    let dir = proxy.dir.path().to_path_buf();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/portal.py");
    let args = vec![
        script.display().to_string(),
        proxy.public_url("/"),
        key.to_string(),
        "site.test".to_string(),
        dir.join(format!("portal-{failed}.png")).display().to_string(),
        format!("--verified={verified}"),
        format!("--failed={failed}"),
        format!("--receipt-out={}", dir.join("browser-receipt.json").display()),
    ];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(&args)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .output()
            .expect("run python3")
    })
    .await
    .expect("browser thread");
    assert!(
        output.status.success(),
        "the browser check failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_creators_page_verifies_each_record_in_the_browser_and_flags_an_altered_one() {
    let (origin, other) = origins().await;
    let proxy = TestProxy::start(&config(&origin, &other, ""));
    let ca = proxy.ca_file().display().to_string();
    let key = verified_key(&proxy, &origin).await;
    let mut ids = Vec::new();
    for path in ["/page", "/private/x", "/page"] {
        ids.push(
            crawl(&proxy, &ca, &format!("https://site.test{path}"))
                .await
                .header("consentry-request-id")
                .map(str::to_string),
        );
    }
    wait_for_size(&proxy, 3).await;
    browser_check(&proxy, &key, 3, 0).await;
    // The receipt the page downloaded verifies offline too.
    let receipt = proxy.dir.path().join("browser-receipt.json");
    let (code, out) = verify(&["receipt", receipt.to_str().expect("path"), "--key", &verifier_key(&proxy)]);
    assert_eq!(code, 0, "{out}");

    // The operator edits one stored record: the page marks exactly that one.
    let db = sqlite(&proxy).await;
    sqlx::query("UPDATE decisions SET url = 'https://site.test/elsewhere' WHERE request_id = ?")
        .bind(ids[1].as_deref().expect("request id"))
        .execute(&db)
        .await
        .expect("edit");
    browser_check(&proxy, &key, 2, 1).await;
}
