//! Lexer and recursive-descent parser for dynamic membership rules (spec §3.2–§3.6), including the
//! checks Microsoft reports at save time: unknown properties, operators a type does not support,
//! invalid regexes, mixed user/device rules, memberOf and direct-reports combinations, length.
//!
//! Precedence, loosest first: `-or`, `-and`, `-not`, comparisons. An unparenthesised `-any`/`-all`
//! predicate runs to the end of its enclosing group; a parenthesised one is just that group.

use crate::datetime;
use crate::error::{ExprError, Pos, RuleErrorKind, suggest};
use crate::regex_dotnet;
use crate::rule::props::{self, PLAN_FIELDS};
use crate::rule::{ObjectKind, Property, PropertyType, Quantifier, RuleCmpOp, RuleExpr, RuleLiteral, RuleOperand};

/// The longest rule body Entra accepts, in characters.
pub const MAX_RULE_LEN: usize = 3072;
const MAX_DEPTH: usize = 100;
/// At most this many groups may be listed in memberOf rules.
const MAX_MEMBER_OF_GROUPS: usize = 50;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Str(String),
    Word(String),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    start: usize,
    /// White space (or the start of input) right before the token.
    space_before: bool,
}

/// Parses and validates a rule.
pub fn parse_rule(text: &str) -> Result<RuleExpr, ExprError> {
    parse_rule_with_limit(text, MAX_RULE_LEN)
}

/// [`parse_rule`] with another length limit. A printed rule can be longer than the text it was
/// parsed from (canonical spacing, doubled quotes), so the round-trip checks parse it without limit.
pub(crate) fn parse_rule_with_limit(text: &str, limit: usize) -> Result<RuleExpr, ExprError> {
    let length = text.chars().count();
    if length > limit {
        return Err(ExprError::Rule {
            kind: RuleErrorKind::RuleTooLong,
            detail: format!("the rule is {length} characters long, the limit is {limit}"),
            pos: Pos { line: 1, column: 1 },
        });
    }
    let tokens = lex(text)?;
    let mut parser = Parser { text, tokens, idx: 0, depth: 0, objects: Vec::new(), member_of: 0 };
    let expr = parser.rule()?;
    parser.check_combinations(&expr)?;
    Ok(expr)
}

fn fail(text: &str, offset: usize, kind: RuleErrorKind, detail: impl Into<String>) -> ExprError {
    ExprError::Rule { kind, detail: detail.into(), pos: Pos::at(text, offset) }
}

fn is_word_char(ch: char) -> bool {
    !(ch.is_whitespace() || matches!(ch, '(' | ')' | '[' | ']' | ',' | '"' | '\'' | '“' | '”' | '‘' | '’'))
}

