//! robots.txt (RFC 9309): placeholder, being written.
