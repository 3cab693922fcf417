//! Stage 1b: `CONNECT` tunnels, intercepted or spliced.
//!
//! With `tls.intercept = true` (the default) Consentry answers `200`, terminates TLS with a leaf
//! minted for the CONNECT host, and serves the inner HTTP/1.1 or HTTP/2 requests itself, each
//! rebuilt as `https://<CONNECT authority><path>` and judged like a plain request. The CONNECT
//! authority is the target: an SNI, `Host` or `:authority` naming another host is refused with
//! `421`, so nobody can open a tunnel to an allowed host and fetch an opted-out one through it.
//! The crawler identity of the CONNECT binds to every request in the tunnel.
//!
//! With interception off only a host-level decision is possible; it is taken (and says so) before
//! the tunnel opens, then bytes are spliced.

use std::sync::Arc;
use std::time::Duration;

use http::header;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::server::Acceptor;
use tokio_rustls::LazyConfigAcceptor;
use tokio_util::sync::CancellationToken;

use super::connections::busy_until_sent;
use super::target::{self, HostPort, Scheme, Target};
use super::{ClientConn, Exchange, ProxyBody, ProxyState, answer, new_request_id};
use crate::config::CrawlerProfile;
use crate::tls::{FixedResolver, LeafMinter, TlsSetupError, interception_config};

/// Time a client has to finish the TLS handshake inside a tunnel.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// The interception machinery: the leaf minter and the shared server configuration.
pub struct Interception {
    minter: Arc<LeafMinter>,
    server_config: Arc<rustls::ServerConfig>,
}

impl Interception {
    pub fn minter(&self) -> &LeafMinter {
        &self.minter
    }

    pub fn new(minter: Arc<LeafMinter>) -> Result<Self, TlsSetupError> {
        let server_config = interception_config(minter.clone())?;
        Ok(Self { minter, server_config })
    }

    /// The shared SNI-resolving configuration when the client's SNI names the tunnel host;
    /// otherwise (no SNI, e.g. an IP literal, or a mismatching one) a configuration presenting
    /// the tunnel host's certificate.
    fn config_for(&self, host: &str, sni: Option<&str>) -> Result<Arc<rustls::ServerConfig>, String> {
        if sni == Some(host) {
            return Ok(self.server_config.clone());
        }
        let leaf = self.minter.leaf_for(host).map_err(|e| format!("cannot mint a certificate for {host}: {e}"))?;
        let mut config = (*self.server_config).clone();
        config.cert_resolver = Arc::new(FixedResolver(leaf));
        Ok(Arc::new(config))
    }
}

/// A tunnel opened by CONNECT: its target and the crawler it belongs to.
pub struct Tunnel {
    pub host_port: HostPort,
    pub profile: Arc<CrawlerProfile>,
    /// Set when the TLS client named another host in SNI: every request is refused.
    pub sni_mismatch: Option<String>,
    /// Keeps the client connection's slot in `proxy.max_connections` while the tunnel lives.
    conn: Arc<ClientConn>,
}

/// Handles `CONNECT host:port` on the proxy port.
pub async fn handle_connect(
    state: Arc<ProxyState>,
    conn: Arc<ClientConn>,
    request_id: String,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let host_port = match target::parse_connect(request.uri()) {
        Ok(host_port) => host_port,
        Err(e) => return answer::error(StatusCode::BAD_REQUEST, &request_id, "bad_request", &e.to_string()),
    };
    let profile = match state.profiles.identify(request.headers().get(header::PROXY_AUTHORIZATION)) {
        Ok(profile) => profile,
        Err(e) => return answer::auth_required(&request_id, &e.to_string()),
    };
    if state.interception.is_some() {
        let tunnel = Tunnel { host_port, profile, sni_mismatch: None, conn };
        let task_state = state.clone();
        state.tasks.spawn(async move {
            match hyper::upgrade::on(request).await {
                Ok(upgraded) => intercept(task_state, tunnel, upgraded).await,
                Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
            }
        });
        return answer::tunnel_established(&request_id);
    }
    splice(state, conn, request_id, host_port, profile, request).await
}

