//! The function catalogue of mapping expressions: names and arities (spec §1.6–§1.8).
//!
//! Names are matched ignoring case (the docs write both `Switch(` and `switch(`). Semantics live in
//! `eval.rs`; this module only says what exists and how many arguments it takes.

/// Every function a mapping expression may call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    AltSecIdFromNetId,
    Append,
    AppRoleAssignmentsComplex,
    AssertiveAppRoleAssignmentsComplex,
    BitAnd,
    CBool,
    CDate,
    Coalesce,
    ConvertFromBase64,
    ConvertToBase64,
    ConvertToUtf8Hex,
    Count,
    CStr,
    DateAdd,
    DateDiff,
    DateFromNum,
    DnComponent,
    Error,
    FormatDateTime,
    Guid,
    IgnoreFlowIfNullOrEmpty,
    Iif,
    InStr,
    IsNull,
    IsNullOrEmpty,
    IsPresent,
    IsString,
    Item,
    Join,
    Left,
    Mid,
    NormalizeDiacritics,
    Not,
    Now,
    NumFromDate,
    PCase,
    RandomString,
    Redact,
    RemoveDuplicates,
    Replace,
    SelectUniqueValue,
    SingleAppRoleAssignment,
    Split,
    StringFromSid,
    StripSpaces,
    Switch,
    ToLower,
    ToUpper,
    Trim,
    Word,
}

/// How many arguments (slots, including omitted ones) a function takes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arity {
    pub(crate) min: usize,
    pub(crate) max: Option<usize>,
    pub(crate) even: bool,
    pub(crate) text: &'static str,
}

const fn exactly(count: usize, text: &'static str) -> Arity {
    Arity { min: count, max: Some(count), even: false, text }
}

const fn between(min: usize, max: usize, text: &'static str) -> Arity {
    Arity { min, max: Some(max), even: false, text }
}

const fn at_least(min: usize, text: &'static str) -> Arity {
    Arity { min, max: None, even: false, text }
}

pub(crate) const ALL: &[Function] = &[
    Function::AltSecIdFromNetId,
    Function::Append,
    Function::AppRoleAssignmentsComplex,
    Function::AssertiveAppRoleAssignmentsComplex,
    Function::BitAnd,
    Function::CBool,
    Function::CDate,
    Function::Coalesce,
    Function::ConvertFromBase64,
    Function::ConvertToBase64,
    Function::ConvertToUtf8Hex,
    Function::Count,
    Function::CStr,
    Function::DateAdd,
    Function::DateDiff,
    Function::DateFromNum,
    Function::DnComponent,
    Function::Error,
    Function::FormatDateTime,
    Function::Guid,
    Function::IgnoreFlowIfNullOrEmpty,
    Function::Iif,
    Function::InStr,
    Function::IsNull,
    Function::IsNullOrEmpty,
    Function::IsPresent,
    Function::IsString,
    Function::Item,
    Function::Join,
    Function::Left,
    Function::Mid,
    Function::NormalizeDiacritics,
    Function::Not,
    Function::Now,
    Function::NumFromDate,
    Function::PCase,
    Function::RandomString,
    Function::Redact,
    Function::RemoveDuplicates,
    Function::Replace,
    Function::SelectUniqueValue,
    Function::SingleAppRoleAssignment,
    Function::Split,
    Function::StringFromSid,
    Function::StripSpaces,
    Function::Switch,
    Function::ToLower,
    Function::ToUpper,
    Function::Trim,
    Function::Word,
];

/// Canonical names, in the order of [`ALL`].
pub(crate) const NAMES: &[&str] = &[
    "AltSecIdFromNetId",
    "Append",
    "AppRoleAssignmentsComplex",
    "AssertiveAppRoleAssignmentsComplex",
    "BitAnd",
    "CBool",
    "CDate",
    "Coalesce",
    "ConvertFromBase64",
    "ConvertToBase64",
    "ConvertToUTF8Hex",
    "Count",
    "CStr",
    "DateAdd",
    "DateDiff",
    "DateFromNum",
    "DNComponent",
    "Error",
    "FormatDateTime",
    "Guid",
    "IgnoreFlowIfNullOrEmpty",
    "IIF",
    "InStr",
    "IsNull",
    "IsNullOrEmpty",
    "IsPresent",
    "IsString",
    "Item",
    "Join",
    "Left",
    "Mid",
    "NormalizeDiacritics",
    "Not",
    "Now",
    "NumFromDate",
    "PCase",
    "RandomString",
    "Redact",
    "RemoveDuplicates",
    "Replace",
    "SelectUniqueValue",
    "SingleAppRoleAssignment",
    "Split",
    "StringFromSid",
    "StripSpaces",
    "Switch",
    "ToLower",
    "ToUpper",
    "Trim",
    "Word",
];

impl Function {
    /// Looks a name up ignoring case.
    pub fn from_name(name: &str) -> Option<Function> {
        NAMES.iter().position(|candidate| candidate.eq_ignore_ascii_case(name)).map(|idx| ALL[idx])
    }

    /// The canonical spelling, as Microsoft documents it.
    pub fn name(self) -> &'static str {
        let idx = ALL.iter().position(|function| *function == self).unwrap_or(0);
        NAMES[idx]
    }

    pub(crate) fn arity(self) -> Arity {
        use Function as F;
        match self {
            F::Now | F::Guid => exactly(0, "no arguments"),
            F::AltSecIdFromNetId
            | F::AppRoleAssignmentsComplex
            | F::AssertiveAppRoleAssignmentsComplex
            | F::CBool
            | F::CDate
            | F::ConvertToBase64
            | F::ConvertToUtf8Hex
            | F::Count
            | F::CStr
            | F::DateFromNum
            | F::Error
            | F::IgnoreFlowIfNullOrEmpty
            | F::IsNull
            | F::IsNullOrEmpty
            | F::IsPresent
            | F::IsString
            | F::NormalizeDiacritics
            | F::Not
            | F::NumFromDate
            | F::Redact
            | F::RemoveDuplicates
            | F::SingleAppRoleAssignment
            | F::StringFromSid
            | F::StripSpaces
            | F::Trim => exactly(1, "1 argument"),
            F::Append | F::BitAnd | F::DnComponent | F::Item | F::Left | F::Split => exactly(2, "2 arguments"),
            F::DateAdd | F::DateDiff | F::Iif | F::Mid | F::Word => exactly(3, "3 arguments"),
            F::Replace => exactly(7, "7 arguments (write omitted ones as empty slots)"),
            F::FormatDateTime => between(3, 4, "3 or 4 arguments"),
            F::InStr => between(2, 4, "2 to 4 arguments"),
            F::PCase | F::ToLower | F::ToUpper | F::ConvertFromBase64 => between(1, 2, "1 or 2 arguments"),
            F::RandomString => between(5, 6, "5 or 6 arguments"),
            F::Coalesce => at_least(1, "at least 1 argument"),
            F::Join | F::SelectUniqueValue => at_least(2, "at least 2 arguments"),
            F::Switch => Arity { min: 4, max: None, even: true, text: "an even number of arguments, at least 4" },
        }
    }
}

/// The bare identifiers the docs pass as enum arguments, with their canonical spelling.
pub(crate) const IDENTIFIERS: &[&str] = &["vbBinaryCompare", "vbTextCompare", "UTF8", "ASCII", "Unicode"];
