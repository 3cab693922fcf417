use super::index::Index;
use super::pattern::{Pattern, View};
use super::*;
use proptest::prelude::*;

fn robots(body: &str) -> RobotsTxt {
    RobotsTxt::parse(body.as_bytes(), DEFAULT_MAX_BYTES)
}

/// Runs `(name, body, token, path, allowed)` cases, naming the failing one.
fn assert_cases(cases: &[(&str, &str, &str, &str, bool)]) {
    for &(name, body, token, path, allowed) in cases {
        let verdict = robots(body).check(token, path);
        assert_eq!(verdict.allowed, allowed, "{name}: {token} {path} -> {verdict:?}");
    }
}

#[test]
#[rustfmt::skip]
fn groups_and_their_boundaries() {
    assert_cases(&[
        ("consecutive user-agents share a group", "User-agent: a\nUser-agent: b\nDisallow: /\n", "b", "/x", false),
        ("a user-agent after a rule starts a group", "User-agent: a\nDisallow: /\nUser-agent: b\nAllow: /\n", "a", "/x", false),
        ("second group is separate", "User-agent: a\nDisallow: /\nUser-agent: b\nAllow: /x\n", "b", "/y", true),
        ("blank lines do not end a group", "User-agent: a\n\n\nDisallow: /\n", "a", "/x", false),
        ("sitemap does not end a group", "User-agent: a\nSitemap: https://e.com/s.xml\nDisallow: /\n", "a", "/x", false),
        ("unknown line does not end a group", "User-agent: a\nContent-Usage: train-ai=n\nDisallow: /\n", "a", "/x", false),
        ("unknown line between user-agents keeps one group", "User-agent: a\nCrawl-delay: 5\nUser-agent: b\nDisallow: /\n", "a", "/x", false),
        ("unknown line after a rule does not end the group", "User-agent: a\nDisallow: /p\nHost: e.com\nDisallow: /q\n", "a", "/q", false),
        ("rules before any user-agent are ignored", "Disallow: /\nUser-agent: a\nAllow: /x\n", "a", "/y", true),
        ("rules before any user-agent do not reach *", "Disallow: /\nUser-agent: *\nAllow: /x\n", "z", "/y", true),
        ("the last group may have no rules: allows", "User-agent: *\nDisallow: /\nUser-agent: a\n", "a", "/x", true),
        ("no groups at all allows", "Sitemap: https://e.com/s.xml\n", "a", "/x", true),
    ]);
}

#[test]
#[rustfmt::skip]
fn group_selection_and_merging() {
    assert_cases(&[
        ("groups of the same token merge", "User-agent: a\nDisallow: /p\nUser-agent: b\nDisallow: /\nUser-agent: a\nDisallow: /q\n", "a", "/q", false),
        ("merged: first group's rule still applies", "User-agent: a\nDisallow: /p\nUser-agent: b\nDisallow: /\nUser-agent: a\nDisallow: /q\n", "a", "/p", false),
        ("merged: longest match across groups", "User-agent: a\nDisallow: /p\nUser-agent: a\nAllow: /p/ok\n", "a", "/p/ok", true),
        ("specific replaces *", "User-agent: *\nDisallow: /x\nUser-agent: a\nDisallow: /y\n", "a", "/x", true),
        ("specific group used", "User-agent: *\nDisallow: /x\nUser-agent: a\nDisallow: /y\n", "a", "/y", false),
        ("others get *", "User-agent: *\nDisallow: /x\nUser-agent: a\nDisallow: /y\n", "b", "/x", false),
        ("several * groups merge", "User-agent: *\nDisallow: /x\nUser-agent: b\nAllow: /\nUser-agent: *\nDisallow: /y\n", "c", "/y", false),
        ("several * groups merge (first)", "User-agent: *\nDisallow: /x\nUser-agent: b\nAllow: /\nUser-agent: *\nDisallow: /y\n", "c", "/x", false),
        ("no * and no own group allows", "User-agent: a\nDisallow: /\n", "b", "/x", true),
        ("'* foo' is the * group", "User-agent: * foo\nDisallow: /\n", "b", "/x", false),
        ("'*bot' is not the * group", "User-agent: *bot\nDisallow: /\n", "b", "/x", true),
    ]);
}

