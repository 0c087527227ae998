//! Dynamic membership rules (spec Part 3): the PowerShell-like boolean language of dynamic groups,
//! e.g. `(user.department -eq "Sales") -and -not (user.jobTitle -startsWith "SDE")`.
//!
//! [`parse_rule`] does all validation (syntax, properties, operator/type compatibility, regexes,
//! combination limits) and returns the tree; [`Rule::compile`] also builds a compact evaluation
//! program so that [`Rule::matches`] is cheap. String comparisons ignore case. The crate reads no
//! clock: rules using `system.now` are evaluated with [`Rule::matches_at`].

mod eval;
mod parse;
mod props;

use std::fmt;

use time::OffsetDateTime;

use crate::attrs::AttributeSource;
use crate::error::ExprError;

pub(crate) use parse::parse_rule_with_limit;
pub use parse::{MAX_RULE_LEN, parse_rule};

/// Whose properties a rule reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    User,
    Device,
}

impl ObjectKind {
    pub fn prefix(self) -> &'static str {
        match self {
            ObjectKind::User => "user",
            ObjectKind::Device => "device",
        }
    }
}

/// The type of a property, which decides the operators it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PropertyType {
    Boolean,
    DateTime,
    String,
    StringCollection,
    AssignedPlans,
    MemberOf,
}

/// `user.<name>` or `device.<name>`, with the name in its documented spelling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Property {
    pub object: ObjectKind,
    pub name: String,
    pub kind: PropertyType,
}

/// The left-hand side of a comparison.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RuleOperand {
    Property(Property),
    /// `_`: the current element of a string collection inside `-any`/`-all`.
    Item,
    /// `assignedPlan.<field>` inside `user.assignedPlans -any (...)`.
    PlanField(String),
    /// `group.objectId` inside `user.memberOf -any (...)`.
    GroupObjectId,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleCmpOp {
    Eq,
    Ne,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    Contains,
    NotContains,
    Match,
    NotMatch,
    In,
    NotIn,
    Le,
    Ge,
}

impl RuleCmpOp {
    /// The documented spelling, without the leading `-`.
    pub fn name(self) -> &'static str {
        match self {
            RuleCmpOp::Eq => "eq",
            RuleCmpOp::Ne => "ne",
            RuleCmpOp::StartsWith => "startsWith",
            RuleCmpOp::NotStartsWith => "notStartsWith",
            RuleCmpOp::EndsWith => "endsWith",
            RuleCmpOp::NotEndsWith => "notEndsWith",
            RuleCmpOp::Contains => "contains",
            RuleCmpOp::NotContains => "notContains",
            RuleCmpOp::Match => "match",
            RuleCmpOp::NotMatch => "notMatch",
            RuleCmpOp::In => "in",
            RuleCmpOp::NotIn => "notIn",
            RuleCmpOp::Le => "le",
            RuleCmpOp::Ge => "ge",
        }
    }

    /// The positive operator this one negates, if it is negative.
    pub fn positive(self) -> (RuleCmpOp, bool) {
        match self {
            RuleCmpOp::Ne => (RuleCmpOp::Eq, true),
            RuleCmpOp::NotStartsWith => (RuleCmpOp::StartsWith, true),
            RuleCmpOp::NotEndsWith => (RuleCmpOp::EndsWith, true),
            RuleCmpOp::NotContains => (RuleCmpOp::Contains, true),
            RuleCmpOp::NotMatch => (RuleCmpOp::Match, true),
            RuleCmpOp::NotIn => (RuleCmpOp::In, true),
            other => (other, false),
        }
    }
}

/// A right-hand side value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RuleLiteral {
    String(String),
    /// `null` or `$null`.
    Null,
    Boolean(bool),
    Number(i64),
    /// A bare ISO 8601 date-time, as written.
    DateTime(String),
    /// `system.now`, optionally `-plus <ISO 8601 duration>` (as written).
    Now {
        plus: Option<String>,
    },
    List(Vec<RuleLiteral>),
}

/// `-any` or `-all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quantifier {
    Any,
    All,
}

/// The syntax tree of a rule. Parentheses leave no node; `Or`/`And` hold two or more operands.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RuleExpr {
    Or(Vec<RuleExpr>),
    And(Vec<RuleExpr>),
    Not(Box<RuleExpr>),
    Compare {
        operand: RuleOperand,
        op: RuleCmpOp,
        value: RuleLiteral,
    },
    Quantified {
        property: Property,
        quantifier: Quantifier,
        predicate: Box<RuleExpr>,
    },
    /// `Direct Reports for "<manager object id>"`.
    DirectReports(String),
}

fn write_string(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    if text.contains(['"', '\\', '`']) { write!(f, "'{}'", text.replace('\'', "''")) } else { write!(f, "\"{text}\"") }
}

impl fmt::Display for RuleLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleLiteral::String(text) => write_string(f, text),
            RuleLiteral::Null => f.write_str("null"),
            RuleLiteral::Boolean(flag) => write!(f, "{flag}"),
            RuleLiteral::Number(number) => write!(f, "{number}"),
            RuleLiteral::DateTime(text) => f.write_str(text),
            RuleLiteral::Now { plus: None } => f.write_str("system.now"),
            RuleLiteral::Now { plus: Some(duration) } => write!(f, "system.now -plus {duration}"),
            RuleLiteral::List(items) => {
                f.write_str("[")?;
                for (idx, item) in items.iter().enumerate() {
                    if idx > 0 {
                        f.write_str(", ")?;
                    }
                    item.fmt(f)?;
                }
                f.write_str("]")
            }
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.object.prefix(), self.name)
    }
}

