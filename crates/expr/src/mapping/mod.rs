//! Attribute-mapping expressions (spec Part 1): the VBA-like call language of Entra provisioning,
//! e.g. `Join(" ", [givenName], [surname])`.
//!
//! [`parse_mapping`] checks syntax, function names, arity and constant regular expressions once;
//! [`Mapping::evaluate`] then runs many times against any [`AttributeSource`]. Evaluation never
//! reads the clock or randomness itself: both come from the [`EvalContext`].

mod ast;
pub(crate) mod diacritics_table;
mod eval;
mod functions;
mod parse;
mod value;

pub use ast::{CmpOp, Expr, ExprKind};
pub use functions::Function;
pub use parse::MAX_EXPRESSION_LEN;
pub use value::{AlternativeSecurityId, Number, Value};

use std::fmt;

use crate::attrs::AttributeSource;
use crate::context::EvalContext;
use crate::error::ExprError;

/// What a mapping produces for one object.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The value to write; [`Value::Null`] means "do not flow this attribute".
    Value(Value),
    /// `IgnoreFlowIfNullOrEmpty` dropped the attribute from the flow.
    IgnoreFlow,
}

/// A parsed, validated mapping expression, ready to evaluate many times.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapping {
    root: Expr,
}

/// Parses and validates an attribute-mapping expression (at most [`MAX_EXPRESSION_LEN`] characters).
pub fn parse_mapping(source: &str) -> Result<Mapping, ExprError> {
    Ok(Mapping { root: parse::parse(source)? })
}

/// [`parse_mapping`] without the length limit, for re-parsing printed trees.
pub(crate) fn parse_mapping_unbounded(source: &str) -> Result<Mapping, ExprError> {
    Ok(Mapping { root: parse::parse_with_limit(source, usize::MAX)? })
}

impl Mapping {
    /// The syntax tree.
    pub fn expr(&self) -> &Expr {
        &self.root
    }

    /// Evaluates the expression for one object.
    pub fn evaluate(&self, attributes: &dyn AttributeSource, ctx: &EvalContext<'_>) -> Result<Outcome, ExprError> {
        eval::evaluate(&self.root, attributes, ctx)
    }

    /// The attribute names the expression reads, in order of first use.
    pub fn attribute_names(&self) -> Vec<&str> {
        let mut names = Vec::new();
        self.root.visit_attributes(&mut |name| {
            if !names.contains(&name) {
                names.push(name);
            }
        });
        names
    }
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.fmt(f)
    }
}

impl std::str::FromStr for Mapping {
    type Err = ExprError;
    fn from_str(source: &str) -> Result<Mapping, ExprError> {
        parse_mapping(source)
    }
}
