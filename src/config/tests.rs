use super::*;

fn errors(text: &str) -> Vec<String> {
    match Config::from_toml(text, "test.toml") {
        Ok(_) => Vec::new(),
        Err(ConfigErrors(errors)) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn empty_file_gives_the_defaults_and_the_default_profile() {
    let config = Config::from_toml("", "empty.toml").expect("valid");
    assert_eq!(config.proxy.listen.to_string(), "127.0.0.1:3128");
    assert_eq!(config.proxy.block_status, 451);
    assert_eq!(config.storage.durability, Durability::Sync);
    assert_eq!(config.crawlers, vec![CrawlerProfile::builtin_default()]);
    assert_eq!(Config::builtin().crawlers, config.crawlers);
}

#[test]
fn the_documented_example_is_exactly_the_defaults() {
    let text = include_str!("../../config/consentry.toml");
    let documented = Config::from_toml(text, "config/consentry.toml").expect("documented config is valid");
    let defaults = Config::builtin();
    assert_eq!(
        toml::to_string(&documented).expect("serialise"),
        toml::to_string(&defaults).expect("serialise"),
        "config/consentry.toml must list every key with its default"
    );
}

#[test]
fn errors_name_file_and_full_key() {
    assert_eq!(
        errors("[proxy]\nblock_status = 200\n"),
        ["test.toml: `proxy.block_status`: must be 403 or 451, got 200"]
    );
    let unknown = errors("[proxy]\nblok_status = 451\n");
    assert_eq!(unknown.len(), 1);
    assert!(unknown[0].starts_with("test.toml: `proxy.blok_status`: unknown field `blok_status`"), "{unknown:?}");
    assert!(unknown[0].contains("(line 2)"), "{unknown:?}");
    let typo_top = errors("dat_dir = \"x\"\n");
    assert!(typo_top[0].starts_with("test.toml: `dat_dir`: unknown field"), "{typo_top:?}");
    let wrong_type = errors("[proxy]\nmode = \"block\"\n");
    assert!(wrong_type[0].starts_with("test.toml: `proxy.mode`: unknown variant `block`"), "{wrong_type:?}");
    let bad_duration = errors("[upstream]\nconnect_timeout = \"soon\"\n");
    assert!(bad_duration[0].starts_with("test.toml: `upstream.connect_timeout`:"), "{bad_duration:?}");
    let syntax = errors("[proxy\n");
    assert!(syntax[0].starts_with("test.toml: `(document)`:"), "{syntax:?}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
[proxy]
block_status = 500
max_header_bytes = 100

[storage]
url = "mysql://x"

[upstream]
resolve = { "nohost" = "not-an-address" }

[[crawlers]]
name = "a"
token = "Bad Token"
purposes = []
honor_tokens = ["@unknown-list", "GPTBot"]

[[crawlers]]
name = "a"
token = "Ok"
purposes = ["search"]
"#;
    let found = errors(text);
    let keys: Vec<&str> = found.iter().map(|e| e.split('`').nth(1).expect("key")).collect();
    assert_eq!(
        keys,
        [
            "proxy.block_status",
            "proxy.max_header_bytes",
            "upstream.resolve.\"nohost\"",
            "upstream.resolve.\"nohost\"",
            "storage.url",
            "crawlers[0].token",
            "crawlers[0].purposes",
            "crawlers[0].honor_tokens[0]",
            "crawlers[1].name",
        ],
        "{found:#?}"
    );
}

#[test]
fn crawler_purposes_and_tokens_parse() {
    let text = r#"
[[crawlers]]
name = "acme"
password = "pw"
token = "AI2Bot"
purposes = ["search", "ai-input", "ai-train", "tdm"]
honor_tokens = ["@ai-training", "Google-Extended", "bigsur.ai"]
mode = "monitor"
"#;
    let config = Config::from_toml(text, "t.toml").expect("valid");
    let acme = &config.crawlers[0];
    assert_eq!(acme.purposes, Purpose::ALL);
    assert_eq!(acme.mode, Some(Mode::Monitor));
    assert_eq!(config.crawlers.len(), 1, "naming crawlers replaces the built-in default");
    assert!(
        errors("[[crawlers]]\nname = \"x\"\ntoken = \"X\"\npurposes = [\"train\"]\n")[0]
            .starts_with("test.toml: `crawlers[0].purposes[0]`: unknown variant `train`")
    );
}

#[test]
fn upstream_roots_must_be_readable_pem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").expect("write");
    let text = format!(
        "[tls]\nupstream_roots = [\"{}\", \"{}\"]\n",
        not_pem.display(),
        dir.path().join("missing.pem").display()
    );
    let found = errors(&text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("`tls.upstream_roots[0]`: ") && found[0].contains("holds no PEM certificate"));
    assert!(found[1].contains("`tls.upstream_roots[1]`: cannot read"));
}

#[test]
fn durations_accept_text_and_seconds() {
    let config = Config::from_toml("[upstream]\nconnect_timeout = \"250ms\"\nresponse_timeout = 5\n", "t").expect("ok");
    assert_eq!(config.upstream.connect_timeout.0, Duration::from_millis(250));
    assert_eq!(config.upstream.response_timeout.0, Duration::from_secs(5));
}

#[test]
fn registry_and_portal_keys_are_checked() {
    let found = errors(
        r#"
[public]
rate_limit_per_ip = 0
max_body_bytes = 10
dns_nameservers = ["127.0.0.1:5353"]

[[registry.feeds]]
url = "ftp://x.example/feed"

[[registry.feeds]]
url = "https://r.example/feed.jsonl"
interval = "100ms"
public_key = "not-a-key"

[[registry.feeds]]
url = "https://r.example/feed.jsonl"
"#,
    );
    let expected = [
        "test.toml: `public.rate_limit_per_ip`: must be at least 1 (requests per minute)",
        "test.toml: `public.max_body_bytes`: must be at least 1024, got 10",
        "test.toml: `registry.feeds[0].url`: must be an http(s) URL, got \"ftp://x.example/feed\"",
        "test.toml: `registry.feeds[1].interval`: must be at least 1s",
        "test.toml: `registry.feeds[1].public_key`: must be a base64 Ed25519 public key (32 bytes)",
        "test.toml: `registry.feeds[2].url`: \"https://r.example/feed.jsonl\" is listed more than once",
    ];
    assert_eq!(found, expected);
    let unknown = errors("[[registry.feeds]]\nurl = \"https://r.example/f\"\nintervall = \"1m\"\n");
    assert!(unknown[0].starts_with("test.toml: `registry.feeds[0].intervall`: unknown field"), "{unknown:?}");
}

#[test]
fn environment_variables_override_the_file_and_name_themselves_in_errors() {
    let vars = |list: &[(&str, &str)]| list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    let file = "[proxy]\nblock_status = 451\nlisten = \"127.0.0.1:3128\"\n";
    let config = Config::from_sources(
        file,
        "c.toml",
        vars(&[
            ("CONSENTRY_PROXY__BLOCK_STATUS", "403"),
            ("CONSENTRY_PUBLIC__LISTEN", "0.0.0.0:9129"),
            ("CONSENTRY_STORAGE__URL", "postgres://consentry@db/consentry"),
            ("CONSENTRY_CRAWLERS", r#"[{ name = "bot", token = "Bot", purposes = ["tdm"] }]"#),
        ]),
    )
    .expect("valid");
    assert_eq!(config.proxy.block_status, 403);
    assert_eq!(config.proxy.listen.to_string(), "127.0.0.1:3128", "keys not overridden stay");
    assert_eq!(config.public.listen.to_string(), "0.0.0.0:9129");
    assert_eq!(config.storage.url, "postgres://consentry@db/consentry");
    assert_eq!(config.crawlers[0].name, "bot");

    let invalid = Config::from_sources(file, "c.toml", vars(&[("CONSENTRY_PROXY__BLOCK_STATUS", "200")]))
        .expect_err("invalid")
        .to_string();
    assert!(invalid.contains("`proxy.block_status`: must be 403 or 451, got 200"), "{invalid}");
    assert!(invalid.contains("set by the environment variable CONSENTRY_PROXY__BLOCK_STATUS"), "{invalid}");
    let typo = Config::from_sources(file, "c.toml", vars(&[("CONSENTRY_PROXY__BLOK_STATUS", "403")]))
        .expect_err("unknown key")
        .to_string();
    assert!(typo.contains("`proxy.blok_status`: unknown field"), "{typo}");
    assert!(typo.contains("CONSENTRY_PROXY__BLOK_STATUS"), "{typo}");
    // Without overrides, errors keep their line numbers.
    let plain = Config::from_sources("[proxy]\nblok = 1\n", "c.toml", vars(&[("HOME", "/")])).expect_err("unknown");
    assert!(plain.to_string().contains("(line 2)"), "{plain}");
}
