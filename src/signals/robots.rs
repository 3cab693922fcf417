//! robots.txt (RFC 9309): TEMPORARY naive stub with the final API, replaced by the real
//! parser and matcher (being written in parallel).
#![allow(dead_code, unused_variables)]

#[derive(Debug, Clone, Default)]
pub struct RobotsTxt {
    groups: Vec<(Vec<String>, u32, Vec<(bool, String, u32)>, Vec<ExtensionLine>)>,
    global: Vec<ExtensionLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionLine {
    pub key: String,
    pub value: String,
    pub line: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RobotsStats {
    pub groups: usize,
    pub rules: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotsMatch {
    pub allowed: bool,
    pub group: Option<GroupRef>,
    pub rule: Option<MatchedRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub token: String,
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedRule {
    pub allow: bool,
    pub text: String,
    pub line: u32,
}

impl RobotsTxt {
    pub fn parse(body: &[u8], max_bytes: usize) -> Self {
        let body = &body[..body.len().min(max_bytes)];
        let text = String::from_utf8_lossy(body);
        let mut me = Self::default();
        let mut in_rules = false;
        for (i, line) in text.lines().enumerate() {
            let line_no = i as u32 + 1;
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim().to_string());
            match key.as_str() {
                "user-agent" => {
                    let token = value
                        .split(|c: char| c.is_whitespace() || c == '/')
                        .next()
                        .unwrap_or("")
                        .to_string();
                    if in_rules || me.groups.is_empty() {
                        me.groups.push((vec![], line_no, vec![], vec![]));
                        in_rules = false;
                    }
                    if let Some(g) = me.groups.last_mut() {
                        g.0.push(token);
                    }
                }
                "allow" | "disallow" => {
                    in_rules = true;
                    if let Some(g) = me.groups.last_mut() {
                        let text = format!("{}: {value}", if key == "allow" { "Allow" } else { "Disallow" });
                        g.2.push((key == "allow", value, line_no));
                        let _ = text;
                    }
                }
                _ => {
                    let ext = ExtensionLine {
                        key: key.clone(),
                        value,
                        line: line_no,
                    };
                    match me.groups.last_mut() {
                        Some(g) => g.3.push(ext),
                        None => me.global.push(ext),
                    }
                }
            }
        }
        me
    }

    pub fn allow_all() -> Self {
        Self::default()
    }

    fn groups_for(&self, token: &str, specific_only: bool) -> Vec<usize> {
        let t = token.to_ascii_lowercase();
        let specific: Vec<usize> = (0..self.groups.len())
            .filter(|&i| self.groups[i].0.iter().any(|g| g.to_ascii_lowercase() == t))
            .collect();
        if !specific.is_empty() || specific_only {
            return specific;
        }
        (0..self.groups.len())
            .filter(|&i| self.groups[i].0.iter().any(|g| g == "*"))
            .collect()
    }

    fn eval(&self, groups: &[usize], token: &str, path: &str) -> RobotsMatch {
        if path == "/robots.txt" || groups.is_empty() {
            return RobotsMatch {
                allowed: true,
                group: None,
                rule: None,
            };
        }
        let g0 = &self.groups[groups[0]];
        let name =
            g0.0.iter()
                .find(|g| g.eq_ignore_ascii_case(token))
                .cloned()
                .unwrap_or_else(|| "*".into());
        let group = Some(GroupRef {
            token: name,
            line: g0.1,
        });
        let mut best: Option<(usize, bool, String, u32)> = None;
        for &gi in groups {
            for (allow, pattern, line) in &self.groups[gi].2 {
                if pattern.is_empty() || !path.starts_with(pattern.as_str()) {
                    continue;
                }
                let better = match &best {
                    None => true,
                    Some((len, best_allow, _, _)) => {
                        pattern.len() > *len || (pattern.len() == *len && *allow && !best_allow)
                    }
                };
                if better {
                    best = Some((pattern.len(), *allow, pattern.clone(), *line));
                }
            }
        }
        match best {
            None => RobotsMatch {
                allowed: true,
                group,
                rule: None,
            },
            Some((_, allow, pattern, line)) => RobotsMatch {
                allowed: allow,
                group,
                rule: Some(MatchedRule {
                    allow,
                    text: format!("{}: {pattern}", if allow { "Allow" } else { "Disallow" }),
                    line,
                }),
            },
        }
    }

    pub fn check(&self, token: &str, path_and_query: &str) -> RobotsMatch {
        self.eval(&self.groups_for(token, false), token, path_and_query)
    }

    pub fn check_specific(&self, token: &str, path_and_query: &str) -> Option<RobotsMatch> {
        let groups = self.groups_for(token, true);
        (!groups.is_empty()).then(|| self.eval(&groups, token, path_and_query))
    }

    pub fn crawl_delay(&self, token: &str) -> Option<(f64, u32)> {
        self.groups_for(token, false)
            .iter()
            .flat_map(|&g| self.groups[g].3.iter())
            .find_map(|e| {
                (e.key.eq_ignore_ascii_case("crawl-delay"))
                    .then(|| e.value.parse().ok().map(|v| (v, e.line)))
                    .flatten()
            })
    }

    pub fn group_extensions(&self, token: &str) -> Vec<ExtensionLine> {
        self.groups_for(token, false)
            .iter()
            .flat_map(|&g| self.groups[g].3.clone())
            .collect()
    }

    pub fn global_extensions(&self) -> &[ExtensionLine] {
        &self.global
    }

    pub fn stats(&self) -> RobotsStats {
        RobotsStats {
            groups: self.groups.len(),
            rules: self.groups.iter().map(|g| g.2.len()).sum(),
        }
    }
}

/// Named token lists for `honor_tokens` (`@ai-training`).
pub fn token_list(name: &str) -> Option<Vec<String>> {
    (name == "ai-training").then(|| {
        vec![
            "GPTBot".into(),
            "CCBot".into(),
            "Google-Extended".into(),
            "ClaudeBot".into(),
        ]
    })
}
