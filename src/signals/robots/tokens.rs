//! Named token lists for `honor_tokens` (`@ai-training`), shipped in `config/`.

use serde::Deserialize;

/// `config/ai-training-tokens.toml`, compiled in so the list always matches the binary.
const AI_TRAINING: &str = include_str!("../../../config/ai-training-tokens.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    token: Vec<TokenEntry>,
}

/// One token and why it is listed (`key`: the ai-robots.json key when it differs from `name`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenEntry {
    pub(super) name: String,
    #[serde(default)]
    #[cfg_attr(not(test), expect(dead_code, reason = "checked by the list's unit tests"))]
    pub(super) key: Option<String>,
    #[cfg_attr(not(test), expect(dead_code, reason = "checked by the list's unit tests"))]
    pub(super) why: String,
}

/// The entries of a named list, if the list exists and its shipped file parses (a unit test
/// guarantees it does).
pub(super) fn entries(name: &str) -> Option<Vec<TokenEntry>> {
    let text = match name {
        "ai-training" => AI_TRAINING,
        _ => return None,
    };
    toml::from_str::<TokenFile>(text).ok().map(|file| file.token)
}

/// The robots.txt product tokens of the named list (`"ai-training"` for `@ai-training`), in file
/// order; `None` for an unknown name.
pub fn token_list(name: &str) -> Option<Vec<String>> {
    entries(name).map(|entries| entries.into_iter().map(|e| e.name).collect())
}
