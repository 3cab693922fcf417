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