impl fmt::Display for RuleOperand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleOperand::Property(property) => property.fmt(f),
            RuleOperand::Item => f.write_str("_"),
            RuleOperand::PlanField(field) => write!(f, "assignedPlan.{field}"),
            RuleOperand::GroupObjectId => f.write_str("group.objectId"),
        }
    }
}

impl fmt::Display for RuleExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operand = |f: &mut fmt::Formatter<'_>, expr: &RuleExpr| match expr {
            RuleExpr::Or(_) | RuleExpr::And(_) => write!(f, "({expr})"),
            _ => expr.fmt(f),
        };
        match self {
            RuleExpr::Or(items) | RuleExpr::And(items) => {
                let joiner = if matches!(self, RuleExpr::Or(_)) { " -or " } else { " -and " };
                for (idx, item) in items.iter().enumerate() {
                    if idx > 0 {
                        f.write_str(joiner)?;
                    }
                    operand(f, item)?;
                }
                Ok(())
            }
            RuleExpr::Not(inner) => write!(f, "-not ({inner})"),
            RuleExpr::Compare { operand, op, value } => write!(f, "{operand} -{} {value}", op.name()),
            RuleExpr::Quantified { property, quantifier, predicate } => {
                let word = match quantifier {
                    Quantifier::Any => "any",
                    Quantifier::All => "all",
                };
                write!(f, "{property} -{word} ({predicate})")
            }
            RuleExpr::DirectReports(manager) => {
                f.write_str("Direct Reports for ")?;
                write_string(f, manager)
            }
        }
    }
}

impl RuleExpr {
    /// The user properties this expression reads; see [`Rule::user_properties`].
    pub fn user_properties(&self) -> std::collections::BTreeSet<String> {
        fn walk(expr: &RuleExpr, found: &mut std::collections::BTreeSet<String>) {
            match expr {
                RuleExpr::Or(items) | RuleExpr::And(items) => items.iter().for_each(|item| walk(item, found)),
                RuleExpr::Not(inner) => walk(inner, found),
                RuleExpr::Compare { operand: RuleOperand::Property(property), .. } => {
                    if property.object == ObjectKind::User {
                        found.insert(property.name.clone());
                    }
                }
                RuleExpr::Compare { .. } => {}
                RuleExpr::Quantified { property, predicate, .. } => {
                    if property.object == ObjectKind::User {
                        found.insert(property.name.clone());
                    }
                    walk(predicate, found);
                }
                RuleExpr::DirectReports(_) => {
                    found.insert("manager".to_owned());
                }
            }
        }
        let mut found = std::collections::BTreeSet::new();
        walk(self, &mut found);
        found
    }

    /// Whether the expression reads any device property (a device rule).
    pub fn reads_devices(&self) -> bool {
        match self {
            RuleExpr::Or(items) | RuleExpr::And(items) => items.iter().any(RuleExpr::reads_devices),
            RuleExpr::Not(inner) => inner.reads_devices(),
            RuleExpr::Compare { operand: RuleOperand::Property(property), .. } => property.object == ObjectKind::Device,
            RuleExpr::Compare { .. } | RuleExpr::DirectReports(_) => false,
            RuleExpr::Quantified { property, predicate, .. } => {
                property.object == ObjectKind::Device || predicate.reads_devices()
            }
        }
    }
}

/// A validated rule with its evaluation program.
#[derive(Clone, Debug)]
pub struct Rule {
    expr: RuleExpr,
    program: eval::Program,
}

impl Rule {
    /// Parses, validates and compiles a rule.
    pub fn compile(text: &str) -> Result<Rule, ExprError> {
        let expr = parse_rule(text)?;
        let program = eval::Program::build(&expr)?;
        Ok(Rule { expr, program })
    }

    pub fn expr(&self) -> &RuleExpr {
        &self.expr
    }

    /// The user properties the rule reads, in their documented spelling (`department`, `extensionAttribute3`),
    /// plus `manager` for a direct-reports rule. A rule's outcome for a user can only change when one of these
    /// does, so a directory re-evaluates a rule only on a write that changes one of them. Device properties are
    /// not listed.
    pub fn user_properties(&self) -> std::collections::BTreeSet<String> {
        self.expr.user_properties()
    }

    /// Whether the rule reads `system.now` (then prefer [`Rule::matches_at`]).
    pub fn uses_now(&self) -> bool {
        self.program.uses_now()
    }

    /// Whether the object is a member. Comparisons with `system.now` are false here (the negated
    /// ones true), because this crate never reads the clock; use [`Rule::matches_at`] for them.
    pub fn matches(&self, object: &dyn AttributeSource) -> bool {
        self.program.matches(object, None)
    }

    /// Whether the object is a member, `now` being the current time for `system.now`.
    pub fn matches_at(&self, object: &dyn AttributeSource, now: OffsetDateTime) -> bool {
        self.program.matches(object, Some(now))
    }
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.expr == other.expr
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl std::str::FromStr for Rule {
    type Err = ExprError;
    fn from_str(text: &str) -> Result<Rule, ExprError> {
        Rule::compile(text)
    }
}
