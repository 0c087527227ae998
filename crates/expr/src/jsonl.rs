//! Line-oriented JSON entry points for the CLI's `expr eval`, `scope test` and `rule test`.
//!
//! Each reads JSON lines and writes exactly one JSON line per non-blank input line, in order. A bad
//! line (invalid JSON, missing key, bad expression, filter or rule) produces `{"error": "..."}` and
//! processing goes on. This module does no IO beyond the reader and writer it is given.

use std::io::{BufRead, Write};

use serde_json::{Value as Json, json};
use time::OffsetDateTime;

use crate::attrs::Attributes;
use crate::context::{EvalContext, ExistingValues, FixedClock, SplitMix64};
use crate::mapping::{Outcome, parse_mapping};
use crate::rule::Rule;
use crate::scoping::ScopingFilter;

/// Options for [`expr_eval_lines`].
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// What `Now()` returns. The CLI passes the wall clock here (this crate never reads it); `None`
    /// makes `Now()` an error, unless the line itself has a `"now"` key (RFC 3339).
    pub now: Option<OffsetDateTime>,
    /// Seed for `Guid()` and `RandomString()`; `None` uses [`SplitMix64::DEFAULT_SEED`]. The
    /// generator is re-seeded for every line, so each line's result is reproducible on its own.
    pub seed: Option<u64>,
}

/// How many lines were answered, and how many of those were errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineStats {
    pub n_lines: usize,
    pub n_errors: usize,
}

fn run_lines(
    input: impl BufRead,
    mut output: impl Write,
    mut answer: impl FnMut(&Json) -> Result<Json, String>,
) -> std::io::Result<LineStats> {
    let mut stats = LineStats::default();
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        stats.n_lines += 1;
        let response = match serde_json::from_str::<Json>(&line) {
            Ok(request) if request.is_object() => answer(&request),
            Ok(_) => Err("each line must be a JSON object".to_owned()),
            Err(err) => Err(format!("invalid JSON: {err}")),
        };
        let response = response.unwrap_or_else(|message| {
            stats.n_errors += 1;
            json!({ "error": message })
        });
        serde_json::to_writer(&mut output, &response)?;
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(stats)
}

fn required<'a>(request: &'a Json, key: &str) -> Result<&'a Json, String> {
    request.get(key).filter(|value| !value.is_null()).ok_or_else(|| format!("missing key \"{key}\""))
}

fn attributes(request: &Json, key: &str) -> Result<Attributes, String> {
    match request.get(key) {
        None | Some(Json::Null) => Ok(Attributes::new()),
        Some(value) => Attributes::from_json(value).map_err(|err| err.to_string()),
    }
}

fn line_now(request: &Json) -> Result<Option<OffsetDateTime>, String> {
    match request.get("now") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(text)) => OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map(Some)
            .map_err(|err| format!("\"now\" is not an RFC 3339 date-time: {err}")),
        Some(_) => Err("\"now\" must be a string".to_owned()),
    }
}

/// Stands in when no time was supplied: `Now()` is refused before evaluation, so this only
/// supplies FormatDateTime's default date for inputs without a date part.
struct MissingClock;

impl crate::context::Clock for MissingClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }
}

/// `expr eval`: `{"expression", "attributes", "existing_target_values"?, "source_tenant_id"?, "now"?}`
/// to `{"result": ...}`, `{"ignore_flow": true}` or `{"error": ...}`.
pub fn expr_eval_lines(input: impl BufRead, output: impl Write, options: &EvalOptions) -> std::io::Result<LineStats> {
    run_lines(input, output, |request| {
        let expression = required(request, "expression")?.as_str().ok_or("\"expression\" must be a string")?;
        let attributes = attributes(request, "attributes")?;
        let existing = match request.get("existing_target_values") {
            None | Some(Json::Null) => ExistingValues::default(),
            Some(Json::Array(values)) => ExistingValues::new(values.iter().filter_map(Json::as_str)),
            Some(_) => return Err("\"existing_target_values\" must be a list of strings".to_owned()),
        };
        let tenant = request.get("source_tenant_id").and_then(Json::as_str);
        let now = line_now(request)?.or(options.now);
        let mapping = parse_mapping(expression).map_err(|err| err.to_string())?;
        let fixed_clock = now.map(FixedClock);
        let clock: &dyn crate::context::Clock = match &fixed_clock {
            Some(clock) => clock,
            None => &MissingClock,
        };
        if now.is_none() && mapping_calls_now(&mapping) {
            return Err("Now() needs the current time: pass it in the options or a \"now\" key".to_owned());
        }
        let rng = SplitMix64::new(options.seed.unwrap_or(SplitMix64::DEFAULT_SEED));
        let mut ctx = EvalContext::new(clock, &rng).with_uniqueness(&existing);
        if let Some(tenant) = tenant {
            ctx = ctx.with_source_tenant(tenant);
        }
        match mapping.evaluate(&attributes, &ctx).map_err(|err| err.to_string())? {
            Outcome::Value(value) => Ok(json!({ "result": value.to_json() })),
            Outcome::IgnoreFlow => Ok(json!({ "ignore_flow": true })),
        }
    })
}

fn mapping_calls_now(mapping: &crate::mapping::Mapping) -> bool {
    fn walk(expr: &crate::mapping::Expr) -> bool {
        match &expr.kind {
            crate::mapping::ExprKind::Call { function, args, .. } => {
                *function == crate::mapping::Function::Now || args.iter().flatten().any(walk)
            }
            crate::mapping::ExprKind::Compare { left, right, .. } => walk(left) || walk(right),
            _ => false,
        }
    }
    walk(mapping.expr())
}

/// `scope test`: `{"filter": <Graph filter>, "user": {...}}` to `{"in_scope": bool}` or `{"error": ...}`.
pub fn scope_test_lines(input: impl BufRead, output: impl Write) -> std::io::Result<LineStats> {
    run_lines(input, output, |request| {
        let filter =
            ScopingFilter::from_json_value(required(request, "filter")?.clone()).map_err(|err| err.to_string())?;
        let compiled = filter.compile().map_err(|err| err.to_string())?;
        let user = attributes(request, "user")?;
        Ok(json!({ "in_scope": compiled.in_scope(&user) }))
    })
}

/// `rule test`: `{"rule": "...", "user": {...}, "now"?}` to `{"member": bool}` or `{"error": ...}`.
pub fn rule_test_lines(input: impl BufRead, output: impl Write) -> std::io::Result<LineStats> {
    run_lines(input, output, |request| {
        let text = required(request, "rule")?.as_str().ok_or("\"rule\" must be a string")?;
        let rule = Rule::compile(text).map_err(|err| err.to_string())?;
        let user = attributes(request, "user")?;
        let member = match line_now(request)? {
            Some(now) => rule.matches_at(&user, now),
            None if rule.uses_now() => {
                return Err("the rule uses system.now: add a \"now\" key (RFC 3339)".to_owned());
            }
            None => rule.matches(&user),
        };
        Ok(json!({ "member": member }))
    })
}
