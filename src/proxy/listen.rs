//! Stage 1, accept: the proxy listener, its connection limits and graceful drain.
//!
//! At most `proxy.max_connections` client connections (tunnels included) are served at once.
//! When every slot is taken, a new client displaces the connection idle longest (see
//! [`super::connections`]); when none is idle, it waits in the kernel's accept queue. An address
//! over `proxy.max_connections_per_client` gets `503` at once. Each connection speaks HTTP/1.1
//! with upgrades (for CONNECT), with bounded request heads, a header-read timeout and a write
//! timeout for clients that stop reading. On shutdown the listener stops accepting and every
//! connection finishes its in-flight request, then closes.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::connections::{Refusal, busy_until_sent};
use super::slow_client::WriteStallGuard;
use super::{ClientConn, ProxyState, handle_plain};

/// How long the refusal of an over-limit address may take to write before the socket is dropped.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Refusals being written at once.
const REFUSALS_AT_ONCE: usize = 256;

/// Accepts proxy connections until `state.shutdown` is cancelled.
pub async fn serve(listener: TcpListener, state: Arc<ProxyState>) {
    let table = state.connections.clone();
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = state.shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Usually EMFILE/ENFILE: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(refusal) = table.admits(peer.ip()) {
            metrics::counter!("consentry_client_connections_refused_total", "reason" => "per_client").increment(1);
            // Refusals are not counted in `max_connections`, so they get their own bound; past
            // it the socket is just closed.
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                state.tasks.spawn(async move {
                    refuse(stream, refusal).await;
                    drop(permit);
                });
            }
            continue;
        }
        let permit = match table.try_slot() {
            Some(permit) => permit,
            None => {
                table.reclaim_idle();
                let waited = tokio::select! {
                    permit = table.slot() => permit,
                    () = state.shutdown.cancelled() => break,
                };
                let Some(permit) = waited else { break };
                permit
            }
        };
        let conn = Arc::new(ClientConn::new(peer, table.register(peer.ip()), permit));
        state.tasks.spawn(serve_connection(state.clone(), stream, conn));
    }
}

/// Tells an address over its connection limit why it is refused, then closes. What the client
/// sent meanwhile is read and discarded first, so that closing does not reset the connection
/// before the client has read the answer.
async fn refuse(mut stream: TcpStream, refusal: Refusal) {
    let Refusal::PerClientLimit(limit) = refusal;
    let body = serde_json::json!({
        "error": "too_many_connections",
        "reason": format!("this address already holds {limit} connections (proxy.max_connections_per_client)"),
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut discard = [0u8; 4096];
        while stream.read(&mut discard).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

async fn serve_connection(state: Arc<ProxyState>, stream: TcpStream, conn: Arc<ClientConn>) {
    let _ = stream.set_nodelay(true);
    let proxy = &state.config.proxy;
    let stream = WriteStallGuard::new(stream, proxy.client_write_timeout.0);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(proxy.header_read_timeout.0)
        .max_buf_size(proxy.max_header_bytes)
        .max_headers(proxy.max_headers)
        .keep_alive(true);
    let peer = conn.peer;
    let activity = conn.activity().clone();
    let service_state = state.clone();
    let service = service_fn(move |request| {
        let state = service_state.clone();
        let conn = conn.clone();
        let busy = conn.activity().busy();
        async move { Ok::<_, std::convert::Infallible>(busy_until_sent(handle_plain(state, conn, request).await, busy)) }
    });
    let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result { tracing::debug!(error = %e, %peer, "client connection ended with an error") }
        }
        () = activity.reclaimed.cancelled() => {
            // Idle, or still sending its head (which hyper's graceful shutdown would wait for):
            // dropping the connection closes it. A request that began meanwhile is served first.
            if !activity.is_idle() {
                connection.as_mut().graceful_shutdown();
                if let Err(e) = connection.await { tracing::debug!(error = %e, %peer, "reclaimed connection ended with an error") }
            }
        }
        () = state.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            if let Err(e) = connection.await { tracing::debug!(error = %e, %peer, "client connection ended during drain") }
        }
    }
}
