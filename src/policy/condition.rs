//! Azure ABAC conditions on role assignments (`conditionVersion` 2.0), the subset that means
//! something for Kubernetes requests: `ActionMatches`, `SubOperationMatches`, the `String*`
//! operators (also `IgnoreCase`), `AND`/`OR`/`NOT`, parentheses, on `@Request[…]` attributes.
//!
//! A condition that does not parse, or that reads something this engine cannot know
//! (`@Principal`, `@Resource`, `@Environment`), is *unevaluable*: its assignment never grants.

use crate::model::ActionPattern;
use std::collections::BTreeMap;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    ActionMatches(ActionPattern),
    /// Sub-operations are not used by Kubernetes data actions: never matches.
    SubOperationMatches(String),
    Compare {
        attribute: String,
        operator: Operator,
        values: Vec<String>,
    },
}

/// A string comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    kind: OperatorKind,
    negated: bool,
    ignore_case: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OperatorKind {
    Equals,
    StartsWith,
    Like,
}

/// The request attributes a condition can read, by full attribute name (lower-cased).
pub trait AttributeSource {
    fn attribute(&self, name: &str) -> Option<&str>;
}

/// Attributes in a map (tests, tools).
pub type Attributes = BTreeMap<String, String>;

impl AttributeSource for Attributes {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Condition {
    /// Parses a condition expression.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let condition = parser.or()?;
        if parser.at != parser.tokens.len() {
            return Err(format!("unexpected `{}`", parser.describe()));
        }
        Ok(condition)
    }

    /// Evaluates the condition for one lower-cased action with the given attributes.
    /// A missing attribute makes its comparison false.
    pub fn eval(&self, action: &str, attributes: &dyn AttributeSource) -> bool {
        match self {
            Condition::And(a, b) => a.eval(action, attributes) && b.eval(action, attributes),
            Condition::Or(a, b) => a.eval(action, attributes) || b.eval(action, attributes),
            Condition::Not(a) => !a.eval(action, attributes),
            Condition::ActionMatches(p) => p.matches(action),
            Condition::SubOperationMatches(_) => false,
            Condition::Compare {
                attribute,
                operator,
                values,
            } => match attributes.attribute(attribute) {
                None => false,
                Some(actual) => {
                    let hit = values.iter().any(|v| operator.test(actual, v));
                    hit != operator.negated
                }
            },
        }
    }
}

impl Operator {
    fn parse(name: &str) -> Option<Operator> {
        let rest = name.strip_prefix("String")?;
        let (rest, negated) = match rest.strip_prefix("Not") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let (rest, ignore_case) = match rest.strip_suffix("IgnoreCase") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let kind = match rest {
            "Equals" => OperatorKind::Equals,
            "StartsWith" => OperatorKind::StartsWith,
            "Like" => OperatorKind::Like,
            _ => return None,
        };
        Some(Operator {
            kind,
            negated,
            ignore_case,
        })
    }

    fn test(&self, actual: &str, expected: &str) -> bool {
        let (a, e) = if self.ignore_case {
            (actual.to_lowercase(), expected.to_lowercase())
        } else {
            (actual.to_string(), expected.to_string())
        };
        match self.kind {
            OperatorKind::Equals => a == e,
            OperatorKind::StartsWith => a.starts_with(&e),
            OperatorKind::Like => like(a.as_bytes(), e.as_bytes()),
        }
    }
}