#[test]
#[rustfmt::skip]
fn product_tokens_match_exactly_and_case_insensitively() {
    assert_cases(&[
        ("case-insensitive", "User-agent: GPTBot\nDisallow: /\n", "gptbot", "/", false),
        ("case-insensitive (caller upper)", "user-agent: gptbot\nDisallow: /\n", "GPTBOT", "/", false),
        ("AI2Bot stays AI2Bot", "User-agent: AI2Bot\nDisallow: /\n", "AI2Bot", "/", false),
        ("AI2Bot is not AI", "User-agent: AI2Bot\nDisallow: /\n", "AI", "/", true),
        ("no prefix match", "User-agent: Googlebot\nDisallow: /\n", "Googlebot-News", "/", true),
        ("no substring match", "User-agent: Googlebot-News\nDisallow: /\n", "Googlebot", "/", true),
        ("version after slash ignored", "User-agent: Googlebot/2.1\nDisallow: /\n", "Googlebot", "/", false),
        ("words after a space ignored", "User-agent: Kangaroo Bot\nDisallow: /\n", "Kangaroo", "/", false),
        ("a trailing * is not part of the token", "User-agent: foobot*\nDisallow: /\n", "foobot", "/", false),
        ("dots are token characters", "User-agent: bigsur.ai\nDisallow: /\n", "bigsur.ai", "/", false),
        ("caller token with a space has no group", "User-agent: *\nAllow: /\nUser-agent: Foo\nDisallow: /\n", "Foo Bar", "/", true),
        ("caller token with a slash has no group", "User-agent: Foo\nDisallow: /\n", "Foo/1.0", "/", true),
        ("empty caller token gets *", "User-agent: *\nDisallow: /\n", "", "/", false),
        ("a user-agent without a token opens a group for nobody", "User-agent: /x\nDisallow: /\nUser-agent: *\nAllow: /\n", "x", "/", true),
    ]);
}

#[test]
#[rustfmt::skip]
fn longest_match_ties_and_empty_rules() {
    assert_cases(&[
        ("longer disallow wins", "User-agent: a\nAllow: /p\nDisallow: /p/q\n", "a", "/p/q/r", false),
        ("longer allow wins", "User-agent: a\nDisallow: /p\nAllow: /p/q\n", "a", "/p/q/r", true),
        ("order does not matter", "User-agent: a\nAllow: /p/q\nDisallow: /p\n", "a", "/p/q/r", true),
        ("tie goes to allow", "User-agent: a\nDisallow: /p\nAllow: /p\n", "a", "/p", true),
        ("tie with wildcards counts octets", "User-agent: a\nDisallow: /*.h\nAllow: /p.h\n", "a", "/p.h", true),
        ("empty disallow matches nothing", "User-agent: a\nDisallow:\n", "a", "/x", true),
        ("empty allow matches nothing", "User-agent: a\nAllow:\nDisallow: /\n", "a", "/x", false),
        ("matching is case-sensitive", "User-agent: a\nDisallow: /X\n", "a", "/x", true),
        ("prefix match", "User-agent: a\nDisallow: /fish\n", "a", "/fishheads", false),
        ("query is part of the path", "User-agent: a\nDisallow: /p?q=1\n", "a", "/p?q=1&r=2", false),
        ("query rule does not match the bare path", "User-agent: a\nDisallow: /p?q\n", "a", "/p", true),
    ]);
}

