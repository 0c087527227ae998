//! The crate's one error type, [`ExprError`], and the source positions it carries.
//!
//! Messages are lowercase and say what failed and where; dynamic-membership rule errors start with
//! Microsoft's documented message text so administrators recognise them.

use std::fmt;

/// A 1-based line and column (counted in characters) in the source text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    /// The position of byte offset `offset` in `source`.
    pub fn at(source: &str, offset: usize) -> Pos {
        let mut line = 1;
        let mut column = 1;
        for (idx, ch) in source.char_indices() {
            if idx >= offset {
                break;
            }
            if ch == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Pos { line, column }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a .NET regular expression was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RegexError {
    #[error(
        "regular expression {pattern:?} uses {construct}, which this engine does not support (it only runs linear-time regular expressions)"
    )]
    Unsupported { pattern: String, construct: &'static str },
    #[error("invalid regular expression {pattern:?}: {message}")]
    Invalid { pattern: String, message: String },
    #[error("regular expression is {length} characters long, the limit is {limit}")]
    TooLong { length: usize, limit: usize },
}

/// The documented error categories of dynamic membership rules (spec §3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleErrorKind {
    AttributeNotSupported,
    OperatorNotSupportedOnAttribute,
    QueryCompilationError,
    BinaryExpressionFormat,
    MixedObjectTypes,
    RuleTooLong,
    NotCombinable,
}

impl RuleErrorKind {
    /// Microsoft's message for this category. The last three have no documented text; ours follow
    /// the same pattern.
    pub fn message(self) -> &'static str {
        match self {
            RuleErrorKind::AttributeNotSupported => "Error: Attribute not supported.",
            RuleErrorKind::OperatorNotSupportedOnAttribute => "Error: Operator is not supported on attribute.",
            RuleErrorKind::QueryCompilationError => "Error: Query compilation error.",
            RuleErrorKind::BinaryExpressionFormat => "Error: Binary expression is not in right format.",
            RuleErrorKind::MixedObjectTypes => "Error: A rule can't mix user and device properties.",
            RuleErrorKind::RuleTooLong => "Error: The rule is too long.",
            RuleErrorKind::NotCombinable => "Error: This rule can't be combined with other rules.",
        }
    }
}

/// Everything that can go wrong while parsing, validating or evaluating one of the three languages.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ExprError {
    #[error("{message} at {pos}")]
    Syntax { message: String, pos: Pos },
    #[error("unknown function '{name}' at {pos}{}", did_you_mean(suggestion))]
    UnknownFunction { name: String, pos: Pos, suggestion: Option<&'static str> },
    #[error("unknown identifier '{name}' at {pos}{}", did_you_mean(suggestion))]
    UnknownIdentifier { name: String, pos: Pos, suggestion: Option<&'static str> },
    #[error("function '{function}' at {pos} takes {expected}, found {found}")]
    Arity { function: &'static str, pos: Pos, expected: &'static str, found: usize },
    #[error("{what} is {length} characters long, the limit is {limit}")]
    TooLong { what: &'static str, length: usize, limit: usize },
    #[error("{error} at {pos}")]
    Regex {
        #[source]
        error: RegexError,
        pos: Pos,
    },
    #[error("function '{function}' at {pos}: {message}")]
    Evaluation { function: &'static str, pos: Pos, message: String },
    #[error("comparison at {pos}: {message}")]
    Comparison { pos: Pos, message: String },
    #[error("Error(\"{message}\") raised at {pos}")]
    Raised { message: String, pos: Pos },
    #[error("SelectUniqueValue at {pos}: all {n_candidates} candidate values already exist in the target")]
    UniqueValueExhausted { pos: Pos, n_candidates: usize },
    #[error("invalid scoping filter: {message}")]
    FilterJson { message: String },
    #[error("scoping filter group {group} clause {clause} ({attribute} {operator}): {message}")]
    Filter { group: usize, clause: usize, attribute: String, operator: String, message: String },
    #[error("{} ({detail} at {pos})", kind.message())]
    Rule { kind: RuleErrorKind, detail: String, pos: Pos },
    #[error("attribute '{name}': {message}")]
    Attribute { name: String, message: String },
}

fn did_you_mean(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(name) => format!(" (did you mean '{name}'?)"),
        None => String::new(),
    }
}

/// The candidate closest to `word` (ignoring ASCII case) if it is close enough to be a likely typo.
pub(crate) fn suggest(word: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let word = word.to_ascii_lowercase();
    let limit = match word.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        6..=8 => 2,
        _ => 3,
    };
    candidates
        .iter()
        .map(|candidate| (edit_distance(&word, &candidate.to_ascii_lowercase()), *candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance with adjacent transpositions (so `Jion` is one edit from `Join`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}
