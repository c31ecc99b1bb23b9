//! Azure ABAC conditions on role assignments (`conditionVersion` 2.0), the subset that means
//! something for Kubernetes requests: `ActionMatches`, `SubOperationMatches`, the `String*`
//! operators (also `IgnoreCase`), `AND`/`OR`/`NOT`, parentheses, on `@Request[…]` attributes.
//!
//! A condition that does not parse, or that reads something this engine cannot know
//! (`@Principal`, `@Resource`, `@Environment`), is *unevaluable*: its assignment never grants.
//! So is a condition asked about a request value longer than [`MAX_ATTRIBUTE_BYTES`].
//!
//! Nothing here recurses without bound: a condition is at most [`MAX_CONDITION_BYTES`] long
//! and nests at most [`MAX_CONDITION_NESTING`] levels, and a chain of `AND`s or `OR`s is one
//! node however long, so the tree the parser builds, evaluates and drops is shallow.

use crate::model::ActionPattern;
use crate::model::mapping::AttributeSource;
#[cfg(test)]
use crate::model::mapping::Attributes;

/// Azure's limit on a condition's length: "a condition can be up to 8 KB long" (Azure ABAC
/// FAQ, "What are the limits for a condition?").
pub const MAX_CONDITION_BYTES: usize = 8 * 1024;

/// How deep parentheses and negations (`!`, `NOT`) may nest. Conditions Azure's builder
/// writes nest three or four levels; the limit keeps parsing and evaluation off the end of
/// a thread's stack.
pub const MAX_CONDITION_NESTING: usize = 32;

/// The longest request value a condition compares. Every attribute a condition reads is a
/// Kubernetes API group, resource or subresource name, at most a DNS-1123 subdomain (253
/// bytes); a longer value names nothing that exists, and comparing it would let a request
/// choose how much work a pattern does.
pub const MAX_ATTRIBUTE_BYTES: usize = 253;

/// Why a condition's text is not a condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Longer than Azure accepts ([`MAX_CONDITION_BYTES`]).
    #[error("condition is {0} bytes long, more than Azure's limit of {MAX_CONDITION_BYTES} bytes")]
    TooLong(usize),
    /// Parentheses and negations nest deeper than [`MAX_CONDITION_NESTING`].
    #[error(
        "condition nests parentheses and negations more than {MAX_CONDITION_NESTING} levels deep"
    )]
    TooDeep,
    /// Not in the condition syntax this engine knows.
    #[error("{0}")]
    Syntax(String),
}

impl ParseError {
    /// Whether the text breaks a limit (Azure would refuse it) rather than the syntax.
    pub fn is_limit(&self) -> bool {
        matches!(self, ParseError::TooLong(_) | ParseError::TooDeep)
    }
}

impl From<String> for ParseError {
    fn from(message: String) -> Self {
        ParseError::Syntax(message)
    }
}

/// Why a condition could not be evaluated for a request; callers fail closed (a deny
/// assignment applies, a role assignment does not grant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error(
        "request attribute `{attribute}` is {len} bytes long, more than the \
         {MAX_ATTRIBUTE_BYTES} a condition compares"
    )]
    AttributeTooLong { attribute: String, len: usize },
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Every term holds (two or more terms, none itself an `And`).
    And(Vec<Condition>),
    /// Some term holds (two or more terms, none itself an `Or`).
    Or(Vec<Condition>),
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

