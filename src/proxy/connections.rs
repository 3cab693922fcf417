//! Client connection book-keeping: the slot limit, the per-address limit, and reclaiming idle
//! connections when every slot is taken.
//!
//! A connection is *idle* when no request of it is being served: it waits for its next request
//! head, or is still sending one (slowloris), or sits in an intercepted tunnel between requests.
//! When all `proxy.max_connections` slots are held and a new client arrives, the connection that
//! has been idle longest is closed to make room, the way nginx reuses keep-alive connections.
//! A flood of idle or dribbling connections therefore cannot starve crawlers that are working:
//! their connections are busy, and a new crawler connection displaces the flood's oldest.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use http::Response;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::ProxyBody;

/// Every open client connection, by id, and how many each client address holds.
pub struct ConnectionTable {
    slots: Arc<Semaphore>,
    /// 0: no per-address limit.
    max_per_client: usize,
    epoch: Instant,
    next_id: AtomicU64,
    inner: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    open: HashMap<u64, Arc<Activity>>,
    per_client: HashMap<IpAddr, usize>,
}

/// Why a new connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client address already holds `proxy.max_connections_per_client` connections.
    PerClientLimit(usize),
}

/// What a connection is doing, shared by its HTTP connection, its requests and its tunnel.
pub struct Activity {
    id: u64,
    epoch: Instant,
    /// Requests being served (their response bodies included), plus one for a spliced tunnel.
    in_flight: AtomicUsize,
    /// Milliseconds since the table's epoch at which the connection last became idle.
    idle_since_ms: AtomicU64,
    /// Cancelled when the connection is chosen to make room for a new one.
    pub reclaimed: CancellationToken,
}

/// A connection's place in the table; dropping it (with the connection) frees the address count.
pub struct Registration {
    table: Arc<ConnectionTable>,
    peer_ip: IpAddr,
    pub activity: Arc<Activity>,
}

/// Marks a connection busy while it lives.
pub struct Busy(Arc<Activity>);

impl ConnectionTable {
    pub fn new(max_connections: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(max_connections)),
            max_per_client,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            inner: Mutex::new(Tables::default()),
        })
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // The tables are plain counters: a panic elsewhere cannot leave them half-updated.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `peer_ip` may open another connection.
    pub fn admits(&self, peer_ip: IpAddr) -> Result<(), Refusal> {
        if self.max_per_client != 0 && self.open_from(peer_ip) >= self.max_per_client {
            return Err(Refusal::PerClientLimit(self.max_per_client));
        }
        Ok(())
    }

    /// Counts a new connection from `peer_ip` once it has its slot. Only the accept loop
    /// registers, after [`Self::admits`]: the address's count cannot have grown in between.
    pub fn register(self: &Arc<Self>, peer_ip: IpAddr) -> Registration {
        let activity = Arc::new(Activity {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            epoch: self.epoch,
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(millis_since(self.epoch)),
            reclaimed: CancellationToken::new(),
        });
        let mut tables = self.tables();
        *tables.per_client.entry(peer_ip).or_insert(0) += 1;
        tables.open.insert(activity.id, activity.clone());
        drop(tables);
        Registration { table: self.clone(), peer_ip, activity }
    }

    /// A free slot, if there is one now.
    pub fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Waits for a slot; `None` once the semaphore is closed.
    pub async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }

    /// Asks the connection idle longest to close, so its slot goes to a new client. Returns
    /// false when every connection is busy: then the new client waits for one to finish.
    pub fn reclaim_idle(&self) -> bool {
        let victim = {
            let tables = self.tables();
            tables
                .open
                .values()
                .filter(|activity| activity.is_idle() && !activity.reclaimed.is_cancelled())
                .min_by_key(|activity| activity.idle_since_ms.load(Ordering::Relaxed))
                .cloned()
        };
        let Some(victim) = victim else {
            return false;
        };
        tracing::debug!(
            idle_ms = millis_since(self.epoch).saturating_sub(victim.idle_since_ms.load(Ordering::Relaxed)),
            "all connection slots taken: closing the connection idle longest"
        );
        metrics::counter!("consentry_client_connections_reclaimed_total").increment(1);
        victim.reclaimed.cancel();
        true
    }

    /// Connections open now (tunnels count with the connection that opened them).
    pub fn open(&self) -> usize {
        self.tables().open.len()
    }

    /// Connections open now from `peer_ip`.
    pub fn open_from(&self, peer_ip: IpAddr) -> usize {
        self.tables().per_client.get(&peer_ip).copied().unwrap_or(0)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut tables = self.table.tables();
        tables.open.remove(&self.activity.id);
        if let Some(held) = tables.per_client.get_mut(&self.peer_ip) {
            *held -= 1;
            if *held == 0 {
                tables.per_client.remove(&self.peer_ip);
            }
        }
    }
}

