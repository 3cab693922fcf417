//! Answers Consentry gives in place of the origin: the block answer and every error answer.
//!
//! This is the only place a decision or an error becomes an HTTP response. Every answer is JSON,
//! carries `Consentry-Request-Id`, and says why in words a crawler operator can act on.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, PROXY_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde::Serialize;

use super::ProxyBody;
use crate::decide::{Decision, Mode, Purpose, Reason, Stage, Verdict};

pub const DECISION_HEADER: &str = "consentry-decision";
pub const REQUEST_ID_HEADER: &str = "consentry-request-id";

/// The JSON body of a block answer (DESIGN §5, "HTTP answers to the crawler").
#[derive(Debug, Serialize)]
pub struct BlockBody<'a> {
    pub request_id: &'a str,
    pub verdict: Verdict,
    pub stage: Stage,
    pub mode: Mode,
    pub url: &'a str,
    pub crawler: &'a str,
    pub purposes: &'a [Purpose],
    pub reasons: &'a [Reason],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub notes: &'a [String],
}

/// The JSON body of an error answer.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    request_id: &'a str,
    error: &'a str,
    reason: &'a str,
}

/// The block answer: `status` with the decision and every reason.
pub fn blocked(status: StatusCode, body: &BlockBody<'_>, decision: &Decision) -> Response<ProxyBody> {
    let mut response = json(status, body, body.request_id);
    if let Ok(value) = HeaderValue::from_str(decision.header_value()) {
        response.headers_mut().insert(DECISION_HEADER, value);
    }
    response
}

/// An error answer; `error` is a stable machine-readable code, `reason` the explanation.
pub fn error(status: StatusCode, request_id: &str, error: &str, reason: &str) -> Response<ProxyBody> {
    json(status, &ErrorBody { request_id, error, reason }, request_id)
}

/// `407` asking for proxy credentials.
pub fn auth_required(request_id: &str, reason: &str) -> Response<ProxyBody> {
    let mut response = error(StatusCode::PROXY_AUTHENTICATION_REQUIRED, request_id, "proxy_auth_required", reason);
    response.headers_mut().insert(PROXY_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"consentry\""));
    response
}

/// The empty `200` that opens a CONNECT tunnel.
pub fn tunnel_established(request_id: &str) -> Response<ProxyBody> {
    let mut response = Response::new(empty());
    set_request_id(&mut response, request_id);
    response
}

pub fn set_request_id<B>(response: &mut Response<B>, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
}

pub fn empty() -> ProxyBody {
    Full::new(Bytes::new()).map_err(|never| match never {}).boxed_unsync()
}

fn json<T: Serialize>(status: StatusCode, body: &T, request_id: &str) -> Response<ProxyBody> {
    // Serialising these plain structs cannot fail; fall back to an empty object rather than panic.
    let mut bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    set_request_id(&mut response, request_id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Effect, Source};

    async fn body_json(response: Response<ProxyBody>) -> serde_json::Value {
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        serde_json::from_slice(&bytes).expect("JSON")
    }

    fn decision(mode: Mode) -> Decision {
        Decision {
            verdict: Verdict::Block,
            stage: Stage::Request,
            mode,
            reasons: vec![Reason {
                source: Source::Robots,
                effect: Effect::Disallow,
                purpose: None,
                rule: Some("Disallow: /private".into()),
                line: Some(3),
                evidence: Some("https://site/robots.txt".into()),
                evidence_sha256: Some("00".repeat(32)),
                detail: None,
                entry_id: None,
                creator: None,
            }],
            notes: Vec::new(),
        }
    }

    #[tokio::test]
    async fn block_answer_has_the_documented_shape() {
        let decision = decision(Mode::Enforce);
        let body = BlockBody {
            request_id: "id-1",
            verdict: decision.verdict,
            stage: decision.stage,
            mode: decision.mode,
            url: "https://site/private",
            crawler: "acme-train",
            purposes: &[Purpose::AiTrain],
            reasons: &decision.reasons,
            notes: &decision.notes,
        };
        let response = blocked(StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS, &body, &decision);
        assert_eq!(response.status(), 451);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(response.headers()[DECISION_HEADER], "block");
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "id-1");
        assert_eq!(
            body_json(response).await,
            serde_json::json!({
                "request_id": "id-1", "verdict": "block", "stage": "request", "mode": "enforce",
                "url": "https://site/private", "crawler": "acme-train", "purposes": ["ai-train"],
                "reasons": [{"source": "robots", "effect": "disallow", "purpose": null,
                             "rule": "Disallow: /private", "line": 3, "evidence": "https://site/robots.txt",
                             "evidence_sha256": "00".repeat(32)}]
            })
        );
    }

    #[tokio::test]
    async fn auth_and_error_answers_explain_themselves() {
        let response = auth_required("id-2", "unknown crawler or wrong password");
        assert_eq!(response.status(), 407);
        assert_eq!(response.headers()[PROXY_AUTHENTICATE], "Basic realm=\"consentry\"");
        let json = body_json(response).await;
        assert_eq!(json["reason"], "unknown crawler or wrong password");
        let response = error(StatusCode::BAD_GATEWAY, "id-3", "upstream_failed", "connection refused");
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "id-3");
        assert_eq!(body_json(response).await["error"], "upstream_failed");
    }
}
