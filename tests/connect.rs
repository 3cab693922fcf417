//! HTTPS through CONNECT: interception with Consentry's CA (HTTP/1.1 and HTTP/2 inside the
//! tunnel), the tunnel bound to its CONNECT authority and identity, upstream TLS verification,
//! and splicing when interception is off.

mod common;

use common::{TestOrigin, TestProxy, big_body_sha256, curl, python};

fn roots(origin: &TestOrigin) -> String {
    format!("[tls]\nupstream_roots = [\"{}\"]\n", origin.ca_path().display())
}

#[tokio::test]
async fn intercepted_https_over_http1_and_http2() {
    let origin = TestOrigin::tls().await;
    let proxy = TestProxy::loopback(&roots(&origin));
    let ca = proxy.ca_file();
    let ca = ca.to_str().expect("utf-8 path");

    let res = curl(&["-x", &proxy.url(), "--cacert", ca, "--http1.1", &origin.url("/hello")]).await;
    assert_eq!(res.status, 200, "{}", res.stderr);
    assert_eq!(res.text(), "hello");
    assert_eq!(res.http_version, "1.1");
    assert_eq!(res.header("consentry-decision"), Some("allow"));
    assert!(res.header("consentry-request-id").is_some());
    let seen = origin.last("/hello");
    assert!(seen.header("via").is_some_and(|v| v.ends_with("consentry")));
    assert_eq!(seen.authority(), Some(origin.addr.to_string()));
    assert_eq!(seen.version, http::Version::HTTP_2, "upstream negotiated HTTP/2 by ALPN");

    let size = 5 * 1024 * 1024;
    let res = curl(&["-x", &proxy.url(), "--cacert", ca, "--http2", &origin.url(&format!("/big?bytes={size}"))]).await;
    assert_eq!(res.status, 200, "{}", res.stderr);
    assert_eq!(res.http_version, "2", "HTTP/2 negotiated inside the tunnel");
    assert_eq!(res.header("consentry-decision"), Some("allow"));
    assert_eq!(common::hex(&<sha2::Sha256 as sha2::Digest>::digest(&res.body)), big_body_sha256(size));
}

#[tokio::test]
async fn upload_through_http2_tunnel_is_byte_exact() {
    let origin = TestOrigin::tls().await;
    let proxy = TestProxy::loopback(&roots(&origin));
    let ca = proxy.ca_file();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("up.bin");
    std::fs::write(&path, common::big_body_chunk(0, 3_000_000)).expect("write");
    let data = format!("@{}", path.display());
    let res = curl(&[
        "-x",
        &proxy.url(),
        "--cacert",
        ca.to_str().expect("path"),
        "--http2",
        "--data-binary",
        &data,
        &origin.url("/echo"),
    ])
    .await;
    assert_eq!(res.status, 200, "{}", res.stderr);
    assert_eq!(res.text(), format!("3000000 {}", big_body_sha256(3_000_000)));
}

#[tokio::test]
async fn host_header_naming_another_host_is_refused_with_421() {
    let origin = TestOrigin::tls().await;
    let proxy = TestProxy::loopback(&roots(&origin));
    let ca = proxy.ca_file();
    let res = curl(&[
        "-x",
        &proxy.url(),
        "--cacert",
        ca.to_str().expect("path"),
        "--http1.1",
        "-H",
        "Host: opted-out.example",
        &origin.url("/hello"),
    ])
    .await;
    assert_eq!(res.status, 421, "{}", res.stderr);
    let body = res.json();
    assert_eq!(body["error"], "misdirected_request");
    assert!(body["reason"].as_str().is_some_and(|r| r.contains("opted-out.example")), "{body}");
    assert_eq!(origin.hits("/hello"), 0, "the origin must never see a misdirected request");
}

#[tokio::test]
async fn sni_naming_another_host_is_refused_with_421() {
    let origin = TestOrigin::tls().await;
    let proxy = TestProxy::loopback(&roots(&origin));
    // CONNECT goes to 127.0.0.1:port while SNI and Host say site.test.
    let connect_to = format!("site.test:443:127.0.0.1:{}", origin.port());
    let res = curl(&["-x", &proxy.url(), "-k", "--connect-to", &connect_to, "https://site.test/hello"]).await;
    assert_eq!(res.status, 421, "{}", res.stderr);
    assert!(res.json()["reason"].as_str().is_some_and(|r| r.contains("SNI")), "{}", res.text());
    assert_eq!(origin.hits("/hello"), 0);
}

