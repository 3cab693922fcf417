//! Stage 2, identify: which crawler profile a request (or a whole CONNECT tunnel) belongs to.
//!
//! Crawlers authenticate with `Proxy-Authorization: Basic base64(name:password)`. Passwords are
//! compared in constant time. A request without credentials gets the `default` profile when the
//! configuration has one without a password, and `407` otherwise.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use http::HeaderValue;
use subtle::ConstantTimeEq;

use crate::config::{CrawlerProfile, DEFAULT_PROFILE};

/// Why a request could not be tied to a crawler profile (shown in the 407 answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifyError {
    #[error("proxy credentials required (Proxy-Authorization: Basic)")]
    Missing,
    #[error("Proxy-Authorization must use the Basic scheme with base64(name:password)")]
    Malformed,
    #[error("unknown crawler or wrong password")]
    Rejected,
}

/// The configured crawler profiles, by name.
#[derive(Debug, Clone)]
pub struct Profiles {
    by_name: HashMap<String, Arc<CrawlerProfile>>,
    anonymous: Option<Arc<CrawlerProfile>>,
}

impl Profiles {
    pub fn new(crawlers: &[CrawlerProfile]) -> Self {
        let by_name: HashMap<_, _> = crawlers.iter().map(|c| (c.name.clone(), Arc::new(c.clone()))).collect();
        let anonymous = by_name.get(DEFAULT_PROFILE).filter(|p| p.is_anonymous()).cloned();
        Self { by_name, anonymous }
    }

    /// The profile called `name`, without checking credentials (for `consentry check`).
    pub fn by_name(&self, name: &str) -> Option<Arc<CrawlerProfile>> {
        self.by_name.get(name).cloned()
    }

    /// The profile named by the `Proxy-Authorization` header, or the anonymous default.
    pub fn identify(&self, header: Option<&HeaderValue>) -> Result<Arc<CrawlerProfile>, IdentifyError> {
        let Some(header) = header else {
            return self.anonymous.clone().ok_or(IdentifyError::Missing);
        };
        let (name, password) = decode_basic(header)?;
        let Some(profile) = self.by_name.get(&name) else {
            // Same work as for a known name, so timing does not reveal which names exist.
            let _ = password.as_bytes().ct_eq(b"consentry-no-such-crawler");
            return Err(IdentifyError::Rejected);
        };
        if bool::from(password.as_bytes().ct_eq(profile.password.as_bytes())) {
            Ok(profile.clone())
        } else {
            Err(IdentifyError::Rejected)
        }
    }
}

fn decode_basic(header: &HeaderValue) -> Result<(String, String), IdentifyError> {
    let text = header.to_str().map_err(|_| IdentifyError::Malformed)?.trim();
    let (scheme, encoded) = text.split_once(' ').ok_or(IdentifyError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(IdentifyError::Malformed);
    }
    let decoded =
        base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| IdentifyError::Malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| IdentifyError::Malformed)?;
    let (name, password) = decoded.split_once(':').ok_or(IdentifyError::Malformed)?;
    Ok((name.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::Purpose;

    fn profile(name: &str, password: &str) -> CrawlerProfile {
        CrawlerProfile {
            name: name.into(),
            password: password.into(),
            token: "Bot".into(),
            user_agent: None,
            purposes: vec![Purpose::Search],
            honor_tokens: vec![],
            mode: None,
            licenses: vec![],
        }
    }

    fn basic(credentials: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("header")
    }

    #[test]
    fn credentials_select_the_profile() {
        let profiles = Profiles::new(&[profile("acme", "s3cret"), profile("other", "pw:with:colons")]);
        assert_eq!(profiles.identify(Some(&basic("acme:s3cret"))).expect("ok").name, "acme");
        assert_eq!(profiles.identify(Some(&basic("other:pw:with:colons"))).expect("ok").name, "other");
        assert_eq!(profiles.identify(Some(&basic("acme:wrong"))), Err(IdentifyError::Rejected));
        assert_eq!(profiles.identify(Some(&basic("nobody:s3cret"))), Err(IdentifyError::Rejected));
        assert_eq!(profiles.identify(None), Err(IdentifyError::Missing));
        let bearer = HeaderValue::from_static("Bearer abc");
        assert_eq!(profiles.identify(Some(&bearer)), Err(IdentifyError::Malformed));
        let garbage = HeaderValue::from_static("Basic !!!");
        assert_eq!(profiles.identify(Some(&garbage)), Err(IdentifyError::Malformed));
    }

    #[test]
    fn passwordless_default_profile_needs_no_credentials() {
        let profiles = Profiles::new(&[CrawlerProfile::builtin_default()]);
        assert_eq!(profiles.identify(None).expect("anonymous").name, "default");
        assert_eq!(profiles.identify(Some(&basic("default:"))).expect("explicit").name, "default");
        let guarded = Profiles::new(&[profile("default", "pw")]);
        assert_eq!(guarded.identify(None), Err(IdentifyError::Missing));
    }
}
