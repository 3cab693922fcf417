//! Stage 1, accept: the proxy listener, its connection limit and graceful drain.
//!
//! At most `proxy.max_connections` client connections (tunnels included) are served at once;
//! further clients wait in the kernel's accept queue. Each connection speaks HTTP/1.1 with
//! upgrades (for CONNECT), with bounded request heads and a header-read timeout. On shutdown the
//! listener stops accepting and every connection finishes its in-flight request, then closes.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::{ClientConn, ProxyState, handle_plain};

/// Accepts proxy connections until `state.shutdown` is cancelled.
pub async fn serve(listener: TcpListener, state: Arc<ProxyState>) {
    let slots = Arc::new(Semaphore::new(state.config.proxy.max_connections));
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = state.shutdown.cancelled() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = state.shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let conn = Arc::new(ClientConn { peer, _permit: permit });
                state.tasks.spawn(serve_connection(state.clone(), stream, conn));
            }
            Err(e) => {
                // Usually EMFILE/ENFILE: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(state: Arc<ProxyState>, stream: TcpStream, conn: Arc<ClientConn>) {
    let _ = stream.set_nodelay(true);
    let proxy = &state.config.proxy;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(proxy.header_read_timeout.0)
        .max_buf_size(proxy.max_header_bytes)
        .max_headers(proxy.max_headers)
        .keep_alive(true);
    let peer = conn.peer;
    let service_state = state.clone();
    let service = service_fn(move |request| {
        let state = service_state.clone();
        let conn = conn.clone();
        async move { Ok::<_, std::convert::Infallible>(handle_plain(state, conn, request).await) }
    });
    let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result { tracing::debug!(error = %e, %peer, "client connection ended with an error") }
        }
        () = state.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            if let Err(e) = connection.await { tracing::debug!(error = %e, %peer, "client connection ended during drain") }
        }
    }
}
