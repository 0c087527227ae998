//! Property tests: printed trees parse back to the same tree, and evaluation never panics on
//! generated input.

use proptest::prelude::*;
use tenantsync_expr::{
    AttrValue, Attributes, CmpOp, EvalContext, Expr, ExprKind, FixedClock, Function, ObjectKind, Pos, Property,
    PropertyType, Quantifier, RuleCmpOp, RuleExpr, RuleLiteral, RuleOperand, ScopingFilter, SplitMix64, parse_mapping,
    parse_rule,
};
use time::macros::datetime;

const POS: Pos = Pos { line: 1, column: 1 };

fn node(kind: ExprKind) -> Expr {
    Expr { kind, pos: POS }
}

fn arb_leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        "[A-Za-z][A-Za-z0-9_. -]{0,10}".prop_map(|name| node(ExprKind::Attribute(name))),
        any::<String>().prop_map(|text| node(ExprKind::String(text))),
        "[ -~]{0,12}".prop_map(|text| node(ExprKind::String(text))),
        any::<i64>().prop_map(|number| node(ExprKind::Number(number.to_string()))),
        (-1000i64..1000, 0u32..1000)
            .prop_map(|(whole, fraction)| node(ExprKind::Number(format!("{whole}.{fraction}")))),
        (0u32..u32::MAX).prop_map(|number| node(ExprKind::Hex(format!("{number:X}")))),
        prop::sample::select(vec!["vbBinaryCompare", "vbtextcompare", "UTF8", "ASCII", "Unicode"])
            .prop_map(|name| node(ExprKind::Identifier(name.to_owned()))),
    ]
}

/// Functions whose arity is a plain range, with that range.
const SIMPLE: &[(Function, usize, usize)] = &[
    (Function::Append, 2, 2),
    (Function::CBool, 1, 1),
    (Function::CDate, 1, 1),
    (Function::Coalesce, 1, 4),
    (Function::ConvertToBase64, 1, 1),
    (Function::Count, 1, 1),
    (Function::CStr, 1, 1),
    (Function::DateAdd, 3, 3),
    (Function::DateDiff, 3, 3),
    (Function::DateFromNum, 1, 1),
    (Function::FormatDateTime, 3, 4),
    (Function::Guid, 0, 0),
    (Function::IgnoreFlowIfNullOrEmpty, 1, 1),
    (Function::Iif, 3, 3),
    (Function::InStr, 2, 4),
    (Function::IsNullOrEmpty, 1, 1),
    (Function::Item, 2, 2),
    (Function::Join, 2, 5),
    (Function::Left, 2, 2),
    (Function::Mid, 3, 3),
    (Function::NormalizeDiacritics, 1, 1),
    (Function::Not, 1, 1),
    (Function::Now, 0, 0),
    (Function::NumFromDate, 1, 1),
    (Function::PCase, 1, 2),
    (Function::RandomString, 5, 6),
    (Function::RemoveDuplicates, 1, 1),
    (Function::Split, 2, 2),
    (Function::StripSpaces, 1, 1),
    (Function::ToLower, 1, 2),
    (Function::Trim, 1, 1),
    (Function::Word, 3, 3),
    (Function::Switch, 4, 4),
    (Function::Switch, 6, 6),
];

fn arb_expr() -> impl Strategy<Value = Expr> {
    arb_leaf().prop_recursive(4, 48, 6, |inner| {
        let arg = prop_oneof![
            4 => inner.clone().prop_map(Some),
            1 => Just(None),
            1 => (inner.clone(), prop::sample::select(vec![CmpOp::Eq, CmpOp::Ne, CmpOp::Gt, CmpOp::Ge, CmpOp::Lt, CmpOp::Le]), inner.clone())
                .prop_filter("comparison operands are not comparisons", |(left, _, right)| {
                    !matches!(left.kind, ExprKind::Compare { .. }) && !matches!(right.kind, ExprKind::Compare { .. })
                })
                .prop_map(|(left, op, right)| Some(node(ExprKind::Compare { op, left: Box::new(left), right: Box::new(right) }))),
        ];
        (prop::sample::select(SIMPLE), prop::collection::vec(arg, 6)).prop_map(|((function, min, max), args)| {
            let count = if max == min { min } else { min + args.len() % (max - min + 1) };
            let args: Vec<Option<Expr>> = args.into_iter().take(count).collect();
            // `F()` always means zero arguments, so a lone omitted argument can't be written.
            let args = if args.len() == 1 && args[0].is_none() { vec![Some(node(ExprKind::String(String::new())))] } else { args };
            node(ExprKind::Call { function, args, regex: Default::default() })
        })
    })
}

