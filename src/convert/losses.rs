//! What a conversion could not carry across: every converter records each field it dropped,
//! approximated or synthesised, so nothing is lost silently. `convert` prints these as JSON
//! lines on stderr, and `serve` logs them.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// The source had it and the target has nothing that can hold it.
    Dropped,
    /// Carried, but changed in a way that may matter (clamped, merged, reworded).
    Approximated,
    /// The target needed a value the source did not have, so one was made up.
    Synthesized,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Loss {
    /// JSON pointer into the source document (`/messages/2/content/0/cache_control`). For
    /// streams, the pointer is prefixed by the event number: `/events/7/delta/citation`.
    pub path: String,
    pub kind: LossKind,
    pub reason: String,
}

/// The losses of one conversion, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Losses {
    entries: Vec<Loss>,
}

impl Losses {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, path: impl Into<String>, kind: LossKind, reason: impl Into<String>) {
        self.entries.push(Loss {
            path: path.into(),
            kind,
            reason: reason.into(),
        });
    }

    pub fn dropped(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.push(path, LossKind::Dropped, reason);
    }

    pub fn approximated(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.push(path, LossKind::Approximated, reason);
    }

    pub fn synthesized(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.push(path, LossKind::Synthesized, reason);
    }

    /// Reports every key of an `extra` map (fields the converter does not understand) as
    /// dropped, under `base`.
    pub fn dropped_extra(&mut self, base: &str, extra: &crate::protocol::Extra, target: &str) {
        for key in extra.keys() {
            self.dropped(
                format!("{base}/{}", escape_pointer(key)),
                format!("`{key}` has no {target} equivalent"),
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Loss> {
        self.entries.iter()
    }

    pub fn into_vec(self) -> Vec<Loss> {
        self.entries
    }

    pub fn extend(&mut self, other: Losses) {
        self.entries.extend(other.entries);
    }
}

/// `{base}{suffix}` without the formatting machinery: stream machines build a path for every
/// event, and most are never used.
pub fn child_path(base: &str, suffix: &str) -> String {
    let mut path = String::with_capacity(base.len() + suffix.len());
    path.push_str(base);
    path.push_str(suffix);
    path
}

/// `{base}{segment}{index}`, as [`child_path`] (`("/events/3", "/choices/", 0)`).
pub fn indexed_path(base: &str, segment: &str, index: u64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(index);
    let mut path = String::with_capacity(base.len() + segment.len() + digits.len());
    path.push_str(base);
    path.push_str(segment);
    path.push_str(digits);
    path
}

/// Escapes one JSON-pointer reference token (RFC 6901).
pub fn escape_pointer(token: &str) -> String {
    if token.contains(['~', '/']) {
        token.replace('~', "~0").replace('/', "~1")
    } else {
        token.to_owned()
    }
}
