//! The evaluation program of a rule: the tree with literals case-folded, regexes compiled and
//! lists hashed, so that testing one object does little more than attribute look-ups.
//!
//! Semantics (spec §3.4): string operations ignore case; a negative operator is the negation of its
//! positive one (so it is true on a null property); `-eq null` is true for absent or empty values;
//! a comparison applied directly to a string collection holds if any element satisfies it; `-all`
//! over an empty collection is true.

use std::collections::HashSet;

use regex::Regex;
use time::OffsetDateTime;

use crate::attrs::{AttrValue, AttributeSource};
use crate::datetime;
use crate::error::ExprError;
use crate::regex_dotnet;
use crate::rule::{PropertyType, Quantifier, RuleCmpOp, RuleExpr, RuleLiteral, RuleOperand};
use crate::text::{self, ci_contains, ci_ends_with, ci_eq, ci_starts_with};

#[derive(Clone, Debug)]
pub(crate) struct Program {
    root: Node,
    uses_now: bool,
}

#[derive(Clone, Debug)]
enum Source {
    /// A property, by its documented name.
    Attribute(String, PropertyType),
    Item,
    PlanField(String),
}

#[derive(Clone, Debug)]
enum DateTarget {
    Fixed(OffsetDateTime),
    Now(Option<String>),
}

#[derive(Clone, Debug)]
enum Test {
    IsNull,
    Equals(String),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    Match(Regex),
    In(HashSet<String>),
    Boolean(bool),
    Date(RuleCmpOp, DateTarget),
}

#[derive(Clone, Debug)]
enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Compare { source: Source, test: Test, negate: bool },
    Quantified { source: Source, all: bool, predicate: Box<Node> },
    DirectReports(String),
}

/// The element `-any`/`-all` is looking at.
#[derive(Clone, Copy)]
enum Item<'a> {
    Text(&'a str),
    Object(&'a std::collections::BTreeMap<String, String>),
}

fn literal_text(literal: &RuleLiteral) -> String {
    match literal {
        RuleLiteral::String(text) | RuleLiteral::DateTime(text) => text::fold(text).into_owned(),
        RuleLiteral::Number(number) => number.to_string(),
        RuleLiteral::Boolean(flag) => flag.to_string(),
        RuleLiteral::Null | RuleLiteral::Now { .. } | RuleLiteral::List(_) => String::new(),
    }
}

impl Program {
    pub(crate) fn build(expr: &RuleExpr) -> Result<Program, ExprError> {
        let mut uses_now = false;
        let root = build(expr, &mut uses_now)?;
        Ok(Program { root, uses_now })
    }

    pub(crate) fn uses_now(&self) -> bool {
        self.uses_now
    }

    pub(crate) fn matches(&self, object: &dyn AttributeSource, now: Option<OffsetDateTime>) -> bool {
        Env { object, now }.eval(&self.root, None)
    }
}

fn build(expr: &RuleExpr, uses_now: &mut bool) -> Result<Node, ExprError> {
    Ok(match expr {
        RuleExpr::Or(items) => Node::Or(items.iter().map(|item| build(item, uses_now)).collect::<Result<_, _>>()?),
        RuleExpr::And(items) => Node::And(items.iter().map(|item| build(item, uses_now)).collect::<Result<_, _>>()?),
        RuleExpr::Not(inner) => Node::Not(Box::new(build(inner, uses_now)?)),
        RuleExpr::DirectReports(manager) => Node::DirectReports(text::fold(manager).into_owned()),
        RuleExpr::Quantified { property, quantifier, predicate } => Node::Quantified {
            source: Source::Attribute(property.name.clone(), property.kind),
            all: *quantifier == Quantifier::All,
            predicate: Box::new(build(predicate, uses_now)?),
        },
        RuleExpr::Compare { operand, op, value } => {
            let (source, kind) = match operand {
                RuleOperand::Property(property) => {
                    (Source::Attribute(property.name.clone(), property.kind), property.kind)
                }
                RuleOperand::Item | RuleOperand::GroupObjectId => (Source::Item, PropertyType::String),
                RuleOperand::PlanField(field) => (Source::PlanField(field.clone()), PropertyType::String),
            };
            let (positive, negate) = op.positive();
            let test = if *value == RuleLiteral::Null {
                Test::IsNull
            } else {
                match (kind, positive) {
                    (PropertyType::Boolean, _) => Test::Boolean(literal_text(value).eq_ignore_ascii_case("true")),
                    (PropertyType::DateTime, _) => {
                        let target = match value {
                            RuleLiteral::Now { plus } => {
                                *uses_now = true;
                                DateTarget::Now(plus.clone())
                            }
                            RuleLiteral::String(text) | RuleLiteral::DateTime(text) => {
                                DateTarget::Fixed(datetime::parse_cdate(text).unwrap_or(OffsetDateTime::UNIX_EPOCH))
                            }
                            _ => DateTarget::Fixed(OffsetDateTime::UNIX_EPOCH),
                        };
                        Test::Date(positive, target)
                    }
                    (_, RuleCmpOp::StartsWith) => Test::StartsWith(literal_text(value)),
                    (_, RuleCmpOp::EndsWith) => Test::EndsWith(literal_text(value)),
                    (_, RuleCmpOp::Contains) => Test::Contains(literal_text(value)),
                    (_, RuleCmpOp::Match) => {
                        let RuleLiteral::String(pattern) = value else {
                            return Err(build_error("-match needs a string"));
                        };
                        Test::Match(regex_dotnet::compile(pattern, true).map_err(|err| build_error(&err.to_string()))?)
                    }
                    (_, RuleCmpOp::In) => {
                        let RuleLiteral::List(items) = value else { return Err(build_error("-in needs a list")) };
                        Test::In(items.iter().map(literal_text).collect())
                    }
                    _ => Test::Equals(literal_text(value)),
                }
            };
            Node::Compare { source, test, negate }
        }
    })
}

fn build_error(detail: &str) -> ExprError {
    ExprError::Rule {
        kind: crate::error::RuleErrorKind::QueryCompilationError,
        detail: detail.to_owned(),
        pos: crate::error::Pos { line: 1, column: 1 },
    }
}

struct Env<'a> {
    object: &'a dyn AttributeSource,
    now: Option<OffsetDateTime>,
}