impl Condition {
    /// Parses a condition expression, within Azure's size limit and the nesting limit.
    pub fn parse(text: &str) -> Result<Condition, ParseError> {
        if text.len() > MAX_CONDITION_BYTES {
            return Err(ParseError::TooLong(text.len()));
        }
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens,
            at: 0,
            depth: 0,
        };
        let condition = parser.or()?;
        if parser.at != parser.tokens.len() {
            return Err(format!("unexpected `{}`", parser.describe()).into());
        }
        Ok(condition)
    }

    /// Evaluates the condition for one lower-cased action with the given attributes.
    /// A missing attribute makes its comparison false; an over-long one makes the condition
    /// unevaluable, unless the terms read before it already decide the answer.
    pub fn eval(&self, action: &str, attributes: &dyn AttributeSource) -> Result<bool, EvalError> {
        Ok(match self {
            Condition::And(terms) => {
                for term in terms {
                    if !term.eval(action, attributes)? {
                        return Ok(false);
                    }
                }
                true
            }
            Condition::Or(terms) => {
                for term in terms {
                    if term.eval(action, attributes)? {
                        return Ok(true);
                    }
                }
                false
            }
            Condition::Not(a) => !a.eval(action, attributes)?,
            Condition::ActionMatches(p) => p.matches(action),
            Condition::SubOperationMatches(_) => false,
            Condition::Compare {
                attribute,
                operator,
                values,
            } => match attributes.attribute(attribute) {
                None => false,
                Some(actual) if actual.len() > MAX_ATTRIBUTE_BYTES => {
                    return Err(EvalError::AttributeTooLong {
                        attribute: attribute.clone(),
                        len: actual.len(),
                    });
                }
                Some(actual) => {
                    let hit = values.iter().any(|v| operator.test(actual, v));
                    hit != operator.negated
                }
            },
        })
    }

    /// How many levels the tree has (a comparison is one).
    #[cfg(test)]
    fn depth(&self) -> usize {
        1 + match self {
            Condition::And(terms) | Condition::Or(terms) => {
                terms.iter().map(Condition::depth).max().unwrap_or(0)
            }
            Condition::Not(a) => a.depth(),
            _ => 0,
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
            OperatorKind::Like => string_like(a.as_bytes(), e.as_bytes()),
        }
    }
}

/// `StringLike`: `*` matches any run of bytes, `?` exactly one byte, any other byte itself.
///
/// Greedy, remembering only the last `*`: when the text stops matching, that star takes one
/// more byte and the rest of the pattern is tried again. An earlier star never needs to
/// take more (the last one can take it instead), so the walk is O(text × pattern) at worst
/// and allocates nothing.
pub fn string_like(text: &[u8], pattern: &[u8]) -> bool {
    let (mut t, mut p) = (0, 0);
    // After the last star seen: where the pattern resumes, and the text byte it resumes at.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                star = Some((p, t));
            }
            Some(&q) if q == b'?' || q == c => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((after, taken)) => {
                    p = after;
                    t = taken + 1;
                    star = Some((after, t));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .unwrap_or_default()
        .iter()
        .all(|&q| q == b'*')
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

/// Splits a condition's text into tokens; an error names the first thing that is not one.
fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if let Some(token) = punctuation(c) {
            tokens.push(token);
            i += 1;
            continue;
        }
        let (token, next) = match c {
            '&' | '|' => {
                if chars.get(i + 1) != Some(&c) {
                    return Err(format!("expected `{c}{c}`"));
                }
                (if c == '&' { Token::And } else { Token::Or }, i + 2)
            }
            '\'' => string_at(&chars, i)?,
            '@' => attribute_at(&chars, i)?,
            c if is_word_char(c) => word_at(&chars, i),
            other => return Err(format!("unexpected character `{other}`")),
        };
        tokens.push(token);
        i = next;
    }
    Ok(tokens)
}

/// The token of a one-character punctuation mark.
fn punctuation(c: char) -> Option<Token> {
    Some(match c {
        '(' => Token::Open,
        ')' => Token::Close,
        '{' => Token::BraceOpen,
        '}' => Token::BraceClose,
        ',' => Token::Comma,
        '!' => Token::Not,
        _ => return None,
    })
}

/// A character of a word: an operator, function, attribute name or literal.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == ':' || c == '_' || c == '.' || c == '-'
}

/// The string literal opening at `i` (a `'`) and the position after it.
fn string_at(chars: &[char], i: usize) -> Result<(Token, usize), String> {
    let end = (i + 1..chars.len())
        .find(|j| chars.get(*j) == Some(&'\''))
        .ok_or("unterminated string")?;
    let text = chars.get(i + 1..end).unwrap_or_default().iter().collect();
    Ok((Token::Str(text), end + 1))
}

