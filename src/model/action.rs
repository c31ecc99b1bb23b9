//! Azure permission strings and the wildcard patterns role definitions use.
//!
//! Azure compares permission strings case-insensitively and lets `*` stand for any run of
//! characters, `/` included (`pods/*` covers `pods/exec/action`). Everything is lower-cased
//! once, when a pattern is compiled, so matching is plain byte comparison.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A compiled Azure action pattern such as `Microsoft.ContainerService/managedClusters/*/read`.
#[derive(PartialEq, Eq, Hash)]
pub struct ActionPattern {
    /// The lower-cased pattern text, kept for explanations and set operations. Shared, so a
    /// request action the policy interned is handed out without copying the text.
    text: Arc<str>,
    /// Literal pieces between the stars (`stars + 1` of them); empty for a literal.
    parts: Box<[Box<str>]>,
}

impl Clone for ActionPattern {
    /// A literal (most request actions) shares its text and allocates nothing.
    fn clone(&self) -> Self {
        ActionPattern {
            text: self.text.clone(),
            parts: if self.parts.is_empty() {
                Box::default()
            } else {
                self.parts.clone()
            },
        }
    }
}

/// The two kinds of Azure operation: control-plane ones on the resource (role definitions'
/// `Actions`) and data ones inside it (`DataActions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    Control,
    Data,
}

impl ActionKind {
    /// The kind CheckAccess's `IsDataAction` names.
    pub fn of_data_flag(is_data_action: bool) -> Self {
        if is_data_action {
            ActionKind::Data
        } else {
            ActionKind::Control
        }
    }
}

impl ActionPattern {
    /// Compiles a pattern. Any number of `*` is accepted; Azure allows one, which validation reports.
    pub fn new(pattern: &str) -> Self {
        ActionPattern::from_lowercase(&pattern.to_ascii_lowercase())
    }

    /// Compiles text that is already lower-case (request actions are built that way). A
    /// literal keeps no parts, so building one costs a single allocation.
    pub fn from_lowercase(text: &str) -> Self {
        let parts = if text.contains('*') {
            text.split('*').map(Box::from).collect()
        } else {
            Box::default()
        };
        ActionPattern {
            text: Arc::from(text),
            parts,
        }
    }

    /// The lower-cased pattern.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern has a wildcard.
    pub fn is_wildcard(&self) -> bool {
        !self.parts.is_empty()
    }

    /// Whether a lower-cased concrete action matches this pattern.
    pub fn matches(&self, action: &str) -> bool {
        self.matches_after(action, 0)
    }

    /// [`matches`](Self::matches) for an action whose first `known` bytes are already known
    /// to equal the pattern's (a [`PatternSet`]'s shared head); `known` lies within the
    /// pattern's literal head. The quick rejections are inline; the glob walk is not.
    #[inline]
    fn matches_after(&self, action: &str, known: usize) -> bool {
        let Some(first) = self.parts.first() else {
            return self.text.len() == action.len()
                && self.text.get(known..) == action.get(known..);
        };
        // Most patterns of a set part ways with the action at the first byte after the shared
        // head: settle those without a call.
        let (Some(first), Some(action)) = (first.get(known..), action.get(known..)) else {
            return false;
        };
        if let (Some(p), Some(a)) = (first.as_bytes().first(), action.as_bytes().first())
            && p != a
        {
            return false;
        }
        self.glob_matches(first, action)
    }

    /// The glob walk: `action` must start with `first` (the rest of the literal head), then
    /// hold the middle parts in order and end with the last.
    #[inline(never)]
    fn glob_matches(&self, first: &str, action: &str) -> bool {
        let Some(tail) = action.strip_prefix(first) else {
            return false;
        };
        let Some((last, middle)) = self.parts.get(1..).and_then(|rest| rest.split_last()) else {
            return tail.is_empty();
        };
        let mut remaining = tail;
        for part in middle {
            match remaining.find(&**part) {
                Some(at) => remaining = &remaining[at + part.len()..],
                None => return false,
            }
        }
        remaining.len() >= last.len() && remaining.ends_with(&**last)
    }

    /// The literal text before the first `*` (all of it for a literal).
    fn head(&self) -> &str {
        self.parts.first().map_or(&self.text, |p| p)
    }

