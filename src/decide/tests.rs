use super::*;

fn finding(source: Source, effect: Effect, purposes: &[Purpose]) -> Finding {
    Finding {
        source,
        effect,
        purposes: purposes.to_vec(),
        rule: Some("rule".into()),
        line: Some(3),
        evidence: Some("https://site.example/robots.txt".into()),
        evidence_sha256: Some("ab".repeat(32)),
        detail: None,
        entry_id: None,
        creator: None,
    }
}

fn crawler(purposes: &[Purpose], mode: Mode) -> Crawler<'_> {
    Crawler { name: "acme", purposes, mode }
}

fn evidence(findings: Vec<Finding>) -> Evidence {
    Evidence { findings, notes: Vec::new() }
}

#[test]
fn no_signal_allows_and_records_nothing_disallowing() {
    let decision = decide(&crawler(&[Purpose::AiTrain], Mode::Enforce), &Evidence::default(), Stage::Request);
    assert_eq!(decision.verdict, Verdict::Allow);
    assert!(decision.reasons.is_empty());
    assert_eq!(decision.header_value(), "allow");
    assert!(!decision.stops_request());
}

#[test]
fn access_rules_block_whatever_the_purpose() {
    for purpose in Purpose::ALL {
        let ev = evidence(vec![finding(Source::Robots, Effect::Disallow, &[])]);
        let decision = decide(&crawler(&[purpose], Mode::Enforce), &ev, Stage::Request);
        assert_eq!(decision.verdict, Verdict::Block, "{purpose:?}");
        assert_eq!(decision.reasons[0].purpose, None);
        assert_eq!(decision.reasons[0].line, Some(3));
    }
}

#[test]
fn purpose_scoped_findings_only_concern_crawlers_with_that_purpose() {
    let ev = evidence(vec![finding(Source::ContentSignal, Effect::Disallow, &[Purpose::AiTrain])]);
    let search = decide(&crawler(&[Purpose::Search], Mode::Enforce), &ev, Stage::Request);
    assert_eq!(search.verdict, Verdict::Allow);
    assert!(search.reasons.is_empty(), "a finding about other purposes is not a reason");
    let both = decide(&crawler(&[Purpose::Search, Purpose::AiTrain], Mode::Enforce), &ev, Stage::Request);
    assert_eq!(both.verdict, Verdict::Block);
    assert_eq!(both.reasons[0].purpose, Some(Purpose::AiTrain));
}

#[test]
fn unknown_and_unreachable_are_recorded_but_do_not_block() {
    let ev = evidence(vec![
        finding(Source::ContentUsage, Effect::Unknown, &[Purpose::AiTrain]),
        finding(Source::Tdmrep, Effect::Unreachable, &[]),
        finding(Source::AiTxt, Effect::Allow, &[Purpose::AiTrain]),
    ]);
    let decision = decide(&crawler(&[Purpose::AiTrain], Mode::Enforce), &ev, Stage::Request);
    assert_eq!(decision.verdict, Verdict::Allow);
    assert_eq!(decision.reasons.len(), 3);
}

#[test]
fn disallowing_reasons_come_first() {
    let ev = evidence(vec![
        finding(Source::ContentUsage, Effect::Unknown, &[]),
        finding(Source::Registry, Effect::Disallow, &[Purpose::Tdm]),
    ]);
    let decision = decide(&crawler(&[Purpose::Tdm], Mode::Enforce), &ev, Stage::Response);
    assert_eq!(decision.reasons[0].source, Source::Registry);
    assert_eq!(decision.stage, Stage::Response);
}

#[test]
fn monitor_mode_would_block_but_does_not_stop_the_request() {
    let ev = evidence(vec![finding(Source::Robots, Effect::Disallow, &[])]);
    let decision = decide(&crawler(&[Purpose::Search], Mode::Monitor), &ev, Stage::Request);
    assert_eq!(decision.verdict, Verdict::Block);
    assert_eq!(decision.header_value(), "would-block");
    assert!(!decision.stops_request());
    let enforce = decide(&crawler(&[Purpose::Search], Mode::Enforce), &ev, Stage::Request);
    assert_eq!(enforce.header_value(), "block");
    assert!(enforce.stops_request());
}

#[test]
fn notes_are_carried_into_the_decision() {
    let ev = Evidence { findings: Vec::new(), notes: vec!["interception off".into()] };
    let decision = decide(&crawler(&[Purpose::Search], Mode::Enforce), &ev, Stage::Request);
    assert_eq!(decision.notes, ["interception off"]);
}

#[test]
fn reasons_serialise_with_the_documented_field_names() {
    let ev = evidence(vec![finding(Source::NetworkPolicy, Effect::Disallow, &[])]);
    let decision = decide(&crawler(&[Purpose::AiInput], Mode::Enforce), &ev, Stage::Request);
    let json = serde_json::to_value(&decision.reasons[0]).expect("serialise");
    assert_eq!(
        json,
        serde_json::json!({
            "source": "network-policy", "effect": "disallow", "purpose": null, "rule": "rule", "line": 3,
            "evidence": "https://site.example/robots.txt", "evidence_sha256": "ab".repeat(32)
        })
    );
    assert_eq!(serde_json::to_value(Purpose::AiInput).expect("purpose"), "ai-input");
}

#[test]
fn a_response_block_turns_the_decision_into_a_response_stage_block() {
    let crawler = crawler(&[Purpose::AiTrain], Mode::Enforce);
    let mut decision = decide(&crawler, &evidence(vec![finding(Source::Robots, Effect::Allow, &[])]), Stage::Request);
    let response = decide(
        &crawler,
        &evidence(vec![finding(Source::XRobotsTag, Effect::Disallow, &[Purpose::AiTrain])]),
        Stage::Response,
    );
    decision.absorb_response(response);
    assert_eq!(decision.verdict, Verdict::Block);
    assert_eq!(decision.stage, Stage::Response);
    assert_eq!(decision.reasons.iter().map(|r| r.source).collect::<Vec<_>>(), [Source::XRobotsTag, Source::Robots]);

    let mut allowed = decide(&crawler, &Evidence::default(), Stage::Request);
    allowed.absorb_response(decide(&crawler, &Evidence::default(), Stage::Response));
    assert_eq!((allowed.verdict, allowed.stage), (Verdict::Allow, Stage::Request));
}

#[test]
fn wire_names_match_the_serde_names() {
    let name = |value: serde_json::Value| value.as_str().map(str::to_string).expect("a string");
    for source in Source::ALL {
        assert_eq!(name(serde_json::to_value(source).expect("source")), source.as_str());
    }
    for stage in [Stage::Request, Stage::Response] {
        assert_eq!(name(serde_json::to_value(stage).expect("stage")), stage.as_str());
    }
    for mode in [Mode::Enforce, Mode::Monitor] {
        assert_eq!(name(serde_json::to_value(mode).expect("mode")), mode.as_str());
    }
    for verdict in [Verdict::Allow, Verdict::Block] {
        assert_eq!(name(serde_json::to_value(verdict).expect("verdict")), verdict.as_str());
    }
    for effect in [Effect::Disallow, Effect::Allow, Effect::Unknown, Effect::Unreachable] {
        assert_eq!(name(serde_json::to_value(effect).expect("effect")), effect.as_str());
    }
}