#[test]
#[rustfmt::skip]
fn wildcards_and_end_anchor() {
    assert_cases(&[
        ("* matches any run", "User-agent: a\nDisallow: /*.pdf\n", "a", "/a/b.pdf?x", false),
        ("* matches the empty run", "User-agent: a\nDisallow: /a*b\n", "a", "/ab", false),
        ("several *", "User-agent: a\nDisallow: /*-*-*-321$\n", "a", "/x-y-z-321", false),
        ("several * without a match", "User-agent: a\nDisallow: /*-*-*-321$\n", "a", "/x-y-321", true),
        ("$ anchors", "User-agent: a\nDisallow: /*.pdf$\n", "a", "/a.pdf", false),
        ("$ anchors: longer path", "User-agent: a\nDisallow: /*.pdf$\n", "a", "/a.pdf?x", true),
        ("$ without *", "User-agent: a\nDisallow: /p$\n", "a", "/p/", true),
        ("$ without *: exact", "User-agent: a\nDisallow: /p$\n", "a", "/p", false),
        ("leading * pattern", "User-agent: a\nDisallow: *.gif\n", "a", "/i/x.gif", false),
        ("trailing * is a no-op", "User-agent: a\nDisallow: /p*\n", "a", "/p", false),
        ("*$ matches everything after the prefix", "User-agent: a\nDisallow: /p*$\n", "a", "/pq", false),
        ("$ in the middle is literal", "User-agent: a\nDisallow: /a$b\n", "a", "/a$b", false),
        ("$ in the middle is literal (no match)", "User-agent: a\nDisallow: /a$b\n", "a", "/a", true),
        ("allow /$ only the root", "User-agent: a\nAllow: /$\nDisallow: /\n", "a", "/", true),
        ("allow /$ not deeper", "User-agent: a\nAllow: /$\nDisallow: /\n", "a", "/x", false),
    ]);
}

#[test]
#[rustfmt::skip]
fn percent_encoding_and_non_ascii() {
    assert_cases(&[
        ("raw UTF-8 pattern matches the encoded path", "User-agent: a\nDisallow: /ツ\n", "a", "/%E3%83%84", false),
        ("encoded pattern matches the encoded path", "User-agent: a\nDisallow: /%E3%83%84\n", "a", "/%E3%83%84", false),
        ("lower-case hex in the pattern", "User-agent: a\nDisallow: /%e3%83%84\n", "a", "/%E3%83%84", false),
        ("lower-case hex in the path", "User-agent: a\nDisallow: /%E3%83%84\n", "a", "/%e3%83%84", false),
        ("raw UTF-8 in the path is disallowed by a raw pattern", "User-agent: a\nDisallow: /ツ\n", "a", "/ツ", false),
        ("encoded unreserved in the pattern disallows the plain path", "User-agent: a\nDisallow: /%7Euser\n", "a", "/~user", false),
        ("encoded unreserved in the path is disallowed by a plain pattern", "User-agent: a\nDisallow: /~user\n", "a", "/%7Euser", false),
        ("%2F is not a slash", "User-agent: a\nDisallow: /a/b\n", "a", "/a%2Fb", true),
        ("%2A in a pattern matches a literal * in the path", "User-agent: a\nDisallow: /f-%2A.html\n", "a", "/f-*.html", false),
        ("%24 in a pattern matches a literal $ in the path", "User-agent: a\nDisallow: /foo-%24\n", "a", "/foo-$", false),
        ("an allow needs both readings: encoded unreserved", "User-agent: a\nDisallow: /\nAllow: /%62az\n", "a", "/baz", false),
        ("an allow needs both readings: as sent", "User-agent: a\nDisallow: /\nAllow: /%62az\n", "a", "/%62az", true),
        ("an allow needs both readings: raw UTF-8 path", "User-agent: a\nDisallow: /\nAllow: /ツ\n", "a", "/ツ", false),
        ("an allow needs both readings: encoded path", "User-agent: a\nDisallow: /\nAllow: /ツ\n", "a", "/%E3%83%84", true),
        ("a lone % is compared as %25", "User-agent: a\nDisallow: /100%\n", "a", "/100%25", false),
        ("a space in the path", "User-agent: a\nDisallow: /a%20b\n", "a", "/a b", false),
    ]);
}

