//! OData `$filter` for Microsoft Graph `users` and `groups` queries: parse and type-check a filter against a schema
//! the caller supplies, print it back as OData text, and evaluate it against an object rendered as Graph JSON.
//!
//! The grammar is the subset Graph supports on directory objects: `eq`, `ne`, `gt`, `ge`, `lt`, `le`, `in`,
//! `startswith`, `endswith`, `not`, `and`, `or`, parentheses, nested property paths
//! (`onPremisesExtensionAttributes/extensionAttribute1`) and `any`/`all` lambdas over collections, with string,
//! Boolean, `null` and DateTimeOffset literals. Keywords and function names are case-insensitive; property names are
//! matched case-insensitively by the schema and printed as it spells them. Evaluation follows Entra's directory
//! semantics: strings compare ignoring case, a missing property is `null`.
//!
//! Deliberately left out: arithmetic, numbers, GUIDs and other literal types, `contains`, `has`, `$count`, `$it`,
//! property-to-property comparisons and bare Boolean properties used as predicates. This module does not
//! percent-decode: the caller passes the decoded value of the `$filter` query option. It knows no entity's
//! properties; [`FilterSchema`] tells it.

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// The longest `$filter` accepted, in characters.
pub const MAX_FILTER_CHARS: usize = 4000;

/// The deepest nesting of parentheses, `not` and lambdas accepted; it bounds the parser's recursion.
pub const MAX_NESTING: usize = 100;

/// The type of a property as far as `$filter` is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyType {
    String,
    Boolean,
    /// A Graph enumeration; it compares as a string (`userType eq 'Guest'`).
    Enum,
    DateTime,
    StringCollection,
    ComplexCollection,
}

impl fmt::Display for PropertyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PropertyType::String => "Edm.String",
            PropertyType::Boolean => "Edm.Boolean",
            PropertyType::Enum => "enumeration",
            PropertyType::DateTime => "Edm.DateTimeOffset",
            PropertyType::StringCollection => "Collection(Edm.String)",
            PropertyType::ComplexCollection => "Collection(complex type)",
        })
    }
}

