//! Azure action patterns: `*` matches any run of characters, `/` included; case-insensitive
//! (Azure: "permission strings are case-insensitive").

fn lower(text: &str) -> Vec<char> {
    text.to_lowercase().chars().collect()
}

/// Whether the concrete `action` is one of the actions `pattern` names.
pub fn matches(pattern: &str, action: &str) -> bool {
    let p = lower(pattern);
    let a: Vec<char> = lower(action);
    glob(&p, &a)
}

/// Whether every action `inner` names is also named by `outer`: `outer` matches `inner` read
/// as text, where a `*` of `inner` can only be taken by a `*` of `outer`.
pub fn covers(outer: &str, inner: &str) -> bool {
    glob(&lower(outer), &lower(inner))
}

/// Whether some action is named by both patterns.
pub fn intersects(a: &str, b: &str) -> bool {
    let (a, b) = (lower(a), lower(b));
    // reach[i][j]: a[..i] and b[..j] can spell the same text.
    let mut reach = vec![vec![false; b.len() + 1]; a.len() + 1];
    reach[0][0] = true;
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            if !reach[i][j] {
                continue;
            }
            let (x, y) = (a.get(i), b.get(j));
            if x == Some(&'*') {
                reach[i + 1][j] = true;
                if y.is_some() {
                    reach[i][j + 1] = true;
                }
            }
            if y == Some(&'*') {
                reach[i][j + 1] = true;
                if x.is_some() {
                    reach[i + 1][j] = true;
                }
            }
            if let (Some(x), Some(y)) = (x, y)
                && x == y
            {
                reach[i + 1][j + 1] = true;
            }
        }
    }
    reach[a.len()][b.len()]
}

/// Glob match by dynamic programming. A `*` in `text` is a character that only a `*` of
/// the pattern can consume (a literal pattern character is never `*`).
fn glob(pattern: &[char], text: &[char]) -> bool {
    // m[i][j]: pattern[..i] matches text[..j].
    let mut m = vec![vec![false; text.len() + 1]; pattern.len() + 1];
    m[0][0] = true;
    for i in 1..=pattern.len() {
        let p = pattern[i - 1];
        for j in 0..=text.len() {
            m[i][j] = if p == '*' {
                m[i - 1][j] || (j > 0 && m[i][j - 1])
            } else {
                j > 0 && m[i - 1][j - 1] && text[j - 1] == p
            };
        }
    }
    m[pattern.len()][text.len()]
}

#[test]
fn glob_plainly() {
    assert!(matches(
        "Microsoft.X/pods/*",
        "microsoft.x/pods/exec/action"
    ));
    assert!(matches("*/READ", "a/b/read"));
    assert!(!matches("a/*/read", "a/read"));
    assert!(covers("a/*", "a/b/*"));
    assert!(!covers("a/*/read", "a/*"));
    assert!(covers("a/*", "A/B"));
    assert!(intersects("a/*/read", "a/b/*"));
    assert!(!intersects("a/*/read", "b/*"));
}
