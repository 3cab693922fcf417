//! The creators' registry: objections filed once and honoured on every request, on every node.
//!
//! - [`entry`]: what an objection covers (one URL, or a domain with subdomains and paths) and for
//!   which purposes; validation and normalisation.
//! - [`import`]: JSON Lines and CSV files, all-or-nothing, every problem with its line and field.
//! - [`index`]: the in-memory index the proxy consults on every request (domain suffix walk, then
//!   path patterns), updated entry by entry.
//! - [`store`]: the registry's tables (entries, change log, claims, feeds) in the shared database.
//! - [`sync`]: a node's live registry: loaded at start, then following the change log.
//! - [`feed`]: JSON Lines feeds pulled over HTTP(S), optionally signed with Ed25519.
//! - [`cli`]: `consentry registry import | list | remove`.

pub mod cli;
pub mod entry;
pub mod feed;
pub mod import;
pub mod index;
pub mod store;
pub mod sync;

pub use entry::{Entry, EntryDraft, EntryTarget, FieldError, ValidEntry};
pub use index::{RegistryIndex, RegistryMatch};
pub use store::RegistryStore;
pub use sync::Registry;