/// The properties of the entity a filter applies to.
///
/// Names arrive as the client wrote them: an implementation matches them ignoring ASCII case and returns the
/// canonical spelling, which the filter keeps, prints, and uses as the JSON key when evaluating.
pub trait FilterSchema {
    /// The type of a top-level or slash-separated nested property (`onPremisesExtensionAttributes/extensionAttribute1`),
    /// and the canonical spelling, or None when the entity has no such property.
    fn property(&self, path: &str) -> Option<(PropertyType, &'static str)>;
    /// The sub-properties of a complex collection element (`identities` -> `issuer`, `issuerAssignedId`, `signInType`).
    fn element_property(&self, collection: &str, name: &str) -> Option<(PropertyType, &'static str)>;
    /// The entity name used in messages, e.g. `microsoft.graph.user`.
    fn entity_name(&self) -> &'static str;
}

/// Why a `$filter` was rejected. Messages follow Graph's wording, because they reach Graph clients as they are.
///
/// Positions count characters from 0, like Graph's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("The $filter query option is empty.")]
    Empty,
    #[error("The $filter query option is {length} characters long; at most {limit} are allowed.")]
    TooLong { length: usize, limit: usize },
    #[error("The $filter query option nests deeper than {limit} levels at position {position}.")]
    TooDeep { position: usize, limit: usize },
    /// `expected` says what the parser wanted at `position`; it is for logs, since Graph's message omits it.
    #[error("Syntax error at position {position} in '{text}'.")]
    Syntax { position: usize, text: String, expected: &'static str },
    #[error("Could not find a property named '{name}' on type '{entity}'.")]
    UnknownProperty { name: String, entity: &'static str },
    #[error("Could not find a property named '{name}' on the elements of collection '{collection}'.")]
    UnknownElementProperty { name: String, collection: &'static str },
    #[error("An unknown function with name '{name}' was found.")]
    UnknownFunction { name: String },
    #[error("The range variable '{name}' has already been declared.")]
    DuplicateVariable { name: String },
    #[error("The operator '{operator}' cannot be applied to property '{property}' of type '{property_type}'.")]
    UnsupportedOperator { operator: &'static str, property: String, property_type: PropertyType },
    #[error("A value of type '{value_type}' is not compatible with property '{property}' of type '{property_type}'.")]
    IncompatibleValue { property: String, property_type: PropertyType, value_type: &'static str },
    #[error("The operator '{operator}' cannot compare property '{property}' with null.")]
    NullNotAllowed { operator: &'static str, property: String },
    #[error(
        "The range variable '{variable}' stands for an element of the complex collection '{collection}' and cannot be \
         compared; compare one of its properties, as in '{variable}/name'."
    )]
    ComplexElement { variable: String, collection: &'static str },
    #[error(
        "The operand of 'not' at position {position} must be a parenthesized expression, a function call or a lambda, \
         as in 'not(displayName eq ''x'')'."
    )]
    NotOperand { position: usize },
}

/// A parsed and type-checked `$filter`.
///
/// `Display` prints OData text that parses back to an equal `Filter`; `Debug` prints the tree as an s-expression.
#[derive(Clone, PartialEq, Eq)]
pub struct Filter {
    root: Node,
}

impl Filter {
    /// Parses `text` (already percent-decoded) and checks it against `schema`.
    pub fn parse(text: &str, schema: &dyn FilterSchema) -> Result<Filter, FilterError> {
        let length = text.chars().count();
        if length > MAX_FILTER_CHARS {
            return Err(FilterError::TooLong { length, limit: MAX_FILTER_CHARS });
        }
        if text.trim().is_empty() {
            return Err(FilterError::Empty);
        }
        let tokens = lex(text)?;
        let mut parser = Parser { text, tokens, next: 0, schema, variables: Vec::new(), depth: 0 };
        let root = parser.parse_or()?;
        if parser.peek().kind != TokenKind::End {
            return Err(parser.syntax_error("'and', 'or' or the end of the filter"));
        }
        Ok(Filter { root })
    }

    /// Whether `object`, a JSON object as Graph renders it (camelCase keys, arrays for collections, nested objects
    /// for complex properties), passes the filter.
    pub fn matches(&self, object: &Value) -> bool {
        evaluate(&self.root, object, &mut Vec::new())
    }

    /// The entity's top-level properties the filter reads (canonical spelling, each once; for a nested path its first
    /// segment): an object rendered with only these passes exactly when the whole object does.
    pub fn properties(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        properties_in(&self.root, &mut names);
        names
    }

    /// If the filter is `<property> eq '<value>'`, alone or as one of the terms joined by `and` at the top, the value,
    /// so that a caller can narrow candidates with an index. `property` is compared ignoring ASCII case.
    ///
    /// The index lookup must ignore case too, and the candidates must still go through [`Filter::matches`].
    pub fn equality_on(&self, property: &str) -> Option<&str> {
        equality_in(&self.root, property)
    }

    /// A condition on `property`'s value lowercased (Rust's `to_lowercase`, as storage keeps names and
    /// userPrincipalNames) that every object passing the filter meets, taken from a `<property> eq '<value>'` or
    /// a `startswith(<property>,'<prefix>')` alone or among the terms joined by `and` at the top: what an index
    /// can narrow candidates with. The candidates must still go through [`Filter::matches`].
    ///
    /// Exact because characters that fold alike lowercase alike ([`fold_case`]), except for the sigmas, whose
    /// lowercase depends on the position in a word: a value is only used up to its first sigma (as a prefix).
    pub fn key_match_on(&self, property: &str) -> Option<KeyMatchText> {
        key_match_in(&self.root, property)
    }
}

/// What [`Filter::key_match_on`] finds: the lowercased key equals, or starts with, the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyMatchText {
    Equals(String),
    StartsWith(String),
}

fn key_match_in(node: &Node, property: &str) -> Option<KeyMatchText> {
    let (value, whole) = match node {
        Node::And(left, right) => {
            return match (key_match_in(left, property), key_match_in(right, property)) {
                // Prefer an equality, then the longer prefix.
                (Some(KeyMatchText::StartsWith(a)), Some(KeyMatchText::StartsWith(b))) => {
                    Some(KeyMatchText::StartsWith(if b.len() > a.len() { b } else { a }))
                }
                (Some(equals @ KeyMatchText::Equals(_)), _) | (_, Some(equals @ KeyMatchText::Equals(_))) => {
                    Some(equals)
                }
                (left, right) => left.or(right),
            };
        }
        Node::Compare {
            operand: Operand { variable: None, path },
            operator: CompareOp::Eq,
            value: Literal::String(value),
        } if path.eq_ignore_ascii_case(property) => (value, true),
        Node::Text { function: TextFunction::StartsWith, operand: Operand { variable: None, path }, argument }
            if path.eq_ignore_ascii_case(property) =>
        {
            (argument, false)
        }
        _ => return None,
    };
    let is_sigma = |c: char| matches!(c, 'Σ' | 'σ' | 'ς');
    let key: String = value.chars().take_while(|&c| !is_sigma(c)).flat_map(char::to_lowercase).collect();
    if whole && !value.chars().any(is_sigma) {
        Some(KeyMatchText::Equals(key))
    } else {
        Some(KeyMatchText::StartsWith(key))
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_node(&self.root, f)
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_tree(&self.root, f)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The tree.

// Invariant: every node was type-checked by the parser against the schema, so evaluation needs no schema.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Compare { operand: Operand, operator: CompareOp, value: Literal },
    In { operand: Operand, values: Vec<Literal> },
    Text { function: TextFunction, operand: Operand, argument: String },
    Lambda { collection: Operand, quantifier: Quantifier, body: Option<(String, Box<Node>)> },
}

/// A value reached from the entity (`variable` is None) or from a lambda's range variable, through `path`
/// (canonical, slash-separated, empty for the range variable itself).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Operand {
    variable: Option<String>,
    path: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextFunction {
    StartsWith,
    EndsWith,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quantifier {
    Any,
    All,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Literal {
    Null,
    Boolean(bool),
    String(String),
    DateTime(DateTimeOffset),
}

/// A DateTimeOffset literal: the text as written, so that it prints back unchanged, and the instant it denotes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct DateTimeOffset {
    text: String,
    instant: Instant,
}

/// Seconds since 1970-01-01T00:00:00Z and nanoseconds; ordering the pair orders the instants.
type Instant = (i64, u32);

impl CompareOp {
    fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    fn is_ordering(self) -> bool {
        !matches!(self, CompareOp::Eq | CompareOp::Ne)
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            CompareOp::Eq => ordering == Ordering::Equal,
            CompareOp::Ne => ordering != Ordering::Equal,
            CompareOp::Gt => ordering == Ordering::Greater,
            CompareOp::Ge => ordering != Ordering::Less,
            CompareOp::Lt => ordering == Ordering::Less,
            CompareOp::Le => ordering != Ordering::Greater,
        }
    }
}

impl TextFunction {
    fn as_str(self) -> &'static str {
        match self {
            TextFunction::StartsWith => "startswith",
            TextFunction::EndsWith => "endswith",
        }
    }
}

impl Quantifier {
    fn as_str(self) -> &'static str {
        match self {
            Quantifier::Any => "any",
            Quantifier::All => "all",
        }
    }
}

impl Literal {
    fn type_name(&self) -> &'static str {
        match self {
            Literal::Null => "null",
            Literal::Boolean(_) => "Edm.Boolean",
            Literal::String(_) => "Edm.String",
            Literal::DateTime(_) => "Edm.DateTimeOffset",
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Printing.

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.variable, self.path) {
            (None, path) => f.write_str(path),
            (Some(variable), "") => f.write_str(variable),
            (Some(variable), path) => write!(f, "{variable}/{path}"),
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Boolean(value) => write!(f, "{value}"),
            Literal::String(value) => write!(f, "'{}'", value.replace('\'', "''")),
            Literal::DateTime(value) => f.write_str(&value.text),
        }
    }
}

/// Prints with as few parentheses as OData's precedence allows; `and` and `or` associate to the left.
fn write_node(node: &Node, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match node {
        Node::Or(left, right) => {
            write_node(left, f)?;
            f.write_str(" or ")?;
            write_grouped(right, matches!(**right, Node::Or(..)), f)
        }
        Node::And(left, right) => {
            write_grouped(left, matches!(**left, Node::Or(..)), f)?;
            f.write_str(" and ")?;
            write_grouped(right, matches!(**right, Node::Or(..) | Node::And(..)), f)
        }
        Node::Not(inner) => {
            f.write_str("not(")?;
            write_node(inner, f)?;
            f.write_str(")")
        }
        Node::Compare { operand, operator, value } => write!(f, "{operand} {} {value}", operator.as_str()),
        Node::In { operand, values } => {
            write!(f, "{operand} in (")?;
            for (value_idx, value) in values.iter().enumerate() {
                if value_idx > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{value}")?;
            }
            f.write_str(")")
        }
        Node::Text { function, operand, argument } => {
            write!(f, "{}({operand},{})", function.as_str(), Literal::String(argument.clone()))
        }
        Node::Lambda { collection, quantifier, body } => {
            write!(f, "{collection}/{}(", quantifier.as_str())?;
            if let Some((variable, body)) = body {
                write!(f, "{variable}:")?;
                write_node(body, f)?;
            }
            f.write_str(")")
        }
    }
}

fn write_grouped(node: &Node, grouped: bool, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if grouped {
        f.write_str("(")?;
        write_node(node, f)?;
        f.write_str(")")
    } else {
        write_node(node, f)
    }
}

fn write_tree(node: &Node, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match node {
        Node::Or(left, right) | Node::And(left, right) => {
            f.write_str(if matches!(node, Node::Or(..)) { "(or " } else { "(and " })?;
            write_tree(left, f)?;
            f.write_str(" ")?;
            write_tree(right, f)?;
            f.write_str(")")
        }
        Node::Not(inner) => {
            f.write_str("(not ")?;
            write_tree(inner, f)?;
            f.write_str(")")
        }
        Node::Compare { operand, operator, value } => write!(f, "({} {operand} {value})", operator.as_str()),
        Node::In { operand, values } => {
            write!(f, "(in {operand}")?;
            for value in values {
                write!(f, " {value}")?;
            }
            f.write_str(")")
        }
        Node::Text { function, operand, argument } => {
            write!(f, "({} {operand} {})", function.as_str(), Literal::String(argument.clone()))
        }
        Node::Lambda { collection, quantifier, body } => {
            write!(f, "({} {collection}", quantifier.as_str())?;
            if let Some((variable, body)) = body {
                write!(f, " {variable} ")?;
                write_tree(body, f)?;
            }
            f.write_str(")")
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Lexing.

#[derive(Clone, Debug, PartialEq, Eq)]
enum TokenKind {
    /// A name: a property, a range variable, a keyword or a function.
    Identifier,
    /// A quoted string, unescaped.
    String(String),
    /// A word starting with a digit: a DateTimeOffset, or a number this subset does not support.
    Number,
    OpenParen,
    CloseParen,
    Comma,
    Colon,
    Slash,
    End,
}

#[derive(Clone, Debug)]
struct Token {
    kind: TokenKind,
    /// Byte offsets into the filter text.
    start: usize,
    end: usize,
}

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let kind = match c {
            c if c.is_whitespace() => continue,
            '(' => TokenKind::OpenParen,
            ')' => TokenKind::CloseParen,
            ',' => TokenKind::Comma,
            ':' => TokenKind::Colon,
            '/' => TokenKind::Slash,
            '\'' => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\'')) if chars.peek().map(|&(_, next)| next) == Some('\'') => {
                            chars.next();
                            value.push('\'');
                        }
                        Some((_, '\'')) => break,
                        Some((_, c)) => value.push(c),
                        None => return Err(syntax_error_at(text, start, "a closing quote for this string")),
                    }
                }
                TokenKind::String(value)
            }
            c if c.is_alphabetic() || c == '_' => {
                while chars.next_if(|&(_, c)| c.is_alphanumeric() || c == '_').is_some() {}
                TokenKind::Identifier
            }
            c if c.is_ascii_digit() => {
                while chars.next_if(|&(_, c)| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | ':' | '.')).is_some()
                {
                }
                TokenKind::Number
            }
            _ => return Err(syntax_error_at(text, start, "a valid character")),
        };
        let end = chars.peek().map_or(text.len(), |&(offset, _)| offset);
        tokens.push(Token { kind, start, end });
    }
    tokens.push(Token { kind: TokenKind::End, start: text.len(), end: text.len() });
    Ok(tokens)
}

