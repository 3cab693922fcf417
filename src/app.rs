//! Wiring: builds the shared state from a validated [`Config`] and runs the listeners.
//!
//! The caller binds the sockets (so tests and `main` can use port 0 and learn the real address)
//! and passes a shutdown future; [`run`] returns once every connection has drained or
//! `proxy.drain_timeout` has passed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::admin;
use crate::audit::{AuditLog, AuditStore, StoreError};
use crate::config::Config;
use crate::proxy::{ProxyState, listen};
use crate::tls::{CertificateAuthority, LeafMinter, TlsSetupError};

/// Sockets bound by the caller.
pub struct Listeners {
    pub proxy: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the addresses named in the config.
    pub async fn bind(config: &Config) -> Result<Self, RunError> {
        let bind = |addr: SocketAddr, key: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| RunError::Bind { key, addr, source })
        };
        Ok(Self {
            proxy: bind(config.proxy.listen, "proxy.listen").await?,
            admin: bind(config.admin.listen, "admin.listen").await?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot listen on {addr} (`{key}`): {source}")]
    Bind {
        key: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Loads (or creates) the CA in `data_dir` and the leaf minter, when interception is on.
pub fn interception_minter(config: &Config) -> Result<Option<Arc<LeafMinter>>, TlsSetupError> {
    if !config.tls.intercept {
        return Ok(None);
    }
    let ca = CertificateAuthority::load_or_create(&config.data_dir)?;
    Ok(Some(Arc::new(LeafMinter::new(ca, config.tls.leaf_cache_size)?)))
}

/// The proxy, built and ready to serve (CA loaded or created), but not yet listening.
pub struct App {
    state: Arc<ProxyState>,
    /// The audit writer; it finishes once every request holding the log is done.
    writer: Option<tokio::task::JoinHandle<()>>,
}

impl App {
    /// Builds the shared state: the CA exists on disk and the audit store is open and migrated
    /// once this returns.
    pub async fn new(config: Config) -> Result<Self, RunError> {
        let config = Arc::new(config);
        let minter = interception_minter(&config)?;
        let (audit, writer) = match config.storage.url.as_str() {
            "none" => (None, None),
            url => {
                let store = AuditStore::open(url).await?;
                let (log, writer) = AuditLog::start(store, config.storage.durability, config.storage.queue_size);
                (Some(log), Some(writer))
            }
        };
        let state = Arc::new(ProxyState::new(config, minter, audit)?);
        Ok(Self { state, writer })
    }

    /// Runs the proxy and admin listeners until `shutdown` resolves, then drains.
    pub async fn run(self, listeners: Listeners, shutdown: impl Future<Output = ()>) {
        let Self { state, writer } = self;
        let proxy = tokio::spawn(listen::serve(listeners.proxy, state.clone()));
        let admin = tokio::spawn(admin::serve(listeners.admin, state.clone()));
        shutdown.await;
        tracing::info!("shutting down: draining connections");
        state.shutdown.cancel();
        let _ = proxy.await;
        let _ = admin.await;
        state.tasks.close();
        let drain_timeout = state.config.proxy.drain_timeout.0;
        if tokio::time::timeout(drain_timeout, state.tasks.wait()).await.is_err() {
            tracing::warn!(
                left = state.tasks.len(),
                "drain timeout passed; closing the remaining connections"
            );
        }
        // Dropping the last handle on the audit log lets the writer commit what is queued and stop.
        drop(state);
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }
}
