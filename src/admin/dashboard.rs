//! The operator dashboard: one self-contained HTML page (no external CDN) that logs in with the
//! admin token and reads everything from the operator API.

use axum::response::Html;

/// `GET /`: the dashboard page.
pub async fn page() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}
