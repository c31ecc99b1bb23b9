//! Request values quoted in reasons, errors and logs, cut to a bounded length: a request
//! can carry a megabyte in one field, and an answer or a log line should not repeat it.

use std::borrow::Cow;
use std::fmt;

/// Most bytes of one request value a reason or an error message quotes.
pub const QUOTED_BYTES: usize = 256;

/// `text` cut to at most `max` bytes at a character boundary, and how many bytes were cut.
pub fn cut(text: &str, max: usize) -> (&str, usize) {
    if text.len() <= max {
        return (text, 0);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = text.get(..end).unwrap_or_default();
    (head, text.len() - head.len())
}

/// A value as a reason quotes it: at most `max` bytes, followed by `…(+N bytes)` when cut.
#[derive(Debug, Clone, Copy)]
pub struct Excerpt<'a> {
    text: &'a str,
    max: usize,
}

/// `text` cut to [`QUOTED_BYTES`] for a reason or an error message.
pub fn excerpt(text: &str) -> Excerpt<'_> {
    Excerpt {
        text,
        max: QUOTED_BYTES,
    }
}

/// `text` cut to `max` bytes.
pub fn excerpt_of(text: &str, max: usize) -> Excerpt<'_> {
    Excerpt { text, max }
}

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (head, omitted) = cut(self.text, self.max);
        f.write_str(head)?;
        if omitted > 0 {
            write!(f, "…(+{omitted} bytes)")?;
        }
        Ok(())
    }
}

/// `text` cut to `max` bytes with the marker, borrowed when it fits.
pub fn capped(text: &str, max: usize) -> Cow<'_, str> {
    match cut(text, max) {
        (head, 0) => Cow::Borrowed(head),
        (head, omitted) => Cow::Owned(format!("{head}…(+{omitted} bytes)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_kept_and_long_ones_cut_at_a_character() {
        assert_eq!(excerpt("pods").to_string(), "pods");
        let long = "a".repeat(QUOTED_BYTES + 10);
        assert_eq!(
            excerpt(&long).to_string(),
            format!("{}…(+10 bytes)", "a".repeat(QUOTED_BYTES))
        );
        // A two-byte character across the limit is left out whole.
        let text = format!("{}é", "a".repeat(3));
        assert_eq!(cut(&text, 4), ("aaa", 2));
        assert_eq!(capped(&text, 4), "aaa…(+2 bytes)");
        assert!(matches!(capped("abc", 4), Cow::Borrowed("abc")));
    }
}