impl Env<'_> {
    fn eval(&self, node: &Node, item: Option<Item<'_>>) -> bool {
        match node {
            Node::Or(items) => items.iter().any(|node| self.eval(node, item)),
            Node::And(items) => items.iter().all(|node| self.eval(node, item)),
            Node::Not(inner) => !self.eval(inner, item),
            Node::DirectReports(manager) => match self.object.get("manager") {
                Some(AttrValue::String(value)) => ci_eq(value.trim(), manager),
                _ => false,
            },
            Node::Quantified { source, all, predicate } => {
                let Source::Attribute(name, _) = source else { return false };
                let holds = |item: Item<'_>| self.eval(predicate, Some(item));
                match self.object.get(name) {
                    None => *all,
                    Some(AttrValue::Multi(values)) => {
                        if *all {
                            values.iter().all(|value| holds(Item::Text(value)))
                        } else {
                            values.iter().any(|value| holds(Item::Text(value)))
                        }
                    }
                    Some(AttrValue::Objects(objects)) => {
                        if *all {
                            objects.iter().all(|object| holds(Item::Object(object)))
                        } else {
                            objects.iter().any(|object| holds(Item::Object(object)))
                        }
                    }
                    Some(AttrValue::String(value)) => holds(Item::Text(&value)),
                    Some(_) => false,
                }
            }
            Node::Compare { source, test, negate } => self.compare(source, test, item) != *negate,
        }
    }

    /// The positive test on the source.
    fn compare(&self, source: &Source, test: &Test, item: Option<Item<'_>>) -> bool {
        match source {
            Source::Item => match item {
                Some(Item::Text(text)) => self.test_text(test, Some(text)),
                _ => false,
            },
            Source::PlanField(field) => match item {
                Some(Item::Object(object)) => {
                    let value =
                        object.iter().find(|(key, _)| key.eq_ignore_ascii_case(field)).map(|(_, value)| value.as_str());
                    self.test_text(test, value)
                }
                _ => false,
            },
            Source::Attribute(name, kind) => {
                let value = self.object.get(name);
                match kind {
                    PropertyType::Boolean => {
                        let flag = match &value {
                            Some(AttrValue::Boolean(flag)) => Some(*flag),
                            Some(AttrValue::String(text)) if text.eq_ignore_ascii_case("true") => Some(true),
                            Some(AttrValue::String(text)) if text.eq_ignore_ascii_case("false") => Some(false),
                            _ => None,
                        };
                        match test {
                            Test::IsNull => flag.is_none(),
                            Test::Boolean(expected) => flag == Some(*expected),
                            _ => false,
                        }
                    }
                    PropertyType::DateTime => {
                        let instant = match &value {
                            Some(AttrValue::String(text)) => datetime::parse_cdate(text),
                            _ => None,
                        };
                        match test {
                            Test::IsNull => instant.is_none(),
                            Test::Date(op, target) => {
                                let Some(instant) = instant else { return false };
                                let target = match target {
                                    DateTarget::Fixed(fixed) => *fixed,
                                    DateTarget::Now(plus) => {
                                        let Some(now) = self.now else { return false };
                                        match plus {
                                            Some(duration) => match datetime::add_iso_duration(now, duration) {
                                                Some(shifted) => shifted,
                                                None => return false,
                                            },
                                            None => now,
                                        }
                                    }
                                };
                                match op {
                                    RuleCmpOp::Le => instant <= target,
                                    RuleCmpOp::Ge => instant >= target,
                                    _ => instant == target,
                                }
                            }
                            _ => false,
                        }
                    }
                    _ => match value {
                        None => self.test_text(test, None),
                        Some(AttrValue::String(text)) => self.test_text(test, Some(&text)),
                        Some(AttrValue::Integer(number)) => self.test_text(test, Some(&number.to_string())),
                        Some(AttrValue::Boolean(flag)) => {
                            self.test_text(test, Some(if flag { "true" } else { "false" }))
                        }
                        Some(AttrValue::Multi(values)) => match test {
                            Test::IsNull => values.iter().all(|value| value.is_empty()),
                            _ => values.iter().any(|value| self.test_text(test, Some(value))),
                        },
                        Some(AttrValue::Objects(objects)) => matches!(test, Test::IsNull) && objects.is_empty(),
                    },
                }
            }
        }
    }

    fn test_text(&self, test: &Test, value: Option<&str>) -> bool {
        let value = value.filter(|value| !value.is_empty());
        let Some(value) = value else { return matches!(test, Test::IsNull) };
        match test {
            Test::IsNull => false,
            Test::Equals(expected) => ci_eq(value, expected),
            Test::StartsWith(prefix) => ci_starts_with(value, prefix),
            Test::EndsWith(suffix) => ci_ends_with(value, suffix),
            Test::Contains(needle) => ci_contains(value, needle),
            Test::Match(regex) => regex.is_match(value),
            Test::In(set) => set.contains(text::fold(value).as_ref()),
            Test::Boolean(expected) => value.eq_ignore_ascii_case(if *expected { "true" } else { "false" }),
            Test::Date(..) => false,
        }
    }
}