#[test]
fn robots_txt_itself_is_always_allowed() {
    let file = robots("User-agent: *\nDisallow: /\n");
    assert_eq!(file.check("a", "/robots.txt"), RobotsMatch { allowed: true, group: None, rule: None });
    assert!(!file.check("a", "/robots.txt?x=1").allowed);
    assert!(!file.check("a", "/ROBOTS.TXT").allowed);
}

#[test]
fn request_target_forms() {
    let file = robots("User-agent: *\nDisallow: /$\nDisallow: /p\n");
    assert!(!file.check("a", "").allowed, "empty target is /");
    assert!(!file.check("a", "p").allowed, "a missing slash is added");
    assert!(!file.check("a", "/p#frag").allowed);
    assert!(file.check("a", "/q#/p").allowed, "the fragment is not matched");
}

#[test]
#[rustfmt::skip]
fn bom_line_endings_and_lenient_keys() {
    assert_cases(&[
        ("BOM skipped", "\u{feff}User-agent: a\nDisallow: /\n", "a", "/", false),
        ("CR line endings", "User-agent: a\rDisallow: /\r", "a", "/", false),
        ("CRLF line endings", "User-agent: a\r\nDisallow: /\r\n", "a", "/", false),
        ("missing colon", "User-agent a\nDisallow /\n", "a", "/", false),
        ("key typo", "Useragent: a\nDissallow: /\n", "a", "/", false),
        ("keys are case-insensitive", "USER-AGENT: a\nDISALLOW: /\n", "a", "/", false),
        ("comments", "User-agent: a # me\nDisallow: /p # not /\n", "a", "/q", true),
        ("AllowAITraining is not an allow", "User-agent: a\nDisallow: /\nAllowAITraining: /\n", "a", "/", false),
        ("DisallowAITraining is not a disallow", "User-agent: a\nDisallowAITraining: /\n", "a", "/", true),
        ("Disallowed is a disallow", "User-agent: a\nDisallowed: /p\n", "a", "/p", false),
    ]);
    for prefix in [&[0xEF, 0xBB, 0xBF][..], &[0xEF, 0xBB], &[0xEF]] {
        let body = [prefix, b"User-agent: a\nDisallow: /\n"].concat();
        assert!(
            !RobotsTxt::parse(&body, DEFAULT_MAX_BYTES).check("a", "/").allowed,
            "{prefix:x?}"
        );
    }
    let late_bom = b"User-agent: a\n\xEF\xBB\xBFDisallow: /\n";
    assert!(
        RobotsTxt::parse(late_bom, DEFAULT_MAX_BYTES).check("a", "/").allowed,
        "a BOM only counts at the start"
    );
}

#[test]
fn invalid_utf8_is_decoded_lossily() {
    let body = b"User-agent: a\nDisallow: /\xFF\xFE\nDisallow: /ok\n";
    let file = RobotsTxt::parse(body, DEFAULT_MAX_BYTES);
    assert!(!file.check("a", "/ok").allowed);
    assert!(!file.check("a", "/%EF%BF%BD%EF%BF%BD").allowed, "U+FFFD, encoded");
    assert!(file.check("a", "/x").allowed);
}

#[test]
#[rustfmt::skip]
fn patterns_without_leading_slash() {
    assert_cases(&[
        ("disallow without / restricts as if it had one", "User-agent: a\nDisallow: private/\n", "a", "/private/x", false),
        ("allow without / is ignored", "User-agent: a\nDisallow: /\nAllow: public/\n", "a", "/public/x", false),
        ("full URL pattern matches nothing real", "User-agent: a\nDisallow: https://e.com/p\n", "a", "/p", true),
    ]);
}

