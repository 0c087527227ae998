//! The recursive-descent parser for mapping expressions (grammar in spec §1.2) and the checks that
//! need no data: function names, arity, `Switch` parity, `SelectUniqueValue` placement, `Replace`
//! parameter combinations and constant regular expressions.

use std::sync::Arc;

use crate::error::{ExprError, Pos, suggest};
use crate::mapping::ast::{CmpOp, CompiledRegex, Expr, ExprKind};
use crate::mapping::functions::{self, Function};
use crate::regex_dotnet;

/// Longest expression accepted, in characters (Entra's documented limit).
pub const MAX_EXPRESSION_LEN: usize = 10_000;
/// Deepest call nesting accepted; real expressions stay far below.
const MAX_DEPTH: usize = 64;

pub(crate) fn parse(source: &str) -> Result<Expr, ExprError> {
    parse_with_limit(source, MAX_EXPRESSION_LEN)
}

/// [`parse`] with another length limit. The printed form of a tree can be longer than the text it
/// was parsed from (canonical spacing, escapes), so the round-trip checks parse it without limit.
pub(crate) fn parse_with_limit(source: &str, limit: usize) -> Result<Expr, ExprError> {
    let length = source.chars().count();
    if length > limit {
        return Err(ExprError::TooLong { what: "expression", length, limit });
    }
    let mut parser = Parser { source, bytes: source.as_bytes(), idx: 0, depth: 0 };
    parser.skip_ws();
    let expr = parser.arg(true)?;
    parser.skip_ws();
    if parser.idx < parser.bytes.len() {
        return Err(parser.unexpected("expected end of expression"));
    }
    Ok(expr)
}

struct Parser<'a> {
    source: &'a str,
    bytes: &'a [u8],
    idx: usize,
    depth: usize,
}

