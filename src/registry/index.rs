//! Placeholder: the in-memory registry index (being written).
use crate::decide::Purpose;

#[derive(Debug, Default)]
pub struct RegistryIndex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryMatch {
    pub entry_id: String,
    pub creator: String,
    pub source: String,
    pub purposes: Vec<Purpose>,
    pub pattern: String,
}

impl RegistryIndex {
    pub fn new() -> Self {
        Self
    }
    pub fn upsert(&self, _entry: &crate::registry::Entry) {}
    pub fn remove(&self, _id: &str) -> bool {
        false
    }
    pub fn ids(&self) -> Vec<String> {
        Vec::new()
    }
    pub fn len(&self) -> usize {
        0
    }
    pub fn is_empty(&self) -> bool {
        true
    }
    pub fn approx_bytes(&self) -> usize {
        0
    }
    pub fn lookup(&self, _s: &str, _h: &str, _a: &str, _p: &str) -> Vec<RegistryMatch> {
        Vec::new()
    }
}
