//! Wiring: builds the shared state from a validated [`Config`] and runs the listeners.
//!
//! The caller binds the sockets (so tests and `main` can use port 0 and learn the real address)
//! and passes a shutdown future; [`run`] returns once every connection has drained or
//! `proxy.drain_timeout` has passed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::admin::{self, AdminState};
use crate::audit::{AuditLog, AuditStore, StoreError};
use crate::config::Config;
use crate::proxy::{ProxyState, listen};
use crate::public::{self, PublicState};
use crate::registry::feed::FeedPuller;
use crate::registry::{Registry, RegistryStore};
use crate::storage::{self, Database};
use crate::tlog::TlogStore;
use crate::tlog::sequencer::Sequencer;
use crate::tls::{CertificateAuthority, LeafMinter, TlsSetupError};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Sockets bound by the caller.
pub struct Listeners {
    pub proxy: TcpListener,
    pub admin: TcpListener,
    pub public: TcpListener,
}

impl Listeners {
    /// Binds the addresses named in the config.
    pub async fn bind(config: &Config) -> Result<Self, RunError> {
        let bind = |addr: SocketAddr, key: &'static str| async move {
            TcpListener::bind(addr).await.map_err(|source| RunError::Bind { key, addr, source })
        };
        Ok(Self {
            proxy: bind(config.proxy.listen, "proxy.listen").await?,
            admin: bind(config.admin.listen, "admin.listen").await?,
            public: bind(config.public.listen, "public.listen").await?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot listen on {addr} (`{key}`): {source}")]
    Bind { key: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    NodeLock(#[from] storage::NodeLockError),
    #[error(transparent)]
    Tlog(#[from] crate::tlog::TlogError),
    #[error(transparent)]
    TlogKey(#[from] crate::tlog::KeyError),
    #[error("cannot store the admin token in {path}: {source}")]
    Token { path: std::path::PathBuf, source: std::io::Error },
}

/// Installs the process-wide Prometheus recorder (once; later calls get no handle).
fn install_metrics_recorder() -> Option<PrometheusHandle> {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok().map(|()| handle)
}

const ADMIN_TOKEN_FILE: &str = "admin-token";

/// `admin.token`, else the token stored in `data_dir`, else a new one: stored (0600) and printed
/// once on stderr.
fn admin_token(config: &Config) -> Result<String, RunError> {
    if !config.admin.token.is_empty() {
        return Ok(config.admin.token.clone());
    }
    let path = config.data_dir.join(ADMIN_TOKEN_FILE);
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok(token.trim().to_string());
    }
    crate::tls::create_private_dir(&config.data_dir)?;
    let token = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, &token).map_err(|source| RunError::Token { path: path.clone(), source })?;
    eprintln!("consentry: generated the admin API token (stored in {}): {token}", path.display());
    Ok(token)
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// Loads (or creates) the CA in `data_dir` and the leaf minter, when interception is on.
pub fn interception_minter(config: &Config) -> Result<Option<Arc<LeafMinter>>, TlsSetupError> {
    if !config.tls.intercept {
        return Ok(None);
    }
    let ca = CertificateAuthority::load_or_create(&config.data_dir)?;
    Ok(Some(Arc::new(LeafMinter::new(ca, config.tls.leaf_cache_size)?)))
}

/// Opens the transparency log: the signing key, the log's row (created if new), and a check
/// that this node signs for the log the database holds.
async fn transparency_log(config: &Config, db: &Database) -> Result<Sequencer, RunError> {
    let store = TlogStore::new(db);
    let stored = store.head().await?;
    let key = crate::tlog::load_or_create_key(config)?;
    let origin = crate::tlog::origin(config, stored.as_ref().map(|h| h.origin.as_str()));
    let mut signer = crate::tlog::signer_for(&origin, key.clone())?;
    let head = store.create_if_missing(&signer, storage::now_ms()).await?;
    // Nodes started together on an empty database may each have chosen a default name; the one
    // stored first is the log's name.
    if config.tlog.origin.is_empty() && head.origin != signer.name() {
        signer = crate::tlog::signer_for(&head.origin, key)?;
    }
    head.check_signer(&signer)?;
    Ok(Sequencer {
        store,
        signer: Arc::new(signer),
        interval: config.tlog.batch_interval.0,
        max_batch: config.tlog.max_batch,
    })
}

/// The proxy, built and ready to serve (CA loaded or created), but not yet listening.
pub struct App {
    state: Arc<ProxyState>,
    admin: AdminState,
    public: PublicState,
    registry: Arc<Registry>,
    db: Database,
    /// Held while this node serves from SQLite (one node per SQLite file).
    _node_lock: Option<storage::NodeLock>,
    /// The audit writer; it finishes once every request holding the log is done.
    writer: Option<tokio::task::JoinHandle<()>>,
    /// The transparency log's sequencer (when the log is on).
    sequencer: Option<Sequencer>,
}

/// Raises the soft open-file limit toward what `proxy.max_connections` needs (a client and an
/// upstream socket per connection, plus the database, policy fetches and listeners), and warns
/// when the hard limit is lower: accept would then fail with EMFILE before the configured limit.
fn raise_open_file_limit(max_connections: usize) {
    let needed = u64::try_from(max_connections).unwrap_or(u64::MAX).saturating_mul(2).saturating_add(256);
    match rlimit::increase_nofile_limit(needed) {
        Ok(limit) if limit < needed => tracing::warn!(
            limit,
            needed,
            "the open-file limit (ulimit -n) is below what proxy.max_connections needs: raise it, or lower proxy.max_connections"
        ),
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-file limit"),
    }
}

impl App {
    /// Builds the shared state: the CA exists on disk and the audit store is open and migrated
    /// once this returns.
    pub async fn new(config: Config) -> Result<Self, RunError> {
        let config = Arc::new(config);
        raise_open_file_limit(config.proxy.max_connections);
        let minter = interception_minter(&config)?;
        let metrics = install_metrics_recorder();
        let audit_on = config.storage_url() != "none";
        let node_lock = if audit_on { storage::NodeLock::acquire(&config.storage_url())? } else { None };
        let db = Database::open(if audit_on { config.storage_url() } else { storage::IN_MEMORY.to_string() }.as_str())
            .await?;
        let sequencer =
            if audit_on && config.tlog.enabled { Some(transparency_log(&config, &db).await?) } else { None };
        let (store, audit, writer) = if audit_on {
            let store = AuditStore::new(&db).with_transparency(sequencer.is_some());
            let (log, writer) = AuditLog::start(store.clone(), config.storage.durability, config.storage.queue_size);
            (Some(store), Some(log), Some(writer))
        } else {
            (None, None, None)
        };
        // Loaded before the first request is accepted: nothing is decided against half a registry.
        let registry = Registry::load(RegistryStore::new(&db)).await?;
        let token = admin_token(&config)?;
        let state = Arc::new(ProxyState::new(config, minter, audit, Some(registry.clone()))?);
        let lockout = Arc::new(admin::AuthLockout::new(state.config.admin.max_failed_auth_per_minute));
        let admin = AdminState { store, token: token.into(), metrics, proxy: state.clone(), lockout };
        let transparency = sequencer
            .as_ref()
            .map(|s| public::Transparency { store: s.store.clone(), verifier_key: s.signer.verifier_key() });
        let public = PublicState::new(registry.clone(), state.clone(), transparency);
        Ok(Self { state, admin, public, registry, db, _node_lock: node_lock, writer, sequencer })
    }

    /// Runs the proxy and admin listeners until `shutdown` resolves, then drains.
    pub async fn run(self, listeners: Listeners, shutdown: impl Future<Output = ()>) {
        let Self { state, admin, public, registry, db, _node_lock, writer, sequencer } = self;
        // The sequencer outlives the listeners: it stops after the audit writer has committed
        // the last records, and gives them leaves before the process ends.
        let sequencer_stop = tokio_util::sync::CancellationToken::new();
        let sequencer = sequencer.map(|s| tokio::spawn(s.run(sequencer_stop.clone())));
        let follower =
            tokio::spawn(registry.clone().follow(state.config.registry.sync_interval.0, state.shutdown.clone()));
        let feeds: Vec<_> = state
            .config
            .registry
            .feeds
            .iter()
            .map(|feed| {
                let puller = FeedPuller {
                    registry: registry.clone(),
                    upstream: state.upstream.clone(),
                    feed: feed.clone(),
                    max_bytes: state.config.registry.max_feed_bytes,
                };
                tokio::spawn(puller.run(state.shutdown.clone()))
            })
            .collect();
        let proxy = tokio::spawn(listen::serve(listeners.proxy, state.clone()));
        let admin = tokio::spawn(admin::serve(listeners.admin, admin));
        let public = tokio::spawn(public::serve(listeners.public, public));
        shutdown.await;
        tracing::info!("shutting down: draining connections");
        state.shutdown.cancel();
        let _ = proxy.await;
        let _ = admin.await;
        let _ = public.await;
        let _ = follower.await;
        for feed in feeds {
            let _ = feed.await;
        }
        state.tasks.close();
        let drain_timeout = state.config.proxy.drain_timeout.0;
        if tokio::time::timeout(drain_timeout, state.tasks.wait()).await.is_err() {
            tracing::warn!(left = state.tasks.len(), "drain timeout passed; closing the remaining connections");
        }
        // Dropping the last handle on the audit log lets the writer commit what is queued and stop.
        drop(state);
        if let Some(writer) = writer {
            let _ = writer.await;
        }
        sequencer_stop.cancel();
        if let Some(sequencer) = sequencer {
            let _ = sequencer.await;
        }
        db.close().await;
    }
}