    /// Whether every action this pattern stands for is also matched by `self`
    /// (language inclusion of `other` in `self`).
    pub fn covers(&self, other: &ActionPattern) -> bool {
        glob_covers(self.text.as_bytes(), other.text.as_bytes())
    }

    /// Whether some action is matched by both patterns.
    pub fn intersects(&self, other: &ActionPattern) -> bool {
        glob_intersects(self.text.as_bytes(), other.text.as_bytes())
    }
}

/// The patterns of one permissions list, matched together: literal patterns in one hash probe;
/// patterns with a `*` after their shared literal head
/// (`microsoft.containerservice/managedclusters/`), compared once per list.
#[derive(Debug, Clone, Default)]
pub struct PatternSet {
    patterns: Vec<ActionPattern>,
    /// Literal pattern text -> index in `patterns`.
    literals: HashMap<Box<str>, usize, rustc_hash::FxBuildHasher>,
    /// Indexes of the patterns with a `*`, in list order.
    globs: Vec<usize>,
    /// Length of the literal head every glob starts with (on a char boundary).
    shared: usize,
}

impl PatternSet {
    pub fn new(patterns: Vec<ActionPattern>) -> Self {
        let mut literals = HashMap::default();
        let mut globs = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            if p.is_wildcard() {
                globs.push(i);
            } else {
                literals.entry(Box::from(&*p.text)).or_insert(i);
            }
        }
        let heads: Vec<&str> = globs
            .iter()
            .filter_map(|i| patterns.get(*i))
            .map(ActionPattern::head)
            .collect();
        let shared = heads.split_first().map_or(0, |(head, rest)| {
            let mut len = rest.iter().fold(head.len(), |len, other| {
                head.bytes()
                    .zip(other.bytes())
                    .take(len)
                    .take_while(|(a, b)| a == b)
                    .count()
            });
            while !head.is_char_boundary(len) {
                len -= 1;
            }
            len
        });
        PatternSet {
            patterns,
            literals,
            globs,
            shared,
        }
    }

    /// A pattern that matches a lower-cased concrete action, if any (a literal first).
    pub fn find(&self, action: &str) -> Option<&ActionPattern> {
        if let Some(i) = self.literals.get(action) {
            return self.patterns.get(*i);
        }
        let first = self.patterns.get(*self.globs.first()?)?;
        let shared = first.text.get(..self.shared)?;
        if !action.starts_with(shared) {
            return None;
        }
        self.globs
            .iter()
            .filter_map(|i| self.patterns.get(*i))
            .find(|p| p.matches_after(action, self.shared))
    }

    /// Whether some pattern matches a lower-cased concrete action.
    pub fn matches(&self, action: &str) -> bool {
        self.find(action).is_some()
    }
}

impl std::ops::Deref for PatternSet {
    type Target = [ActionPattern];

    fn deref(&self) -> &[ActionPattern] {
        &self.patterns
    }
}

impl fmt::Debug for ActionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl fmt::Display for ActionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `L(q) ⊆ L(p)` for star-only globs: `p` must match `q` read as text, where a star of `q`
/// can only be consumed by a star of `p`.
fn glob_covers(p: &[u8], q: &[u8]) -> bool {
    // reach[j]: the pattern read so far can consume q[..j]
    let mut reach = vec![false; q.len() + 1];
    if let Some(first) = reach.first_mut() {
        *first = true;
    }
    for &pc in p {
        let mut next = vec![false; q.len() + 1];
        if pc == b'*' {
            let mut any = false;
            for (n, r) in next.iter_mut().zip(&reach) {
                any |= *r;
                *n = any;
            }
        } else {
            for (j, &qc) in q.iter().enumerate() {
                if reach.get(j) == Some(&true)
                    && qc != b'*'
                    && qc == pc
                    && let Some(n) = next.get_mut(j + 1)
                {
                    *n = true;
                }
            }
        }
        reach = next;
    }
    reach.last() == Some(&true)
}

