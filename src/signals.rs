//! Pure parsers for the opt-out signals Consentry reads: bytes or header values in, typed values
//! out. No I/O here: fetching and caching live in `policy`.

pub mod robots;