/// `StringLike`: `*` any run, `?` one character.
fn like(text: &[u8], pattern: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => {
            (0..=text.len()).any(|i| like(text.get(i..).unwrap_or_default(), rest))
        }
        Some((b'?', rest)) => text.split_first().is_some_and(|(_, t)| like(t, rest)),
        Some((c, rest)) => text
            .split_first()
            .is_some_and(|(t, ts)| t == c && like(ts, rest)),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    BraceOpen,
    BraceClose,
    Comma,
    And,
    Or,
    Not,
    Word(String),
    Str(String),
    Attribute(String, String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1
            }
            '{' => {
                tokens.push(Token::BraceOpen);
                i += 1
            }
            '}' => {
                tokens.push(Token::BraceClose);
                i += 1
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1
            }
            '!' => {
                tokens.push(Token::Not);
                i += 1
            }
            '&' | '|' => {
                if chars.get(i + 1) != Some(&c) {
                    return Err(format!("expected `{c}{c}`"));
                }
                tokens.push(if c == '&' { Token::And } else { Token::Or });
                i += 2;
            }
            '\'' => {
                let end = (i + 1..chars.len())
                    .find(|j| chars.get(*j) == Some(&'\''))
                    .ok_or("unterminated string")?;
                tokens.push(Token::Str(
                    chars.get(i + 1..end).unwrap_or_default().iter().collect(),
                ));
                i = end + 1;
            }
            '@' => {
                let open = (i..chars.len())
                    .find(|j| chars.get(*j) == Some(&'['))
                    .ok_or("attribute without `[`")?;
                let close = (open..chars.len())
                    .find(|j| chars.get(*j) == Some(&']'))
                    .ok_or("attribute without `]`")?;
                let source: String = chars.get(i + 1..open).unwrap_or_default().iter().collect();
                let name: String = chars
                    .get(open + 1..close)
                    .unwrap_or_default()
                    .iter()
                    .collect();
                tokens.push(Token::Attribute(
                    source.trim().to_string(),
                    name.trim().to_string(),
                ));
                i = close + 1;
            }
            c if c.is_alphanumeric() || c == ':' || c == '_' || c == '.' || c == '-' => {
                let start = i;
                while chars.get(i).is_some_and(|c| {
                    c.is_alphanumeric() || *c == ':' || *c == '_' || *c == '.' || *c == '-'
                }) {
                    i += 1;
                }
                let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
                tokens.push(match word.to_ascii_uppercase().as_str() {
                    "AND" => Token::And,
                    "OR" => Token::Or,
                    "NOT" => Token::Not,
                    _ => Token::Word(word),
                });
            }
            other => return Err(format!("unexpected character `{other}`")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn describe(&self) -> String {
        self.peek()
            .map_or("end of condition".into(), |t| format!("{t:?}"))
    }

    fn expect(&mut self, token: Token) -> Result<(), String> {
        match self.next() {
            Some(t) if t == token => Ok(()),
            other => Err(format!("expected {token:?}, found {other:?}")),
        }
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            left = Condition::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Condition, String> {
        if self.peek() == Some(&Token::Not) {
            self.at += 1;
            return Ok(Condition::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Condition, String> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                self.expect(Token::Close)?;
                Ok(inner)
            }
            Some(Token::Word(w)) if w == "ActionMatches" || w == "SubOperationMatches" => {
                self.expect(Token::BraceOpen)?;
                let Some(Token::Str(s)) = self.next() else {
                    return Err(format!("{w} needs a quoted string"));
                };
                self.expect(Token::BraceClose)?;
                Ok(if w == "ActionMatches" {
                    Condition::ActionMatches(ActionPattern::new(&s))
                } else {
                    Condition::SubOperationMatches(s)
                })
            }
            Some(Token::Attribute(source, name)) => {
                if !source.eq_ignore_ascii_case("Request") {
                    return Err(format!(
                        "attribute source `@{source}` is not known for Kubernetes requests"
                    ));
                }
                let Some(Token::Word(op)) = self.next() else {
                    return Err("expected an operator after the attribute".into());
                };
                let operator = Operator::parse(&op)
                    .ok_or_else(|| format!("operator `{op}` is not supported"))?;
                let values = match self.next() {
                    Some(Token::Str(s)) => vec![s],
                    Some(Token::BraceOpen) => {
                        let mut values = Vec::new();
                        loop {
                            match self.next() {
                                Some(Token::Str(s)) => values.push(s),
                                other => {
                                    return Err(format!(
                                        "expected a string in the list, found {other:?}"
                                    ));
                                }
                            }
                            match self.next() {
                                Some(Token::Comma) => continue,
                                Some(Token::BraceClose) => break,
                                other => {
                                    return Err(format!("expected `,` or `}}`, found {other:?}"));
                                }
                            }
                        }
                        values
                    }
                    other => return Err(format!("expected a quoted value, found {other:?}")),
                };
                Ok(Condition::Compare {
                    attribute: name.to_ascii_lowercase(),
                    operator,
                    values,
                })
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AKS_DOC: &str = "((!(ActionMatches{'Microsoft.ContainerService/managedClusters/customresources/read'})) OR (@Request[Microsoft.ContainerService/managedClusters/customResources:group] StringEqualsIgnoreCase 'secrets-store.csi.x-k8s.io' AND @Request[Microsoft.ContainerService/managedClusters/customResources:kind] StringEqualsIgnoreCase 'secretproviderclasses'))";

    #[test]
    fn documented_condition_evaluates() {
        let c = Condition::parse(AKS_DOC).unwrap();
        let mut attrs = Attributes::new();
        let cr = "microsoft.containerservice/managedclusters/customresources/read";
        assert!(
            !c.eval(cr, &attrs),
            "missing attributes fail the targeted action"
        );
        assert!(c.eval(
            "microsoft.containerservice/managedclusters/pods/read",
            &attrs
        ));
        attrs.insert(
            "microsoft.containerservice/managedclusters/customresources:group".into(),
            "Secrets-Store.csi.x-k8s.io".into(),
        );
        attrs.insert(
            "microsoft.containerservice/managedclusters/customresources:kind".into(),
            "secretproviderclasses".into(),
        );
        assert!(c.eval(cr, &attrs));
    }

    #[test]
    fn unknown_sources_and_operators_are_errors() {
        assert!(Condition::parse("@Principal[x] StringEquals 'a'").is_err());
        assert!(Condition::parse("@Request[x] NumericEquals '1'").is_err());
        assert!(Condition::parse("(@Request[x] StringEquals 'a'").is_err());
    }

    #[test]
    fn like_and_negation() {
        let c = Condition::parse("@Request[x] StringNotLike 'a*c?'").unwrap();
        let mut attrs = Attributes::new();
        attrs.insert("x".into(), "abbcd".into());
        assert!(!c.eval("", &attrs));
        attrs.insert("x".into(), "zz".into());
        assert!(c.eval("", &attrs));
    }
}
