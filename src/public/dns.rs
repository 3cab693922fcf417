//! Placeholder (being written): TXT lookups for the DNS challenge.
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct TxtChecker;

impl TxtChecker {
    pub fn new(_nameservers: &[SocketAddr], _timeout: Duration) -> Result<Self, String> {
        Ok(Self)
    }

    pub async fn txt_records(&self, name: &str) -> Result<Vec<String>, String> {
        Err(format!("no resolver for {name}"))
    }
}