/// `L(p) ∩ L(q) ≠ ∅` for star-only globs.
fn glob_intersects(p: &[u8], q: &[u8]) -> bool {
    let (n, m) = (p.len(), q.len());
    let width = m + 1;
    // can[i * width + j]: p[i..] and q[j..] share a word
    let mut can = vec![false; (n + 1) * width];
    let at = |can: &[bool], i: usize, j: usize| can.get(i * width + j).copied().unwrap_or(false);
    for i in (0..=n).rev() {
        for j in (0..=m).rev() {
            let value = match (p.get(i).copied(), q.get(j).copied()) {
                (None, None) => true,
                (Some(b'*'), qj) => {
                    at(&can, i + 1, j)
                        || (j < m && at(&can, i, j + 1))
                        || (qj == Some(b'*') && at(&can, i + 1, j + 1))
                }
                (_, Some(b'*')) => at(&can, i, j + 1) || (i < n && at(&can, i + 1, j)),
                (Some(a), Some(b)) => a == b && at(&can, i + 1, j + 1),
                _ => false,
            };
            if let Some(cell) = can.get_mut(i * width + j) {
                *cell = value;
            }
        }
    }
    at(&can, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ActionPattern {
        ActionPattern::new(s)
    }

    #[test]
    fn wildcard_matches_across_slashes_and_ignores_case() {
        let pods = p("Microsoft.ContainerService/managedClusters/pods/*");
        assert!(pods.matches("microsoft.containerservice/managedclusters/pods/exec/action"));
        assert!(!pods.matches("microsoft.containerservice/managedclusters/podsx/read"));
        let mid = p("Microsoft.ContainerService/managedClusters/*/read");
        assert!(mid.matches("microsoft.containerservice/managedclusters/apps/deployments/read"));
        assert!(!mid.matches("microsoft.containerservice/managedclusters/configmaps/write"));
        assert!(p("a").matches("a") && !p("a").matches("ab"));
        assert!(p("*").matches(""));
        assert!(!p("ab*ba").matches("aba"));
        assert!(p("a*b*c").matches("abbc"));
    }

    #[test]
    fn covers_is_language_inclusion() {
        assert!(p("x/*").covers(&p("x/pods/*")));
        assert!(p("x/*").covers(&p("x/pods/read")));
        assert!(!p("x/pods/*").covers(&p("x/*")));
        assert!(p("*/read").covers(&p("x/*/read")));
        assert!(!p("x/*/read").covers(&p("x/*")));
        assert!(p("a*").covers(&p("a*b")));
    }

    #[test]
    fn intersects_finds_shared_words() {
        assert!(p("x/*").intersects(&p("*/read")));
        assert!(!p("x/pods/read").intersects(&p("x/pods/write")));
        assert!(p("x/secrets/*").intersects(&p("x/*/read")));
        assert!(!p("x/secrets/*").intersects(&p("y/*")));
        assert!(p("*a").intersects(&p("b*")));
    }

    /// The plain definition of a star glob, as the oracle for the compiled matcher.
    fn glob(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| glob(rest, &a[i..])),
            Some((c, rest)) => a
                .split_first()
                .is_some_and(|(d, tail)| c == d && glob(rest, tail)),
        }
    }

    proptest::proptest! {
        /// A set with a shared head answers exactly as its patterns one by one, and each
        /// pattern as the plain glob definition.
        #[test]
        fn pattern_set_matches_like_the_glob_definition(
            heads in proptest::collection::vec("(ms/mc/)?[ab/]{0,3}[*]?[ab/*]{0,4}", 1..6),
            action in "(ms/mc/)?[ab/]{0,8}",
        ) {
            let patterns: Vec<ActionPattern> = heads.iter().map(|h| p(h)).collect();
            let expected = heads.iter().any(|h| glob(h.as_bytes(), action.as_bytes()));
            for (pattern, h) in patterns.iter().zip(&heads) {
                proptest::prop_assert_eq!(pattern.matches(&action), glob(h.as_bytes(), action.as_bytes()), "{}", h);
            }
            let set = PatternSet::new(patterns);
            proptest::prop_assert_eq!(set.matches(&action), expected);
            proptest::prop_assert_eq!(set.find(&action).is_some(), expected);
        }
    }

    #[test]
    fn pattern_set_shares_the_literal_head_only() {
        let set = PatternSet::new(vec![p("ms/mc/pods/*"), p("ms/mc/pods"), p("ms/mc/p*/read")]);
        assert_eq!(set.shared, "ms/mc/p".len());
        assert!(set.matches("ms/mc/pods") && set.matches("ms/mc/px/read"));
        assert!(!set.matches("ms/mc/x/read") && !set.matches("ms/m"));
        let star = PatternSet::new(vec![p("ms/*"), p("*")]);
        assert_eq!(star.shared, 0);
        assert!(star.matches("anything"));
        assert!(!PatternSet::new(Vec::new()).matches(""));
    }
}
