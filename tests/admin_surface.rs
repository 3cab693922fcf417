//! The admin listener under attack: guessing the token is limited per client address (and a
//! locked-out address is refused even with the right token), other addresses are unaffected,
//! and the API answers other sites' pages with no CORS permission.

mod common;

use common::{ADMIN_TOKEN, TestProxy, curl};

async fn api(proxy: &TestProxy, token: &str, from: &str) -> common::CurlResult {
    let auth = format!("Authorization: Bearer {token}");
    curl(&["--interface", from, "-H", &auth, &proxy.admin_url("/api/decisions?limit=1")]).await
}

#[tokio::test]
async fn guessing_the_admin_token_locks_the_address_out() {
    let proxy = TestProxy::start("[admin]\nmax_failed_auth_per_minute = 3\n");
    assert_eq!(api(&proxy, ADMIN_TOKEN, "127.0.0.1").await.status, 200);
    for guess in 0..3 {
        let res = api(&proxy, &format!("guess-{guess}"), "127.0.0.1").await;
        assert_eq!(res.status, 401, "guess {guess} is simply wrong: {}", res.text());
    }
    let locked = api(&proxy, "guess-4", "127.0.0.1").await;
    assert_eq!(locked.status, 429, "{}", locked.text());
    assert_eq!(locked.json()["error"], "locked_out");
    let retry: u64 = locked.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    // Locked out means locked out: the right token from this address is refused too.
    assert_eq!(api(&proxy, ADMIN_TOKEN, "127.0.0.1").await.status, 429);
    // Another address is unaffected.
    assert_eq!(api(&proxy, ADMIN_TOKEN, "127.0.0.2").await.status, 200);
    assert!(!proxy.stderr().contains("guess-"), "presented tokens are never logged");
}

#[tokio::test]
async fn other_sites_get_no_cors_permission() {
    let proxy = TestProxy::start("");
    let url = proxy.admin_url("/api/decisions");
    let preflight = curl(&[
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://evil.example",
        "-H",
        "Access-Control-Request-Method: GET",
        "-H",
        "Access-Control-Request-Headers: authorization",
        &url,
    ])
    .await;
    assert!(preflight.header("access-control-allow-origin").is_none(), "{:?}", preflight.headers);
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let read = curl(&["-H", "Origin: https://evil.example", "-H", &auth, &url]).await;
    assert_eq!(read.status, 200);
    assert!(read.header("access-control-allow-origin").is_none(), "{:?}", read.headers);
}