fn lex(text: &str) -> Result<Vec<Token>, ExprError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut space_before = true;
    while let Some(&(start, ch)) = chars.peek() {
        if ch.is_whitespace() {
            chars.next();
            space_before = true;
            continue;
        }
        let tok = match ch {
            '(' | ')' | '[' | ']' | ',' => {
                chars.next();
                match ch {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    _ => Tok::Comma,
                }
            }
            '“' | '”' | '‘' | '’' => {
                return Err(fail(
                    text,
                    start,
                    RuleErrorKind::BinaryExpressionFormat,
                    format!("typographic quote '{ch}': use straight quotes (\" or ')"),
                ));
            }
            '"' => {
                chars.next();
                let mut value = String::new();
                loop {
                    let Some((_, ch)) = chars.next() else {
                        return Err(fail(text, start, RuleErrorKind::QueryCompilationError, "unterminated string"));
                    };
                    match ch {
                        '"' => break,
                        '\\' | '`' if chars.peek().is_some_and(|&(_, next)| next == '"') => {
                            chars.next();
                            value.push('"');
                        }
                        other => value.push(other),
                    }
                }
                Tok::Str(value)
            }
            '`' if text[start + 1..].starts_with('"') => {
                // DM: `user.department -eq `"Sales`"` is the syntax when "Sales" (with its quotes) is
                // the value.
                chars.next();
                chars.next();
                let mut value = String::from('"');
                loop {
                    let Some((_, ch)) = chars.next() else {
                        return Err(fail(text, start, RuleErrorKind::QueryCompilationError, "unterminated `\" string"));
                    };
                    if ch == '`' && chars.peek().is_some_and(|&(_, next)| next == '"') {
                        chars.next();
                        value.push('"');
                        break;
                    }
                    value.push(ch);
                }
                Tok::Str(value)
            }
            '\'' => {
                chars.next();
                let mut value = String::new();
                loop {
                    let Some((_, ch)) = chars.next() else {
                        return Err(fail(text, start, RuleErrorKind::QueryCompilationError, "unterminated string"));
                    };
                    if ch == '\'' {
                        if chars.peek().is_some_and(|&(_, next)| next == '\'') {
                            chars.next();
                            value.push('\'');
                        } else {
                            break;
                        }
                    } else {
                        value.push(ch);
                    }
                }
                Tok::Str(value)
            }
            _ => {
                let mut word = String::new();
                while let Some(&(_, ch)) = chars.peek() {
                    if !is_word_char(ch) {
                        break;
                    }
                    word.push(ch);
                    chars.next();
                }
                Tok::Word(word)
            }
        };
        tokens.push(Token { tok, start, space_before });
        space_before = false;
    }
    Ok(tokens)
}

/// Where item references (`_`, `assignedPlan.x`, `group.objectId`) are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    Top,
    StringItems,
    Plans,
    Groups,
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    idx: usize,
    depth: usize,
    /// Object kinds of the properties seen, with the offset of the first of each.
    objects: Vec<(ObjectKind, usize)>,
    member_of: usize,
}

/// An operator word, with or without its leading `-` (or en dash).
fn operator_word(word: &str) -> (&str, bool) {
    if let Some(rest) = word.strip_prefix('-') {
        (rest, true)
    } else if let Some(rest) = word.strip_prefix('–') {
        (rest, true)
    } else {
        (word, false)
    }
}

fn comparison(name: &str) -> Option<RuleCmpOp> {
    Some(match name.to_ascii_lowercase().as_str() {
        "eq" => RuleCmpOp::Eq,
        "ne" => RuleCmpOp::Ne,
        "startswith" => RuleCmpOp::StartsWith,
        "notstartswith" => RuleCmpOp::NotStartsWith,
        "endswith" => RuleCmpOp::EndsWith,
        "notendswith" => RuleCmpOp::NotEndsWith,
        "contains" => RuleCmpOp::Contains,
        "notcontains" => RuleCmpOp::NotContains,
        "match" => RuleCmpOp::Match,
        "notmatch" => RuleCmpOp::NotMatch,
        "in" => RuleCmpOp::In,
        "notin" => RuleCmpOp::NotIn,
        "le" => RuleCmpOp::Le,
        "ge" => RuleCmpOp::Ge,
        _ => return None,
    })
}