impl Activity {
    /// No request is being served: the connection waits for, or is still receiving, a head.
    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Marks the connection busy until the guard is dropped.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.idle_since_ms.store(millis_since(self.0.epoch), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Keeps `busy` alive until the response body has been sent (or dropped), so a connection that
/// is streaming a large download never counts as idle.
pub fn busy_until_sent(response: Response<ProxyBody>, busy: Busy) -> Response<ProxyBody> {
    response.map(move |body| HeldBody { inner: body, _busy: busy }.boxed_unsync())
}

/// A body that holds a [`Busy`] guard; everything else, the size hint included (hyper derives
/// `Content-Length` from it), is the inner body's.
struct HeldBody {
    inner: ProxyBody,
    _busy: Busy,
}

impl http_body::Body for HeldBody {
    type Data = bytes::Bytes;
    type Error = super::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_held_body_keeps_its_exact_size_and_marks_the_connection_busy_until_dropped() {
        use http_body::Body as _;
        let table = ConnectionTable::new(10, 0);
        let registration = table.register(ip(2));
        let body = http_body_util::Full::new(bytes::Bytes::from_static(b"hello"))
            .map_err(|never| match never {})
            .boxed_unsync();
        let response = busy_until_sent(Response::new(body), registration.activity.busy());
        assert_eq!(response.body().size_hint().exact(), Some(5), "hyper sends Content-Length from this");
        assert!(!registration.activity.is_idle());
        drop(response);
        assert!(registration.activity.is_idle());
    }

    #[test]
    fn an_address_at_its_limit_is_refused_and_freed_when_a_connection_closes() {
        let table = ConnectionTable::new(10, 2);
        let first = table.register(ip(2));
        let _second = table.register(ip(2));
        assert_eq!(table.admits(ip(2)), Err(Refusal::PerClientLimit(2)));
        assert_eq!(table.admits(ip(3)), Ok(()), "another address has its own allowance");
        let _other = table.register(ip(3));
        drop(first);
        assert_eq!(table.open_from(ip(2)), 1);
        assert_eq!(table.admits(ip(2)), Ok(()));
        assert_eq!(table.open(), 2);
    }

    #[test]
    fn zero_means_no_per_address_limit() {
        let table = ConnectionTable::new(10, 0);
        let held: Vec<_> = (0..100).map(|_| table.register(ip(2))).collect();
        assert_eq!(table.admits(ip(2)), Ok(()));
        assert_eq!(table.open_from(ip(2)), held.len());
    }

    #[test]
    fn the_connection_idle_longest_is_reclaimed_and_busy_ones_never_are() {
        let table = ConnectionTable::new(10, 0);
        let oldest = table.register(ip(2));
        std::thread::sleep(std::time::Duration::from_millis(5));
        let busy_one = table.register(ip(3));
        let newer = table.register(ip(4));
        // The oldest connection starts a request: it is no longer a candidate.
        let request = oldest.activity.busy();
        let _working = busy_one.activity.busy();
        assert!(table.reclaim_idle());
        assert!(newer.activity.reclaimed.is_cancelled(), "the only idle connection is reclaimed");
        assert!(!oldest.activity.reclaimed.is_cancelled());
        assert!(!busy_one.activity.reclaimed.is_cancelled());
        // A connection already asked to close is not asked twice; busy ones are never asked.
        assert!(!table.reclaim_idle(), "nothing else is idle");
        drop(request);
        assert!(table.reclaim_idle());
        assert!(oldest.activity.reclaimed.is_cancelled(), "idle again once its request ended");
    }

    #[test]
    fn idle_order_follows_when_each_connection_last_finished_a_request() {
        let table = ConnectionTable::new(10, 0);
        let a = table.register(ip(2));
        let b = table.register(ip(3));
        std::thread::sleep(std::time::Duration::from_millis(3));
        // `a` finishes a request now, so `b` has been idle longer.
        drop(a.activity.busy());
        assert!(table.reclaim_idle());
        assert!(b.activity.reclaimed.is_cancelled());
        assert!(!a.activity.reclaimed.is_cancelled());
    }
}
