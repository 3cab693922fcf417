//! Consentry: an HTTP(S) forward proxy for crawlers that honours creators' opt-outs.
//!
//! A crawler sets `HTTPS_PROXY` to Consentry. For every request Consentry identifies the crawler
//! and its declared purposes, gathers the site's policy, decides (block with a `451` that says
//! why, or forward), and records the decision.
//!
//! # Layout
//! - [`config`]: the configuration tree; load, validate, errors that name file and key.
//! - [`proxy`]: the request path: accept, CONNECT and TLS interception, identify, parse, forward,
//!   block answers.
//! - [`decide`]: the pure decision engine (no I/O, no clock).
//! - [`tls`]: Consentry's CA, minted leaf certificates, the verifying upstream TLS client.
//! - [`policy`]: the I/O side of policy: robots.txt fetch, cache and single flight; politeness.
//! - [`signals`]: pure parsers of the opt-out signals.
//! - [`audit`]: the durable audit log: record schema, group-commit writer, SQLite/PostgreSQL store.
//! - [`storage`]: the shared database (SQLite or PostgreSQL): pool, migrations.
//! - [`check`]: `consentry check`, the live explanation of one URL's decision.
//! - [`admin`]: the admin listener: operator API, dashboard, metrics, health, readiness.
//! - [`registry`]: the creators' registry: entries, import, the in-memory index, store and sync.
//! - [`public`]: the creators' portal: domain claims and verification, objections, and the
//!   transparency endpoints.
//! - [`tlog`]: the transparency log: Merkle tree, signed checkpoints, proofs, receipts.
//! - [`logview`]: `consentry log`, the audit log from the command line.
//! - [`app`]: wiring; runs the listeners with graceful shutdown.

pub mod admin;
pub mod app;
pub mod audit;
pub mod check;
pub mod config;
pub mod decide;
pub mod logview;
pub mod policy;
pub mod proxy;
pub mod public;
pub mod registry;
pub mod signals;
pub mod storage;
pub mod tlog;
pub mod tls;
