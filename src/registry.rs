//! The creators' registry: objections filed once and honoured on every request, on every node.
//!
//! - [`entry`]: what an objection covers (one URL, or a domain with subdomains and paths) and for
//!   which purposes; validation and normalisation.
//! - [`import`]: JSON Lines and CSV files, all-or-nothing, every problem with its line and field.
//! - [`index`]: the in-memory index the proxy consults on every request (domain suffix walk, then
//!   path patterns), updated entry by entry.

pub mod entry;
pub mod import;
pub mod index;

pub use entry::{Entry, EntryDraft, EntryTarget, FieldError, ValidEntry};
pub use index::{RegistryIndex, RegistryMatch};
