//! A real DNS server on loopback for tests: UDP and TCP on one ephemeral port of 127.0.0.1,
//! answering TXT queries from a table the test changes while the server runs.
//!
//! Answers are authoritative and deliberately cache-friendly (TTL 3600 on records, and an SOA
//! with a 3600 s negative TTL on misses), so a test that sees a change within seconds proves the
//! client does not cache.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// TTL of every answer and of the negative-answer SOA.
pub const TTL: u32 = 3600;

#[derive(Default)]
struct Shared {
    /// Lowercase name without the root dot → TXT records.
    zone: Mutex<HashMap<String, Vec<TXT>>>,
    /// Every decoded query, by lowercase name without the root dot.
    seen: Mutex<Vec<(String, RecordType)>>,
    queries: AtomicUsize,
}

/// The running server. Dropping it stops it.
pub struct TestDns {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl TestDns {
    /// Binds UDP and TCP on the same ephemeral port of 127.0.0.1 and starts serving.
    pub async fn start() -> Self {
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().expect("udp addr");
        let shared = Arc::new(Shared::default());
        let tasks = vec![tokio::spawn(serve_udp(udp, shared.clone())), tokio::spawn(serve_tcp(tcp, shared.clone()))];
        Self { addr, shared, tasks }
    }

    /// `ip:port` for both UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the TXT records at `name`: one record per value, each split into 255-byte
    /// character-strings the way zone tools store long values.
    pub fn set_txt(&self, name: &str, values: &[&str]) {
        let records = values
            .iter()
            .map(|value| {
                let bytes = value.as_bytes();
                let chunks: Vec<&[u8]> = if bytes.is_empty() { vec![&[][..]] } else { bytes.chunks(255).collect() };
                TXT::from_bytes(chunks)
            })
            .collect();
        self.zone().insert(key(name), records);
    }

    /// Replaces the TXT records at `name` with records made of exactly these character-strings.
    pub fn set_txt_strings(&self, name: &str, records: &[&[&str]]) {
        let records = records.iter().map(|strings| TXT::new(strings.iter().map(|s| s.to_string()).collect())).collect();
        self.zone().insert(key(name), records);
    }

    /// Makes `name` unknown again (NXDOMAIN).
    pub fn remove(&self, name: &str) {
        self.zone().remove(&key(name));
    }

    /// Queries answered so far, over UDP and TCP.
    pub fn queries(&self) -> usize {
        self.shared.queries.load(Ordering::SeqCst)
    }

    /// Queries so far for `name` (any type, any case, with or without the root dot).
    pub fn queries_for(&self, name: &str) -> usize {
        let wanted = key(name);
        self.shared.seen.lock().expect("lock").iter().filter(|(seen, _)| *seen == wanted).count()
    }

    fn zone(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<TXT>>> {
        self.shared.zone.lock().expect("lock")
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The zone's key for a name: lowercase, no root dot.
fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// UDP on port 0, then TCP on the same port; another process may hold that TCP port, so retry.
async fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = udp.local_addr().expect("udp addr");
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("no free port for UDP and TCP together on 127.0.0.1");
}

async fn serve_udp(socket: UdpSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buf).await else { continue };
        let Some((request, response)) = answer(&buf[..len], &shared) else { continue };
        // Without EDNS a UDP answer is limited to 512 bytes; over the limit, send only the header
        // and question with TC set so the client retries over TCP.
        let limit = request.edns.as_ref().map_or(512, |edns| usize::from(edns.max_payload().max(512)));
        let Ok(mut bytes) = response.to_vec() else { continue };
        if bytes.len() > limit {
            let Ok(truncated) = response.truncate().to_vec() else { continue };
            bytes = truncated;
        }
        let _ = socket.send_to(&bytes, peer).await;
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        tokio::spawn(serve_tcp_connection(stream, shared.clone()));
    }
}

/// Length-prefixed messages (RFC 1035 §4.2.2), as many as the client sends on the connection.
async fn serve_tcp_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut buf).await.is_err() {
            return;
        }
        let Some((_, response)) = answer(&buf, &shared) else { return };
        let Ok(bytes) = response.to_vec() else { return };
        let Ok(prefix) = u16::try_from(bytes.len()) else { return };
        if stream.write_all(&prefix.to_be_bytes()).await.is_err() || stream.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

/// Decodes one query and builds the answer; `None` for undecodable bytes (dropped, like a real
/// server drops garbage).
fn answer(bytes: &[u8], shared: &Shared) -> Option<(Message, Message)> {
    let request = Message::from_vec(bytes).ok()?;
    shared.queries.fetch_add(1, Ordering::SeqCst);

    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.authoritative = true;
    response.add_queries(request.queries.iter().cloned());

    let Some(query) = request.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return Some((request, response));
    };
    if request.metadata.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
        return Some((request, response));
    }
    let name = key(&query.name().to_ascii());
    shared.seen.lock().expect("lock").push((name.clone(), query.query_type()));

    let zone = shared.zone.lock().expect("lock");
    let exists = zone.contains_key(&name)
        // An empty non-terminal (a parent of a known name) exists too: NOERROR, no answers.
        || zone.keys().any(|known| known.ends_with(&format!(".{name}")));
    match zone.get(&name) {
        Some(records) if query.query_type() == RecordType::TXT => {
            response.add_answers(
                records.iter().map(|txt| Record::from_rdata(query.name().clone(), TTL, RData::TXT(txt.clone()))),
            );
        }
        _ => {
            if !exists {
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            response.add_authority(soa_for(query.name()));
        }
    }
    Some((request, response))
}

/// The SOA that goes with a negative answer; its TTL and MINIMUM make the miss cacheable for
/// an hour by any client that caches.
fn soa_for(name: &Name) -> Record {
    let zone = name.trim_to(2);
    let mname = Name::from_ascii("ns.test.").expect("name");
    let rname = Name::from_ascii("hostmaster.test.").expect("name");
    Record::from_rdata(zone, TTL, RData::SOA(SOA::new(mname, rname, 1, 3600, 600, 86400, TTL)))
}
