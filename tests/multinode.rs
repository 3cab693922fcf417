//! Several nodes behave as one: two `consentry run` processes on one PostgreSQL (a uniquely
//! named database on 127.0.0.1:5432), requests spread over both, one audit log holding every
//! answered request with the node that decided it, and a registry entry imported with node A's
//! config honoured by node B; one transparency log with exactly one sequencer, which fails over
//! to the surviving node when the leader is killed, without a fork.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, Canned, TestDatabase, TestOrigin, TestProxy, curl};

fn node_config(name: &str, db: &TestDatabase, origin: &TestOrigin, extra: &str) -> String {
    format!(
        "node = \"{name}\"\n[proxy]\nlisten = \"127.0.0.1:0\"\nallow_private_destinations = true\n\
         [storage]\nurl = \"{url}\"\n[upstream]\nresolve = {{ \"shop.example:{port}\" = \"{addr}\" }}\n{extra}",
        url = db.url(),
        port = origin.port(),
        addr = origin.addr
    )
}

fn node(name: &str, db: &TestDatabase, origin: &TestOrigin, key: &std::path::Path) -> TestProxy {
    TestProxy::start(&node_config(name, db, origin, &format!("[tlog]\nkey_file = \"{}\"\n", key.display())))
}

#[tokio::test]
async fn two_nodes_on_one_postgresql_keep_one_audit_log_and_one_registry() {
    let db = TestDatabase::create();
    let origin = TestOrigin::plain().await;
    origin.robots("User-agent: *\nDisallow: /private/\n");
    origin.set("/page", Canned::body("page"));
    let secrets = tempfile::tempdir().expect("tempdir");
    let key = common::shared_tlog_key(secrets.path());
    let nodes = [node("node-a", &db, &origin, &key), node("node-b", &db, &origin, &key)];
    let base = format!("http://shop.example:{}", origin.port());

    // Requests spread over both nodes, as a TCP load balancer would.
    let mut answered = Vec::new();
    for i in 0..20 {
        let path = if i % 4 == 0 { "/private/x" } else { "/page" };
        let res = curl(&["-x", &nodes[i % 2].url(), &format!("{base}{path}")]).await;
        assert_eq!(res.status, if path == "/page" { 200 } else { 451 });
        answered.push(res.header("consentry-request-id").expect("request id").to_string());
    }

    // Either node's API shows the one log: every answered request, each with its node.
    for reader in &nodes {
        let res = curl(&[
            "-H",
            &format!("Authorization: Bearer {ADMIN_TOKEN}"),
            &reader.admin_url("/api/decisions?limit=100"),
        ])
        .await;
        let items = res.json()["items"].as_array().cloned().expect("items");
        let ids: HashSet<&str> = items.iter().filter_map(|r| r["request_id"].as_str()).collect();
        assert!(answered.iter().all(|id| ids.contains(id.as_str())), "missing records");
        let by_node = |name: &str| items.iter().filter(|r| r["node"] == name).count();
        assert_eq!((by_node("node-a"), by_node("node-b")), (10, 10));
        let blocked_b = items.iter().filter(|r| r["node"] == "node-b" && r["decision"] == "block").count();
        assert_eq!(blocked_b, 0, "node-b served only odd requests, none of them /private/");
    }

    // A registry entry imported through node A's database is honoured by node B within 5 s.
    let file = nodes[0].dir.path().join("entry.jsonl");
    std::fs::write(&file, r#"{"id":"shop-1","creator":"Shop Owner","domain":"shop.example","paths":["/page"]}"#)
        .expect("write");
    let (code, _, err) = nodes[0].cli(&["registry", "import", file.to_str().expect("path")]);
    assert_eq!(code, 0, "{err}");
    let started = Instant::now();
    let mut status = 0;
    while started.elapsed() < Duration::from_secs(5) {
        status = curl(&["-x", &nodes[1].url(), &format!("{base}/page")]).await.status;
        if status == 451 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 451, "node B did not honour node A's registry entry within 5 s");
}

/// `consentry_tlog_leader` from a node's metrics: 1 while it sequences.
async fn is_leader(node: &TestProxy) -> bool {
    curl(&[&node.admin_url("/metrics")]).await.text().lines().any(|l| l.trim() == "consentry_tlog_leader 1")
}

async fn checkpoint(node: &TestProxy) -> String {
    curl(&[&node.public_url("/tlog/checkpoint")]).await.text()
}

fn size_of(checkpoint: &str) -> u64 {
    checkpoint.lines().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{checkpoint}"))
}

/// Polls `probe` every 50 ms until it holds, for at most `limit`.
async fn eventually<F: std::future::Future<Output = bool>>(limit: Duration, what: &str, mut probe: impl FnMut() -> F) {
    let started = Instant::now();
    while !probe().await {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_nodes_share_one_transparency_log_and_the_sequencer_fails_over() {
    let db = TestDatabase::create();
    let origin = TestOrigin::plain().await;
    origin.set("/page", Canned::body("page"));
    let dns = common::dns::TestDns::start().await;
    let tlog = format!(
        "[public]\ndns_nameservers = [\"{}\"]\n[tlog]\nbatch_interval = \"100ms\"\norigin = \"shop.example/log\"\n",
        dns.addr()
    );
    let secrets = tempfile::tempdir().expect("tempdir");
    let shared = format!("{tlog}key_file = \"{}\"\n", common::shared_tlog_key(secrets.path()).display());
    let a = TestProxy::start(&node_config("node-a", &db, &origin, &shared));
    let b = TestProxy::start(&node_config("node-b", &db, &origin, &shared));
    let page = format!("http://shop.example:{}/page", origin.port());

    eventually(Duration::from_secs(5), "one node leads", || async { is_leader(&a).await || is_leader(&b).await }).await;
    assert!(!(is_leader(&a).await && is_leader(&b).await), "exactly one sequencer");
    for i in 0..10 {
        assert_eq!(curl(&["-x", &[&a, &b][i % 2].url(), &page]).await.status, 200);
    }
    eventually(Duration::from_secs(10), "10 leaves", || async { size_of(&checkpoint(&a).await) >= 10 }).await;
    let before = checkpoint(&a).await;
    assert_eq!(checkpoint(&b).await, before, "both nodes serve the one log");

    // Kill -9 the leader; the survivor takes over and sequences its own new records.
    let (leader, survivor) = if is_leader(&a).await { (a, b) } else { (b, a) };
    drop(leader);
    for _ in 0..5 {
        assert_eq!(curl(&["-x", &survivor.url(), &page]).await.status, 200);
    }
    eventually(Duration::from_secs(15), "the survivor leads and sequences", || async {
        is_leader(&survivor).await && size_of(&checkpoint(&survivor).await) >= 15
    })
    .await;
    let after = checkpoint(&survivor).await;

    // The new head extends the old one: one tree, no fork.
    let dir = survivor.dir.path();
    std::fs::write(dir.join("before.ckpt"), &before).expect("write");
    std::fs::write(dir.join("after.ckpt"), &after).expect("write");
    let (code, vkey, err) = survivor.cli(&["ca", "--tlog-key"]);
    assert_eq!(code, 0, "{err}");
    assert!(vkey.starts_with("shop.example/log+"), "{vkey}");
    let verify = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_consentry"))
            .arg("verify")
            .args(args)
            .output()
            .expect("verify");
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["verify", "consistency", "--key", vkey.trim(), "--from", &survivor.public_url("")])
        .arg("--old")
        .arg(dir.join("before.ckpt"))
        .arg("--new")
        .arg(dir.join("after.ckpt"))
        .output()
        .expect("consentry verify");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}{}", String::from_utf8_lossy(&output.stderr));

    // The shop's owner proves control (DNS) and checks a receipt of all 15 records, written by
    // both nodes and sequenced by both leaders, against the one log on PostgreSQL.
    let claim = curl(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        r#"{"domain":"shop.example","contact":"owner@shop.example"}"#,
        &survivor.public_url("/v1/claims"),
    ])
    .await
    .json();
    dns.set_txt("_consentry-challenge.shop.example", &[claim["token"].as_str().expect("token")]);
    let verify_url = survivor.public_url(&format!("/v1/claims/{}/verify", claim["claim_id"].as_str().expect("id")));
    let verified = curl(&["-X", "POST", &verify_url]).await.json();
    let api_key = verified["api_key"].as_str().unwrap_or_else(|| panic!("{verified}"));
    let receipt = curl(&[
        "-H",
        &format!("Authorization: Bearer {api_key}"),
        &survivor.public_url("/v1/domains/shop.example/receipt"),
    ])
    .await;
    assert_eq!(receipt.status, 200, "{}", receipt.text());
    std::fs::write(dir.join("receipt.json"), &receipt.body).expect("write");
    let size = size_of(&checkpoint(&survivor).await);
    let (ok, out) = verify(&["receipt", dir.join("receipt.json").to_str().expect("path"), "--key", vkey.trim()]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("15 records of shop.example verified against checkpoint size {size}")), "{out}");

    // A node with a key of its own would fork the log: it refuses to start and says why.
    let home = tempfile::tempdir().expect("tempdir");
    let config = TestProxy::write_config(home.path(), &node_config("node-c", &db, &origin, &tlog));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["run", "-c"])
        .arg(&config)
        .output()
        .expect("consentry run");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("must share `tlog.origin` and the signing key"), "{err}");
}
