//! Azure permission strings and the wildcard patterns role definitions use.
//!
//! Azure compares permission strings case-insensitively and lets `*` stand for any run of
//! characters, `/` included (`pods/*` covers `pods/exec/action`). Everything is lower-cased
//! once, when a pattern is compiled, so matching is plain byte comparison.

use std::fmt;

/// A compiled Azure action pattern such as `Microsoft.ContainerService/managedClusters/*/read`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ActionPattern {
    /// The lower-cased pattern text, kept for explanations and set operations.
    text: Box<str>,
    /// Literal pieces between the stars (`stars + 1` of them); empty for a literal.
    parts: Box<[Box<str>]>,
}

impl ActionPattern {
    /// Compiles a pattern. Any number of `*` is accepted; Azure allows one, which validation reports.
    pub fn new(pattern: &str) -> Self {
        ActionPattern::from_lowercase(pattern.to_ascii_lowercase())
    }

    /// Compiles text that is already lower-case (request actions are built that way). A
    /// literal keeps no parts, so building one costs a single allocation.
    pub fn from_lowercase(text: String) -> Self {
        let parts = if text.contains('*') {
            text.split('*').map(Box::from).collect()
        } else {
            Box::default()
        };
        ActionPattern {
            text: text.into_boxed_str(),
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
        let parts = &self.parts;
        if parts.is_empty() {
            return *self.text == *action;
        }
        let Some((first, rest)) = parts.split_first() else {
            return action.is_empty();
        };
        let Some(tail) = action.strip_prefix(&**first) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
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
}
