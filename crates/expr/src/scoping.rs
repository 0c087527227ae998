//! Scoping filters (spec Part 2) in Microsoft Graph's JSON shape: OR across `groups`, AND across a
//! group's `clauses`, one attribute/operator/value per clause.
//!
//! [`ScopingFilter`] is the serde wire type; [`ScopingFilter::compile`] validates operators, values
//! and regular expressions once, and [`CompiledFilter::in_scope`] evaluates an object. Every
//! operator except IS NULL and IS NOT NULL is false on a null or empty attribute, and a clause on a
//! multi-valued attribute is false. Only `groups` decides scope; `inputFilterGroups` and
//! `categoryFilterGroups` are carried through serde but not evaluated here.

use std::borrow::Cow;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::attrs::{AttrValue, AttributeSource};
use crate::error::{ExprError, suggest};
use crate::regex_dotnet;

/// Graph `filter`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopingFilter {
    #[serde(default)]
    pub groups: Vec<FilterGroup>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_filter_groups: Vec<FilterGroup>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category_filter_groups: Vec<FilterGroup>,
}

/// Graph `filterGroup`: its clauses must all hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub clauses: Vec<FilterClause>,
}

/// Graph `filterClause`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterClause {
    pub source_operand_name: String,
    pub operator_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_operand: Option<FilterOperand>,
}

/// Graph `filterOperand`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterOperand {
    #[serde(default)]
    pub values: Vec<String>,
}

impl ScopingFilter {
    /// Reads the Graph JSON form.
    pub fn from_json(json: &str) -> Result<ScopingFilter, ExprError> {
        serde_json::from_str(json).map_err(|err| ExprError::FilterJson { message: err.to_string() })
    }

    /// Reads an already-parsed JSON value.
    pub fn from_json_value(json: serde_json::Value) -> Result<ScopingFilter, ExprError> {
        serde_json::from_value(json).map_err(|err| ExprError::FilterJson { message: err.to_string() })
    }

    /// Validates every clause and prepares it for evaluation.
    pub fn compile(&self) -> Result<CompiledFilter, ExprError> {
        let mut groups = Vec::with_capacity(self.groups.len());
        for (group_idx, group) in self.groups.iter().enumerate() {
            let mut clauses = Vec::with_capacity(group.clauses.len());
            for (clause_idx, clause) in group.clauses.iter().enumerate() {
                let fail = |message: String| ExprError::Filter {
                    group: group_idx + 1,
                    clause: clause_idx + 1,
                    attribute: clause.source_operand_name.clone(),
                    operator: clause.operator_name.clone(),
                    message,
                };
                clauses.push(compile_clause(clause).map_err(fail)?);
            }
            groups.push(clauses);
        }
        Ok(CompiledFilter { groups })
    }
}

impl fmt::Display for ScopingFilter {
    /// The Graph JSON form, on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&json)
    }
}

impl std::str::FromStr for ScopingFilter {
    type Err = ExprError;
    fn from_str(json: &str) -> Result<ScopingFilter, ExprError> {
        ScopingFilter::from_json(json)
    }
}

/// The scoping operators (spec §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScopeOperator {
    Equals,
    NotEquals,
    IsTrue,
    IsFalse,
    IsNull,
    IsNotNull,
    RegexMatch,
    NotRegexMatch,
    GreaterThan,
    GreaterThanOrEquals,
    LessThan,
    LessThanOrEquals,
    Includes,
    EndsWith,
    /// `&`: the attribute value occurs in the clause value.
    ContainedIn,
    /// `!&`.
    NotContainedIn,
    IsIn,
    IsNotIn,
}