fn arb_attributes() -> impl Strategy<Value = Attributes> {
    let value = prop_oneof![
        any::<String>().prop_map(|text| AttrValue::String(text.into())),
        "[0-9 -:/TZ]{0,20}".prop_map(|text| AttrValue::String(text.into())),
        any::<bool>().prop_map(AttrValue::Boolean),
        any::<i64>().prop_map(AttrValue::Integer),
        prop::collection::vec(any::<String>(), 0..3).prop_map(|values| AttrValue::Multi(values.into())),
    ];
    prop::collection::vec(("[a-c]", value), 0..4).prop_map(|entries| {
        let mut attributes = Attributes::new();
        for (name, value) in entries {
            attributes.insert(name, value);
        }
        attributes
    })
}

fn arb_source_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "Join(",
            "IIF(",
            "Switch(",
            "Replace(",
            "Mid(",
            "Left(",
            "DateAdd(",
            "FormatDateTime(",
            "CDate(",
            "Item(",
            "SelectUniqueValue(",
            "Word(",
            "InStr(",
            "RandomString(",
            "PCase(",
            ")",
            ",",
            " ",
            "=",
            "<>",
            ">",
            "[a]",
            "[b]",
            "[c]",
            "\"x\"",
            "\"\\\\d+\"",
            "\"yyyy\"",
            "\"d\"",
            "1",
            "-3",
            "0",
            "&HF",
            "vbTextCompare",
            "\"",
        ])
        .prop_map(str::to_owned),
        "[ -~]{1,3}",
    ];
    prop::collection::vec(token, 0..20).prop_map(|tokens| tokens.concat())
}

fn arb_rule_string() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[ -~]{0,10}"]
}

fn arb_rule_leaf() -> impl Strategy<Value = RuleExpr> {
    let property =
        prop::sample::select(vec!["city", "department", "jobTitle", "mail", "userType", "extensionAttribute3"])
            .prop_map(|name| Property { object: ObjectKind::User, name: name.to_owned(), kind: PropertyType::String });
    let text_op = prop::sample::select(vec![
        RuleCmpOp::Eq,
        RuleCmpOp::Ne,
        RuleCmpOp::StartsWith,
        RuleCmpOp::NotStartsWith,
        RuleCmpOp::EndsWith,
        RuleCmpOp::NotEndsWith,
        RuleCmpOp::Contains,
        RuleCmpOp::NotContains,
    ]);
    let scalar = prop_oneof![
        arb_rule_string().prop_map(RuleLiteral::String),
        any::<i64>().prop_map(RuleLiteral::Number),
        any::<bool>().prop_map(RuleLiteral::Boolean),
    ];
    prop_oneof![
        (property.clone(), text_op, scalar.clone()).prop_map(|(property, op, value)| RuleExpr::Compare {
            operand: RuleOperand::Property(property),
            op,
            value
        }),
        (property.clone(), prop::sample::select(vec![RuleCmpOp::Eq, RuleCmpOp::Ne])).prop_map(|(property, op)| {
            RuleExpr::Compare { operand: RuleOperand::Property(property), op, value: RuleLiteral::Null }
        }),
        (
            property.clone(),
            prop::sample::select(vec![RuleCmpOp::In, RuleCmpOp::NotIn]),
            prop::collection::vec(scalar, 0..4)
        )
            .prop_map(|(property, op, items)| RuleExpr::Compare {
                operand: RuleOperand::Property(property),
                op,
                value: RuleLiteral::List(items)
            }),
        (property, prop::sample::select(vec![RuleCmpOp::Match, RuleCmpOp::NotMatch]), "[a-z0-9^$.*]{0,6}")
            .prop_filter("valid regex", |(_, _, pattern)| regex::Regex::new(pattern).is_ok())
            .prop_map(|(property, op, pattern)| RuleExpr::Compare {
                operand: RuleOperand::Property(property),
                op,
                value: RuleLiteral::String(pattern)
            }),
        any::<bool>().prop_map(|flag| RuleExpr::Compare {
            operand: RuleOperand::Property(Property {
                object: ObjectKind::User,
                name: "accountEnabled".to_owned(),
                kind: PropertyType::Boolean
            }),
            op: RuleCmpOp::Eq,
            value: RuleLiteral::Boolean(flag),
        }),
        prop::sample::select(vec![None, Some("p1d"), Some("-P2W"), Some("pt12h")]).prop_map(|plus| RuleExpr::Compare {
            operand: RuleOperand::Property(Property {
                object: ObjectKind::User,
                name: "employeeHireDate".to_owned(),
                kind: PropertyType::DateTime
            }),
            op: RuleCmpOp::Ge,
            value: RuleLiteral::Now { plus: plus.map(str::to_owned) },
        }),
        (prop::sample::select(vec![Quantifier::Any, Quantifier::All]), arb_rule_string()).prop_map(
            |(quantifier, text)| {
                RuleExpr::Quantified {
                    property: Property {
                        object: ObjectKind::User,
                        name: "proxyAddresses".to_owned(),
                        kind: PropertyType::StringCollection,
                    },
                    quantifier,
                    predicate: Box::new(RuleExpr::Compare {
                        operand: RuleOperand::Item,
                        op: RuleCmpOp::StartsWith,
                        value: RuleLiteral::String(text),
                    }),
                }
            }
        ),
    ]
}

