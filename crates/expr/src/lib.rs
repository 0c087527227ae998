//! The three small languages of Microsoft Entra ID provisioning, parsed once and evaluated many times:
//! attribute-mapping expressions ([`parse_mapping`], [`Mapping`]), scoping filters ([`ScopingFilter`],
//! [`CompiledFilter`]) and dynamic membership rules ([`Rule`]). The behaviour follows
//! `shared/reference/expressions.md`; where that spec records a Decision, the code follows it.
//!
//! The crate is pure: it does no IO, reads no clock and draws no randomness of its own. Time,
//! randomness and the "is this value already taken" question come in through [`EvalContext`], and
//! objects are read through the [`AttributeSource`] trait so callers adapt their own user type
//! without copying. [`jsonl`] holds the line-oriented entry points used by the CLI.
//!
//! ```
//! use tenantsync_expr::{Attributes, EvalContext, FixedClock, Outcome, Rule, ScopingFilter, SplitMix64, Value};
//!
//! let user = Attributes::new().with("givenName", "John").with("surname", "Doe").with("department", "Sales");
//!
//! // Mapping expressions: parse once, evaluate many times.
//! let mapping = tenantsync_expr::parse_mapping(r#"Join(", ", [surname], [givenName])"#)?;
//! let clock = FixedClock(time::OffsetDateTime::UNIX_EPOCH);
//! let rng = SplitMix64::new(SplitMix64::DEFAULT_SEED);
//! let ctx = EvalContext::new(&clock, &rng);
//! assert_eq!(mapping.evaluate(&user, &ctx)?, Outcome::Value(Value::String("Doe, John".into())));
//!
//! // Scoping filters in Graph's JSON shape: validate once, evaluate many times.
//! let filter = ScopingFilter::from_json(
//!     r#"{"groups": [{"clauses": [{"sourceOperandName": "department", "operatorName": "EQUALS",
//!                                  "targetOperand": {"values": ["Sales"]}}]}]}"#,
//! )?
//! .compile()?;
//! assert!(filter.in_scope(&user));
//!
//! // Dynamic membership rules: compile once, then match.
//! let rule = Rule::compile(r#"user.department -eq "sales" -and user.surname -startsWith "D""#)?;
//! assert!(rule.matches(&user));
//! # Ok::<(), tenantsync_expr::ExprError>(())
//! ```

mod attrs;
mod context;
mod datetime;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod jsonl;
mod mapping;
mod regex_dotnet;
mod rule;
mod scoping;
mod text;

pub use attrs::{AttrValue, AttributeSource, Attributes};
pub use context::{
    Clock, EvalContext, ExistingValues, FixedClock, NoExistingValues, RandomSource, SplitMix64, UniquenessProbe,
};
pub use error::{ExprError, Pos, RegexError, RuleErrorKind};
pub use mapping::{
    AlternativeSecurityId, CmpOp, Expr, ExprKind, Function, MAX_EXPRESSION_LEN, Mapping, Number, Outcome, Value,
    parse_mapping,
};
pub use rule::{
    MAX_RULE_LEN, ObjectKind, Property, PropertyType, Quantifier, Rule, RuleCmpOp, RuleExpr, RuleLiteral, RuleOperand,
    parse_rule,
};
pub use scoping::{CompiledFilter, FilterClause, FilterGroup, FilterOperand, ScopeOperator, ScopingFilter};