/// The attribute reference `@Source[name]` starting at `i` and the position after it.
fn attribute_at(chars: &[char], i: usize) -> Result<(Token, usize), String> {
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
    let token = Token::Attribute(source.trim().to_string(), name.trim().to_string());
    Ok((token, close + 1))
}

/// The word starting at `i` (a logical operator in any case, or any other word) and the
/// position after it.
fn word_at(chars: &[char], start: usize) -> (Token, usize) {
    let mut i = start;
    while chars.get(i).is_some_and(|c| is_word_char(*c)) {
        i += 1;
    }
    let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
    let token = match word.to_ascii_uppercase().as_str() {
        "AND" => Token::And,
        "OR" => Token::Or,
        "NOT" => Token::Not,
        _ => Token::Word(word),
    };
    (token, i)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// Parentheses and negations open around the current token.
    depth: usize,
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

    fn expect(&mut self, token: Token) -> Result<(), ParseError> {
        Ok(self.expect_token(token)?)
    }

    fn expect_token(&mut self, token: Token) -> Result<(), String> {
        match self.next() {
            Some(t) if t == token => Ok(()),
            other => Err(format!("expected {token:?}, found {other:?}")),
        }
    }

    /// Opens one level of nesting, refusing one past the limit.
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_CONDITION_NESTING {
            return Err(ParseError::TooDeep);
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Condition, ParseError> {
        let first = self.and()?;
        if self.peek() != Some(&Token::Or) {
            return Ok(first);
        }
        let mut terms = vec![first];
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            match self.and()? {
                Condition::Or(inner) => terms.extend(inner),
                term => terms.push(term),
            }
        }
        Ok(Condition::Or(terms))
    }

    fn and(&mut self) -> Result<Condition, ParseError> {
        let first = self.unary()?;
        if self.peek() != Some(&Token::And) {
            return Ok(first);
        }
        let mut terms = vec![first];
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            match self.unary()? {
                Condition::And(inner) => terms.extend(inner),
                term => terms.push(term),
            }
        }
        Ok(Condition::And(terms))
    }

    /// Negations in a loop, not by recursion: each counts as a level of nesting.
    fn unary(&mut self) -> Result<Condition, ParseError> {
        let outer = self.depth;
        let mut negations = 0;
        while self.peek() == Some(&Token::Not) {
            self.at += 1;
            self.enter()?;
            negations += 1;
        }
        let mut condition = self.primary()?;
        for _ in 0..negations {
            condition = Condition::Not(Box::new(condition));
        }
        self.depth = outer;
        Ok(condition)
    }

    fn primary(&mut self) -> Result<Condition, ParseError> {
        match self.next() {
            Some(Token::Open) => {
                self.enter()?;
                let inner = self.or()?;
                self.expect(Token::Close)?;
                self.depth -= 1;
                Ok(inner)
            }
            other => Ok(self.term(other)?),
        }
    }

    /// One comparison or action test, starting at `token`; never nests.
    fn term(&mut self, token: Option<Token>) -> Result<Condition, String> {
        match token {
            Some(Token::Word(w)) if w == "ActionMatches" || w == "SubOperationMatches" => {
                self.expect_token(Token::BraceOpen)?;
                let Some(Token::Str(s)) = self.next() else {
                    return Err(format!("{w} needs a quoted string"));
                };
                self.expect_token(Token::BraceClose)?;
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
            c.eval(cr, &attrs) == Ok(false),
            "missing attributes fail the targeted action"
        );
        assert_eq!(
            c.eval(
                "microsoft.containerservice/managedclusters/pods/read",
                &attrs
            ),
            Ok(true)
        );
        attrs.insert(
            "microsoft.containerservice/managedclusters/customresources:group".into(),
            "Secrets-Store.csi.x-k8s.io".into(),
        );
        attrs.insert(
            "microsoft.containerservice/managedclusters/customresources:kind".into(),
            "secretproviderclasses".into(),
        );
        assert_eq!(c.eval(cr, &attrs), Ok(true));
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
        assert_eq!(c.eval("", &attrs), Ok(false));
        attrs.insert("x".into(), "zz".into());
        assert_eq!(c.eval("", &attrs), Ok(true));
    }

    /// One comparison, a condition's smallest term.
    const TERM: &str = "@Request[x] StringEquals 'a'";

    /// 2,000 nested parentheses (4 KB, inside Azure's size limit) once overflowed the stack
    /// at load: past the nesting limit they are an error; at the limit they still parse.
    #[test]
    fn nesting_past_the_limit_is_an_error() {
        let nested = |depth: usize| format!("{}{TERM}{}", "(".repeat(depth), ")".repeat(depth));
        assert!(Condition::parse(&nested(2_000)).is_err());
        assert!(Condition::parse(&nested(MAX_CONDITION_NESTING + 1)).is_err());
        let deepest = Condition::parse(&nested(MAX_CONDITION_NESTING)).unwrap();
        let mut attrs = Attributes::new();
        attrs.insert("x".into(), "a".into());
        assert_eq!(deepest.eval("", &attrs), Ok(true));
    }

    /// 8,000 `!` (inside the size limit) once overflowed the stack at load.
    #[test]
    fn negations_past_the_limit_are_an_error() {
        let negated = |n: usize| format!("{}{TERM}", "!".repeat(n));
        assert!(Condition::parse(&negated(8_000)).is_err());
        assert!(Condition::parse(&negated(MAX_CONDITION_NESTING + 1)).is_err());
        let mut attrs = Attributes::new();
        attrs.insert("x".into(), "a".into());
        let even = Condition::parse(&negated(MAX_CONDITION_NESTING - MAX_CONDITION_NESTING % 2));
        assert_eq!(even.unwrap().eval("", &attrs), Ok(true));
        let odd = Condition::parse(&negated(
            MAX_CONDITION_NESTING - 1 + MAX_CONDITION_NESTING % 2,
        ));
        assert_eq!(odd.unwrap().eval("", &attrs), Ok(false));
    }

    /// A flat OR of 15,000 terms once loaded and then overflowed the stack of the first
    /// request that evaluated it: past Azure's 8 KB it is an error; a flat chain inside the
    /// limit is one level of the tree, however long, and evaluates each of its terms.
    #[test]
    fn conditions_past_azures_size_limit_are_an_error() {
        let chain = |n: usize, op: &str| {
            (0..n)
                .map(|i| format!("@Request[x] StringEquals '{i}'"))
                .collect::<Vec<_>>()
                .join(op)
        };
        assert!(Condition::parse(&chain(15_000, " OR ")).is_err());
        let longest = "x".repeat(MAX_CONDITION_BYTES - TERM.len() + 1);
        let at_limit = format!("@Request[x] StringEquals '{longest}'");
        assert_eq!(at_limit.len(), MAX_CONDITION_BYTES);
        assert!(Condition::parse(&at_limit).is_ok());
        assert!(Condition::parse(&format!("{at_limit} ")).is_err());

        let n = 200;
        let or = chain(n, " OR ");
        let and = chain(n, " && ");
        assert!(or.len() <= MAX_CONDITION_BYTES);
        let (or, and) = (
            Condition::parse(&or).unwrap(),
            Condition::parse(&and).unwrap(),
        );
        assert_eq!(or.depth(), 2);
        assert_eq!(and.depth(), 2);
        let mut attrs = Attributes::new();
        for (value, any) in [("0", true), ("199", true), ("200", false)] {
            attrs.insert("x".into(), value.into());
            assert_eq!(or.eval("", &attrs), Ok(any), "{value}");
            assert_eq!(and.eval("", &attrs), Ok(false), "{value}");
        }
    }

    /// The recursive matcher this replaced, kept as the oracle for its semantics: `*` any
    /// run of bytes, `?` exactly one byte, any other byte itself.
    fn like_by_recursion(text: &[u8], pattern: &[u8]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some((b'*', rest)) => (0..=text.len()).any(|i| like_by_recursion(&text[i..], rest)),
            Some((b'?', rest)) => text
                .split_first()
                .is_some_and(|(_, t)| like_by_recursion(t, rest)),
            Some((c, rest)) => text
                .split_first()
                .is_some_and(|(t, ts)| t == c && like_by_recursion(ts, rest)),
        }
    }

    /// Every pattern of up to 5 symbols over `a`, `b`, `*`, `?` against every text of up to 6
    /// bytes over `a`, `b` (and a multi-byte character): the same answer as the recursion.
    #[test]
    fn like_matches_as_the_recursive_matcher_did() {
        fn words(alphabet: &[&str], max: usize) -> Vec<String> {
            let mut all = vec![String::new()];
            let mut last = vec![String::new()];
            for _ in 0..max {
                last = last
                    .iter()
                    .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                    .collect();
                all.extend(last.iter().cloned());
            }
            all
        }
        let patterns = words(&["a", "b", "*", "?"], 5);
        let texts = words(&["a", "b", "é"], 6);
        let mut hits = 0;
        for p in &patterns {
            for t in &texts {
                let want = like_by_recursion(t.as_bytes(), p.as_bytes());
                assert_eq!(
                    string_like(t.as_bytes(), p.as_bytes()),
                    want,
                    "`{t}` like `{p}`"
                );
                hits += usize::from(want);
            }
        }
        assert!(hits > 1_000, "the sample has matches ({hits})");
    }

    /// `*a*a*b` on 4,000 bytes took 45 s; with more stars the recursion would take hours.
    /// The answers, not the time, are asserted: the test finishes only if the match is
    /// polynomial.
    #[test]
    fn like_is_polynomial_on_adversarial_text() {
        let text = "a".repeat(4_000);
        for pattern in ["*a*a*b", "*a*a*a*a*a*b", "*?*?*?*?*?*b"] {
            assert!(
                !string_like(text.as_bytes(), pattern.as_bytes()),
                "{pattern}"
            );
        }
        let matching = format!("{text}b");
        for pattern in ["*a*a*b", "*a*a*a*a*a*b", "*?*?*?*?*?*b", "a*", "*", "*a"] {
            assert_eq!(
                string_like(matching.as_bytes(), pattern.as_bytes()),
                pattern != "*a",
                "{pattern}"
            );
        }
    }

    /// A request value longer than any Kubernetes name cannot be compared: the condition is
    /// unevaluable (its callers fail closed), whichever way the operator is negated.
    #[test]
    fn over_long_attribute_values_make_a_condition_unevaluable() {
        let mut attrs = Attributes::new();
        attrs.insert("x".into(), "a".repeat(MAX_ATTRIBUTE_BYTES + 1));
        for text in [
            "@Request[x] StringLike '*a*a*b'",
            "@Request[x] StringNotLike '*a*a*b'",
            "!(@Request[x] StringEquals 'a')",
            "ActionMatches{'read'} AND @Request[x] StringEqualsIgnoreCase 'a'",
        ] {
            let c = Condition::parse(text).unwrap();
            assert!(c.eval("read", &attrs).is_err(), "{text}");
        }
        attrs.insert("x".into(), "a".repeat(MAX_ATTRIBUTE_BYTES));
        let c = Condition::parse("@Request[x] StringLike '*a*a*b'").unwrap();
        assert_eq!(c.eval("read", &attrs), Ok(false));
        // A term that decides the answer before the long value is read still decides it.
        let c = Condition::parse("!ActionMatches{'read'} OR @Request[x] StringLike 'a'").unwrap();
        attrs.insert("x".into(), "a".repeat(MAX_ATTRIBUTE_BYTES + 1));
        assert_eq!(c.eval("write", &attrs), Ok(true));
    }
}