/// Interception off: decide for the host, connect, then splice bytes both ways.
async fn splice(
    state: Arc<ProxyState>,
    conn: Arc<ClientConn>,
    request_id: String,
    host_port: HostPort,
    profile: Arc<CrawlerProfile>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let target = Target::new(Scheme::Https, host_port.clone(), "/");
    let mut exchange = Exchange::new(request_id, profile, target, Method::CONNECT, request.headers());
    exchange.notes.push(
        "tls.intercept is off: only host-level policy was applied (robots.txt for \"/\"); paths and responses were not inspected"
            .into(),
    );
    let decision = match super::judge(&state, &exchange).await {
        Ok(judgement) => judgement.decision,
        Err(refused) => return super::upstream_error_answer(&exchange, super::UpstreamError::Refused(refused)),
    };
    if decision.stops_request() {
        let response = super::block_answer(&state, &exchange, &decision);
        return super::finish(&state, &exchange, &decision, response).await;
    }
    let upstream = match state.upstream.connector().connect(&host_port.host, host_port.port).await {
        Ok(stream) => stream,
        Err(e) => return super::upstream_error_answer(&exchange, (&e).into()),
    };
    let shutdown = state.shutdown.clone();
    // Opaque bytes: the tunnel cannot be seen to be idle, so it counts as busy while it lives.
    let busy = conn.activity().busy();
    state.tasks.spawn(async move {
        let _held = (conn, busy);
        let Ok(upgraded) = hyper::upgrade::on(request).await else {
            return;
        };
        let mut client = TokioIo::new(upgraded);
        let mut upstream = upstream;
        tokio::select! {
            result = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
                if let Err(e) = result { tracing::debug!(error = %e, "tunnel closed with an error") }
            }
            () = shutdown.cancelled() => {}
        }
    });
    let mut response = answer::tunnel_established(&exchange.request_id);
    response.headers_mut().insert(answer::DECISION_HEADER, http::HeaderValue::from_static(decision.header_value()));
    response
}

