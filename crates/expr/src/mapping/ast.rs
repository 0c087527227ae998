//! The syntax tree of a mapping expression and its printer.
//!
//! Printing gives source text that parses back to an equal tree (positions and caches are not part
//! of equality). Function names print in their canonical spelling.

use std::fmt;
use std::sync::Arc;

use crate::error::Pos;
use crate::mapping::functions::Function;

/// A node with the position where it starts in the source.
#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: Pos,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        self.kind == other.kind
    }
}

/// A comparison operator, allowed wherever a value is expected (IIF and CBool conditions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

/// A compiled regular expression cached on a call node; never part of equality.
#[derive(Clone, Default)]
pub struct CompiledRegex(pub(crate) Option<Arc<regex::Regex>>);

impl PartialEq for CompiledRegex {
    fn eq(&self, _other: &CompiledRegex) -> bool {
        true
    }
}

impl fmt::Debug for CompiledRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "CompiledRegex" } else { "NoRegex" })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// `Name(arg, , arg)`: `None` is an omitted argument.
    Call {
        function: Function,
        args: Vec<Option<Expr>>,
        regex: CompiledRegex,
    },
    /// `[name]`.
    Attribute(String),
    /// `"text"`, unescaped.
    String(String),
    /// An unquoted decimal number, as written.
    Number(String),
    /// `&H1F`: the hex digits as written.
    Hex(String),
    /// A bare enum constant such as `vbTextCompare` or `UTF8`, as written.
    Identifier(String),
    Compare {
        op: CmpOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
}

impl Expr {
    /// Calls `visit` with every attribute name in the tree, depth first.
    pub fn visit_attributes<'a>(&'a self, visit: &mut dyn FnMut(&'a str)) {
        match &self.kind {
            ExprKind::Attribute(name) => visit(name),
            ExprKind::Call { args, .. } => {
                for arg in args.iter().flatten() {
                    arg.visit_attributes(visit);
                }
            }
            ExprKind::Compare { left, right, .. } => {
                left.visit_attributes(visit);
                right.visit_attributes(visit);
            }
            ExprKind::String(_) | ExprKind::Number(_) | ExprKind::Hex(_) | ExprKind::Identifier(_) => {}
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Call { function, args, .. } => {
                write!(f, "{}(", function.name())?;
                for (idx, arg) in args.iter().enumerate() {
                    if idx > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(arg) = arg {
                        arg.fmt(f)?;
                    }
                }
                f.write_str(")")
            }
            ExprKind::Attribute(name) => write!(f, "[{name}]"),
            ExprKind::String(text) => {
                f.write_str("\"")?;
                for ch in text.chars() {
                    match ch {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        other => write!(f, "{other}")?,
                    }
                }
                f.write_str("\"")
            }
            ExprKind::Number(text) => f.write_str(text),
            ExprKind::Hex(digits) => write!(f, "&H{digits}"),
            ExprKind::Identifier(name) => f.write_str(name),
            ExprKind::Compare { op, left, right } => write!(f, "{left} {} {right}", op.as_str()),
        }
    }
}