fn arb_rule() -> impl Strategy<Value = RuleExpr> {
    arb_rule_leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(RuleExpr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(RuleExpr::Or),
            inner.prop_map(|item| RuleExpr::Not(Box::new(item))),
        ]
    })
}

fn arb_filter() -> impl Strategy<Value = ScopingFilter> {
    let operator = prop_oneof![
        prop::sample::select(vec![
            "EQUALS",
            "NOT EQUALS",
            "IS TRUE",
            "IS_FALSE",
            "IS NULL",
            "IS NOT NULL",
            "REGEX MATCH",
            "NOT REGEX MATCH",
            "Greater_Than",
            "GREATER_THAN_OR_EQUALS",
            "Less_Than",
            "Includes",
            "ENDS_WITH",
            "&",
            "!&",
            "IS IN",
            "IS NOT IN",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ];
    let clause = (
        "[a-c]",
        operator,
        prop::option::of(prop::collection::vec(prop_oneof!["[0-9]{1,3}", "[ -~]{0,6}", any::<String>()], 0..3)),
    )
        .prop_map(|(attribute, operator, values)| tenantsync_expr::FilterClause {
            source_operand_name: attribute,
            operator_name: operator,
            target_operand: values.map(|values| tenantsync_expr::FilterOperand { values }),
        });
    let group = (prop::option::of(any::<String>()), prop::collection::vec(clause, 0..4))
        .prop_map(|(name, clauses)| tenantsync_expr::FilterGroup { name, clauses });
    (prop::collection::vec(group.clone(), 0..3), prop::collection::vec(group, 0..2)).prop_map(
        |(groups, input_filter_groups)| ScopingFilter {
            groups,
            input_filter_groups,
            category_filter_groups: Vec::new(),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn printed_mapping_parses_back(expr in arb_expr()) {
        let printed = expr.to_string();
        let parsed = parse_mapping(&printed);
        prop_assert!(parsed.is_ok(), "{printed:?}: {:?}", parsed.err());
        let mapping = parsed.unwrap();
        prop_assert_eq!(mapping.expr(), &expr, "{}", printed);
    }

    #[test]
    fn mapping_evaluation_never_panics(expr in arb_expr(), attributes in arb_attributes()) {
        let mapping = parse_mapping(&expr.to_string()).unwrap();
        let clock = FixedClock(datetime!(2021-07-02 15:33:38 UTC));
        let rng = SplitMix64::new(3);
        let ctx = EvalContext::new(&clock, &rng);
        let _ = mapping.evaluate(&attributes, &ctx);
    }

    #[test]
    fn mapping_parser_never_panics(source in arb_source_soup(), attributes in arb_attributes()) {
        if let Ok(mapping) = parse_mapping(&source) {
            let reparsed = parse_mapping(&mapping.to_string());
            prop_assert_eq!(reparsed.as_ref().ok(), Some(&mapping));
            let clock = FixedClock(datetime!(2021-07-02 15:33:38 UTC));
            let rng = SplitMix64::new(3);
            let _ = mapping.evaluate(&attributes, &EvalContext::new(&clock, &rng));
        }
    }

    #[test]
    fn printed_rule_parses_back(rule in arb_rule()) {
        let printed = rule.to_string();
        let parsed = parse_rule(&printed);
        prop_assert!(parsed.is_ok(), "{printed:?}: {:?}", parsed.err());
        prop_assert_eq!(parsed.unwrap(), rule, "{}", printed);
    }

    #[test]
    fn rule_evaluation_never_panics(rule in arb_rule(), attributes in arb_attributes()) {
        let compiled = tenantsync_expr::Rule::compile(&rule.to_string()).unwrap();
        let _ = compiled.matches(&attributes);
        let _ = compiled.matches_at(&attributes, datetime!(2024-01-01 0:00 UTC));
    }

    #[test]
    fn rule_parser_never_panics(text in "[ -~–“]{0,60}") {
        tenantsync_expr::fuzzing::check_rule(text.as_bytes());
    }

    #[test]
    fn printed_filter_parses_back(filter in arb_filter(), attributes in arb_attributes()) {
        let printed = filter.to_string();
        prop_assert_eq!(ScopingFilter::from_json(&printed).ok(), Some(filter.clone()));
        if let Ok(compiled) = filter.compile() {
            let _ = compiled.in_scope(&attributes);
        }
    }
}
