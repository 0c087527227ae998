//! The evaluator of mapping expressions: one function per documented behaviour (spec §1.5–§1.7).
//!
//! Null propagates through single-source string transforms, multi-valued input to a unary string
//! transform is mapped value by value, IIF evaluates only the taken branch, and an error aborts the
//! whole mapping. `IgnoreFlowIfNullOrEmpty` unwinds as a distinct outcome, not as an error.

use std::borrow::Cow;
use std::cmp::Ordering;

use time::{OffsetDateTime, UtcOffset};

use crate::attrs::{AttrValue, AttributeSource};
use crate::context::EvalContext;
use crate::datetime::{self, Interval};
use crate::error::{ExprError, Pos};
use crate::mapping::Outcome;
use crate::mapping::ast::{CmpOp, CompiledRegex, Expr, ExprKind};
use crate::mapping::functions::{self, Function};
use crate::mapping::parse::{ReplaceMode, replace_mode};
use crate::mapping::value::{AlternativeSecurityId, Number, Value};
use crate::{regex_dotnet, text};

/// Why evaluation stopped early.
enum Abort {
    Error(ExprError),
    IgnoreFlow,
}

impl From<ExprError> for Abort {
    fn from(error: ExprError) -> Abort {
        Abort::Error(error)
    }
}

type Eval<T> = Result<T, Abort>;

pub(crate) fn evaluate(
    root: &Expr,
    attributes: &dyn AttributeSource,
    ctx: &EvalContext<'_>,
) -> Result<Outcome, ExprError> {
    let env = Env { attributes, ctx };
    match env.eval(root) {
        Ok(value) => Ok(Outcome::Value(value)),
        Err(Abort::IgnoreFlow) => Ok(Outcome::IgnoreFlow),
        Err(Abort::Error(error)) => Err(error),
    }
}

struct Env<'a> {
    attributes: &'a dyn AttributeSource,
    ctx: &'a EvalContext<'a>,
}

/// The function and position an error is reported against.
#[derive(Clone, Copy)]
struct Site {
    function: Function,
    pos: Pos,
}

impl Site {
    fn fail(self, message: impl Into<String>) -> Abort {
        Abort::Error(ExprError::Evaluation { function: self.function.name(), pos: self.pos, message: message.into() })
    }
}

fn attr_to_value(value: AttrValue<'_>) -> Value {
    match value {
        AttrValue::String(text) => Value::String(text.into_owned()),
        AttrValue::Boolean(flag) => Value::Boolean(flag),
        AttrValue::Integer(number) => Value::Number(Number::Integer(number)),
        AttrValue::Multi(values) => Value::Multi(values.into_owned()),
        AttrValue::Objects(objects) => {
            Value::Multi(objects.iter().map(|object| serde_json::to_string(object).unwrap_or_default()).collect())
        }
    }
}

fn is_null_or_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Multi(values) => values.is_empty(),
        Value::AlternativeSecurityIds(ids) => ids.is_empty(),
        _ => false,
    }
}

/// Reads a number written in the expression grammar (`-12`, `3.5`), as IIF comparisons do.
fn parse_number(text: &str) -> Option<Number> {
    let text = text.trim();
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match fraction {
        None => text.parse().ok().map(Number::Integer),
        Some(fraction) if !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().ok().map(Number::Decimal)
        }
        Some(_) => None,
    }
}