#[test]
fn max_bytes_truncation() {
    let body = b"User-agent: a\nDisallow: /p\nDisallow: /q\n";
    let cut_after_p = RobotsTxt::parse(body, 27);
    assert!(!cut_after_p.check("a", "/p").allowed);
    assert!(cut_after_p.check("a", "/q").allowed, "rules past max_bytes are ignored");
    let cut_mid_line = RobotsTxt::parse(body, 25);
    assert!(!cut_mid_line.check("a", "/").allowed, "`Disallow: /` from the cut line");
    assert!(RobotsTxt::parse(body, 0).check("a", "/p").allowed);
}

#[test]
fn long_lines_do_not_panic_and_never_invent_an_allow() {
    let long = "é".repeat(20_000);
    let body = format!("User-agent: a\nDisallow: /\nAllow: /{long}\nDisallow: /x{long}\nDisallow: /after\n");
    let file = robots(&body);
    let encoded = format!("/{}", "%C3%A9".repeat(20_000));
    assert!(!file.check("a", &encoded).allowed, "a cut Allow is dropped");
    assert!(!file.check("a", &format!("/{long}")).allowed);
    assert!(!file.check("a", "/after").allowed, "line numbering survives");
    assert_eq!(file.check("a", "/after").rule.map(|r| r.line), Some(5));
}

#[test]
#[rustfmt::skip]
fn crawl_delay() {
    type Case<'a> = (&'a str, &'a str, &'a str, Option<(f64, u32)>);
    let cases: &[Case] = &[
        ("integer", "User-agent: a\nCrawl-delay: 10\n", "a", Some((10.0, 2))),
        ("fraction", "User-agent: a\nCrawl-delay: 0.5\n", "a", Some((0.5, 2))),
        ("leading dot", "User-agent: a\nCrawl-delay: .5\n", "a", Some((0.5, 2))),
        ("key case and spacing", "User-agent: a\ncrawl-delay : 3\n", "a", Some((3.0, 2))),
        ("negative ignored", "User-agent: a\nCrawl-delay: -1\n", "a", None),
        ("exponent ignored", "User-agent: a\nCrawl-delay: 1e3\n", "a", None),
        ("inf ignored", "User-agent: a\nCrawl-delay: inf\n", "a", None),
        ("text ignored", "User-agent: a\nCrawl-delay: soon\n", "a", None),
        ("empty ignored", "User-agent: a\nCrawl-delay:\n", "a", None),
        ("largest wins", "User-agent: a\nCrawl-delay: 2\nCrawl-delay: 7\nCrawl-delay: 7\n", "a", Some((7.0, 3))),
        ("invalid does not hide valid", "User-agent: a\nCrawl-delay: x\nCrawl-delay: 4\n", "a", Some((4.0, 3))),
        ("from * when no own group", "User-agent: *\nCrawl-delay: 5\n", "b", Some((5.0, 2))),
        ("own group replaces *", "User-agent: *\nCrawl-delay: 5\nDisallow:\nUser-agent: b\nDisallow: /x\n", "b", None),
        ("a crawl-delay line does not end the user-agent lines", "User-agent: *\nCrawl-delay: 5\nUser-agent: b\nDisallow: /x\n", "b", Some((5.0, 2))),
        ("merged groups", "User-agent: b\nCrawl-delay: 1\nUser-agent: c\nDisallow:\nUser-agent: b\nCrawl-delay: 9\n", "b", Some((9.0, 6))),
        ("outside a group ignored", "Crawl-delay: 5\nUser-agent: b\nDisallow:\n", "b", None),
    ];
    for &(name, body, token, expected) in cases {
        assert_eq!(robots(body).crawl_delay(token), expected, "{name}");
    }
}

fn ext(key: &str, value: &str, line: u32) -> ExtensionLine {
    ExtensionLine { key: key.to_owned(), value: value.to_owned(), line }
}

