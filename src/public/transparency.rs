//! The transparency endpoints of the public listener.
//!
//! Open to anyone (they reveal only hashes): `GET /tlog/checkpoint` (the signed tree head),
//! `GET /tlog/key` (the verifier key), `GET /tlog/tile/<L>/<N>[.p/<W>]` (C2SP tlog-tiles hash
//! tiles; entry bundles are private and answer 404), `GET /tlog/proof/consistency?old=&new=`.
//!
//! For a creator's API key, for their verified domain and its subdomains:
//! `GET /v1/domains/{domain}/decisions?since=&until=` (records, salts, leaf indexes, inclusion
//! proofs against the latest checkpoint, plus the records still waiting for a leaf) and
//! `GET /v1/domains/{domain}/receipt?since=&until=` (the same as a download that
//! `consentry verify receipt` checks offline).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, PublicState, authenticate, within};
use crate::registry::entry::normalize_domain;
use crate::tlog::leaf::encode_hash;
use crate::tlog::receipt::{RECEIPT_FORMAT, Receipt, ReceiptRecord};
use crate::tlog::store::{TILE_HEIGHT, TILE_WIDTH};
use crate::tlog::{TlogError, TlogStore, canonical_record};

/// What the transparency endpoints need from the running log.
#[derive(Clone)]
pub struct Transparency {
    pub store: TlogStore,
    pub verifier_key: String,
}

/// Routes under `/tlog` (open) and `/v1/domains` (creators; the caller adds the rate limit).
pub fn open_routes() -> Router<PublicState> {
    Router::new()
        .route("/tlog/checkpoint", get(checkpoint))
        .route("/tlog/key", get(verifier_key))
        .route("/tlog/tile/{*path}", get(tile))
        .route("/tlog/proof/consistency", get(consistency))
}

pub fn creator_routes() -> Router<PublicState> {
    Router::new()
        .route("/v1/domains/{domain}/decisions", get(decisions))
        .route("/v1/domains/{domain}/receipt", get(receipt))
}

fn log(state: &PublicState) -> Result<&Transparency, ApiError> {
    state.0.transparency.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_transparency_log",
            "this node keeps no transparency log (tlog.enabled = false or storage.url = \"none\")".into(),
        )
    })
}

impl From<TlogError> for ApiError {
    fn from(error: TlogError) -> Self {
        match error {
            TlogError::BadRequest(reason) => ApiError::invalid(reason),
            TlogError::NoLog => ApiError::new(StatusCode::NOT_FOUND, "no_transparency_log", error.to_string()),
            other => {
                tracing::error!(error = %other, "transparency log query failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the transparency log store is unavailable".into(),
                )
            }
        }
    }
}

fn text(body: String, cache: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
    ];
    (headers, body).into_response()
}

async fn checkpoint(State(state): State<PublicState>) -> Result<Response, ApiError> {
    let head = log(&state)?.store.head().await?.ok_or(TlogError::NoLog)?;
    Ok(text(head.checkpoint, "no-cache"))
}

async fn verifier_key(State(state): State<PublicState>) -> Result<Response, ApiError> {
    Ok(text(format!("{}\n", log(&state)?.verifier_key), "no-cache"))
}

/// A C2SP hash tile coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileCoordinate {
    pub level: u8,
    pub index: u64,
    pub width: u64,
}

/// Parses `<L>/<N>[.p/<W>]` (the part after `tile/`), where `N` is written in groups of three
/// digits, every group but the last prefixed with `x` (`x001/x234/067`).
pub fn parse_tile_path(path: &str) -> Option<TileCoordinate> {
    let mut parts: Vec<&str> = path.split('/').collect();
    let level: u8 = parse_decimal(parts.first()?)?.try_into().ok()?;
    if u32::from(level) * u32::from(TILE_HEIGHT) >= 64 {
        return None;
    }
    let mut width = TILE_WIDTH;
    if parts.len() >= 3 && parts[parts.len() - 2].ends_with(".p") {
        width = parse_decimal(parts.pop()?)?;
        if width == 0 || width >= TILE_WIDTH {
            return None;
        }
        let last = parts.pop()?.strip_suffix(".p")?;
        parts.push(last);
    }
    let groups = &parts[1..];
    let (last, leading) = groups.split_last()?;
    let mut index: u64 = 0;
    for group in leading {
        index = index.checked_mul(1000)?.checked_add(parse_group(group.strip_prefix('x')?)?)?;
    }
    index = index.checked_mul(1000)?.checked_add(parse_group(last)?)?;
    // A shorter encoding exists for this number: not a canonical path.
    if leading.first().is_some_and(|g| *g == "x000") {
        return None;
    }
    Some(TileCoordinate { level, index, width })
}

fn parse_group(group: &str) -> Option<u64> {
    (group.len() == 3 && group.bytes().all(|b| b.is_ascii_digit())).then(|| group.parse().ok()).flatten()
}

