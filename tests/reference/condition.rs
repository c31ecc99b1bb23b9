//! ABAC conditions, the subset the docs call sensible for Kubernetes: `ActionMatches{'…'}`,
//! `@Request[<attribute>] String…[IgnoreCase] '<value>'`, `AND`/`&&`, `OR`/`||`, `NOT`/`!`
//! and parentheses. Anything else cannot be evaluated (`None`).

use super::glob;

/// What a condition may read about the request.
pub struct Attributes<'a> {
    pub prefix: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
}

impl Attributes<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        let name = name.to_lowercase();
        let p = self.prefix.to_lowercase();
        let value = if name == format!("{p}/resources:subresource") {
            self.subresource
        } else if name == format!("{p}/customresources:group") {
            self.group
        } else if name == format!("{p}/customresources:kind") && !self.group.is_empty() {
            self.resource
        } else {
            ""
        };
        (!value.is_empty()).then_some(value)
    }
}

/// Evaluates `text` for `action`; `None` if it is outside the subset.
pub fn eval(text: &str, action: &str, attributes: &Attributes<'_>) -> Option<bool> {
    let mut p = Parser {
        s: text.chars().collect(),
        at: 0,
        action,
        attributes,
    };
    let value = p.or()?;
    p.skip_space();
    (p.at == p.s.len()).then_some(value)
}

struct Parser<'a> {
    s: Vec<char>,
    at: usize,
    action: &'a str,
    attributes: &'a Attributes<'a>,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.s.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    /// Takes `word` (case-insensitive) if it comes next.
    fn eat(&mut self, word: &str) -> bool {
        self.skip_space();
        let end = self.at + word.chars().count();
        let next: String = self
            .s
            .get(self.at..end)
            .map(|c| c.iter().collect())
            .unwrap_or_default();
        if next.eq_ignore_ascii_case(word) {
            self.at = end;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Option<bool> {
        let mut value = self.and()?;
        while self.eat("||") || self.eat("OR ") {
            let right = self.and()?;
            value = value || right;
        }
        Some(value)
    }

    fn and(&mut self) -> Option<bool> {
        let mut value = self.unary()?;
        while self.eat("&&") || self.eat("AND ") {
            let right = self.unary()?;
            value = value && right;
        }
        Some(value)
    }

    fn unary(&mut self) -> Option<bool> {
        if self.eat("!") || self.eat("NOT ") {
            return self.unary().map(|v| !v);
        }
        if self.eat("(") {
            let value = self.or()?;
            return self.eat(")").then_some(value);
        }
        if self.eat("ActionMatches") {
            if !self.eat("{") {
                return None;
            }
            let pattern = self.quoted()?;
            return self.eat("}").then(|| glob::matches(&pattern, self.action));
        }
        if self.eat("@Request[") {
            let name = self.until(']')?;
            let op = self.word();
            let value = self.quoted()?;
            return compare(&op, self.attributes.get(&name), &value);
        }
        None
    }

    fn until(&mut self, end: char) -> Option<String> {
        let start = self.at;
        while self.s.get(self.at)? != &end {
            self.at += 1;
        }
        let text = self.s[start..self.at].iter().collect();
        self.at += 1;
        Some(text)
    }

    fn word(&mut self) -> String {
        self.skip_space();
        let start = self.at;
        while self
            .s
            .get(self.at)
            .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            self.at += 1;
        }
        self.s[start..self.at].iter().collect()
    }

    fn quoted(&mut self) -> Option<String> {
        if !self.eat("'") {
            return None;
        }
        self.until('\'')
    }
}

/// A string comparison; a missing attribute compares false.
fn compare(op: &str, attribute: Option<&str>, value: &str) -> Option<bool> {
    let (base, fold) = match op.strip_suffix("IgnoreCase") {
        Some(base) => (base, true),
        None => (op, false),
    };
    let known = [
        "StringEquals",
        "StringNotEquals",
        "StringStartsWith",
        "StringNotStartsWith",
    ];
    if !known.contains(&base) {
        return None;
    }
    let Some(attribute) = attribute else {
        return Some(false);
    };
    let (a, v) = if fold {
        (attribute.to_lowercase(), value.to_lowercase())
    } else {
        (attribute.to_string(), value.to_string())
    };
    Some(match base {
        "StringEquals" => a == v,
        "StringNotEquals" => a != v,
        "StringStartsWith" => a.starts_with(&v),
        _ => !a.starts_with(&v),
    })
}
