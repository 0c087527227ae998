//! RFC 7644 §3.4.2.2 filters: parse, print back, evaluate against a resource in SCIM JSON.
//!
//! The whole grammar: `eq ne co sw ew gt ge lt le pr`, `and`, `or`, `not (...)`, grouping, value paths
//! (`emails[type eq "work" and value co "@example.com"]`), attribute paths with a sub-attribute (`name.givenName`)
//! and a schema URN prefix (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`).
//! Keywords and attribute names are case-insensitive; `and` binds tighter than `or`.
//!
//! Evaluation follows RFC 7643's semantics: strings compare ignoring case except for case-exact attributes
//! (`id`, `externalId`, `$ref`), a multi-valued attribute matches when one of its values does, and a complex
//! multi-valued attribute compared without a sub-attribute compares its `value` sub-attribute. This module knows no
//! schema: an attribute the resource does not hold is simply absent.

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

use crate::json::{get_ci, is_unassigned};
use crate::{GROUP_URN, ScimError, ScimType, USER_URN};

/// The longest filter accepted, in characters.
pub const MAX_FILTER_CHARS: usize = 4000;
/// The deepest nesting of `not`, parentheses and value paths accepted; it bounds the parser's recursion.
pub const MAX_NESTING: usize = 50;

/// An attribute name, compared ignoring ASCII case and printed as written.
#[derive(Clone, Debug, Eq)]
pub struct AttrName(String);