const OPERATOR_NAMES: &[(&str, ScopeOperator)] = &[
    ("EQUALS", ScopeOperator::Equals),
    ("NOT_EQUALS", ScopeOperator::NotEquals),
    ("IS_TRUE", ScopeOperator::IsTrue),
    ("IS_FALSE", ScopeOperator::IsFalse),
    ("IS_NULL", ScopeOperator::IsNull),
    ("IS_NOT_NULL", ScopeOperator::IsNotNull),
    ("REGEX_MATCH", ScopeOperator::RegexMatch),
    ("NOT_REGEX_MATCH", ScopeOperator::NotRegexMatch),
    ("GREATER_THAN", ScopeOperator::GreaterThan),
    ("GREATER_THAN_OR_EQUALS", ScopeOperator::GreaterThanOrEquals),
    ("LESS_THAN", ScopeOperator::LessThan),
    ("LESS_THAN_OR_EQUALS", ScopeOperator::LessThanOrEquals),
    ("INCLUDES", ScopeOperator::Includes),
    ("ENDS_WITH", ScopeOperator::EndsWith),
    ("&", ScopeOperator::ContainedIn),
    ("!&", ScopeOperator::NotContainedIn),
    ("IS_IN", ScopeOperator::IsIn),
    ("IS_NOT_IN", ScopeOperator::IsNotIn),
];

/// Listed by Microsoft for other flows but not supported in app provisioning scoping.
const UNSUPPORTED_OPERATORS: &[&str] = &["IS_MEMBER_OF", "ISMEMBEROF", "PRESENT", "VALID_CERT_MATCH", "!&L"];

impl ScopeOperator {
    /// Reads an operator name ignoring case, with spaces and underscores interchangeable.
    pub fn parse(name: &str) -> Result<ScopeOperator, String> {
        let normalized: String = name.split_whitespace().collect::<Vec<_>>().join("_").to_ascii_uppercase();
        if let Some((_, operator)) = OPERATOR_NAMES.iter().find(|(known, _)| *known == normalized) {
            return Ok(*operator);
        }
        if UNSUPPORTED_OPERATORS.contains(&normalized.as_str()) {
            return Err(format!("operator '{name}' is not supported for provisioning scoping filters"));
        }
        let names: Vec<&'static str> = OPERATOR_NAMES.iter().map(|(known, _)| *known).collect();
        Err(match suggest(&normalized, &names) {
            Some(close) => format!("unknown operator '{name}' (did you mean '{close}'?)"),
            None => format!("unknown operator '{name}'"),
        })
    }

    /// The canonical Graph spelling.
    pub fn name(self) -> &'static str {
        OPERATOR_NAMES.iter().find(|(_, operator)| *operator == self).map_or("", |(name, _)| name)
    }

    fn is_unary(self) -> bool {
        matches!(
            self,
            ScopeOperator::IsTrue | ScopeOperator::IsFalse | ScopeOperator::IsNull | ScopeOperator::IsNotNull
        )
    }
}

#[derive(Clone, Debug)]
enum Test {
    Unary(ScopeOperator),
    Text(ScopeOperator, String),
    Integer(ScopeOperator, i64),
    Regex { negate: bool, regex: Regex },
    List { negate: bool, values: Vec<String> },
}

#[derive(Clone, Debug)]
struct CompiledClause {
    attribute: String,
    test: Test,
}

fn compile_clause(clause: &FilterClause) -> Result<CompiledClause, String> {
    if clause.source_operand_name.trim().is_empty() {
        return Err("the clause has no sourceOperandName".to_owned());
    }
    let operator = ScopeOperator::parse(&clause.operator_name)?;
    let values = clause.target_operand.as_ref().map_or(&[][..], |operand| operand.values.as_slice());
    let single = || match values {
        [value] => Ok(value.clone()),
        [] => Err(format!("operator {} needs a value", operator.name())),
        _ => Err(format!("operator {} takes exactly one value, found {}", operator.name(), values.len())),
    };
    use ScopeOperator as Op;
    let test = match operator {
        // Unary operators ignore any values Graph sends along.
        _ if operator.is_unary() => Test::Unary(operator),
        Op::RegexMatch | Op::NotRegexMatch => {
            let regex = regex_dotnet::compile(&single()?, false).map_err(|err| err.to_string())?;
            Test::Regex { negate: operator == Op::NotRegexMatch, regex }
        }
        Op::GreaterThan | Op::GreaterThanOrEquals | Op::LessThan | Op::LessThanOrEquals => {
            let value = single()?;
            let integer = value.trim().parse::<i64>().map_err(|_| format!("value '{value}' is not an integer"))?;
            Test::Integer(operator, integer)
        }
        Op::IsIn | Op::IsNotIn => {
            if values.is_empty() {
                return Err(format!("operator {} needs at least one value", operator.name()));
            }
            Test::List { negate: operator == Op::IsNotIn, values: values.to_vec() }
        }
        _ => Test::Text(operator, single()?),
    };
    Ok(CompiledFilter::clause(clause.source_operand_name.clone(), test))
}

