//! What one AI signal says per crawl purpose: allowed (`Some(true)`), disallowed
//! (`Some(false)`) or unknown (`None`), for each of [`Purpose::ALL`].
//!
//! Every signal parser maps its own vocabulary onto these four purposes exactly as DESIGN §3's
//! table says, so the decision engine only sees one shape. Combining follows the aipref rule
//! (vocab-07 "Combining Preferences"): any disallow wins, else any allow, else unknown.

use crate::decide::Purpose;

/// A tri-state preference for each purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prefs([Option<bool>; 4]);

impl Prefs {
    /// No statement about any purpose.
    pub const UNKNOWN: Prefs = Prefs([None; 4]);

    fn index(purpose: Purpose) -> usize {
        match purpose {
            Purpose::Search => 0,
            Purpose::AiInput => 1,
            Purpose::AiTrain => 2,
            Purpose::Tdm => 3,
        }
    }

    /// What the signal says about `purpose`.
    pub fn get(&self, purpose: Purpose) -> Option<bool> {
        self.0[Self::index(purpose)]
    }

    /// Records a statement, combined most-restrictively with any earlier one.
    pub fn restrict(&mut self, purpose: Purpose, allowed: bool) {
        let slot = &mut self.0[Self::index(purpose)];
        *slot = combine_one(*slot, Some(allowed));
    }

    /// Builder form of [`Prefs::restrict`].
    pub fn with(mut self, purpose: Purpose, allowed: bool) -> Self {
        self.restrict(purpose, allowed);
        self
    }

    /// Builder form for several purposes at once.
    pub fn with_all(mut self, purposes: &[Purpose], allowed: bool) -> Self {
        for &p in purposes {
            self.restrict(p, allowed);
        }
        self
    }

    /// Most-restrictive combination of two statements.
    pub fn combine(self, other: Prefs) -> Prefs {
        let mut out = self;
        for (slot, theirs) in out.0.iter_mut().zip(other.0) {
            *slot = combine_one(*slot, theirs);
        }
        out
    }

    /// The purposes this signal disallows.
    pub fn disallowed(&self) -> Vec<Purpose> {
        Purpose::ALL.into_iter().filter(|&p| self.get(p) == Some(false)).collect()
    }

    /// True when the signal says nothing about any purpose.
    pub fn is_unknown(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }
}

/// aipref combining: disallow beats allow beats unknown.
fn combine_one(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), _) | (_, Some(true)) => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combining_is_most_restrictive() {
        let cases = [
            (None, None, None),
            (None, Some(true), Some(true)),
            (Some(true), Some(false), Some(false)),
            (Some(false), Some(true), Some(false)),
            (Some(false), None, Some(false)),
        ];
        for (a, b, want) in cases {
            assert_eq!(combine_one(a, b), want, "{a:?} + {b:?}");
        }
    }

    #[test]
    fn builder_and_disallowed() {
        let p = Prefs::UNKNOWN.with(Purpose::AiTrain, false).with(Purpose::Search, true);
        assert_eq!(p.disallowed(), vec![Purpose::AiTrain]);
        assert_eq!(p.get(Purpose::Search), Some(true));
        assert_eq!(p.get(Purpose::Tdm), None);
        assert!(!p.is_unknown());
        assert!(Prefs::UNKNOWN.is_unknown());
        let q = p.combine(Prefs::UNKNOWN.with(Purpose::Search, false));
        assert_eq!(q.disallowed(), vec![Purpose::Search, Purpose::AiTrain]);
    }
}