#[test]
fn extensions_keep_keys_values_and_line_numbers() {
    let body = "License: https://e.com/l.xml\nSitemap: https://e.com/s.xml # map\n\nUser-agent: *\nContent-Signal: search=yes, ai-train=no\nAllow: /\n\nUser-agent: GPTBot\nUser-agent: CCBot\nContent-Usage: train-ai=n\nDisallowAITraining: /\nDisallow: /\nSitemap: https://e.com/s2.xml\nCrawl-delay: 3\nFoo: bar%zz/é\n";
    let file = robots(body);
    assert_eq!(
        file.global_extensions(),
        [ext("License", "https://e.com/l.xml", 1), ext("Sitemap", "https://e.com/s.xml", 2)]
    );
    assert_eq!(file.group_extensions("other"), [ext("Content-Signal", "search=yes, ai-train=no", 5)]);
    let expected = [
        ext("Content-Usage", "train-ai=n", 10),
        ext("DisallowAITraining", "/", 11),
        ext("Sitemap", "https://e.com/s2.xml", 13),
        ext("Crawl-delay", "3", 14),
        ext("Foo", "bar%zz/é", 15),
    ];
    assert_eq!(file.group_extensions("ccbot"), expected);
    assert_eq!(file.group_extensions("GPTBot"), expected);
    assert!(robots("User-agent: a\nDisallow: /\n").group_extensions("b").is_empty());
}

#[test]
fn merged_extensions_are_in_line_order() {
    let file =
        robots("User-agent: a\nX-One: 1\nDisallow: /\nUser-agent: b\nX-Two: 2\nAllow: /\nUser-agent: a\nX-Three: 3\n");
    assert_eq!(file.group_extensions("a"), [ext("X-One", "1", 2), ext("X-Three", "3", 8)]);
}

#[test]
fn verdict_names_group_and_rule() {
    let file = robots(
        "User-agent: *\nDisallow: /x\n\nUser-agent: gptbot\nUser-agent: CCBot\nDisallow: /private # secret\nAllow: /private/ok*\nUser-agent: GPTBOT\nDisallow: /more\n",
    );
    let disallow = file.check("GPTBot", "/private/a");
    assert_eq!(disallow.group, Some(GroupRef { token: "gptbot".into(), line: 4 }));
    assert_eq!(disallow.rule, Some(MatchedRule { allow: false, text: "Disallow: /private".into(), line: 6 }));
    assert!(!disallow.allowed);
    let allow = file.check("ccbot", "/private/ok.html");
    assert_eq!(allow.group, Some(GroupRef { token: "CCBot".into(), line: 5 }));
    assert_eq!(allow.rule, Some(MatchedRule { allow: true, text: "Allow: /private/ok*".into(), line: 7 }));
    let no_rule = file.check("gptbot", "/public");
    assert_eq!((no_rule.allowed, no_rule.rule), (true, None));
    assert_eq!(file.check("other", "/x").group, Some(GroupRef { token: "*".into(), line: 1 }));
    assert_eq!(
        robots("User-agent: a\nDisallow: /\n").check("b", "/"),
        RobotsMatch { allowed: true, group: None, rule: None }
    );
    assert_eq!(file.check("gptbot", "/more").rule.map(|r| r.line), Some(9), "merged group");
}

#[test]
fn check_specific_never_falls_back_to_star() {
    let file = robots("User-agent: *\nDisallow: /\nUser-agent: GPTBot\nDisallow: /ai\nUser-agent: Google-Extended\n");
    assert_eq!(file.check_specific("CCBot", "/ai"), None);
    assert_eq!(file.check_specific("GPTBot", "/ai").map(|m| m.allowed), Some(false));
    assert_eq!(file.check_specific("gptbot", "/other").map(|m| m.allowed), Some(true));
    assert_eq!(file.check_specific("Google-Extended", "/x").map(|m| m.allowed), Some(true), "empty own group allows");
    assert_eq!(file.check_specific("*", "/x"), None);
    assert_eq!(file.check_specific("GPT Bot", "/ai"), None);
}

