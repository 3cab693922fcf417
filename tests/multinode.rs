//! Several nodes behave as one: two `consentry run` processes on one PostgreSQL (a uniquely
//! named database on 127.0.0.1:5432), requests spread over both, one audit log holding every
//! answered request with the node that decided it, and a registry entry imported with node A's
//! config honoured by node B. (The shared transparency log and leader failover come with the
//! transparency-log issue.)

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, Canned, TestDatabase, TestOrigin, TestProxy, curl};

fn node(name: &str, db: &TestDatabase, origin: &TestOrigin) -> TestProxy {
    TestProxy::start(&format!(
        "node = \"{name}\"\n[proxy]\nlisten = \"127.0.0.1:0\"\nallow_private_destinations = true\n\
         [storage]\nurl = \"{url}\"\n[upstream]\nresolve = {{ \"shop.example:{port}\" = \"{addr}\" }}\n",
        url = db.url(),
        port = origin.port(),
        addr = origin.addr
    ))
}

#[tokio::test]
async fn two_nodes_on_one_postgresql_keep_one_audit_log_and_one_registry() {
    let db = TestDatabase::create();
    let origin = TestOrigin::plain().await;
    origin.robots("User-agent: *\nDisallow: /private/\n");
    origin.set("/page", Canned::body("page"));
    let nodes = [node("node-a", &db, &origin), node("node-b", &db, &origin)];
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