impl Parser<'_> {
    fn pos(&self, offset: usize) -> Pos {
        Pos::at(self.source, offset)
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> ExprError {
        ExprError::Syntax { message: message.into(), pos: self.pos(offset) }
    }

    fn unexpected(&self, expected: &str) -> ExprError {
        match self.source[self.idx..].chars().next() {
            None => self.error(self.idx, format!("{expected}, found end of input")),
            Some('\'') => self.error(self.idx, "single-quoted strings are not supported; use double quotes"),
            Some('&') => self.error(self.idx, "'&' concatenation is not supported; use Join(\"\", ...)"),
            Some(ch) => self.error(self.idx, format!("{expected}, found '{ch}'")),
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.bytes.get(self.idx), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.idx += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.idx).copied()
    }

    /// `arg := operand ( cmpop operand )?`
    fn arg(&mut self, top_level: bool) -> Result<Expr, ExprError> {
        let left = self.operand(top_level)?;
        let save = self.idx;
        self.skip_ws();
        let op = match (self.peek(), self.bytes.get(self.idx + 1).copied()) {
            (Some(b'<'), Some(b'>')) => Some((CmpOp::Ne, 2)),
            (Some(b'<'), Some(b'=')) => Some((CmpOp::Le, 2)),
            (Some(b'>'), Some(b'=')) => Some((CmpOp::Ge, 2)),
            (Some(b'<'), _) => Some((CmpOp::Lt, 1)),
            (Some(b'>'), _) => Some((CmpOp::Gt, 1)),
            (Some(b'='), _) => Some((CmpOp::Eq, 1)),
            _ => None,
        };
        let Some((op, width)) = op else {
            self.idx = save;
            return Ok(left);
        };
        self.idx += width;
        self.skip_ws();
        let right = self.operand(false)?;
        let pos = left.pos;
        Ok(Expr { kind: ExprKind::Compare { op, left: Box::new(left), right: Box::new(right) }, pos })
    }

    fn operand(&mut self, top_level: bool) -> Result<Expr, ExprError> {
        let start = self.idx;
        let pos = self.pos(start);
        let kind = match self.peek() {
            Some(b'[') => {
                let Some(length) = self.source[start + 1..].find(']') else {
                    return Err(self.error(start, "unterminated attribute name (missing ']')"));
                };
                self.idx = start + 1 + length + 1;
                ExprKind::Attribute(self.source[start + 1..start + 1 + length].to_owned())
            }
            Some(b'"') => ExprKind::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => ExprKind::Number(self.number()?),
            Some(b'&') if matches!(self.bytes.get(start + 1), Some(b'H' | b'h')) => {
                self.idx += 2;
                let digits_start = self.idx;
                while self.peek().is_some_and(|byte| byte.is_ascii_hexdigit()) {
                    self.idx += 1;
                }
                let digits = &self.source[digits_start..self.idx];
                if digits.is_empty() || i64::from_str_radix(digits, 16).is_err() {
                    return Err(self.error(start, "invalid hexadecimal number"));
                }
                ExprKind::Hex(digits.to_owned())
            }
            Some(byte) if byte.is_ascii_alphabetic() || byte == b'_' => {
                while self.peek().is_some_and(|byte| byte.is_ascii_alphanumeric() || byte == b'_') {
                    self.idx += 1;
                }
                let name = &self.source[start..self.idx];
                let after_name = self.idx;
                self.skip_ws();
                if self.peek() == Some(b'(') {
                    return self.call(name, start, top_level);
                }
                self.idx = after_name;
                if !functions::IDENTIFIERS.iter().any(|known| known.eq_ignore_ascii_case(name)) {
                    if Function::from_name(name).is_some() {
                        return Err(self.error(start, format!("function '{name}' must be called with parentheses")));
                    }
                    return Err(ExprError::UnknownIdentifier {
                        name: name.to_owned(),
                        pos,
                        suggestion: suggest(name, functions::IDENTIFIERS),
                    });
                }
                ExprKind::Identifier(name.to_owned())
            }
            _ => return Err(self.unexpected("expected an argument")),
        };
        Ok(Expr { kind, pos })
    }

    fn string(&mut self) -> Result<String, ExprError> {
        let start = self.idx;
        self.idx += 1;
        let mut text = String::new();
        loop {
            let Some(ch) = self.source[self.idx..].chars().next() else {
                return Err(self.error(start, "unterminated string"));
            };
            self.idx += ch.len_utf8();
            match ch {
                '"' => return Ok(text),
                '\\' => match self.peek() {
                    Some(b'\\') => {
                        text.push('\\');
                        self.idx += 1;
                    }
                    Some(b'"') => {
                        text.push('"');
                        self.idx += 1;
                    }
                    // Any other backslash is kept as written (regular expressions need it).
                    _ => text.push('\\'),
                },
                other => text.push(other),
            }
        }
    }

    fn number(&mut self) -> Result<String, ExprError> {
        let start = self.idx;
        if self.peek() == Some(b'-') {
            self.idx += 1;
        }
        let digits_start = self.idx;
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.idx += 1;
        }
        if self.idx == digits_start {
            return Err(self.error(start, "expected digits after '-'"));
        }
        if self.peek() == Some(b'.') && self.bytes.get(self.idx + 1).is_some_and(u8::is_ascii_digit) {
            self.idx += 1;
            while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
                self.idx += 1;
            }
        }
        let text = &self.source[start..self.idx];
        if !text.contains('.') && text.parse::<i64>().is_err() {
            return Err(self.error(start, format!("number {text} is out of range")));
        }
        Ok(text.to_owned())
    }

    fn call(&mut self, name: &str, start: usize, top_level: bool) -> Result<Expr, ExprError> {
        let pos = self.pos(start);
        let Some(function) = Function::from_name(name) else {
            return Err(ExprError::UnknownFunction {
                name: name.to_owned(),
                pos,
                suggestion: suggest(name, functions::NAMES),
            });
        };
        if function == Function::SelectUniqueValue && !top_level {
            return Err(self.error(start, "SelectUniqueValue must be the top-level function"));
        }
        if self.depth >= MAX_DEPTH {
            return Err(self.error(start, format!("expression nests more than {MAX_DEPTH} calls")));
        }
        self.depth += 1;
        self.idx += 1; // The '('.
        self.skip_ws();
        let mut args = Vec::new();
        if self.peek() == Some(b')') {
            self.idx += 1;
        } else {
            loop {
                self.skip_ws();
                if matches!(self.peek(), Some(b',' | b')')) {
                    args.push(None);
                } else {
                    args.push(Some(self.arg(false)?));
                    self.skip_ws();
                }
                match self.peek() {
                    Some(b',') => self.idx += 1,
                    Some(b')') => {
                        self.idx += 1;
                        break;
                    }
                    _ => return Err(self.unexpected("expected ',' or ')'")),
                }
            }
        }
        self.depth -= 1;
        let arity = function.arity();
        let count = args.len();
        if count < arity.min || arity.max.is_some_and(|max| count > max) || (arity.even && count % 2 != 0) {
            return Err(ExprError::Arity { function: function.name(), pos, expected: arity.text, found: count });
        }
        let regex = if function == Function::Replace { check_replace(&args, pos)? } else { CompiledRegex::default() };
        Ok(Expr { kind: ExprKind::Call { function, args, regex }, pos })
    }
}

/// Which `Replace` behaviour the present parameters select (spec §1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplaceMode {
    Literal,
    Template,
    Regex,
    RegexGroup,
    RegexFallback,
}

pub(crate) fn replace_mode(args: &[Option<Expr>]) -> Option<ReplaceMode> {
    let present = |idx: usize| args.get(idx).is_some_and(Option::is_some);
    let (old, regex, group, value, attribute, template) =
        (present(1), present(2), present(3), present(4), present(5), present(6));
    Some(match (old, regex, group, value, attribute, template) {
        (true, false, false, true, false, false) => ReplaceMode::Literal,
        (true, false, false, false, false, true) => ReplaceMode::Template,
        (false, true, false, true, false, false) => ReplaceMode::Regex,
        (false, true, true, true, false, false) => ReplaceMode::RegexGroup,
        (false, true, true, false, true, false) => ReplaceMode::RegexFallback,
        _ => return None,
    })
}

fn check_replace(args: &[Option<Expr>], pos: Pos) -> Result<CompiledRegex, ExprError> {
    if replace_mode(args).is_none() {
        return Err(ExprError::Syntax {
            message:
                "Replace needs oldValue with replacementValue or template, or regexPattern with replacementValue, \
                      regexGroupName + replacementValue, or regexGroupName + replacementAttributeName"
                    .to_owned(),
            pos,
        });
    }
    match args.get(2) {
        Some(Some(Expr { kind: ExprKind::String(pattern), pos: pattern_pos })) => {
            let regex =
                regex_dotnet::compile(pattern, false).map_err(|error| ExprError::Regex { error, pos: *pattern_pos })?;
            Ok(CompiledRegex(Some(Arc::new(regex))))
        }
        _ => Ok(CompiledRegex::default()),
    }
}