#[test]
fn allow_all_and_stats() {
    let all = RobotsTxt::allow_all();
    assert!(all.check("a", "/x").allowed);
    assert_eq!(all.stats(), RobotsStats { groups: 0, rules: 0 });
    assert_eq!(all.crawl_delay("a"), None);
    assert!(all.global_extensions().is_empty());
    let file = robots(
        "Disallow: /ignored\nUser-agent: a\nDisallow: /\nDisallow:\nUser-agent: b\nAllow: /x\nUser-agent: a\nAllow: rel\n",
    );
    assert_eq!(file.stats(), RobotsStats { groups: 3, rules: 2 });
}

#[test]
fn ai_training_list_is_valid_and_grounded() {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/ai-robots.json"))
            .expect("ai-robots.json readable"),
    )
    .expect("ai-robots.json parses");
    let keys = json.as_object().expect("an object keyed by agent");
    // Tokens that only exist to opt out of training (SIGNALS.md §11.1); both are also keys.
    const CONTROL_TOKENS: [&str; 2] = ["Google-Extended", "Applebot-Extended"];
    let entries = tokens::entries("ai-training").expect("the shipped list parses");
    assert!(entries.len() >= 20, "{} tokens", entries.len());
    let mut seen = std::collections::HashSet::new();
    for entry in &entries {
        assert!(is_valid_token(&entry.name), "{} is not a product token", entry.name);
        assert!(seen.insert(entry.name.to_ascii_lowercase()), "{} listed twice", entry.name);
        assert!(!entry.why.trim().is_empty(), "{} has no reason", entry.name);
        let key = entry.key.as_deref().unwrap_or(&entry.name);
        assert!(keys.contains_key(key) || CONTROL_TOKENS.contains(&key), "{key} is not in ai-robots.json");
        // A `key` differing from `name` must be a User-agent value whose product token is `name`.
        let (parsed, _) = parse::agent_key(key);
        assert_eq!(parsed, AgentKey::Token(entry.name.to_ascii_lowercase()), "{key}");
    }
    let list = token_list("ai-training").expect("listed");
    assert_eq!(list.len(), entries.len());
    for expected in ["GPTBot", "ClaudeBot", "CCBot", "Google-Extended", "Applebot-Extended", "Bytespider"] {
        assert!(list.iter().any(|t| t == expected), "{expected}");
    }
    for not_training in ["OAI-SearchBot", "ChatGPT-User", "PerplexityBot", "Claude-User", "Applebot"] {
        assert!(!list.iter().any(|t| t == not_training), "{not_training}");
    }
    assert_eq!(token_list("search"), None);
}

/// Every pattern that can match, by brute force, with the same priority rule as the index.
fn brute_force(patterns: &[(Pattern, bool, usize)], path: &[u8]) -> Option<(usize, bool)> {
    patterns
        .iter()
        .filter(|(p, _, _)| path.starts_with(&p.prefix) && p.matches_after_prefix(path))
        .map(|(p, allow, _)| (p.len, *allow))
        .max()
}

proptest! {
    /// The prefix index finds the same best match as checking every pattern.
    #[test]
    fn index_agrees_with_brute_force(
        raw in proptest::collection::vec(("[/*][ab/*]{0,6}[$]?", any::<bool>()), 0..12),
        paths in proptest::collection::vec("/[ab/]{0,8}", 1..8),
    ) {
        let patterns: Vec<_> = raw
            .iter()
            .enumerate()
            .map(|(i, (p, allow))| (Pattern::compile(p, View::Normalised), *allow, i))
            .collect();
        let index = Index::new(patterns.clone());
        for path in &paths {
            let got = index.best(path.as_bytes()).map(|b| (b.len, b.allow));
            prop_assert_eq!(got, brute_force(&patterns, path.as_bytes()), "{:?} on {}", raw, path);
        }
    }
}
