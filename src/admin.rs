//! The admin listener: health and readiness for load balancers and orchestrators.
//!
//! The operator API, dashboard and metrics (DESIGN §5) grow here; for now it answers
//! `GET /healthz` (the process is up) and `GET /readyz` (the proxy is accepting requests).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::proxy::ProxyState;

/// Serves the admin listener until shutdown.
pub async fn serve(listener: TcpListener, state: Arc<ProxyState>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = state.shutdown.cancelled() => break,
        };
        let Ok((stream, _peer)) = accepted else { continue };
        let service_state = state.clone();
        state.tasks.spawn(async move {
            let service = service_fn(move |request| {
                let state = service_state.clone();
                async move { Ok::<_, Infallible>(route(&state, &request)) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = connection.await;
        });
    }
}

fn route(state: &ProxyState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => (StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") if state.shutdown.is_cancelled() => (StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        (&Method::GET, "/readyz") => (StatusCode::OK, "ready\n"),
        _ => (StatusCode::NOT_FOUND, "not found\n"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}