/// Terminates TLS inside the tunnel and serves its requests.
async fn intercept(state: Arc<ProxyState>, mut tunnel: Tunnel, upgraded: hyper::upgrade::Upgraded) {
    let Some(interception) = state.interception.as_ref() else {
        return;
    };
    // Until its first request the tunnel is idle: reclaimable when every slot is taken.
    let reclaimed = tunnel.conn.activity().reclaimed.clone();
    let acceptor = LazyConfigAcceptor::new(Acceptor::default(), TokioIo::new(upgraded));
    let Some(hello) = unless_reclaimed(&reclaimed, tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor)).await else {
        return;
    };
    let start = match hello {
        Ok(Ok(start)) => start,
        Ok(Err(e)) => return tracing::debug!(error = %e, host = %tunnel.host_port.host, "no TLS ClientHello in tunnel"),
        Err(_) => return tracing::debug!(host = %tunnel.host_port.host, "TLS ClientHello timed out"),
    };
    let sni = start.client_hello().server_name().map(|name| name.trim_end_matches('.').to_ascii_lowercase());
    let host = tunnel.host_port.host.clone();
    if let Some(sni) = sni.as_deref().filter(|sni| *sni != host) {
        tunnel.sni_mismatch = Some(sni.to_string());
    }
    let config = match interception.config_for(&host, sni.as_deref()) {
        Ok(config) => config,
        Err(e) => return tracing::warn!(error = %e, "cannot intercept tunnel"),
    };
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, start.into_stream(config));
    let Some(handshake) = unless_reclaimed(&reclaimed, handshake).await else {
        return;
    };
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return tracing::debug!(error = %e, host = %host, "TLS handshake in tunnel failed"),
        Err(_) => return tracing::debug!(host = %host, "TLS handshake in tunnel timed out"),
    };
    let tunnel_activity = tunnel.conn.activity().clone();
    let tunnel = Arc::new(tunnel);
    let service_state = state.clone();
    let service = service_fn(move |request| {
        let state = service_state.clone();
        let tunnel = tunnel.clone();
        let busy = tunnel.conn.activity().busy();
        async move {
            let response = handle_in_tunnel(&state, &tunnel, request).await;
            Ok::<_, std::convert::Infallible>(busy_until_sent(response, busy))
        }
    });
    let builder = inner_builder(&state);
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result { tracing::debug!(error = %e, host = %host, "tunnel connection ended with an error") }
        }
        () = reclaimed.cancelled() => {
            // Idle between requests (or mid-head): dropping closes it; otherwise finish first.
            if !tunnel_activity.is_idle() {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
        () = state.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Runs `work` unless the connection is reclaimed first (then `None`).
async fn unless_reclaimed<F: std::future::Future>(reclaimed: &CancellationToken, work: F) -> Option<F::Output> {
    tokio::select! {
        output = work => Some(output),
        () = reclaimed.cancelled() => None,
    }
}

/// The HTTP/1.1 + HTTP/2 server for requests inside intercepted tunnels.
fn inner_builder(state: &ProxyState) -> auto::Builder<TokioExecutor> {
    let proxy = &state.config.proxy;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(proxy.header_read_timeout.0)
        .max_buf_size(proxy.max_header_bytes)
        .max_headers(proxy.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size(u32::try_from(proxy.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)));
    builder
}

/// A request inside an intercepted tunnel: check it targets the tunnel host, then process it.
pub async fn handle_in_tunnel(state: &ProxyState, tunnel: &Tunnel, request: Request<Incoming>) -> Response<ProxyBody> {
    let request_id = new_request_id();
    if let Some(problem) = super::head_too_large(state, &request) {
        return answer::error(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &request_id, "head_too_large", &problem);
    }
    if request.method() == Method::CONNECT {
        let reason = "CONNECT inside an intercepted tunnel is refused";
        return answer::error(StatusCode::BAD_REQUEST, &request_id, "bad_request", reason);
    }
    if let Some(reason) = misdirection(tunnel, &request) {
        return answer::error(StatusCode::MISDIRECTED_REQUEST, &request_id, "misdirected_request", &reason);
    }
    if let Some(problem) = super::repeated_host(&request) {
        return answer::error(StatusCode::BAD_REQUEST, &request_id, "bad_request", problem);
    }
    let path_and_query = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let target = Target::new(Scheme::Https, tunnel.host_port.clone(), path_and_query);
    let exchange =
        Exchange::new(request_id, tunnel.profile.clone(), target, request.method().clone(), request.headers());
    super::process(state, exchange, request).await
}

/// Why a request in the tunnel names another host than the CONNECT target, if it does.
fn misdirection(tunnel: &Tunnel, request: &Request<Incoming>) -> Option<String> {
    let expected = &tunnel.host_port;
    if let Some(sni) = &tunnel.sni_mismatch {
        return Some(format!("TLS SNI names {sni}, but the tunnel was opened to {}", expected.with_port()));
    }
    let uri_authority = request.uri().authority().map(|a| ("request target", Ok(a.as_str())));
    // Every Host line, not just the first: a second one naming another host is refused too.
    let host_headers = request.headers().get_all(header::HOST).iter().map(|v| ("Host header", v.to_str()));
    for (what, claim) in uri_authority.into_iter().chain(host_headers) {
        let Ok(claim) = claim else {
            return Some(format!("the {what} is not valid text"));
        };
        match target::parse_host_header(claim, Scheme::Https.default_port()) {
            Ok(named) if named == *expected => {}
            Ok(named) => {
                return Some(format!(
                    "the {what} names {}, but the tunnel was opened to {}",
                    named.with_port(),
                    expected.with_port()
                ));
            }
            Err(e) => return Some(format!("the {what} is invalid: {e}")),
        }
    }
    None
}
