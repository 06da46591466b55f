//! Scenario rules and the runtime config that holds them: a rule picks a
//! scenario for the submits it matches (JSON pointers, exact or /regex/,
//! optionally one tenant, optionally a number of times).

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::spec::{expect_object, Scenario};

/// A scenario rule of the runtime config, as the user wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(rename = "match")]
    pub matches: serde_json::Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub scenario: Scenario,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "shared::number::opt_whole_u32"
    )]
    pub times: Option<u32>,
}

enum Matcher {
    Regex(Regex),
    Exact(Value),
}

/// A rule ready to match: regexes compiled, tenant key hashed.
pub struct CompiledRule {
    pub rule: Rule,
    matchers: Vec<(String, Matcher)>,
    tenant_id: Option<String>,
}

impl CompiledRule {
    pub fn compile(rule: Rule) -> Result<Self, String> {
        rule.scenario.check()?;
        if rule.times == Some(0) {
            return Err("`times` is 0, so the rule would never fire \
                 (leave `times` out for a rule without a limit)"
                .to_owned());
        }
        if rule.matches.is_empty() && rule.tenant.is_none() {
            return Err("`match` is empty and no `tenant` is given, so the rule \
                 would match every job; to mean that, match a field every submit has, \
                 e.g. {\"/app\": \"/.*/\"}"
                .to_owned());
        }
        let mut matchers = Vec::new();
        for (pointer, want) in &rule.matches {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return Err(format!(
                    "match key `{pointer}` is not a JSON pointer (it must start with /)"
                ));
            }
            let m = match want.as_str() {
                Some(s) if s.len() >= 2 && s.starts_with('/') && s.ends_with('/') => {
                    Matcher::Regex(
                        Regex::new(&s[1..s.len() - 1])
                            .map_err(|e| format!("match `{pointer}`: bad regex: {e}"))?,
                    )
                }
                _ => Matcher::Exact(want.clone()),
            };
            matchers.push((pointer.clone(), m));
        }
        let tenant_id = rule.tenant.as_deref().map(crate::tenant::tenant_id);
        Ok(Self {
            rule,
            matchers,
            tenant_id,
        })
    }

    pub fn matches(&self, body: &Value, tenant_id: &str) -> bool {
        if self.rule.times == Some(0) {
            return false;
        }
        if self.tenant_id.as_deref().is_some_and(|t| t != tenant_id) {
            return false;
        }
        self.matchers.iter().all(|(pointer, m)| {
            let Some(got) = body.pointer(pointer) else {
                return false;
            };
            match m {
                Matcher::Exact(want) => got == want,
                Matcher::Regex(re) => match got {
                    Value::String(s) => re.is_match(s),
                    other => re.is_match(&other.to_string()),
                },
            }
        })
    }
}

/// The knobs `GET|PUT /_mock/config` shows and changes.
pub struct RuntimeConfig {
    pub stage_ms: u64,
    pub failure_rate: f64,
    pub submit_error_rate: f64,
    pub latency_ms: u64,
    pub rules: Vec<CompiledRule>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ConfigView {
    pub stage_ms: u64,
    pub failure_rate: f64,
    pub submit_error_rate: f64,
    pub latency_ms: u64,
    pub rules: Vec<Rule>,
}

impl RuntimeConfig {
    pub fn view(&self) -> ConfigView {
        ConfigView {
            stage_ms: self.stage_ms,
            failure_rate: self.failure_rate,
            submit_error_rate: self.submit_error_rate,
            latency_ms: self.latency_ms,
            rules: self.rules.iter().map(|r| r.rule.clone()).collect(),
        }
    }

    /// The first rule matching the submit body, with one use taken off:
    /// its index and the rule as it was when it matched.
    pub fn take_rule(&mut self, body: &Value, tenant: &str) -> Option<(usize, Rule)> {
        let (i, rule) =
            (self.rules.iter_mut().enumerate()).find(|(_, r)| r.matches(body, tenant))?;
        let matched = rule.rule.clone();
        if let Some(n) = rule.rule.times.as_mut() {
            *n -= 1;
        }
        Some((i, matched))
    }
}

/// Parses scenario rules: a JSON list, or `{"rules": [...]}`.
pub fn parse_rules(v: Value) -> Result<Vec<CompiledRule>, String> {
    let list = match v {
        Value::Object(mut m) if m.contains_key("rules") => m.remove("rules").unwrap_or_default(),
        other => other,
    };
    let Value::Array(items) = list else {
        return Err("scenario rules: expected a list of rules, or {\"rules\": [...]}".to_owned());
    };
    // One rule at a time, so every error names the rule it is about.
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            expect_object(&item, "a rule")
                .and_then(|()| Scenario::check_shape(item.get("scenario").unwrap_or(&Value::Null)))
                .and_then(|()| serde_json::from_value::<Rule>(item).map_err(|e| e.to_string()))
                .and_then(CompiledRule::compile)
                .map_err(|e| format!("rule {i}: {e}"))
        })
        .collect()
}