fn char_position(text: &str, byte_offset: usize) -> usize {
    text[..byte_offset].chars().count()
}

fn syntax_error_at(text: &str, byte_offset: usize, expected: &'static str) -> FilterError {
    FilterError::Syntax { position: char_position(text, byte_offset), text: text.to_owned(), expected }
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing: hand-written recursive descent.
//
//   or      = and *( "or" and )
//   and     = unary *( "and" unary )
//   unary   = "not" unary / primary               ; after "not", primary must not be a comparison
//   primary = "(" or ")" / function / path lambda / path comparison
//   lambda  = "/" ( "any" / "all" ) "(" [ variable ":" or ] ")"
//   comparison = ( "eq" / "ne" / "gt" / "ge" / "lt" / "le" ) literal / "in" "(" literal *( "," literal ) ")"

/// A range variable in scope: its name as declared, and the collection it ranges over.
struct Variable {
    name: String,
    collection: &'static str,
    complex: bool,
}

/// What a path resolved to.
struct Resolved {
    operand: Operand,
    /// None for the range variable of a complex collection, which has no comparable value.
    property_type: Option<PropertyType>,
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    next: usize,
    schema: &'a dyn FilterSchema,
    variables: Vec<Variable>,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        // Invariant: the token list ends with End, and the parser never advances past it.
        let last = self.tokens.len() - 1;
        &self.tokens[(self.next + ahead).min(last)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != TokenKind::End {
            self.next += 1;
        }
        token
    }

    fn token_text(&self, token: &Token) -> &str {
        &self.text[token.start..token.end]
    }

    fn peek_keyword(&self, ahead: usize, keyword: &str) -> bool {
        let token = self.peek_at(ahead);
        token.kind == TokenKind::Identifier && self.token_text(token).eq_ignore_ascii_case(keyword)
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.peek_keyword(0, keyword);
        if found {
            self.advance();
        }
        found
    }

    fn expect(&mut self, kind: TokenKind, expected: &'static str) -> Result<Token, FilterError> {
        if self.peek().kind == kind { Ok(self.advance()) } else { Err(self.syntax_error(expected)) }
    }

    fn syntax_error(&self, expected: &'static str) -> FilterError {
        syntax_error_at(self.text, self.peek().start, expected)
    }

    fn position(&self, token: &Token) -> usize {
        char_position(self.text, token.start)
    }

    /// Runs `parse`, which starts at the `not` or `(` that opens the level, one nesting level deeper, refusing to go past [`MAX_NESTING`] so that no input can exhaust
    /// the stack.
    fn nested<T>(&mut self, parse: impl FnOnce(&mut Self) -> Result<T, FilterError>) -> Result<T, FilterError> {
        if self.depth >= MAX_NESTING {
            return Err(FilterError::TooDeep { position: self.position(self.peek()), limit: MAX_NESTING });
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn parse_or(&mut self) -> Result<Node, FilterError> {
        let mut left = self.parse_and()?;
        while self.eat_keyword("or") {
            let right = self.parse_and()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Node, FilterError> {
        let mut left = self.parse_unary(false)?;
        while self.eat_keyword("and") {
            let right = self.parse_unary(false)?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self, after_not: bool) -> Result<Node, FilterError> {
        if self.peek_keyword(0, "not") {
            return self.nested(|parser| {
                parser.advance();
                Ok(Node::Not(Box::new(parser.parse_unary(true)?)))
            });
        }
        let token = self.peek().clone();
        match token.kind {
            TokenKind::OpenParen => self.nested(|parser| {
                parser.advance();
                let inner = parser.parse_or()?;
                parser.expect(TokenKind::CloseParen, "')'")?;
                Ok(inner)
            }),
            TokenKind::Identifier if self.peek_at(1).kind == TokenKind::OpenParen => self.parse_function(),
            TokenKind::Identifier => {
                let (resolved, quantifier) = self.parse_path()?;
                match quantifier {
                    Some(quantifier) => self.parse_lambda(resolved, quantifier),
                    None if after_not => Err(FilterError::NotOperand { position: self.position(&token) }),
                    None => self.parse_comparison(resolved),
                }
            }
            _ => Err(self.syntax_error("an expression")),
        }
    }

    fn parse_function(&mut self) -> Result<Node, FilterError> {
        let name_token = self.advance();
        let name = self.token_text(&name_token);
        let function = if name.eq_ignore_ascii_case("startswith") {
            TextFunction::StartsWith
        } else if name.eq_ignore_ascii_case("endswith") {
            TextFunction::EndsWith
        } else {
            return Err(FilterError::UnknownFunction { name: name.to_owned() });
        };
        self.expect(TokenKind::OpenParen, "'('")?;
        if self.peek().kind != TokenKind::Identifier {
            return Err(self.syntax_error("a property"));
        }
        let (resolved, quantifier) = self.parse_path()?;
        if quantifier.is_some() {
            return Err(self.unsupported(&resolved, function.as_str()));
        }
        if resolved.property_type != Some(PropertyType::String) {
            return Err(self.unsupported(&resolved, function.as_str()));
        }
        self.expect(TokenKind::Comma, "','")?;
        let argument = match self.parse_literal()? {
            Literal::String(argument) => argument,
            Literal::Null => {
                return Err(FilterError::NullNotAllowed {
                    operator: function.as_str(),
                    property: resolved.operand.to_string(),
                });
            }
            other => {
                return Err(FilterError::IncompatibleValue {
                    property: resolved.operand.to_string(),
                    property_type: PropertyType::String,
                    value_type: other.type_name(),
                });
            }
        };
        self.expect(TokenKind::CloseParen, "')'")?;
        Ok(Node::Text { function, operand: resolved.operand, argument })
    }

    /// Reads `segment *( "/" segment )` and resolves it. When the path ends in `/any(` or `/all(`, stops before
    /// the `(` and returns the quantifier with the collection.
    fn parse_path(&mut self) -> Result<(Resolved, Option<Quantifier>), FilterError> {
        let first = self.expect(TokenKind::Identifier, "a property")?;
        let mut segments = vec![first];
        let mut quantifier = None;
        while self.peek().kind == TokenKind::Slash {
            let is_lambda = self.peek_at(2).kind == TokenKind::OpenParen;
            if is_lambda && self.peek_keyword(1, "any") {
                quantifier = Some(Quantifier::Any);
            } else if is_lambda && self.peek_keyword(1, "all") {
                quantifier = Some(Quantifier::All);
            }
            self.advance();
            let segment = self.expect(TokenKind::Identifier, "a property")?;
            if quantifier.is_some() {
                break;
            }
            segments.push(segment);
        }
        Ok((self.resolve(&segments)?, quantifier))
    }

    fn resolve(&self, segments: &[Token]) -> Result<Resolved, FilterError> {
        let first = self.token_text(&segments[0]);
        let rest = segments[1..].iter().map(|segment| self.token_text(segment)).collect::<Vec<_>>().join("/");
        if let Some(variable) = self.variables.iter().rev().find(|variable| variable.name.eq_ignore_ascii_case(first)) {
            let variable_name = Some(variable.name.clone());
            if rest.is_empty() {
                let property_type = (!variable.complex).then_some(PropertyType::String);
                return Ok(Resolved { operand: Operand { variable: variable_name, path: "" }, property_type });
            }
            let unknown =
                || FilterError::UnknownElementProperty { name: rest.clone(), collection: variable.collection };
            if !variable.complex {
                return Err(unknown());
            }
            let (property_type, path) = self.schema.element_property(variable.collection, &rest).ok_or_else(unknown)?;
            return Ok(Resolved {
                operand: Operand { variable: variable_name, path },
                property_type: Some(property_type),
            });
        }
        let full_path = if rest.is_empty() { first.to_owned() } else { format!("{first}/{rest}") };
        match self.schema.property(&full_path) {
            Some((property_type, path)) => {
                Ok(Resolved { operand: Operand { variable: None, path }, property_type: Some(property_type) })
            }
            None => Err(FilterError::UnknownProperty { name: full_path, entity: self.schema.entity_name() }),
        }
    }

    /// Parses `( [ variable ":" body ] )` after `collection/any` or `collection/all`.
    fn parse_lambda(&mut self, collection: Resolved, quantifier: Quantifier) -> Result<Node, FilterError> {
        let complex = match collection.property_type {
            Some(PropertyType::StringCollection) => false,
            Some(PropertyType::ComplexCollection) => true,
            _ => return Err(self.unsupported(&collection, quantifier.as_str())),
        };
        self.nested(|parser| parser.parse_lambda_arguments(collection, quantifier, complex))
    }

    fn parse_lambda_arguments(
        &mut self,
        collection: Resolved,
        quantifier: Quantifier,
        complex: bool,
    ) -> Result<Node, FilterError> {
        self.expect(TokenKind::OpenParen, "'('")?;
        if quantifier == Quantifier::Any && self.peek().kind == TokenKind::CloseParen {
            self.advance();
            return Ok(Node::Lambda { collection: collection.operand, quantifier, body: None });
        }
        let variable_token = self.expect(TokenKind::Identifier, "a range variable")?;
        let name = self.token_text(&variable_token).to_owned();
        if self.variables.iter().any(|variable| variable.name.eq_ignore_ascii_case(&name)) {
            return Err(FilterError::DuplicateVariable { name });
        }
        self.expect(TokenKind::Colon, "':'")?;
        self.variables.push(Variable { name: name.clone(), collection: collection.operand.path, complex });
        let body = self.parse_or()?;
        self.variables.pop();
        self.expect(TokenKind::CloseParen, "')'")?;
        Ok(Node::Lambda { collection: collection.operand, quantifier, body: Some((name, Box::new(body))) })
    }

    fn parse_comparison(&mut self, resolved: Resolved) -> Result<Node, FilterError> {
        const OPERATORS: [(&str, CompareOp); 6] = [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ];
        if self.eat_keyword("in") {
            self.check_comparable(&resolved, "in", false)?;
            self.expect(TokenKind::OpenParen, "'('")?;
            let mut values = Vec::new();
            loop {
                let value = self.parse_literal()?;
                self.check_value(&resolved, "in", &value)?;
                values.push(value);
                if self.expect(TokenKind::Comma, "',' or ')'").is_err() {
                    break;
                }
            }
            self.expect(TokenKind::CloseParen, "',' or ')'")?;
            return Ok(Node::In { operand: resolved.operand, values });
        }
        let Some(&(_, operator)) = OPERATORS.iter().find(|(keyword, _)| self.peek_keyword(0, keyword)) else {
            return Err(self.syntax_error("a comparison operator such as 'eq'"));
        };
        self.advance();
        self.check_comparable(&resolved, operator.as_str(), operator.is_ordering())?;
        let value = self.parse_literal()?;
        self.check_value(&resolved, operator.as_str(), &value)?;
        Ok(Node::Compare { operand: resolved.operand, operator, value })
    }

    fn check_comparable(&self, resolved: &Resolved, operator: &'static str, ordering: bool) -> Result<(), FilterError> {
        match resolved.property_type {
            None => Err(self.complex_element(resolved)),
            Some(PropertyType::StringCollection | PropertyType::ComplexCollection) => {
                Err(self.unsupported(resolved, operator))
            }
            Some(PropertyType::Boolean | PropertyType::Enum) if ordering => Err(self.unsupported(resolved, operator)),
            Some(_) => Ok(()),
        }
    }

    fn check_value(&self, resolved: &Resolved, operator: &'static str, value: &Literal) -> Result<(), FilterError> {
        // Invariant: check_comparable accepted the operand, so it has a scalar type.
        let property_type = resolved.property_type.expect("comparison operands are scalar");
        let compatible = match value {
            Literal::Null => {
                if operator == "eq" || operator == "ne" {
                    return Ok(());
                }
                return Err(FilterError::NullNotAllowed { operator, property: resolved.operand.to_string() });
            }
            Literal::Boolean(_) => property_type == PropertyType::Boolean,
            Literal::String(_) => matches!(property_type, PropertyType::String | PropertyType::Enum),
            Literal::DateTime(_) => property_type == PropertyType::DateTime,
        };
        if compatible {
            Ok(())
        } else {
            Err(FilterError::IncompatibleValue {
                property: resolved.operand.to_string(),
                property_type,
                value_type: value.type_name(),
            })
        }
    }

    fn unsupported(&self, resolved: &Resolved, operator: &'static str) -> FilterError {
        match resolved.property_type {
            Some(property_type) => {
                FilterError::UnsupportedOperator { operator, property: resolved.operand.to_string(), property_type }
            }
            None => self.complex_element(resolved),
        }
    }

    fn complex_element(&self, resolved: &Resolved) -> FilterError {
        let variable = resolved.operand.variable.clone().unwrap_or_default();
        let collection =
            self.variables.iter().find(|scope| scope.name == variable).map_or("", |scope| scope.collection);
        FilterError::ComplexElement { variable, collection }
    }

    fn parse_literal(&mut self) -> Result<Literal, FilterError> {
        const EXPECTED: &str = "a literal: a quoted string, true, false, null or a DateTimeOffset";
        let token = self.peek().clone();
        let literal = match &token.kind {
            TokenKind::String(value) => Literal::String(value.clone()),
            TokenKind::Identifier => {
                let word = self.token_text(&token);
                if word.eq_ignore_ascii_case("null") {
                    Literal::Null
                } else if word.eq_ignore_ascii_case("true") {
                    Literal::Boolean(true)
                } else if word.eq_ignore_ascii_case("false") {
                    Literal::Boolean(false)
                } else {
                    return Err(self.syntax_error(EXPECTED));
                }
            }
            TokenKind::Number => {
                let text = self.token_text(&token);
                match parse_date_time(text) {
                    Some(instant) => Literal::DateTime(DateTimeOffset { text: text.to_owned(), instant }),
                    None => return Err(self.syntax_error(EXPECTED)),
                }
            }
            _ => return Err(self.syntax_error(EXPECTED)),
        };
        self.advance();
        Ok(literal)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// DateTimeOffset: `YYYY-MM-DDThh:mm[:ss[.fffffffff]](Z|(+|-)hh:mm)`, as OData and RFC 3339 spell it.

fn parse_date_time(text: &str) -> Option<Instant> {
    let mut rest = text.as_bytes();
    let year = take_digits(&mut rest, 4)?;
    take_byte(&mut rest, b"-")?;
    let month = take_digits(&mut rest, 2)?;
    take_byte(&mut rest, b"-")?;
    let day = take_digits(&mut rest, 2)?;
    take_byte(&mut rest, b"Tt")?;
    let hour = take_digits(&mut rest, 2)?;
    take_byte(&mut rest, b":")?;
    let minute = take_digits(&mut rest, 2)?;
    let (mut second, mut nanos) = (0, 0u32);
    if take_byte(&mut rest, b":").is_some() {
        second = take_digits(&mut rest, 2)?;
        if take_byte(&mut rest, b".").is_some() {
            let n_digits = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
            if n_digits == 0 {
                return None;
            }
            // Digits past nanoseconds are dropped.
            let digits = rest[..n_digits].iter().map(|byte| u32::from(byte - b'0')).chain(std::iter::repeat(0));
            nanos = digits.take(9).fold(0, |nanos, digit| nanos * 10 + digit);
            rest = &rest[n_digits..];
        }
    }
    let offset_minutes = match take_byte(&mut rest, b"Zz+-")? {
        b'Z' | b'z' => 0,
        sign => {
            let offset_hour = take_digits(&mut rest, 2)?;
            take_byte(&mut rest, b":")?;
            let offset_minute = take_digits(&mut rest, 2)?;
            if offset_hour > 23 || offset_minute > 59 {
                return None;
            }
            let magnitude = offset_hour * 60 + offset_minute;
            if sign == b'-' { -magnitude } else { magnitude }
        }
    };
    let valid = rest.is_empty()
        && (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some((seconds, nanos))
}

fn take_digits(rest: &mut &[u8], count: usize) -> Option<i64> {
    let digits = rest.get(..count)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    *rest = &rest[count..];
    Some(digits.iter().fold(0, |value, digit| value * 10 + i64::from(digit - b'0')))
}

fn take_byte(rest: &mut &[u8], allowed: &[u8]) -> Option<u8> {
    let (&first, tail) = rest.split_first()?;
    if !allowed.contains(&first) {
        return None;
    }
    *rest = tail;
    Some(first)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation.

/// The range variables bound while evaluating lambda bodies, innermost last.
type Bindings<'f, 'v> = Vec<(&'f str, &'v Value)>;

fn evaluate<'f, 'v>(node: &'f Node, object: &'v Value, bindings: &mut Bindings<'f, 'v>) -> bool {
    match node {
        Node::And(left, right) => evaluate(left, object, bindings) && evaluate(right, object, bindings),
        Node::Or(left, right) => evaluate(left, object, bindings) || evaluate(right, object, bindings),
        Node::Not(inner) => !evaluate(inner, object, bindings),
        Node::Compare { operand, operator, value } => {
            let actual = lookup(operand, object, bindings);
            match (value, actual) {
                (Literal::Null, actual) => (*operator == CompareOp::Eq) == actual.is_none(),
                // OData: null ne 'x' is true, every other comparison with null is false.
                (_, None) => *operator == CompareOp::Ne,
                (value, Some(actual)) => match compare(actual, value) {
                    Some(ordering) => operator.holds(ordering),
                    None => *operator == CompareOp::Ne,
                },
            }
        }
        Node::In { operand, values } => lookup(operand, object, bindings)
            .is_some_and(|actual| values.iter().any(|value| compare(actual, value) == Some(Ordering::Equal))),
        Node::Text { function, operand, argument } => {
            let Some(actual) = lookup(operand, object, bindings).and_then(Value::as_str) else {
                return false;
            };
            match function {
                TextFunction::StartsWith => starts_with_ignore_case(actual.chars(), argument.chars()),
                TextFunction::EndsWith => starts_with_ignore_case(actual.chars().rev(), argument.chars().rev()),
            }
        }
        Node::Lambda { collection, quantifier, body } => {
            let elements =
                lookup(collection, object, bindings).and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            let Some((variable, body)) = body else {
                return !elements.is_empty();
            };
            let mut holds_for = |element: &'v Value| {
                bindings.push((variable.as_str(), element));
                let holds = evaluate(body, object, bindings);
                bindings.pop();
                holds
            };
            match quantifier {
                Quantifier::Any => elements.iter().any(&mut holds_for),
                Quantifier::All => elements.iter().all(&mut holds_for),
            }
        }
    }
}

/// The operand's value, or None when it is absent or JSON null.
fn lookup<'v>(operand: &Operand, object: &'v Value, bindings: &Bindings<'_, 'v>) -> Option<&'v Value> {
    let mut value = match &operand.variable {
        None => object,
        Some(name) => bindings.iter().rev().find(|(bound, _)| *bound == name)?.1,
    };
    if !operand.path.is_empty() {
        for segment in operand.path.split('/') {
            value = value.get(segment)?;
        }
    }
    (!value.is_null()).then_some(value)
}

/// Orders a JSON value against a literal of the operand's type; None when the value is not of that type.
fn compare(actual: &Value, literal: &Literal) -> Option<Ordering> {
    match literal {
        Literal::Null => None,
        Literal::Boolean(expected) => actual.as_bool().map(|actual| actual.cmp(expected)),
        Literal::String(expected) => {
            actual.as_str().map(|actual| actual.chars().map(fold_case).cmp(expected.chars().map(fold_case)))
        }
        Literal::DateTime(expected) => {
            actual.as_str().and_then(parse_date_time).map(|actual| actual.cmp(&expected.instant))
        }
    }
}

/// Folds a character for case-insensitive ordinal comparison: its simple uppercase mapping, like .NET's
/// `OrdinalIgnoreCase` that Entra uses, so `'_'` sorts after letters in either case.
///
/// A character whose uppercase lowercases to another letter keeps itself, as .NET's invariant casing keeps the
/// dotless `ı` (its ICU shim special-cases U+0131 "to match the Windows invariant behavior"): `ı`, the long `ſ`
/// and the final `ς` do not equal `i`, `s` and `σ`. So two characters that fold alike also lowercase alike, which
/// lets storage answer `eq` and `startswith` from a lowercased key ([`Filter::key_match_on`]).
fn fold_case(c: char) -> char {
    // Every comparison of every object a list tests goes through here: ASCII, the common case, needs no tables.
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(single), None) if single.to_lowercase().eq(c.to_lowercase()) => single,
        _ => c,
    }
}

fn starts_with_ignore_case(mut text: impl Iterator<Item = char>, prefix: impl Iterator<Item = char>) -> bool {
    prefix.map(fold_case).all(|expected| text.next().map(fold_case) == Some(expected))
}

fn properties_in(node: &Node, names: &mut Vec<&'static str>) {
    let mut add = |operand: &Operand| {
        if operand.variable.is_none() {
            let name = operand.path.split('/').next().unwrap_or(operand.path);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    };
    match node {
        Node::And(left, right) | Node::Or(left, right) => {
            properties_in(left, names);
            properties_in(right, names);
        }
        Node::Not(inner) => properties_in(inner, names),
        Node::Compare { operand, .. } | Node::In { operand, .. } | Node::Text { operand, .. } => add(operand),
        Node::Lambda { collection, body, .. } => {
            add(collection);
            if let Some((_, body)) = body {
                properties_in(body, names);
            }
        }
    }
}

fn equality_in<'f>(node: &'f Node, property: &str) -> Option<&'f str> {
    match node {
        Node::And(left, right) => equality_in(left, property).or_else(|| equality_in(right, property)),
        Node::Compare {
            operand: Operand { variable: None, path },
            operator: CompareOp::Eq,
            value: Literal::String(value),
        } if path.eq_ignore_ascii_case(property) => Some(value),
        _ => None,
    }
}
