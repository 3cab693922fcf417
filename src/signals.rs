//! Pure parsers for the opt-out signals Consentry reads: bytes or header values in, typed values
//! out. No I/O here: fetching and caching live in `policy`.

pub mod ai_txt;
pub mod content_signal;
pub mod content_usage;
pub mod pattern;
pub mod prefs;
pub mod robots;
pub mod robots_tag;
pub mod rsl;
pub mod tdmrep;