/// What a clause sees of an attribute.
enum Input<'a> {
    Empty,
    Text(Cow<'a, str>),
    Boolean(bool),
    Multi,
}

fn input(value: Option<AttrValue<'_>>) -> Input<'_> {
    match value {
        None => Input::Empty,
        Some(AttrValue::String(text)) if text.is_empty() => Input::Empty,
        Some(AttrValue::String(text)) => Input::Text(text),
        Some(AttrValue::Boolean(flag)) => Input::Boolean(flag),
        Some(AttrValue::Integer(number)) => Input::Text(Cow::Owned(number.to_string())),
        Some(AttrValue::Multi(values)) if values.is_empty() => Input::Empty,
        Some(AttrValue::Objects(objects)) if objects.is_empty() => Input::Empty,
        Some(AttrValue::Multi(_) | AttrValue::Objects(_)) => Input::Multi,
    }
}

/// A validated scoping filter.
#[derive(Clone, Debug)]
pub struct CompiledFilter {
    groups: Vec<Vec<CompiledClause>>,
}

impl CompiledFilter {
    fn clause(attribute: String, test: Test) -> CompiledClause {
        CompiledClause { attribute, test }
    }

    /// True when the object is in scope: no groups at all, or every clause of some group holds.
    pub fn in_scope(&self, object: &dyn AttributeSource) -> bool {
        self.groups.is_empty()
            || self.groups.iter().any(|clauses| clauses.iter().all(|clause| clause_holds(clause, object)))
    }

    /// Per group, per clause: whether it holds (for provisioning logs' `ScopeEvaluationResult`).
    pub fn explain(&self, object: &dyn AttributeSource) -> Vec<Vec<bool>> {
        self.groups.iter().map(|clauses| clauses.iter().map(|clause| clause_holds(clause, object)).collect()).collect()
    }
}

fn clause_holds(clause: &CompiledClause, object: &dyn AttributeSource) -> bool {
    use ScopeOperator as Op;
    let value = input(object.get(&clause.attribute));
    if let Test::Unary(operator @ (Op::IsNull | Op::IsNotNull)) = clause.test {
        let empty = matches!(value, Input::Empty);
        return match value {
            Input::Multi => false,
            _ => empty == (operator == Op::IsNull),
        };
    }
    let text = match value {
        Input::Empty | Input::Multi => return false,
        Input::Boolean(flag) => {
            if let Test::Unary(operator) = clause.test {
                return (operator == Op::IsTrue) == flag;
            }
            Cow::Borrowed(if flag { "True" } else { "False" })
        }
        Input::Text(text) => text,
    };
    match &clause.test {
        Test::Unary(Op::IsTrue) => text.trim().eq_ignore_ascii_case("true"),
        Test::Unary(Op::IsFalse) => text.trim().eq_ignore_ascii_case("false"),
        Test::Unary(_) => false,
        Test::Text(operator, expected) => match operator {
            Op::Equals => *text == **expected,
            Op::NotEquals => *text != **expected,
            Op::Includes => text.contains(expected.as_str()),
            Op::EndsWith => text.ends_with(expected.as_str()),
            Op::ContainedIn => expected.contains(&*text),
            Op::NotContainedIn => !expected.contains(&*text),
            _ => false,
        },
        Test::Integer(operator, expected) => {
            let Ok(actual) = text.trim().parse::<i64>() else { return false };
            match operator {
                Op::GreaterThan => actual > *expected,
                Op::GreaterThanOrEquals => actual >= *expected,
                Op::LessThan => actual < *expected,
                Op::LessThanOrEquals => actual <= *expected,
                _ => false,
            }
        }
        Test::Regex { negate, regex } => regex.is_match(&text) != *negate,
        Test::List { negate, values } => values.iter().any(|value| *value == *text) != *negate,
    }
}