impl AttrName {
    /// `ATTRNAME = ALPHA *(nameChar)`, `nameChar = "-" / "_" / DIGIT / ALPHA`, plus the reserved `$ref`.
    pub fn parse(text: &str) -> Option<AttrName> {
        let valid = text == "$ref"
            || (text.starts_with(|c: char| c.is_ascii_alphabetic())
                && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        valid.then(|| AttrName(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is(&self, name: &str) -> bool {
        self.0.eq_ignore_ascii_case(name)
    }
}

impl PartialEq for AttrName {
    fn eq(&self, other: &AttrName) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Display for AttrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `[URI ":"] ATTRNAME ["." subAttr]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix, as written.
    pub urn: Option<String>,
    pub name: AttrName,
    pub sub: Option<AttrName>,
}

impl AttrPath {
    /// Parses one attribute path (no value filter). None when it is not one.
    pub fn parse(text: &str) -> Option<AttrPath> {
        let (urn, rest) = split_urn(text)?;
        let (name, sub) = match rest.split_once('.') {
            Some((name, sub)) => (AttrName::parse(name)?, Some(AttrName::parse(sub)?)),
            None => (AttrName::parse(rest)?, None),
        };
        Some(AttrPath { urn, name, sub })
    }

    /// The values this path reaches in `resource`, arrays flattened; complex values stay objects.
    pub fn values<'v>(&self, resource: &'v Value) -> Vec<&'v Value> {
        let mut found = Vec::new();
        let Some(top) = self.top_value(resource) else { return found };
        let mut push = |value: &'v Value| match value {
            Value::Array(items) => found.extend(items.iter().filter(|item| !item.is_null())),
            Value::Null => {}
            other => found.push(other),
        };
        match &self.sub {
            None => push(top),
            Some(sub) => match top {
                Value::Array(items) => {
                    for item in items {
                        if let Some(value) = item.as_object().and_then(|map| get_ci(map, sub.as_str())) {
                            push(value);
                        }
                    }
                }
                Value::Object(map) => {
                    if let Some(value) = get_ci(map, sub.as_str()) {
                        push(value);
                    }
                }
                _ => {}
            },
        }
        found
    }

    /// The value of the top-level attribute (before any sub-attribute), looking into extensions when no URN is
    /// given and the core has no such attribute.
    fn top_value<'v>(&self, resource: &'v Value) -> Option<&'v Value> {
        let map = resource.as_object()?;
        match &self.urn {
            Some(urn) if urn.eq_ignore_ascii_case(USER_URN) || urn.eq_ignore_ascii_case(GROUP_URN) => {
                get_ci(map, self.name.as_str())
            }
            Some(urn) => get_ci(get_ci(map, urn)?.as_object()?, self.name.as_str()),
            None => get_ci(map, self.name.as_str()).or_else(|| {
                map.iter()
                    .filter(|(key, _)| key.to_ascii_lowercase().starts_with("urn:"))
                    .filter_map(|(_, value)| value.as_object())
                    .find_map(|extension| get_ci(extension, self.name.as_str()))
            }),
        }
    }

    /// The first scalar this path reaches (a complex value's `value`), to sort by.
    pub fn sort_value<'v>(&self, resource: &'v Value) -> Option<&'v Value> {
        self.values(resource).into_iter().map(scalar_of).find(|value| !value.is_null())
    }

    fn case_exact(&self) -> bool {
        let last = self.sub.as_ref().unwrap_or(&self.name);
        ["id", "externalId", "$ref"].iter().any(|name| last.is(name))
    }
}

/// Splits `urn:...:name.sub` at the last colon; a path without `urn:` has no URN.
fn split_urn(text: &str) -> Option<(Option<String>, &str)> {
    if text.get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case("urn:")) {
        let (urn, rest) = text.rsplit_once(':')?;
        if urn.len() <= 4 {
            return None;
        }
        Some((Some(urn.to_owned()), rest))
    } else {
        Some((None, text))
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        write!(f, "{}", self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

const OPERATORS: [(&str, CompareOp); 9] = [
    ("eq", CompareOp::Eq),
    ("ne", CompareOp::Ne),
    ("co", CompareOp::Co),
    ("sw", CompareOp::Sw),
    ("ew", CompareOp::Ew),
    ("gt", CompareOp::Gt),
    ("ge", CompareOp::Ge),
    ("lt", CompareOp::Lt),
    ("le", CompareOp::Le),
];

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        OPERATORS.iter().find(|(_, op)| *op == self).map_or("eq", |(name, _)| name)
    }

    fn is_ordering(self) -> bool {
        matches!(self, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le)
    }

    fn is_text(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

/// `compValue = false / null / true / number / string`. Numbers keep their text so they print back unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(String),
    String(String),
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(value) => write!(f, "{value}"),
            CompValue::Number(text) => f.write_str(text),
            CompValue::String(text) => f.write_str(&serde_json::to_string(text).expect("strings always serialize")),
        }
    }
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, CompareOp, CompValue),
    /// `attr[filter]`: some value of the multi-valued (or complex) `attr` satisfies the inner filter, whose paths
    /// are relative to that value.
    ValuePath(AttrPath, Box<Filter>),
}

/// Why a filter was refused; becomes a 400 `invalidFilter`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("the filter is empty")]
    Empty,
    #[error("the filter is {length} characters long; at most {MAX_FILTER_CHARS} are allowed")]
    TooLong { length: usize },
    #[error("the filter nests deeper than {MAX_NESTING} levels at position {position}")]
    TooDeep { position: usize },
    #[error("syntax error at position {position}: expected {expected}")]
    Syntax { position: usize, expected: &'static str },
    #[error("'{text}' at position {position} is not an attribute path")]
    BadPath { position: usize, text: String },
    #[error("the operator '{operator}' cannot compare with {value}")]
    BadOperand { operator: &'static str, value: String },
}

impl From<FilterError> for ScimError {
    fn from(err: FilterError) -> ScimError {
        ScimError::bad(ScimType::InvalidFilter, format!("invalid filter: {err}"))
    }
}

impl Filter {
    /// The string every match must have for the core `attribute` (`attribute eq "value"`, alone or as a side of
    /// an `and`), so a caller can look candidates up by index and evaluate the whole filter on those only.
    pub fn required_eq(&self, attribute: &str) -> Option<&str> {
        match self {
            Filter::Compare(path, CompareOp::Eq, CompValue::String(value))
                if path.sub.is_none()
                    && path.name.is(attribute)
                    && path.urn.as_deref().is_none_or(|urn| urn.eq_ignore_ascii_case(crate::USER_URN)) =>
            {
                Some(value)
            }
            Filter::And(left, right) => left.required_eq(attribute).or_else(|| right.required_eq(attribute)),
            _ => None,
        }
    }

    /// Parses a filter (already percent-decoded).
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let length = text.chars().count();
        if length > MAX_FILTER_CHARS {
            return Err(FilterError::TooLong { length });
        }
        Filter::parse_unbounded(text)
    }

    /// Parses without the length limit, which applies to what a client sends: the canonical printed form of a
    /// filter just under the limit can be longer (`not(x)` prints as `not (x)`), and must still parse back.
    pub(crate) fn parse_unbounded(text: &str) -> Result<Filter, FilterError> {
        if text.trim().is_empty() {
            return Err(FilterError::Empty);
        }
        let tokens = lex(text)?;
        let mut parser = Parser { tokens, next: 0, depth: 0, in_value_path: false };
        let filter = parser.parse_or()?;
        if parser.peek().kind != Kind::End {
            return Err(parser.syntax("'and', 'or' or the end of the filter"));
        }
        Ok(filter)
    }

    /// Whether `resource` (SCIM JSON) passes the filter.
    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Filter::And(left, right) => left.matches(resource) && right.matches(resource),
            Filter::Or(left, right) => left.matches(resource) || right.matches(resource),
            Filter::Not(inner) => !inner.matches(resource),
            Filter::Present(path) => path.values(resource).iter().any(|value| !is_unassigned(value)),
            Filter::Compare(path, CompareOp::Ne, value) => {
                !Filter::Compare(path.clone(), CompareOp::Eq, value.clone()).matches(resource)
            }
            Filter::Compare(path, _, CompValue::Null) => path.values(resource).iter().all(|value| is_unassigned(value)),
            Filter::Compare(path, operator, expected) => {
                let case_exact = path.case_exact();
                path.values(resource)
                    .into_iter()
                    .any(|actual| compare(scalar_of(actual), *operator, expected, case_exact))
            }
            Filter::ValuePath(path, inner) => path.values(resource).into_iter().any(|element| inner.matches(element)),
        }
    }

    /// If the filter is `<attribute> eq "<value>"` (alone or as a term of a top-level `and`), the value.
    pub fn equality_on(&self, attribute: &str) -> Option<&str> {
        match self {
            Filter::And(left, right) => left.equality_on(attribute).or_else(|| right.equality_on(attribute)),
            Filter::Compare(path, CompareOp::Eq, CompValue::String(value))
                if path.sub.is_none() && path.name.is(attribute) =>
            {
                Some(value)
            }
            _ => None,
        }
    }
}

/// A complex value compares through its `value` sub-attribute.
fn scalar_of(value: &Value) -> &Value {
    match value {
        Value::Object(map) => get_ci(map, "value").unwrap_or(&Value::Null),
        other => other,
    }
}

fn compare(actual: &Value, operator: CompareOp, expected: &CompValue, case_exact: bool) -> bool {
    match (actual, expected) {
        (Value::String(actual), CompValue::String(expected)) => {
            let (actual, expected) = if case_exact {
                (actual.clone(), expected.clone())
            } else {
                (actual.to_lowercase(), expected.to_lowercase())
            };
            match operator {
                CompareOp::Co => actual.contains(&expected),
                CompareOp::Sw => actual.starts_with(&expected),
                CompareOp::Ew => actual.ends_with(&expected),
                _ => holds(operator, actual.cmp(&expected)),
            }
        }
        (Value::Number(actual), CompValue::Number(expected)) => match (actual.as_f64(), expected.parse::<f64>().ok()) {
            (Some(actual), Some(expected)) => actual.partial_cmp(&expected).is_some_and(|ord| holds(operator, ord)),
            _ => false,
        },
        (Value::Bool(actual), CompValue::Bool(expected)) => operator == CompareOp::Eq && actual == expected,
        _ => false,
    }
}

fn holds(operator: CompareOp, ordering: Ordering) -> bool {
    match operator {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Printing: as few parentheses as the precedence allows; `and` and `or` associate to the left.

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Or(left, right) => {
                write!(f, "{left} or ")?;
                write_grouped(right, matches!(**right, Filter::Or(..)), f)
            }
            Filter::And(left, right) => {
                write_grouped(left, matches!(**left, Filter::Or(..)), f)?;
                f.write_str(" and ")?;
                write_grouped(right, matches!(**right, Filter::Or(..) | Filter::And(..)), f)
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::Compare(path, operator, value) => write!(f, "{path} {} {value}", operator.as_str()),
            Filter::ValuePath(path, inner) => write!(f, "{path}[{inner}]"),
        }
    }
}

fn write_grouped(filter: &Filter, grouped: bool, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if grouped { write!(f, "({filter})") } else { write!(f, "{filter}") }
}

// ---------------------------------------------------------------------------------------------------------------
// Lexing.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// An attribute path, keyword or literal word (`true`, `false`, `null`).
    Word(String),
    String(String),
    Number(String),
    OpenParen,
    CloseParen,
    OpenBracket,
    CloseBracket,
    End,
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    /// Character position, for messages.
    position: usize,
}

pub(crate) fn lex_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$' | '.' | ':')
}

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut idx = 0;
    while idx < chars.len() {
        let c = chars[idx];
        let start = idx;
        let kind = match c {
            c if c.is_whitespace() => {
                idx += 1;
                continue;
            }
            '(' => Kind::OpenParen,
            ')' => Kind::CloseParen,
            '[' => Kind::OpenBracket,
            ']' => Kind::CloseBracket,
            '"' => {
                idx += 1;
                let mut raw = String::from('"');
                loop {
                    match chars.get(idx) {
                        None => return Err(FilterError::Syntax { position: start, expected: "a closing quote" }),
                        Some('\\') => {
                            raw.push('\\');
                            let Some(escaped) = chars.get(idx + 1) else {
                                return Err(FilterError::Syntax { position: idx, expected: "an escaped character" });
                            };
                            raw.push(*escaped);
                            idx += 2;
                        }
                        Some('"') => {
                            raw.push('"');
                            break;
                        }
                        Some(other) => {
                            raw.push(*other);
                            idx += 1;
                        }
                    }
                }
                let value = serde_json::from_str::<String>(&raw)
                    .map_err(|_| FilterError::Syntax { position: start, expected: "a valid JSON string" })?;
                Kind::String(value)
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut end = idx + 1;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || matches!(chars[end], '.' | '+' | '-'))
                {
                    end += 1;
                }
                let number: String = chars[idx..end].iter().collect();
                if serde_json::from_str::<serde_json::Number>(&number).is_err() {
                    return Err(FilterError::Syntax { position: start, expected: "a number" });
                }
                idx = end - 1;
                Kind::Number(number)
            }
            c if c.is_ascii_alphabetic() || c == '$' => {
                let mut end = idx + 1;
                while end < chars.len() && lex_word_char(chars[end]) {
                    end += 1;
                }
                let word: String = chars[idx..end].iter().collect();
                idx = end - 1;
                Kind::Word(word)
            }
            _ => return Err(FilterError::Syntax { position: start, expected: "a valid character" }),
        };
        idx += 1;
        tokens.push(Token { kind, position: start });
    }
    tokens.push(Token { kind: Kind::End, position: chars.len() });
    Ok(tokens)
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing: recursive descent.
//
//   or    = and *( "or" and )
//   and   = unary *( "and" unary )
//   unary = "not" "(" or ")" / "(" or ")" / path "[" or "]" / path "pr" / path op value

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    depth: usize,
    in_value_path: bool,
}

impl Parser {
    fn peek(&self) -> &Token {
        // Invariant: the token list ends with End and the parser never moves past it.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        &self.tokens[(self.next + ahead).min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != Kind::End {
            self.next += 1;
        }
        token
    }

    fn syntax(&self, expected: &'static str) -> FilterError {
        FilterError::Syntax { position: self.peek().position, expected }
    }

    fn expect(&mut self, kind: Kind, expected: &'static str) -> Result<(), FilterError> {
        if self.peek().kind == kind {
            self.advance();
            Ok(())
        } else {
            Err(self.syntax(expected))
        }
    }

    fn is_keyword(&self, ahead: usize, keyword: &str) -> bool {
        matches!(&self.peek_at(ahead).kind, Kind::Word(word) if word.eq_ignore_ascii_case(keyword))
    }

    fn nested<T>(&mut self, parse: impl FnOnce(&mut Self) -> Result<T, FilterError>) -> Result<T, FilterError> {
        if self.depth >= MAX_NESTING {
            return Err(FilterError::TooDeep { position: self.peek().position });
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn parse_or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.parse_and()?;
        while self.is_keyword(0, "or") {
            self.advance();
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.parse_unary()?;
        while self.is_keyword(0, "and") {
            self.advance();
            let right = self.parse_unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self) -> Result<Filter, FilterError> {
        if self.is_keyword(0, "not") && self.peek_at(1).kind == Kind::OpenParen {
            return self.nested(|parser| {
                parser.advance();
                parser.advance();
                let inner = parser.parse_or()?;
                parser.expect(Kind::CloseParen, "')'")?;
                Ok(Filter::Not(Box::new(inner)))
            });
        }
        let token = self.peek().clone();
        match token.kind {
            Kind::OpenParen => self.nested(|parser| {
                parser.advance();
                let inner = parser.parse_or()?;
                parser.expect(Kind::CloseParen, "')'")?;
                Ok(inner)
            }),
            Kind::Word(word) => {
                self.advance();
                let path = AttrPath::parse(&word)
                    .ok_or(FilterError::BadPath { position: token.position, text: word.clone() })?;
                if self.peek().kind == Kind::OpenBracket {
                    if self.in_value_path || path.sub.is_some() {
                        return Err(self.syntax("no value filter here"));
                    }
                    return self.nested(|parser| {
                        parser.advance();
                        parser.in_value_path = true;
                        let inner = parser.parse_or();
                        parser.in_value_path = false;
                        let inner = inner?;
                        parser.expect(Kind::CloseBracket, "']'")?;
                        Ok(Filter::ValuePath(path, Box::new(inner)))
                    });
                }
                if self.is_keyword(0, "pr") {
                    self.advance();
                    return Ok(Filter::Present(path));
                }
                let operator = OPERATORS
                    .iter()
                    .find(|(keyword, _)| self.is_keyword(0, keyword))
                    .map(|(_, operator)| *operator)
                    .ok_or_else(|| self.syntax("an operator: eq, ne, co, sw, ew, gt, ge, lt, le or pr"))?;
                self.advance();
                let value = self.parse_value()?;
                let refused = match &value {
                    CompValue::Null | CompValue::Bool(_) => operator.is_ordering() || operator.is_text(),
                    CompValue::Number(_) => operator.is_text(),
                    CompValue::String(_) => false,
                };
                if refused {
                    return Err(FilterError::BadOperand { operator: operator.as_str(), value: value.to_string() });
                }
                Ok(Filter::Compare(path, operator, value))
            }
            _ => Err(self.syntax("an attribute path, 'not' or '('")),
        }
    }

    fn parse_value(&mut self) -> Result<CompValue, FilterError> {
        const EXPECTED: &str = "a value: a quoted string, a number, true, false or null";
        let value = match &self.peek().kind {
            Kind::String(text) => CompValue::String(text.clone()),
            Kind::Number(text) => CompValue::Number(text.clone()),
            Kind::Word(word) if word.eq_ignore_ascii_case("true") => CompValue::Bool(true),
            Kind::Word(word) if word.eq_ignore_ascii_case("false") => CompValue::Bool(false),
            Kind::Word(word) if word.eq_ignore_ascii_case("null") => CompValue::Null,
            _ => return Err(self.syntax(EXPECTED)),
        };
        self.advance();
        Ok(value)
    }
}

#[cfg(test)]
mod required_eq_tests {
    use super::Filter;

    #[test]
    fn an_eq_that_every_match_needs_is_found() {
        let cases = [
            (r#"userName eq "ada@x.example""#, Some("ada@x.example")),
            (r#"USERNAME eq "Ada""#, Some("Ada")),
            (r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a""#, Some("a")),
            (r#"active eq true and userName eq "b""#, Some("b")),
            (r#"(userName eq "c") and active eq true"#, Some("c")),
            (r#"userName eq "a" or userName eq "b""#, None),
            (r#"not (userName eq "a")"#, None),
            (r#"userName sw "a""#, None),
            (r#"name.givenName eq "a""#, None),
            (r#"emails[value eq "a"]"#, None),
            (r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName eq "a""#, None),
        ];
        for (text, expected) in cases {
            let filter = Filter::parse(text).expect(text);
            assert_eq!(filter.required_eq("userName"), expected, "{text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[track_caller]
    fn check(text: &str, expect: Expect) {
        let actual = match Filter::parse(text) {
            Ok(filter) => {
                let printed = filter.to_string();
                assert_eq!(Filter::parse(&printed).as_ref(), Ok(&filter), "printed form {printed:?} parses back");
                format!("{printed}\n{filter:?}")
            }
            Err(err) => format!("error: {err}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn every_operator() {
        check(
            r#"userName eq "bjensen""#,
            expect![[r#"
                userName eq "bjensen"
                Compare(AttrPath { urn: None, name: AttrName("userName"), sub: None }, Eq, String("bjensen"))"#]],
        );
        check(
            r#"name.familyName CO "O'Malley""#,
            expect![[r#"
                name.familyName co "O'Malley"
                Compare(AttrPath { urn: None, name: AttrName("name"), sub: Some(AttrName("familyName")) }, Co, String("O'Malley"))"#]],
        );
        check(
            "title pr",
            expect![[r#"
                title pr
                Present(AttrPath { urn: None, name: AttrName("title"), sub: None })"#]],
        );
        check(
            r#"meta.lastModified gt "2011-05-13T04:42:34Z" and meta.lastModified le "2012-01-01T00:00:00Z""#,
            expect![[r#"
                meta.lastModified gt "2011-05-13T04:42:34Z" and meta.lastModified le "2012-01-01T00:00:00Z"
                And(Compare(AttrPath { urn: None, name: AttrName("meta"), sub: Some(AttrName("lastModified")) }, Gt, String("2011-05-13T04:42:34Z")), Compare(AttrPath { urn: None, name: AttrName("meta"), sub: Some(AttrName("lastModified")) }, Le, String("2012-01-01T00:00:00Z")))"#]],
        );
        check(
            r#"userName sw "J" or userName ew "z" or x ne 1.5e3 or y ge -2 or z lt 3 or active eq false or m ne null"#,
            expect![[r#"
                userName sw "J" or userName ew "z" or x ne 1.5e3 or y ge -2 or z lt 3 or active eq false or m ne null
                Or(Or(Or(Or(Or(Or(Compare(AttrPath { urn: None, name: AttrName("userName"), sub: None }, Sw, String("J")), Compare(AttrPath { urn: None, name: AttrName("userName"), sub: None }, Ew, String("z"))), Compare(AttrPath { urn: None, name: AttrName("x"), sub: None }, Ne, Number("1.5e3"))), Compare(AttrPath { urn: None, name: AttrName("y"), sub: None }, Ge, Number("-2"))), Compare(AttrPath { urn: None, name: AttrName("z"), sub: None }, Lt, Number("3"))), Compare(AttrPath { urn: None, name: AttrName("active"), sub: None }, Eq, Bool(false))), Compare(AttrPath { urn: None, name: AttrName("m"), sub: None }, Ne, Null))"#]],
        );
    }

    #[test]
    fn precedence_grouping_and_not() {
        check(
            r#"a eq "1" or b eq "2" and c eq "3""#,
            expect![[r#"
                a eq "1" or b eq "2" and c eq "3"
                Or(Compare(AttrPath { urn: None, name: AttrName("a"), sub: None }, Eq, String("1")), And(Compare(AttrPath { urn: None, name: AttrName("b"), sub: None }, Eq, String("2")), Compare(AttrPath { urn: None, name: AttrName("c"), sub: None }, Eq, String("3"))))"#]],
        );
        check(
            r#"(a eq "1" or b eq "2") and not (c pr)"#,
            expect![[r#"
                (a eq "1" or b eq "2") and not (c pr)
                And(Or(Compare(AttrPath { urn: None, name: AttrName("a"), sub: None }, Eq, String("1")), Compare(AttrPath { urn: None, name: AttrName("b"), sub: None }, Eq, String("2"))), Not(Present(AttrPath { urn: None, name: AttrName("c"), sub: None })))"#]],
        );
        check(
            r#"a pr and (b pr and c pr)"#,
            expect![[r#"
                a pr and (b pr and c pr)
                And(Present(AttrPath { urn: None, name: AttrName("a"), sub: None }), And(Present(AttrPath { urn: None, name: AttrName("b"), sub: None }), Present(AttrPath { urn: None, name: AttrName("c"), sub: None })))"#]],
        );
    }

    #[test]
    fn value_paths_and_urns() {
        check(
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp"]"#,
            expect![[r#"
                emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp"]
                Or(ValuePath(AttrPath { urn: None, name: AttrName("emails"), sub: None }, And(Compare(AttrPath { urn: None, name: AttrName("type"), sub: None }, Eq, String("work")), Compare(AttrPath { urn: None, name: AttrName("value"), sub: None }, Co, String("@example.com")))), ValuePath(AttrPath { urn: None, name: AttrName("ims"), sub: None }, Compare(AttrPath { urn: None, name: AttrName("type"), sub: None }, Eq, String("xmpp"))))"#]],
        );
        check(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915""#,
            expect![[r#"
                urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915"
                Compare(AttrPath { urn: Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"), name: AttrName("manager"), sub: Some(AttrName("value")) }, Eq, String("26118915"))"#]],
        );
    }

    #[test]
    fn errors() {
        check("", expect!["error: the filter is empty"]);
        check(
            "userName",
            expect![
                "error: syntax error at position 8: expected an operator: eq, ne, co, sw, ew, gt, ge, lt, le or pr"
            ],
        );
        check(
            r#"userName eq"#,
            expect![
                "error: syntax error at position 11: expected a value: a quoted string, a number, true, false or null"
            ],
        );
        check(r#"userName eq "x"#, expect!["error: syntax error at position 12: expected a closing quote"]);
        check(
            r#"userName xx "x""#,
            expect![
                "error: syntax error at position 9: expected an operator: eq, ne, co, sw, ew, gt, ge, lt, le or pr"
            ],
        );
        check(r#"(a pr"#, expect!["error: syntax error at position 5: expected ')'"]);
        check(r#"a pr)"#, expect!["error: syntax error at position 4: expected 'and', 'or' or the end of the filter"]);
        check(
            r#"not a pr"#,
            expect![
                "error: syntax error at position 4: expected an operator: eq, ne, co, sw, ew, gt, ge, lt, le or pr"
            ],
        );
        check(r#"active gt true"#, expect!["error: the operator 'gt' cannot compare with true"]);
        check(r#"x co 3"#, expect!["error: the operator 'co' cannot compare with 3"]);
        check(
            r#"emails[value[type pr]]"#,
            expect!["error: syntax error at position 12: expected no value filter here"],
        );
        check(r#"a.b.c pr"#, expect!["error: 'a.b.c' at position 0 is not an attribute path"]);
        check(r#"1abc eq "x""#, expect!["error: syntax error at position 0: expected a number"]);
        check(r#"a eq "x" # b"#, expect!["error: syntax error at position 9: expected a valid character"]);
        check(&"(".repeat(60), expect!["error: the filter nests deeper than 50 levels at position 50"]);
    }

    #[test]
    fn evaluation() {
        let user = json!({
            "id": "Abc", "userName": "Bjensen@Example.com", "active": true, "externalId": "EXT",
            "name": {"givenName": "Barbara"},
            "emails": [{"value": "b@work.example", "type": "work"}, {"value": "b@home.example", "type": "home"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "42", "manager": {"value": "M1"}},
            "meta": {"lastModified": "2030-01-01T09:00:00Z"}
        });
        let cases = [
            (r#"username eq "bjensen@example.com""#, true),
            (r#"userName ne "bjensen@example.com""#, false),
            (r#"externalId eq "ext""#, false),
            (r#"externalId eq "EXT""#, true),
            (r#"id eq "abc""#, false),
            (r#"name.givenName sw "bar""#, true),
            (r#"emails co "home""#, true),
            (r#"emails[type eq "work" and value ew "work.example"]"#, true),
            (r#"emails[type eq "work" and value ew "home.example"]"#, false),
            (r#"emails.type eq "home""#, true),
            (r#"employeeNumber eq "42""#, true),
            (r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "M1""#, true),
            (r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber gt "41""#, true),
            ("title pr", false),
            ("name pr", true),
            ("title eq null", true),
            ("title ne null", false),
            (r#"title ne "x""#, true),
            ("active eq true", true),
            (r#"not (active eq true) or meta.lastModified ge "2030-01-01T09:00:00Z""#, true),
            (r#"meta.lastModified lt "2030-01-01T09:00:00Z""#, false),
        ];
        let mut report = String::new();
        for (text, expected) in cases {
            let filter = Filter::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
            assert_eq!(filter.matches(&user), expected, "{text}");
            report.push_str(&format!("{text} -> {}\n", filter.matches(&user)));
        }
        assert!(!report.is_empty());
    }

    fn arb_path() -> impl Strategy<Value = AttrPath> {
        let names = prop::sample::select(vec!["userName", "emails", "name", "title", "$ref", "x-y_1"]);
        let subs = prop::option::of(prop::sample::select(vec!["value", "givenName", "type"]));
        let urns = prop::option::of(prop::sample::select(vec![crate::ENTERPRISE_URN, crate::USER_URN]));
        (urns, names, subs).prop_map(|(urn, name, sub)| AttrPath {
            urn: urn.map(str::to_owned),
            name: AttrName::parse(name).expect("valid name"),
            sub: sub.map(|sub| AttrName::parse(sub).expect("valid name")),
        })
    }

    fn arb_value() -> impl Strategy<Value = CompValue> {
        prop_oneof![
            Just(CompValue::Null),
            any::<bool>().prop_map(CompValue::Bool),
            any::<i64>().prop_map(|n| CompValue::Number(n.to_string())),
            ".*".prop_map(CompValue::String),
        ]
    }

    fn arb_leaf() -> impl Strategy<Value = Filter> {
        prop_oneof![
            arb_path().prop_map(Filter::Present),
            (arb_path(), prop::sample::select(OPERATORS.to_vec()), arb_value()).prop_map(|(path, (_, op), value)| {
                let value = match (&value, op.is_ordering() || op.is_text()) {
                    (CompValue::Null | CompValue::Bool(_), true) => CompValue::String("v".to_owned()),
                    (CompValue::Number(_), _) if op.is_text() => CompValue::String("v".to_owned()),
                    _ => value,
                };
                Filter::Compare(path, op, value)
            }),
        ]
    }

    fn arb_filter() -> impl Strategy<Value = Filter> {
        let inner = arb_leaf().prop_recursive(3, 16, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                inner.prop_map(|a| Filter::Not(Box::new(a))),
            ]
        });
        let value_path = (arb_path(), inner.clone()).prop_map(|(mut path, inner)| {
            path.sub = None;
            Filter::ValuePath(path, Box::new(inner))
        });
        prop_oneof![
            inner.clone(),
            value_path,
            (inner.clone(), inner).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b)))
        ]
    }

    proptest! {
        #[test]
        fn printed_filter_parses_back(filter in arb_filter()) {
            prop_assert_eq!(Filter::parse(&filter.to_string()), Ok(filter));
        }

        #[test]
        fn parser_never_panics(text in ".{0,80}") {
            let _ = Filter::parse(&text);
        }
    }
}