impl Env<'_> {
    fn eval(&self, expr: &Expr) -> Eval<Value> {
        match &expr.kind {
            ExprKind::Attribute(name) => Ok(self.attributes.get(name).map_or(Value::Null, attr_to_value)),
            ExprKind::String(text) => Ok(Value::String(text.clone())),
            ExprKind::Number(text) => Ok(Value::Number(parse_number(text).unwrap_or(Number::Integer(0)))),
            ExprKind::Hex(digits) => Ok(Value::Number(Number::Integer(i64::from_str_radix(digits, 16).unwrap_or(0)))),
            ExprKind::Identifier(name) => Ok(Value::String(
                functions::IDENTIFIERS
                    .iter()
                    .find(|known| known.eq_ignore_ascii_case(name))
                    .map_or_else(|| name.clone(), |known| (*known).to_owned()),
            )),
            ExprKind::Compare { op, left, right } => {
                let left_value = self.eval(left)?;
                let right_value = self.eval(right)?;
                compare(*op, &left_value, &right_value, expr.pos).map(Value::Boolean)
            }
            ExprKind::Call { function, args, regex } => {
                self.call(Site { function: *function, pos: expr.pos }, args, regex)
            }
        }
    }

    /// The value of argument `idx`; an omitted (or absent) argument is Null.
    fn arg(&self, args: &[Option<Expr>], idx: usize) -> Eval<Value> {
        match args.get(idx) {
            Some(Some(expr)) => self.eval(expr),
            _ => Ok(Value::Null),
        }
    }

    fn text_arg(&self, site: Site, args: &[Option<Expr>], idx: usize) -> Eval<Option<String>> {
        let value = self.arg(args, idx)?;
        text_of(site, &value)
    }

    fn int_arg(&self, site: Site, args: &[Option<Expr>], idx: usize, what: &str) -> Eval<Option<i64>> {
        let value = self.arg(args, idx)?;
        int_of(site, &value, what)
    }

    fn call(&self, site: Site, args: &[Option<Expr>], regex: &CompiledRegex) -> Eval<Value> {
        use Function as F;
        match site.function {
            F::AltSecIdFromNetId => {
                let Some(net_id) = self.text_arg(site, args, 0)? else { return Ok(Value::Null) };
                let Some(tenant) = self.ctx.source_tenant_id else {
                    return Err(site.fail("the evaluation context has no source tenant id"));
                };
                // The anchor key is built where every B2B user's is (`tenantsync_model::b2b`).
                Ok(Value::AlternativeSecurityIds(vec![AlternativeSecurityId {
                    kind: 6,
                    identity_provider: tenant.to_owned(),
                    key: tenantsync_model::b2b::alternative_security_key(&net_id),
                }]))
            }
            F::Append => {
                let suffix = self.text_arg(site, args, 1)?.unwrap_or_default();
                let source = self.arg(args, 0)?;
                map_text(site, source, |text| Ok(Value::String(format!("{text}{suffix}"))))
            }
            F::AppRoleAssignmentsComplex | F::AssertiveAppRoleAssignmentsComplex => {
                // Without the role catalogue, the assignments flow as the role values themselves.
                Ok(match self.arg(args, 0)? {
                    Value::Null => Value::Null,
                    Value::Multi(values) => Value::Multi(values),
                    other => Value::Multi(text_of(site, &other)?.into_iter().collect()),
                })
            }
            F::BitAnd => {
                let left = self.int_arg(site, args, 0, "value1")?;
                let right = self.int_arg(site, args, 1, "value2")?;
                Ok(match (left, right) {
                    (Some(left), Some(right)) => Value::Number(Number::Integer(left & right)),
                    _ => Value::Null,
                })
            }
            F::CBool => {
                let value = self.arg(args, 0)?;
                to_bool(site, &value).map(Value::Boolean)
            }
            F::CDate => {
                let value = self.arg(args, 0)?;
                Ok(datetime_of(site, &value)?.map_or(Value::Null, Value::DateTime))
            }
            F::Coalesce => {
                for idx in 0..args.len() {
                    let value = self.arg(args, idx)?;
                    if value != Value::Null {
                        return Ok(value);
                    }
                }
                Ok(Value::Null)
            }
            F::ConvertFromBase64 => {
                let encoding = self.text_arg(site, args, 1)?.unwrap_or_else(|| "Unicode".to_owned());
                let source = self.arg(args, 0)?;
                map_text(site, source, |encoded| {
                    let bytes =
                        text::base64_decode(encoded).ok_or_else(|| site.fail("the source is not valid base64"))?;
                    let decoded = match encoding.to_ascii_lowercase().as_str() {
                        "unicode" => {
                            if bytes.len() % 2 != 0 {
                                return Err(site.fail("the decoded bytes are not UTF-16"));
                            }
                            let units: Vec<u16> =
                                bytes.chunks(2).map(|pair| u16::from_le_bytes([pair[0], pair[1]])).collect();
                            String::from_utf16(&units).map_err(|_| site.fail("the decoded bytes are not UTF-16"))?
                        }
                        "utf8" => String::from_utf8(bytes).map_err(|_| site.fail("the decoded bytes are not UTF-8"))?,
                        "ascii" => bytes.iter().map(|&byte| if byte < 128 { byte as char } else { '?' }).collect(),
                        other => {
                            return Err(site.fail(format!("unknown encoding '{other}' (use Unicode, UTF8 or ASCII)")));
                        }
                    };
                    Ok(Value::String(decoded))
                })
            }
            F::ConvertToBase64 => {
                let source = self.arg(args, 0)?;
                map_text(site, source, |text| Ok(Value::String(text::base64_encode(&text::utf16le_bytes(text)))))
            }
            F::ConvertToUtf8Hex => {
                let source = self.arg(args, 0)?;
                map_text(site, source, |text| Ok(Value::String(text::upper_hex(text.as_bytes()))))
            }
            F::Count => Ok(Value::Number(Number::Integer(match self.arg(args, 0)? {
                Value::Null => 0,
                Value::Multi(values) => values.len() as i64,
                Value::AlternativeSecurityIds(ids) => ids.len() as i64,
                _ => 1,
            }))),
            F::CStr => {
                let value = self.arg(args, 0)?;
                Ok(text_of(site, &value)?.map_or(Value::Null, Value::String))
            }
            F::DateAdd => {
                let interval = self.interval_arg(site, args, 0)?;
                let amount = self.int_arg(site, args, 1, "value")?;
                let date = self.arg(args, 2)?;
                let (Some(amount), Some(date)) = (amount, datetime_of(site, &date)?) else { return Ok(Value::Null) };
                datetime::date_add(interval, amount, date)
                    .map(Value::DateTime)
                    .ok_or_else(|| site.fail("the result is out of the supported date range"))
            }
            F::DateDiff => {
                let interval = self.interval_arg(site, args, 0)?;
                let first = self.arg(args, 1)?;
                let second = self.arg(args, 2)?;
                let (Some(first), Some(second)) = (datetime_of(site, &first)?, datetime_of(site, &second)?) else {
                    return Ok(Value::Null);
                };
                Ok(Value::Number(Number::Integer(datetime::date_diff(interval, first, second))))
            }
            F::DateFromNum => {
                let Some(ticks) = self.int_arg(site, args, 0, "value")? else { return Ok(Value::Null) };
                datetime::from_filetime(ticks)
                    .map(Value::DateTime)
                    .ok_or_else(|| site.fail(format!("{ticks} is out of the supported date range")))
            }
            F::DnComponent => {
                let Some(dn) = self.text_arg(site, args, 0)? else { return Ok(Value::Null) };
                let index = self.int_arg(site, args, 1, "component number")?.unwrap_or(0);
                Ok(dn_component(&dn, index).map_or(Value::Null, Value::String))
            }
            F::Error => {
                let message = self.text_arg(site, args, 0)?.unwrap_or_default();
                Err(Abort::Error(ExprError::Raised { message, pos: site.pos }))
            }
            F::FormatDateTime => self.format_date_time(site, args),
            F::Guid => {
                let high = self.ctx.rng.next_u64();
                let low = self.ctx.rng.next_u64();
                let mut bytes = [0u8; 16];
                bytes[..8].copy_from_slice(&high.to_be_bytes());
                bytes[8..].copy_from_slice(&low.to_be_bytes());
                bytes[6] = (bytes[6] & 0x0F) | 0x40;
                bytes[8] = (bytes[8] & 0x3F) | 0x80;
                let hex = text::upper_hex(&bytes).to_ascii_lowercase();
                Ok(Value::String(format!(
                    "{}-{}-{}-{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                )))
            }
            F::IgnoreFlowIfNullOrEmpty => {
                let value = self.arg(args, 0)?;
                if is_null_or_empty(&value) { Err(Abort::IgnoreFlow) } else { Ok(value) }
            }
            F::Iif => {
                if let Some(Some(condition)) = args.first() {
                    let mut empty_attribute = None;
                    condition.visit_attributes(&mut |name| {
                        if empty_attribute.is_none() {
                            let value = self.attributes.get(name).map_or(Value::Null, attr_to_value);
                            if is_null_or_empty(&value) {
                                empty_attribute = Some(name.to_owned());
                            }
                        }
                    });
                    if let Some(name) = empty_attribute {
                        return Err(site.fail(format!(
                            "the condition reads [{name}], which is null or empty (IIF can't test empty attributes; use Switch([{name}], ...) instead)"
                        )));
                    }
                }
                let condition = self.arg(args, 0)?;
                let branch = if to_bool(site, &condition)? { 1 } else { 2 };
                self.arg(args, branch)
            }
            F::InStr => self.in_str(site, args),
            F::IsNull => Ok(Value::Boolean(self.arg(args, 0)? == Value::Null)),
            F::IsNullOrEmpty => Ok(Value::Boolean(is_null_or_empty(&self.arg(args, 0)?))),
            F::IsPresent => Ok(Value::Boolean(!is_null_or_empty(&self.arg(args, 0)?))),
            F::IsString => Ok(Value::Boolean(matches!(
                self.arg(args, 0)?,
                Value::String(_) | Value::Number(_) | Value::Boolean(_) | Value::DateTime(_)
            ))),
            F::Item => {
                let collection = self.arg(args, 0)?;
                let index = self.int_arg(site, args, 1, "index")?;
                let values = match collection {
                    Value::Null => return Ok(Value::Null),
                    Value::Multi(values) => values,
                    other => text_of(site, &other)?.into_iter().collect(),
                };
                let Some(index) = index else { return Err(site.fail("the index is null")) };
                if index < 1 || index as u64 > values.len() as u64 {
                    return Err(
                        site.fail(format!("index {index} is out of range 1..{} (Item is 1-based)", values.len()))
                    );
                }
                Ok(Value::String(values[index as usize - 1].clone()))
            }
            F::Join => {
                let separator = self.text_arg(site, args, 0)?.unwrap_or_default();
                let mut parts: Vec<String> = Vec::new();
                for idx in 1..args.len() {
                    match self.arg(args, idx)? {
                        Value::Null => {}
                        Value::Multi(values) => parts.extend(values.into_iter().filter(|value| !value.is_empty())),
                        other => {
                            if let Some(text) = text_of(site, &other)?.filter(|text| !text.is_empty()) {
                                parts.push(text);
                            }
                        }
                    }
                }
                Ok(Value::String(parts.join(&separator)))
            }
            F::Left => {
                let count = self.int_arg(site, args, 1, "NumChars")?.unwrap_or(0);
                let source = match self.arg(args, 0)? {
                    Value::Null => Value::String(String::new()),
                    other => other,
                };
                map_text(site, source, |text| {
                    Ok(Value::String(if count < 0 {
                        text.to_owned()
                    } else {
                        text.chars().take(count as usize).collect()
                    }))
                })
            }
            F::Mid => {
                let start = self.int_arg(site, args, 1, "start")?;
                let length = self.int_arg(site, args, 2, "length")?;
                let source = self.arg(args, 0)?;
                let (Some(start), Some(length)) = (start, length) else {
                    return Err(site.fail("start and length are required"));
                };
                if start < 1 {
                    return Err(site.fail(format!("start {start} is before the first character (Mid is 1-based)")));
                }
                if length < 0 {
                    return Err(site.fail(format!("length {length} is negative")));
                }
                map_text(site, source, |text| {
                    Ok(Value::String(text.chars().skip(start as usize - 1).take(length as usize).collect()))
                })
            }
            F::NormalizeDiacritics => {
                let source = self.arg(args, 0)?;
                map_text(site, source, |text| Ok(Value::String(text::normalize_diacritics(text))))
            }
            F::Not => Ok(Value::Boolean(match self.arg(args, 0)? {
                Value::Null => true,
                Value::Boolean(flag) => !flag,
                Value::Number(number) => number.as_f64() == 0.0,
                Value::String(text) => !text.trim().eq_ignore_ascii_case("true"),
                Value::Multi(_) | Value::AlternativeSecurityIds(_) => {
                    return Err(site.fail("multi-valued input is not supported"));
                }
                Value::DateTime(_) => return Err(site.fail("a date can't be negated")),
            })),
            F::Now => Ok(Value::DateTime(self.ctx.clock.now().to_offset(UtcOffset::UTC))),
            F::NumFromDate => {
                let value = self.arg(args, 0)?;
                let Some(instant) = datetime_of(site, &value)? else { return Ok(Value::Null) };
                datetime::to_filetime(instant)
                    .map(|ticks| Value::Number(Number::Integer(ticks)))
                    .ok_or_else(|| site.fail("the date is out of the FILETIME range"))
            }
            F::PCase => {
                let separators = self.text_arg(site, args, 1)?;
                let source = self.arg(args, 0)?;
                map_text(site, source, |text| Ok(Value::String(text::proper_case(text, separators.as_deref()))))
            }
            F::RandomString => self.random_string(site, args),
            F::Redact => self.arg(args, 0),
            F::RemoveDuplicates => Ok(match self.arg(args, 0)? {
                Value::Null => Value::Null,
                Value::Multi(values) => {
                    let mut unique: Vec<String> = Vec::with_capacity(values.len());
                    for value in values {
                        if !unique.contains(&value) {
                            unique.push(value);
                        }
                    }
                    Value::Multi(unique)
                }
                other => Value::Multi(text_of(site, &other)?.into_iter().collect()),
            }),
            F::Replace => self.replace(site, args, regex),
            F::SelectUniqueValue => {
                for idx in 0..args.len() {
                    let value = self.arg(args, idx)?;
                    let Some(candidate) = text_of(site, &value)? else { continue };
                    if !self.ctx.uniqueness.is_taken(&candidate) {
                        return Ok(Value::String(candidate));
                    }
                }
                Err(Abort::Error(ExprError::UniqueValueExhausted { pos: site.pos, n_candidates: args.len() }))
            }
            F::SingleAppRoleAssignment => Ok(match self.arg(args, 0)? {
                Value::Multi(values) => values.into_iter().next().map_or(Value::Null, Value::String),
                Value::Null => Value::Null,
                other => text_of(site, &other)?.map_or(Value::Null, Value::String),
            }),
            F::Split => {
                let delimiter = self.text_arg(site, args, 1)?.unwrap_or_default();
                let Some(source) = self.text_arg(site, args, 0)? else { return Ok(Value::Null) };
                if delimiter.is_empty() {
                    return Ok(Value::Multi(vec![source.trim().to_owned()]));
                }
                Ok(Value::Multi(source.split(delimiter.as_str()).map(|part| part.trim().to_owned()).collect()))
            }
            F::StringFromSid => {
                let Some(encoded) = self.text_arg(site, args, 0)? else { return Ok(Value::Null) };
                let bytes = text::base64_decode(&encoded).ok_or_else(|| site.fail("the SID is not valid base64"))?;
                sid_to_string(&bytes).map(Value::String).ok_or_else(|| site.fail("the bytes are not a valid SID"))
            }
            F::StripSpaces => {
                let source = self.arg(args, 0)?;
                map_text(site, source, |text| Ok(Value::String(text.replace(' ', ""))))
            }
            F::Switch => {
                let source = self.text_arg(site, args, 0)?.unwrap_or_default();
                let mut idx = 2;
                while idx + 1 < args.len() {
                    let key = self.text_arg(site, args, idx)?.unwrap_or_default();
                    if key == source {
                        return self.arg(args, idx + 1);
                    }
                    idx += 2;
                }
                self.arg(args, 1)
            }
            F::ToLower | F::ToUpper => {
                let culture = self.text_arg(site, args, 1)?;
                let source = self.arg(args, 0)?;
                let lower = site.function == F::ToLower;
                map_text(site, source, |text| {
                    Ok(Value::String(if lower {
                        text::to_lower(text, culture.as_deref())
                    } else {
                        text::to_upper(text, culture.as_deref())
                    }))
                })
            }
            F::Trim => {
                let source = self.arg(args, 0)?;
                map_text(site, source, |text| Ok(Value::String(text.trim().to_owned())))
            }
            F::Word => {
                let number = self.int_arg(site, args, 1, "WordNumber")?.unwrap_or(0);
                let delimiters = self.text_arg(site, args, 2)?.unwrap_or_default();
                let Some(source) = self.text_arg(site, args, 0)? else { return Ok(Value::String(String::new())) };
                if number < 1 {
                    return Ok(Value::String(String::new()));
                }
                let word = source
                    .split(|ch| delimiters.contains(ch))
                    .filter(|word| !word.is_empty())
                    .nth(number as usize - 1)
                    .unwrap_or("");
                Ok(Value::String(word.to_owned()))
            }
        }
    }

    fn interval_arg(&self, site: Site, args: &[Option<Expr>], idx: usize) -> Eval<Interval> {
        let interval = self.text_arg(site, args, idx)?.unwrap_or_default();
        Interval::parse(&interval)
            .ok_or_else(|| site.fail(format!("interval '{interval}' is not one of yyyy, m, d, ww, h, n, s")))
    }

    fn format_date_time(&self, site: Site, args: &[Option<Expr>]) -> Eval<Value> {
        // The legacy (Cloud Sync) form has no dateTimeStyles slot.
        let (input_idx, output_idx) = if args.len() == 3 { (1, 2) } else { (2, 3) };
        if args.len() == 4 {
            // dateTimeStyles: accepted and ignored (leading and trailing white space are always allowed).
            self.arg(args, 1)?;
        }
        let input_format = self.text_arg(site, args, input_idx)?;
        let output_format = self.text_arg(site, args, output_idx)?;
        let (Some(input_format), Some(output_format)) = (input_format, output_format) else {
            return Err(site.fail("inputFormat and outputFormat are required"));
        };
        let parsed = match self.arg(args, 0)? {
            Value::Null => return Ok(Value::Null),
            Value::DateTime(instant) => datetime::Parsed { instant, had_offset: true },
            other => {
                let Some(source) = text_of(site, &other)? else { return Ok(Value::Null) };
                let today = self.ctx.clock.now().to_offset(UtcOffset::UTC).date();
                datetime::parse_exact(&source, &input_format, today).map_err(|message| site.fail(message))?
            }
        };
        datetime::format_custom(parsed.instant, &output_format, parsed.had_offset)
            .map(Value::String)
            .map_err(|message| site.fail(message))
    }

    fn in_str(&self, site: Site, args: &[Option<Expr>]) -> Eval<Value> {
        let haystack = self.text_arg(site, args, 0)?;
        let needle = self.text_arg(site, args, 1)?;
        let start = self.int_arg(site, args, 2, "start")?.unwrap_or(1);
        let compare = self.text_arg(site, args, 3)?.unwrap_or_default();
        let text_compare = match compare.to_ascii_lowercase().as_str() {
            "" | "vbbinarycompare" | "0" => false,
            "vbtextcompare" | "1" => true,
            other => return Err(site.fail(format!("compare type '{other}' is not vbBinaryCompare or vbTextCompare"))),
        };
        let (Some(haystack), Some(needle)) = (haystack, needle) else { return Ok(Value::Null) };
        if start < 1 {
            return Err(site.fail(format!("start {start} is before the first character (InStr is 1-based)")));
        }
        let fold = |text: &str| -> Vec<char> {
            if text_compare {
                text.chars().map(|ch| text::lower_char(ch, false)).collect()
            } else {
                text.chars().collect()
            }
        };
        let haystack = fold(&haystack);
        let needle = fold(&needle);
        let start_idx = (start - 1) as usize;
        if start_idx > haystack.len() {
            return Ok(Value::Number(Number::Integer(0)));
        }
        if needle.is_empty() {
            return Ok(Value::Number(Number::Integer(start)));
        }
        let found = (start_idx..=haystack.len().saturating_sub(needle.len()))
            .find(|&idx| haystack.len() >= needle.len() && haystack[idx..idx + needle.len()] == needle[..]);
        Ok(Value::Number(Number::Integer(found.map_or(0, |idx| idx as i64 + 1))))
    }

    fn random_string(&self, site: Site, args: &[Option<Expr>]) -> Eval<Value> {
        const SPECIALS: &str = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/";
        let mut counts = [0i64; 5];
        let names = ["Length", "MinimumNumbers", "MinimumSpecialCharacters", "MinimumCapital", "MinimumLowerCase"];
        for (idx, name) in names.iter().enumerate() {
            counts[idx] =
                self.int_arg(site, args, idx, name)?.ok_or_else(|| site.fail(format!("{name} is required")))?;
            if counts[idx] < 0 {
                return Err(site.fail(format!("{name} is negative")));
            }
        }
        let avoid = self.text_arg(site, args, 5)?.unwrap_or_default();
        let length = counts[0];
        if length > 256 {
            return Err(site.fail(format!("Length {length} is over the limit of 256")));
        }
        let minimums = counts[1..].iter().fold(0i64, |sum, count| sum.saturating_add(*count));
        if length < minimums {
            return Err(site.fail(format!("Length {length} is less than the sum of the minimums ({minimums})")));
        }
        let classes: [Vec<char>; 4] = [
            ('0'..='9').filter(|ch| !avoid.contains(*ch)).collect(),
            SPECIALS.chars().filter(|ch| !avoid.contains(*ch)).collect(),
            ('A'..='Z').filter(|ch| !avoid.contains(*ch)).collect(),
            ('a'..='z').filter(|ch| !avoid.contains(*ch)).collect(),
        ];
        let pick = |set: &[char]| set[(self.ctx.rng.next_u64() % set.len() as u64) as usize];
        let mut out: Vec<char> = Vec::with_capacity(length as usize);
        for (class, minimum) in classes.iter().zip(&counts[1..]) {
            if *minimum > 0 && class.is_empty() {
                return Err(site.fail("CharactersToAvoid removes a whole required character class"));
            }
            for _ in 0..*minimum {
                out.push(pick(class));
            }
        }
        let all: Vec<char> = classes.concat();
        if all.is_empty() && out.len() < length as usize {
            return Err(site.fail("CharactersToAvoid removes every character"));
        }
        while out.len() < length as usize {
            out.push(pick(&all));
        }
        for idx in (1..out.len()).rev() {
            let other = (self.ctx.rng.next_u64() % (idx as u64 + 1)) as usize;
            out.swap(idx, other);
        }
        Ok(Value::String(out.into_iter().collect()))
    }

    fn replace(&self, site: Site, args: &[Option<Expr>], cached: &CompiledRegex) -> Eval<Value> {
        let Some(mode) = replace_mode(args) else { return Err(site.fail("unsupported combination of parameters")) };
        let regex = match mode {
            ReplaceMode::Literal | ReplaceMode::Template => None,
            _ => Some(match &cached.0 {
                Some(regex) => Cow::Borrowed(regex.as_ref()),
                None => {
                    let pattern = self.text_arg(site, args, 2)?.unwrap_or_default();
                    Cow::Owned(
                        regex_dotnet::compile(&pattern, false)
                            .map_err(|error| ExprError::Regex { error, pos: site.pos })?,
                    )
                }
            }),
        };
        let source = self.arg(args, 0)?;
        match mode {
            ReplaceMode::Literal => {
                let old = self.text_arg(site, args, 1)?;
                let replacement = self.text_arg(site, args, 4)?.unwrap_or_default();
                map_text(site, source, |text| match &old {
                    Some(old) if old.is_empty() => Err(site.fail("oldValue is empty")),
                    Some(old) => Ok(Value::String(text.replace(old.as_str(), &replacement))),
                    None => Ok(Value::String(text.to_owned())),
                })
            }
            ReplaceMode::Template => {
                let old = self.text_arg(site, args, 1)?.unwrap_or_default();
                let template = self.text_arg(site, args, 6)?.unwrap_or_default();
                map_text(site, source, |text| {
                    if old.is_empty() {
                        return Err(site.fail("oldValue is empty"));
                    }
                    Ok(Value::String(template.replace(old.as_str(), text)))
                })
            }
            ReplaceMode::Regex => {
                let regex = regex.as_deref().ok_or_else(|| site.fail("missing regex"))?;
                let replacement =
                    regex_dotnet::translate_replacement(&self.text_arg(site, args, 4)?.unwrap_or_default());
                map_text(site, source, |text| {
                    Ok(Value::String(regex.replace_all(text, replacement.as_str()).into_owned()))
                })
            }
            ReplaceMode::RegexGroup => {
                let regex = regex.as_deref().ok_or_else(|| site.fail("missing regex"))?;
                let group = self.text_arg(site, args, 3)?.unwrap_or_default();
                let replacement = self.text_arg(site, args, 4)?.unwrap_or_default();
                if !regex.capture_names().flatten().any(|name| name == group) {
                    return Err(site.fail(format!("the regex has no group named '{group}'")));
                }
                map_text(site, source, |text| {
                    let mut out = String::with_capacity(text.len());
                    let mut last = 0;
                    for captures in regex.captures_iter(text) {
                        if let Some(span) = captures.name(&group) {
                            if span.start() < last {
                                continue;
                            }
                            out.push_str(&text[last..span.start()]);
                            out.push_str(&replacement);
                            last = span.end();
                        }
                    }
                    out.push_str(&text[last..]);
                    Ok(Value::String(out))
                })
            }
            ReplaceMode::RegexFallback => {
                if !is_null_or_empty(&source) {
                    return Ok(source);
                }
                let regex = regex.as_deref().ok_or_else(|| site.fail("missing regex"))?;
                let group = self.text_arg(site, args, 3)?.unwrap_or_default();
                let Some(fallback) = self.text_arg(site, args, 5)? else { return Ok(Value::Null) };
                Ok(regex
                    .captures(&fallback)
                    .and_then(|captures| captures.name(&group).map(|span| span.as_str().to_owned()))
                    .map_or(Value::Null, Value::String))
            }
        }
    }
}

/// Renders a single value as text; Null is `None`; multi-valued input is an error.
fn text_of(site: Site, value: &Value) -> Eval<Option<String>> {
    match value {
        Value::Multi(_) | Value::AlternativeSecurityIds(_) => {
            Err(site.fail("multi-valued input is not supported here (use Join or Item)"))
        }
        other => Ok(other.render_text()),
    }
}

fn int_of(site: Site, value: &Value, what: &str) -> Eval<Option<i64>> {
    match value {
        Value::Null => Ok(None),
        Value::Number(Number::Integer(integer)) => Ok(Some(*integer)),
        Value::Number(Number::Decimal(decimal)) if decimal.fract() == 0.0 && decimal.abs() < 9.0e18 => {
            Ok(Some(*decimal as i64))
        }
        Value::String(text) => match parse_number(text) {
            Some(Number::Integer(integer)) => Ok(Some(integer)),
            _ => Err(site.fail(format!("{what} '{text}' is not an integer"))),
        },
        other => Err(site.fail(format!("{what} must be an integer, found {}", describe(other)))),
    }
}

fn datetime_of(site: Site, value: &Value) -> Eval<Option<OffsetDateTime>> {
    match value {
        Value::Null => Ok(None),
        Value::DateTime(instant) => Ok(Some(*instant)),
        Value::String(text) => {
            datetime::parse_cdate(text).map(Some).ok_or_else(|| site.fail(format!("'{text}' is not a valid date")))
        }
        other => Err(site.fail(format!("expected a date, found {}", describe(other)))),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::String(_) => "a string",
        Value::Boolean(_) => "a Boolean",
        Value::Number(_) => "a number",
        Value::DateTime(_) => "a date",
        Value::Multi(_) => "a multi-valued attribute",
        Value::AlternativeSecurityIds(_) => "alternative security ids",
    }
}

/// CBool rules: Booleans pass, numbers are true when non-zero, `"true"`/`"false"` read ignoring
/// case, numeric strings like numbers, Null is false.
fn to_bool(site: Site, value: &Value) -> Eval<bool> {
    match value {
        Value::Null => Ok(false),
        Value::Boolean(flag) => Ok(*flag),
        Value::Number(number) => Ok(number.as_f64() != 0.0),
        Value::String(text) => {
            let trimmed = text.trim();
            if trimmed.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if trimmed.eq_ignore_ascii_case("false") {
                Ok(false)
            } else if let Some(number) = parse_number(trimmed) {
                Ok(number.as_f64() != 0.0)
            } else {
                Err(site.fail(format!("'{text}' is not a Boolean or a number")))
            }
        }
        other => Err(site.fail(format!("{} can't be converted to a Boolean", describe(other)))),
    }
}

/// Applies a string transform to a single value, or to each value of a multi-valued one.
fn map_text(site: Site, source: Value, mut transform: impl FnMut(&str) -> Eval<Value>) -> Eval<Value> {
    match source {
        Value::Null => Ok(Value::Null),
        Value::String(text) => transform(&text),
        Value::Multi(values) => {
            let mut out = Vec::with_capacity(values.len());
            for value in &values {
                match transform(value)? {
                    Value::Null => {}
                    other => out.extend(text_of(site, &other)?),
                }
            }
            Ok(Value::Multi(out))
        }
        other => match text_of(site, &other)? {
            Some(text) => transform(&text),
            None => Ok(Value::Null),
        },
    }
}

/// IIF/CBool comparisons (spec §1.6 IIF): numbers numerically, dates by instant, otherwise
/// rendered strings ordinally. Null equals only Null; ordering a Null is an error.
fn compare(op: CmpOp, left: &Value, right: &Value, pos: Pos) -> Eval<bool> {
    let fail = |message: &str| Abort::Error(ExprError::Comparison { pos, message: message.to_owned() });
    if matches!(left, Value::Multi(_) | Value::AlternativeSecurityIds(_))
        || matches!(right, Value::Multi(_) | Value::AlternativeSecurityIds(_))
    {
        return Err(fail("a multi-valued attribute can't be compared"));
    }
    if *left == Value::Null || *right == Value::Null {
        let both = *left == Value::Null && *right == Value::Null;
        return match op {
            CmpOp::Eq => Ok(both),
            CmpOp::Ne => Ok(!both),
            _ => Err(fail("a null value can't be ordered")),
        };
    }
    let number = |value: &Value| match value {
        Value::Number(number) => Some(*number),
        Value::String(text) => parse_number(text),
        _ => None,
    };
    let ordering = match (left, right) {
        (Value::DateTime(a), Value::DateTime(b)) => a.cmp(b),
        _ => match (number(left), number(right)) {
            (Some(Number::Integer(a)), Some(Number::Integer(b))) => a.cmp(&b),
            (Some(a), Some(b)) => a.as_f64().partial_cmp(&b.as_f64()).unwrap_or(Ordering::Equal),
            _ => left.render_text().unwrap_or_default().cmp(&right.render_text().unwrap_or_default()),
        },
    };
    Ok(match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
    })
}

/// The value of the `index`-th (1-based) RDN of a distinguished name, honouring `\,` escapes.
fn dn_component(dn: &str, index: i64) -> Option<String> {
    if index < 1 {
        return None;
    }
    let mut components = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for ch in dn.chars() {
        if escaped {
            current.push(ch);
            escaped = false;
        } else if ch == '\\' {
            current.push(ch);
            escaped = true;
        } else if ch == ',' {
            components.push(std::mem::take(&mut current));
        } else {
            current.push(ch);
        }
    }
    components.push(current);
    let component = components.get(index as usize - 1)?;
    let value = component.split_once('=').map_or(component.as_str(), |(_, value)| value);
    Some(value.trim().to_owned())
}

/// A binary SID as `S-1-5-21-...`.
fn sid_to_string(bytes: &[u8]) -> Option<String> {
    let revision = *bytes.first()?;
    let n_sub = usize::from(*bytes.get(1)?);
    if bytes.len() != 8 + 4 * n_sub {
        return None;
    }
    let authority = bytes[2..8].iter().fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte));
    let mut out = format!("S-{revision}-{authority}");
    for chunk in bytes[8..].chunks(4) {
        out.push_str(&format!("-{}", u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])));
    }
    Some(out)
}