fn parse_decimal(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

async fn tile(State(state): State<PublicState>, Path(path): Path<String>) -> Result<Response, ApiError> {
    let log = log(&state)?;
    if path.starts_with("entries/") {
        let reason = "entry bundles are not published: the log's entries are private; a creator gets their own \
                      records and salts from /v1/domains/{domain}/receipt";
        return Err(ApiError::new(StatusCode::NOT_FOUND, "entries_private", reason.into()));
    }
    let coordinate = parse_tile_path(&path)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "bad_tile_path", format!("no tile at tile/{path}")))?;
    let data = log.store.tile(coordinate.level, coordinate.index, coordinate.width).await?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "no_such_tile", format!("the tree holds no tile/{path} yet"))
    })?;
    // Full tiles never change; a partial tile is replaced by a wider one as the tree grows.
    let cache = if coordinate.width == TILE_WIDTH { "public, max-age=31536000, immutable" } else { "no-cache" };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
    ];
    Ok((headers, data).into_response())
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    old: u64,
    new: u64,
}

async fn consistency(
    State(state): State<PublicState>,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(format!("need ?old=N&new=M (tree sizes): {e}")))?;
    let proof = log(&state)?.store.consistency_proof(query.old, query.new).await?;
    let proof: Vec<String> = proof.iter().map(encode_hash).collect();
    Ok(Json(json!({ "old": query.old, "new": query.new, "proof": proof })))
}

#[derive(Deserialize)]
struct Window {
    since: Option<i64>,
    until: Option<i64>,
}

/// The decisions answer: the receipt plus what is not in it yet.
#[derive(Serialize)]
struct Decisions {
    #[serde(flatten)]
    receipt: Receipt,
    tree_size: u64,
    verifier_key: String,
    /// More records matched than one answer holds; narrow the window.
    truncated: bool,
    /// Records already decided but still waiting for a leaf (sequenced within a second or so).
    pending: Vec<serde_json::Value>,
}

async fn build(state: &PublicState, headers: &HeaderMap, domain: &str, window: &Window) -> Result<Decisions, ApiError> {
    let log = log(state)?;
    let claim = authenticate(state, headers).await?;
    let domain = normalize_domain(domain).map_err(|p| ApiError::invalid(format!("domain: {p}")))?;
    if !within(&domain, &claim.domain) {
        let reason =
            format!("your API key is for {}; {domain} is not that domain or one of its subdomains", claim.domain);
        return Err(ApiError::new(StatusCode::FORBIDDEN, "outside_verified_domain", reason));
    }
    // Head first: every record listed afterwards was sequenced at or before a later head, so
    // only records inside this head's tree are kept.
    let head = log.store.head().await?.ok_or(TlogError::NoLog)?;
    let (mut leaves, truncated) = log.store.domain_records(&domain, window.since, window.until).await?;
    leaves.retain(|leaf| leaf.leaf_index < head.size);
    let indexes: Vec<u64> = leaves.iter().map(|l| l.leaf_index).collect();
    let proofs = log.store.inclusion_proofs(head.size, &indexes).await?;
    let records = leaves
        .into_iter()
        .zip(proofs)
        .map(|(leaf, proof)| ReceiptRecord {
            leaf_index: leaf.leaf_index,
            prev_leaf_index: leaf.prev_leaf_index,
            salt: leaf.salt,
            record: canonical_record(&leaf.record),
            inclusion_proof: proof.iter().map(encode_hash).collect(),
        })
        .collect();
    let pending = log.store.domain_pending(&domain).await?;
    Ok(Decisions {
        receipt: Receipt {
            format: RECEIPT_FORMAT.to_string(),
            domain,
            since: window.since,
            until: window.until,
            checkpoint: head.checkpoint,
            records,
        },
        tree_size: head.size,
        verifier_key: log.verifier_key.clone(),
        truncated,
        pending: pending.iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect(),
    })
}

async fn decisions(
    State(state): State<PublicState>,
    Path(domain): Path<String>,
    Query(window): Query<Window>,
    headers: HeaderMap,
) -> Result<Json<Decisions>, ApiError> {
    Ok(Json(build(&state, &headers, &domain, &window).await?))
}

async fn receipt(
    State(state): State<PublicState>,
    Path(domain): Path<String>,
    Query(window): Query<Window>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let built = build(&state, &headers, &domain, &window).await?;
    let filename = format!("consentry-receipt-{}-{}.json", built.receipt.domain, built.tree_size);
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let body = serde_json::to_string_pretty(&built.receipt).unwrap_or_default();
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (header::CONTENT_DISPOSITION, disposition),
    ];
    Ok((headers, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_parse_like_the_c2sp_encoding() {
        for (level, index, width) in [(0u8, 0u64, 256u64), (0, 5, 17), (1, 1234, 256), (2, 1_234_067, 3), (0, 999, 256)]
        {
            // tlog_tiles writes the same N encoding after its "tile/<height>/" prefix.
            let path = tlog_tiles::Tile::new(8, level, index, u32::try_from(width).expect("width"), false).path();
            let c2sp = path.strip_prefix("tile/8/").expect("tlog_tiles path");
            assert_eq!(parse_tile_path(c2sp), Some(TileCoordinate { level, index, width }), "{c2sp}");
        }
    }

    #[test]
    fn malformed_tile_paths_are_refused() {
        for bad in [
            "",
            "0",
            "0/1",
            "0/0001",
            "0/x1/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/007",
            "x/000",
            "0/x000/001",
            "8/000",
            "0/000/extra",
            "0/-01",
        ] {
            assert_eq!(parse_tile_path(bad), None, "{bad}");
        }
    }
}