const OPERATOR_NAMES: &[&str] = &[
    "eq",
    "ne",
    "startsWith",
    "notStartsWith",
    "endsWith",
    "notEndsWith",
    "contains",
    "notContains",
    "match",
    "notMatch",
    "in",
    "notIn",
    "le",
    "ge",
    "any",
    "all",
    "and",
    "or",
    "not",
];

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.idx)
    }

    fn offset(&self) -> usize {
        self.peek().map_or(self.text.len(), |token| token.start)
    }

    fn error(&self, offset: usize, kind: RuleErrorKind, detail: impl Into<String>) -> ExprError {
        fail(self.text, offset, kind, detail)
    }

    fn syntax(&self, detail: impl Into<String>) -> ExprError {
        self.error(self.offset(), RuleErrorKind::QueryCompilationError, detail)
    }

    /// If the next token is the keyword `name` (with or without `-`), consumes it.
    fn keyword(&mut self, name: &str) -> Result<bool, ExprError> {
        let Some(Token { tok: Tok::Word(word), start, space_before }) = self.peek() else { return Ok(false) };
        let (bare, dashed) = operator_word(word);
        if !bare.eq_ignore_ascii_case(name) {
            return Ok(false);
        }
        let (start, space_before) = (*start, *space_before);
        let after_paren = self.idx > 0 && self.tokens[self.idx - 1].tok == Tok::LParen;
        if dashed && !space_before && !after_paren {
            return Err(self.error(
                start,
                RuleErrorKind::BinaryExpressionFormat,
                format!("operator '{word}' must follow white space"),
            ));
        }
        self.idx += 1;
        Ok(true)
    }

    fn rule(&mut self) -> Result<RuleExpr, ExprError> {
        if let Some(expr) = self.direct_reports()? {
            return Ok(expr);
        }
        if self.tokens.is_empty() {
            return Err(self.syntax("the rule is empty"));
        }
        let expr = self.or_expr(Scope::Top)?;
        self.expect_end()?;
        Ok(expr)
    }

    fn expect_end(&self) -> Result<(), ExprError> {
        match self.peek().map(|token| &token.tok) {
            None => Ok(()),
            Some(Tok::RParen) => Err(self.syntax("unbalanced ')'")),
            Some(Tok::LParen) => Err(self.syntax("missing logical operator (-and, -or) between expressions")),
            Some(Tok::Word(word)) if word.contains('.') || word == "_" => {
                Err(self.syntax("missing logical operator (-and, -or) between expressions"))
            }
            Some(other) => Err(self.syntax(format!("unexpected {}", describe(other)))),
        }
    }

    fn direct_reports(&mut self) -> Result<Option<RuleExpr>, ExprError> {
        let words: Vec<&str> = self
            .tokens
            .iter()
            .take(3)
            .filter_map(|token| match &token.tok {
                Tok::Word(word) => Some(word.as_str()),
                _ => None,
            })
            .collect();
        let is_direct = words.len() == 3
            && words[0].eq_ignore_ascii_case("direct")
            && words[1].eq_ignore_ascii_case("reports")
            && words[2].eq_ignore_ascii_case("for");
        if !is_direct {
            return Ok(None);
        }
        self.idx = 3;
        let Some(Token { tok: Tok::Str(manager), .. }) = self.peek().cloned() else {
            return Err(self.syntax("Direct Reports for needs the manager's object id in quotes"));
        };
        self.idx += 1;
        if self.peek().is_some() {
            return Err(self.error(
                self.offset(),
                RuleErrorKind::NotCombinable,
                "a direct reports rule can't be combined with other expressions",
            ));
        }
        Ok(Some(RuleExpr::DirectReports(manager)))
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.syntax(format!("the rule nests more than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn or_expr(&mut self, scope: Scope) -> Result<RuleExpr, ExprError> {
        self.enter()?;
        let mut items = vec![self.and_expr(scope)?];
        while self.keyword("or")? {
            items.push(self.and_expr(scope)?);
        }
        self.depth -= 1;
        Ok(if items.len() == 1 { items.pop().unwrap_or(RuleExpr::Or(Vec::new())) } else { RuleExpr::Or(items) })
    }

    fn and_expr(&mut self, scope: Scope) -> Result<RuleExpr, ExprError> {
        let mut items = vec![self.not_expr(scope)?];
        while self.keyword("and")? {
            items.push(self.not_expr(scope)?);
        }
        Ok(if items.len() == 1 { items.pop().unwrap_or(RuleExpr::And(Vec::new())) } else { RuleExpr::And(items) })
    }

    fn not_expr(&mut self, scope: Scope) -> Result<RuleExpr, ExprError> {
        if self.keyword("not")? {
            self.enter()?;
            let inner = self.not_expr(scope)?;
            self.depth -= 1;
            return Ok(RuleExpr::Not(Box::new(inner)));
        }
        self.primary(scope)
    }

    fn primary(&mut self, scope: Scope) -> Result<RuleExpr, ExprError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.syntax("the rule ends where an expression is expected"));
        };
        match token.tok {
            Tok::LParen => {
                self.idx += 1;
                let inner = self.or_expr(scope)?;
                match self.peek().map(|token| &token.tok) {
                    Some(Tok::RParen) => {
                        self.idx += 1;
                        Ok(inner)
                    }
                    None => Err(self.syntax("missing ')'")),
                    Some(Tok::LParen) => Err(self.syntax("missing logical operator (-and, -or) between expressions")),
                    Some(other) => Err(self.syntax(format!("expected ')', found {}", describe(other)))),
                }
            }
            Tok::Word(word) => {
                self.idx += 1;
                let operand = self.operand(&word, token.start, scope)?;
                self.comparison_or_quantifier(operand, token.start, scope)
            }
            other => Err(self.syntax(format!("expected a property, found {}", describe(&other)))),
        }
    }

    fn operand(&mut self, word: &str, start: usize, scope: Scope) -> Result<RuleOperand, ExprError> {
        // `user.department-eq"Sales"`: an operator glued to the property.
        if let Some(dash) = word.find(['-', '–']) {
            let (bare, _) = operator_word(&word[dash..]);
            if OPERATOR_NAMES.iter().any(|name| name.eq_ignore_ascii_case(bare)) {
                return Err(self.error(
                    start,
                    RuleErrorKind::BinaryExpressionFormat,
                    format!("'{word}': put white space before the operator"),
                ));
            }
        }
        let lower = word.to_ascii_lowercase();
        let item_error = |parser: &Parser<'_>, what: &str| {
            parser.error(
                start,
                RuleErrorKind::QueryCompilationError,
                format!("'{word}' can only be used inside {what}"),
            )
        };
        if word == "_" {
            return if scope == Scope::StringItems {
                Ok(RuleOperand::Item)
            } else {
                Err(item_error(self, "-any/-all over a string collection"))
            };
        }
        if let Some(field) = lower.strip_prefix("assignedplan.") {
            if scope != Scope::Plans {
                return Err(item_error(self, "user.assignedPlans -any/-all"));
            }
            let Some(canonical) = PLAN_FIELDS.iter().find(|known| known.eq_ignore_ascii_case(field)) else {
                return Err(self.error(
                    start,
                    RuleErrorKind::AttributeNotSupported,
                    format!("assignedPlan has no field '{field}'"),
                ));
            };
            return Ok(RuleOperand::PlanField((*canonical).to_owned()));
        }
        if lower == "group.objectid" {
            return if scope == Scope::Groups {
                Ok(RuleOperand::GroupObjectId)
            } else {
                Err(item_error(self, "memberOf -any/-all"))
            };
        }
        let (object, name) = if let Some(name) = lower.strip_prefix("user.") {
            (ObjectKind::User, &word[word.len() - name.len()..])
        } else if let Some(name) = lower.strip_prefix("device.") {
            (ObjectKind::Device, &word[word.len() - name.len()..])
        } else if word.contains('.') {
            return Err(self.error(
                start,
                RuleErrorKind::AttributeNotSupported,
                format!("unknown property '{word}' (properties start with 'user.' or 'device.')"),
            ));
        } else {
            return Err(self.error(
                start,
                RuleErrorKind::QueryCompilationError,
                format!("'{word}' is not a property: write 'user.{word}' or 'device.{word}'"),
            ));
        };
        if scope != Scope::Top {
            return Err(self.error(
                start,
                RuleErrorKind::QueryCompilationError,
                format!("'{word}': inside -any/-all only the item ('_', assignedPlan.*, group.objectId) can be used"),
            ));
        }
        if object == ObjectKind::Device && name.eq_ignore_ascii_case("organizationalUnit") {
            return Err(self.error(
                start,
                RuleErrorKind::AttributeNotSupported,
                "device.organizationalUnit must not be used in rules",
            ));
        }
        let Some((canonical, kind)) = props::lookup(object, name) else {
            let hint = suggest(name, &props::names(object))
                .map(|close| format!(" (did you mean '{}.{close}'?)", object.prefix()))
                .unwrap_or_default();
            return Err(self.error(
                start,
                RuleErrorKind::AttributeNotSupported,
                format!("unknown property '{word}'{hint}"),
            ));
        };
        if !self.objects.iter().any(|(seen, _)| *seen == object) {
            self.objects.push((object, start));
        }
        Ok(RuleOperand::Property(Property { object, name: canonical, kind }))
    }

    fn comparison_or_quantifier(
        &mut self,
        operand: RuleOperand,
        start: usize,
        scope: Scope,
    ) -> Result<RuleExpr, ExprError> {
        let Some(Token { tok: Tok::Word(word), start: op_start, space_before }) = self.peek().cloned() else {
            return Err(self.syntax(format!("expected an operator after '{operand}'")));
        };
        let (bare, dashed) = operator_word(&word);
        if dashed && !space_before {
            return Err(self.error(
                op_start,
                RuleErrorKind::BinaryExpressionFormat,
                format!("operator '{word}' must follow white space"),
            ));
        }
        self.idx += 1;
        let kind = operand_type(&operand);
        if bare.eq_ignore_ascii_case("any") || bare.eq_ignore_ascii_case("all") {
            let quantifier = if bare.eq_ignore_ascii_case("any") { Quantifier::Any } else { Quantifier::All };
            let (RuleOperand::Property(property), Scope::Top) = (&operand, scope) else {
                return Err(self.error(
                    op_start,
                    RuleErrorKind::OperatorNotSupportedOnAttribute,
                    format!("-{bare} applies to a multi-valued property"),
                ));
            };
            let inner_scope = match kind {
                PropertyType::StringCollection => Scope::StringItems,
                PropertyType::AssignedPlans => Scope::Plans,
                PropertyType::MemberOf => Scope::Groups,
                _ => {
                    return Err(self.error(
                        op_start,
                        RuleErrorKind::OperatorNotSupportedOnAttribute,
                        format!("-{bare} is not supported on '{property}', which is single-valued"),
                    ));
                }
            };
            if kind == PropertyType::MemberOf {
                self.member_of += 1;
            }
            self.enter()?;
            let predicate = if self.peek().is_some_and(|token| token.tok == Tok::LParen) {
                self.primary(inner_scope)?
            } else {
                self.or_expr(inner_scope)?
            };
            self.depth -= 1;
            return Ok(RuleExpr::Quantified { property: property.clone(), quantifier, predicate: Box::new(predicate) });
        }
        let Some(op) = comparison(bare) else {
            let detail = if bare.eq_ignore_ascii_case("not") {
                "-not can't be used as a comparison operator (use -ne)".to_owned()
            } else {
                format!("'{word}' is not a comparison operator")
            };
            return Err(self.error(op_start, RuleErrorKind::QueryCompilationError, detail));
        };
        let value_start = self.offset();
        let value = self.value()?;
        self.check_types(&operand, kind, op, &value, start, op_start, value_start)?;
        if let (RuleOperand::GroupObjectId, RuleLiteral::List(items)) = (&operand, &value)
            && items.len() > MAX_MEMBER_OF_GROUPS
        {
            return Err(self.error(
                value_start,
                RuleErrorKind::QueryCompilationError,
                format!("a memberOf rule lists {} groups, the limit is {MAX_MEMBER_OF_GROUPS}", items.len()),
            ));
        }
        Ok(RuleExpr::Compare { operand, op, value })
    }

    fn value(&mut self) -> Result<RuleLiteral, ExprError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.syntax("expected a value"));
        };
        match token.tok {
            Tok::LBracket => {
                self.idx += 1;
                let mut items = Vec::new();
                if self.peek().is_some_and(|token| token.tok == Tok::RBracket) {
                    self.idx += 1;
                    return Ok(RuleLiteral::List(items));
                }
                loop {
                    let item = self.scalar_value()?;
                    items.push(item);
                    match self.peek().map(|token| &token.tok) {
                        Some(Tok::Comma) => self.idx += 1,
                        Some(Tok::RBracket) => {
                            self.idx += 1;
                            return Ok(RuleLiteral::List(items));
                        }
                        _ => return Err(self.syntax("expected ',' or ']' in the list")),
                    }
                }
            }
            _ => self.scalar_value(),
        }
    }

    fn scalar_value(&mut self) -> Result<RuleLiteral, ExprError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.syntax("expected a value"));
        };
        self.idx += 1;
        match token.tok {
            Tok::Str(text) => Ok(RuleLiteral::String(text)),
            Tok::Word(word) => {
                let lower = word.to_ascii_lowercase();
                match lower.as_str() {
                    "null" | "$null" => return Ok(RuleLiteral::Null),
                    "true" => return Ok(RuleLiteral::Boolean(true)),
                    "false" => return Ok(RuleLiteral::Boolean(false)),
                    "system.now" => {
                        let plus_start = self.offset();
                        if self.keyword("plus")? {
                            let Some(Token { tok: Tok::Word(duration), .. }) = self.peek().cloned() else {
                                return Err(self.error(
                                    plus_start,
                                    RuleErrorKind::QueryCompilationError,
                                    "-plus needs an ISO 8601 duration such as p1d",
                                ));
                            };
                            let probe = time::OffsetDateTime::UNIX_EPOCH
                                .replace_year(2000)
                                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                            if datetime::add_iso_duration(probe, &duration).is_none() {
                                return Err(self.syntax(format!("'{duration}' is not an ISO 8601 duration")));
                            }
                            self.idx += 1;
                            return Ok(RuleLiteral::Now { plus: Some(duration) });
                        }
                        return Ok(RuleLiteral::Now { plus: None });
                    }
                    _ => {}
                }
                if let Ok(number) = word.parse::<i64>() {
                    return Ok(RuleLiteral::Number(number));
                }
                if word.starts_with(|ch: char| ch.is_ascii_digit())
                    && datetime::parse_cdate(&word).is_some()
                    && word.contains('-')
                {
                    return Ok(RuleLiteral::DateTime(word));
                }
                Err(self.error(
                    token.start,
                    RuleErrorKind::QueryCompilationError,
                    format!("value '{word}' must be quoted"),
                ))
            }
            other => Err(self.error(
                token.start,
                RuleErrorKind::QueryCompilationError,
                format!("expected a value, found {}", describe(&other)),
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_types(
        &self,
        operand: &RuleOperand,
        kind: PropertyType,
        op: RuleCmpOp,
        value: &RuleLiteral,
        start: usize,
        op_start: usize,
        value_start: usize,
    ) -> Result<(), ExprError> {
        let not_supported = || {
            self.error(
                op_start,
                RuleErrorKind::OperatorNotSupportedOnAttribute,
                format!("-{} is not supported on '{operand}'", op.name()),
            )
        };
        let bad_value = |detail: String| self.error(value_start, RuleErrorKind::QueryCompilationError, detail);
        let is_list = matches!(value, RuleLiteral::List(_));
        let wants_list = matches!(op, RuleCmpOp::In | RuleCmpOp::NotIn);
        if wants_list != is_list {
            return Err(if wants_list {
                bad_value(format!("-{} needs a list such as [\"a\", \"b\"]", op.name()))
            } else {
                bad_value(format!("a list can only be used with -in or -notIn, not -{}", op.name()))
            });
        }
        if *value == RuleLiteral::Null && !matches!(op, RuleCmpOp::Eq | RuleCmpOp::Ne) {
            return Err(bad_value(format!("null can only be compared with -eq or -ne, not -{}", op.name())));
        }
        let _ = start;
        match kind {
            PropertyType::AssignedPlans | PropertyType::MemberOf => Err(not_supported()),
            PropertyType::Boolean => {
                if !matches!(op, RuleCmpOp::Eq | RuleCmpOp::Ne) {
                    return Err(not_supported());
                }
                match value {
                    RuleLiteral::Boolean(_) | RuleLiteral::Null => Ok(()),
                    RuleLiteral::String(text)
                        if text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false") =>
                    {
                        Ok(())
                    }
                    other => {
                        Err(bad_value(format!("'{operand}' is Boolean: compare it with true or false, not {other}")))
                    }
                }
            }
            PropertyType::DateTime => {
                if !matches!(op, RuleCmpOp::Eq | RuleCmpOp::Ne | RuleCmpOp::Le | RuleCmpOp::Ge) {
                    return Err(not_supported());
                }
                match value {
                    RuleLiteral::DateTime(_) | RuleLiteral::Now { .. } | RuleLiteral::Null => Ok(()),
                    RuleLiteral::String(text) if datetime::parse_cdate(text).is_some() => Ok(()),
                    other => Err(bad_value(format!(
                        "'{operand}' is a date: compare it with a date-time or system.now, not {other}"
                    ))),
                }
            }
            PropertyType::String | PropertyType::StringCollection => {
                if matches!(op, RuleCmpOp::Le | RuleCmpOp::Ge) {
                    return Err(not_supported());
                }
                let items: Vec<&RuleLiteral> = match value {
                    RuleLiteral::List(items) => items.iter().collect(),
                    other => vec![other],
                };
                for item in items {
                    match item {
                        RuleLiteral::String(_)
                        | RuleLiteral::Number(_)
                        | RuleLiteral::Boolean(_)
                        | RuleLiteral::Null
                        | RuleLiteral::DateTime(_) => {}
                        other => {
                            return Err(bad_value(format!("'{operand}' is a string: {other} is not a string value")));
                        }
                    }
                }
                if let (RuleCmpOp::Match | RuleCmpOp::NotMatch, RuleLiteral::String(pattern)) = (op, value) {
                    regex_dotnet::compile(pattern, true).map_err(|err| bad_value(err.to_string()))?;
                } else if matches!(op, RuleCmpOp::Match | RuleCmpOp::NotMatch) {
                    return Err(bad_value("-match needs a quoted regular expression".to_owned()));
                }
                Ok(())
            }
        }
    }

    /// Mixed user/device properties, and memberOf combined with anything else.
    fn check_combinations(&self, expr: &RuleExpr) -> Result<(), ExprError> {
        if self.objects.len() > 1 {
            let (_, second) = self.objects[1];
            return Err(self.error(
                second,
                RuleErrorKind::MixedObjectTypes,
                "a rule reads either user or device properties, not both",
            ));
        }
        if self.member_of > 0 {
            let alone =
                matches!(expr, RuleExpr::Quantified { property, .. } if property.kind == PropertyType::MemberOf);
            if !alone {
                return Err(self.error(
                    0,
                    RuleErrorKind::NotCombinable,
                    "a memberOf rule can't be combined with other expressions or operators",
                ));
            }
        }
        Ok(())
    }
}

fn operand_type(operand: &RuleOperand) -> PropertyType {
    match operand {
        RuleOperand::Property(property) => property.kind,
        RuleOperand::Item | RuleOperand::PlanField(_) | RuleOperand::GroupObjectId => PropertyType::String,
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::LParen => "'('".to_owned(),
        Tok::RParen => "')'".to_owned(),
        Tok::LBracket => "'['".to_owned(),
        Tok::RBracket => "']'".to_owned(),
        Tok::Comma => "','".to_owned(),
        Tok::Str(text) => format!("string \"{text}\""),
        Tok::Word(word) => format!("'{word}'"),
    }
}
