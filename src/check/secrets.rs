//! Placeholders and the secrets behind them. Case files hold `${NAME}` where a secret goes;
//! the runner fills them from the environment, and every byte `check` writes anywhere (the
//! console, reports, recorded cases) passes through [`Secrets::scrub`] first, so a key that a
//! relay echoes back is printed as its placeholder, never as itself.

use std::collections::BTreeMap;

use serde_json::Value;

/// The placeholder that always means "the API key", whatever variable `--api-key-env` names.
pub const KEY_PLACEHOLDER: &str = "A2O_CHECK_API_KEY";

/// Shown where a piece of a secret (one key of a comma-separated list) was found.
const PIECE_MASK: &str = "<redacted>";
/// Secrets shorter than this are only hidden where they stand as a whole word: a test key
/// such as `x` must not turn every `index` into `inde${…}`.
const SHORT_SECRET: usize = 8;

/// Why a placeholder could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    #[error(
        "the key variable {variable} is not set (export it, or name another variable with \
         --api-key-env)"
    )]
    KeyUnset { variable: String },
    #[error("the environment variable {0} is not set")]
    Unset(String),
}

/// The values substituted for placeholders, known so they can be scrubbed from all output.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// Placeholder name → value.
    values: BTreeMap<String, String>,
    /// (text to hide, what to print instead), longest text first so a whole key list is
    /// replaced before the keys in it.
    masks: Vec<(String, String)>,
}

impl Secrets {
    /// Resolves every placeholder name in `names`. `${A2O_CHECK_API_KEY}` reads the variable
    /// named `key_variable`; any other `${NAME}` reads `NAME`. `lookup` is the environment.
    pub fn resolve<'a>(
        names: impl IntoIterator<Item = &'a str>,
        key_variable: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Secrets, PlaceholderError> {
        let mut values = BTreeMap::new();
        for name in names {
            if values.contains_key(name) {
                continue;
            }
            let value = if name == KEY_PLACEHOLDER {
                lookup(key_variable)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| PlaceholderError::KeyUnset {
                        variable: key_variable.to_owned(),
                    })?
            } else {
                lookup(name).ok_or_else(|| PlaceholderError::Unset(name.to_owned()))?
            };
            values.insert(name.to_owned(), value);
        }
        Ok(Secrets::from_values(values))
    }

    fn from_values(values: BTreeMap<String, String>) -> Secrets {
        let mut masks: Vec<(String, String)> = Vec::new();
        for (name, value) in &values {
            if value.is_empty() {
                continue;
            }
            masks.push((value.clone(), format!("${{{name}}}")));
            // A key list: a relay may echo any one key of it.
            if value.contains(',') {
                for piece in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    masks.push((piece.to_owned(), PIECE_MASK.to_owned()));
                }
            }
        }
        masks.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        masks.dedup_by(|a, b| a.0 == b.0);
        Secrets { values, masks }
    }

    /// `text` with every `${NAME}` this set knows replaced by its value. Unknown names and
    /// text that is not a placeholder stay as they are.
    pub fn fill(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find('}') {
                Some(end) if self.values.contains_key(&after[..end]) => {
                    out.push_str(&self.values[&after[..end]]);
                    rest = &after[end + 1..];
                }
                _ => {
                    out.push_str("${");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// `text` with every secret replaced by its placeholder (or a mask for a piece of one).
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (secret, mask) in &self.masks {
            if !out.contains(secret.as_str()) {
                continue;
            }
            out = if secret.len() >= SHORT_SECRET {
                out.replace(secret.as_str(), mask)
            } else {
                replace_words(&out, secret, mask)
            };
        }
        out
    }

    /// Scrubs every string (keys included) inside a JSON value, so a secret never reaches a
    /// serialiser that would escape it past [`Secrets::scrub`].
    pub fn scrub_value(&self, value: &mut Value) {
        if self.masks.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                let scrubbed = self.scrub(s);
                if scrubbed != *s {
                    *s = scrubbed;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_value(v)),
            Value::Object(map) => {
                let needs_key_change = map.keys().any(|k| self.scrub(k) != *k);
                if needs_key_change {
                    let old = std::mem::take(map);
                    for (k, v) in old {
                        map.insert(self.scrub(&k), v);
                    }
                }
                map.values_mut().for_each(|v| self.scrub_value(v));
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// `text` with each occurrence of `word` that is not part of a longer word replaced.
fn replace_words(text: &str, word: &str, mask: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(at) = rest.find(word) {
        let (head, tail) = rest.split_at(at);
        let prev = head.chars().last().or(before);
        let next = tail[word.len()..].chars().next();
        out.push_str(head);
        if prev.is_some_and(is_word) || next.is_some_and(is_word) {
            out.push_str(word);
        } else {
            out.push_str(mask);
        }
        before = word.chars().last();
        rest = &tail[word.len()..];
    }
    out.push_str(rest);
    out
}

/// The names of the `${NAME}` placeholders in `text` (NAME: letters, digits and `_`, not
/// starting with a digit).
pub fn placeholder_names(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) if is_variable_name(&after[..end]) => {
                names.push(&after[..end]);
                rest = &after[end + 1..];
            }
            _ => rest = after,
        }
    }
    names
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn key_placeholder_reads_the_variable_named_by_api_key_env() {
        let secrets = Secrets::resolve(
            ["A2O_CHECK_API_KEY", "ORG"],
            "MY_KEY",
            env(&[("MY_KEY", "sk-1"), ("ORG", "org-9")]),
        )
        .unwrap();
        assert_eq!(
            secrets.fill("Bearer ${A2O_CHECK_API_KEY} ${ORG} ${OTHER} $${x"),
            "Bearer sk-1 org-9 ${OTHER} $${x"
        );
    }

    #[test]
    fn missing_variables_are_errors() {
        let err = Secrets::resolve(["A2O_CHECK_API_KEY"], "MY_KEY", env(&[])).unwrap_err();
        assert!(err.to_string().contains("MY_KEY"), "{err}");
        let err = Secrets::resolve(["ORG"], "MY_KEY", env(&[])).unwrap_err();
        assert_eq!(err, PlaceholderError::Unset("ORG".into()));
    }

    #[test]
    fn scrub_hides_whole_values_and_pieces_of_key_lists() {
        let secrets =
            Secrets::resolve(["A2O_CHECK_API_KEY"], "K", env(&[("K", "sk-aaaa,sk-bbbb")])).unwrap();
        assert_eq!(
            secrets.scrub("sent sk-aaaa,sk-bbbb; rejected sk-bbbb"),
            "sent ${A2O_CHECK_API_KEY}; rejected <redacted>"
        );
        let mut value = serde_json::json!({"sk-aaaa": ["x sk-bbbb"]});
        secrets.scrub_value(&mut value);
        assert_eq!(value, serde_json::json!({"<redacted>": ["x <redacted>"]}));
    }

    #[test]
    fn short_secrets_are_hidden_only_as_whole_words() {
        let secrets = Secrets::resolve(["A2O_CHECK_API_KEY"], "K", env(&[("K", "x")])).unwrap();
        assert_eq!(
            secrets.scrub("index x \"x\" x-ray"),
            "index ${A2O_CHECK_API_KEY} \"${A2O_CHECK_API_KEY}\" x-ray"
        );
    }

    #[test]
    fn finds_placeholder_names() {
        assert_eq!(
            placeholder_names("a ${A_1} ${1X} ${} ${B}"),
            vec!["A_1", "B"]
        );
    }
}