#[tokio::test]
async fn tunnel_identity_binds_to_every_request_and_407_without_credentials() {
    let origin = TestOrigin::tls().await;
    let extra = format!(
        "{}\n[[crawlers]]\nname = \"acme\"\npassword = \"s3cret\"\ntoken = \"AcmeBot\"\nuser_agent = \"AcmeBot/1.0\"\npurposes = [\"search\"]\n",
        roots(&origin)
    );
    let proxy = TestProxy::loopback(&extra);
    let ca = proxy.ca_file();
    let ca = ca.to_str().expect("path");
    let res = curl(&["-x", &proxy.url(), "--cacert", ca, &origin.url("/hello")]).await;
    assert_eq!(res.connect_status, 407, "{}", res.stderr);
    assert_eq!(origin.hits("/hello"), 0);

    let res =
        curl(&["-x", &proxy.url(), "-U", "acme:s3cret", "--cacert", ca, "-A", "other", &origin.url("/hello")]).await;
    assert_eq!(res.status, 200, "{}", res.stderr);
    assert_eq!(origin.last("/hello").header("user-agent").as_deref(), Some("AcmeBot/1.0"));
}

#[tokio::test]
async fn upstream_tls_is_always_verified() {
    let origin = TestOrigin::tls().await;
    let proxy = TestProxy::loopback(""); // the origin's CA is not trusted
    let ca = proxy.ca_file();
    let res = curl(&["-x", &proxy.url(), "--cacert", ca.to_str().expect("path"), &origin.url("/hello")]).await;
    // Even robots.txt cannot be fetched from an origin that fails verification, and an
    // unreachable robots.txt disallows everything (RFC 9309 §2.3.1.4).
    assert_eq!(res.status, 451, "{}", res.stderr);
    let reason = &res.json()["reasons"][0];
    assert_eq!(reason["source"], "robots");
    assert!(reason["rule"].as_str().is_some_and(|r| r.to_lowercase().contains("certificate")), "{reason}");
    assert!(origin.seen().is_empty(), "no request completed against an unverified origin");
}

#[tokio::test]
async fn private_destination_inside_a_tunnel_is_refused() {
    let origin = TestOrigin::tls().await;
    let proxy = TestProxy::start(&format!("[proxy]\nlisten = \"127.0.0.1:0\"\n{}", roots(&origin)));
    let ca = proxy.ca_file();
    let res = curl(&["-x", &proxy.url(), "--cacert", ca.to_str().expect("path"), &origin.url("/hello")]).await;
    assert_eq!(res.status, 403, "{}", res.stderr);
    assert_eq!(res.json()["reasons"][0]["source"], "network-policy");
    assert_eq!(origin.hits("/hello"), 0);
}

#[tokio::test]
async fn resolve_override_with_a_hostname_verifies_that_name() {
    let origin = TestOrigin::tls().await;
    let proxy = TestProxy::loopback(&format!(
        "{}[upstream]\nresolve = {{ \"site.test:443\" = \"{}\" }}\n",
        roots(&origin),
        origin.addr
    ));
    let ca = proxy.ca_file();
    let res = curl(&["-x", &proxy.url(), "--cacert", ca.to_str().expect("path"), "https://site.test/hello"]).await;
    assert_eq!(res.status, 200, "{}", res.stderr);
    assert_eq!(origin.last("/hello").authority().as_deref(), Some("site.test"));
}

#[tokio::test]
async fn python_requests_through_https_proxy() {
    let origin = TestOrigin::tls().await;
    let proxy = TestProxy::loopback(&roots(&origin));
    let ca = proxy.ca_file();
    let script = r#"
import os, requests
r = requests.get(os.environ["TARGET"], proxies={"https": os.environ["PROXY"]}, verify=os.environ["CA"], timeout=30)
print(r.status_code, r.headers.get("Consentry-Decision"), r.text)
"#;
    let (ok, out, err) =
        python(script, &[("TARGET", origin.url("/hello")), ("PROXY", proxy.url()), ("CA", ca.display().to_string())])
            .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "200 allow hello");
}

#[tokio::test]
async fn interception_off_splices_the_tunnel() {
    let origin = TestOrigin::tls().await;
    let proxy = TestProxy::loopback(&format!(
        "[tls]\nintercept = false\nupstream_roots = [\"{}\"]\n",
        origin.ca_path().display()
    ));
    // The client now talks TLS with the origin itself, so it trusts the origin's CA.
    let res =
        curl(&["-x", &proxy.url(), "--cacert", origin.ca_path().to_str().expect("path"), &origin.url("/hello")]).await;
    assert_eq!(res.status, 200, "{}", res.stderr);
    assert_eq!(res.text(), "hello");
    assert_eq!(res.header("consentry-decision"), None, "inner responses are not touched");
    assert!(origin.last("/hello").header("via").is_none());
}
