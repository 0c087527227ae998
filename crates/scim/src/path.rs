//! PATCH paths (RFC 7644 §3.5.2): `PATH = attrPath / valuePath [subAttr]`, optionally prefixed by a schema URN, or
//! a bare extension schema URN naming the whole extension. Parsing only; [`crate::patch`] applies them.

use std::fmt;

use crate::filter::{AttrName, AttrPath, Filter};
use crate::{RESOURCE_SCHEMAS, ScimError, ScimType};

/// A parsed PATCH path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchPath {
    /// The schema URN prefix as written (a bare URN has no `attr`).
    pub urn: Option<String>,
    /// None when the path is a bare extension URN.
    pub attr: Option<AttrName>,
    /// `emails[type eq "work"]`: which values of a multi-valued attribute.
    pub filter: Option<Filter>,
    /// `name.givenName`, `emails[type eq "work"].value`.
    pub sub: Option<AttrName>,
}

fn invalid(text: &str, why: &str) -> ScimError {
    ScimError::bad(ScimType::InvalidPath, format!("invalid path '{text}': {why}"))
}

impl PatchPath {
    pub fn parse(text: &str) -> Result<PatchPath, ScimError> {
        PatchPath::parse_with(text, Filter::parse)
    }

    /// Parses without the length limit of a value filter (see `Filter::parse_unbounded`).
    pub(crate) fn parse_unbounded(text: &str) -> Result<PatchPath, ScimError> {
        PatchPath::parse_with(text, Filter::parse_unbounded)
    }

    fn parse_with(
        text: &str,
        parse_filter: fn(&str) -> Result<Filter, crate::filter::FilterError>,
    ) -> Result<PatchPath, ScimError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid(text, "the path is empty"));
        }
        let (head, filter, after) = match trimmed.find('[') {
            None => (trimmed, None, ""),
            Some(open) => {
                let close = closing_bracket(trimmed, open).ok_or_else(|| invalid(text, "no closing ']'"))?;
                let filter = parse_filter(&trimmed[open + 1..close]).map_err(|err| invalid(text, &err.to_string()))?;
                (&trimmed[..open], Some(filter), &trimmed[close + 1..])
            }
        };
        if filter.is_none()
            && let Some(urn) = RESOURCE_SCHEMAS.iter().find(|urn| urn.eq_ignore_ascii_case(head))
        {
            return Ok(PatchPath { urn: Some((*urn).to_owned()), attr: None, filter: None, sub: None });
        }
        let attr_path = AttrPath::parse(head).ok_or_else(|| invalid(text, "not an attribute path"))?;
        let sub = if after.is_empty() {
            attr_path.sub.clone()
        } else {
            if attr_path.sub.is_some() {
                return Err(invalid(text, "a value filter applies to an attribute, not a sub-attribute"));
            }
            let sub = after.strip_prefix('.').ok_or_else(|| invalid(text, "only '.subAttribute' may follow ']'"))?;
            Some(AttrName::parse(sub).ok_or_else(|| invalid(text, "not a sub-attribute name"))?)
        };
        if filter.is_some() && attr_path.sub.is_some() {
            return Err(invalid(text, "a value filter applies to an attribute, not a sub-attribute"));
        }
        Ok(PatchPath { urn: attr_path.urn, attr: Some(attr_path.name), filter, sub })
    }
}

/// The index of the `]` closing the `[` at `open`, skipping quoted strings.
fn closing_bracket(text: &str, open: usize) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (idx, c) in text.char_indices().skip_while(|(idx, _)| *idx <= open) {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            ']' if !in_string => return Some(idx),
            _ => {}
        }
    }
    None
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.urn, &self.attr) {
            (Some(urn), None) => return f.write_str(urn),
            (Some(urn), Some(attr)) => write!(f, "{urn}:{attr}")?,
            (None, Some(attr)) => write!(f, "{attr}")?,
            (None, None) => {}
        }
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    #[track_caller]
    fn check(text: &str, expect: Expect) {
        let actual = match PatchPath::parse(text) {
            Ok(path) => {
                assert_eq!(PatchPath::parse(&path.to_string()).as_ref(), Ok(&path), "printed path parses back");
                format!("{path}")
            }
            Err(err) => format!("error: {err}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn patch_paths() {
        check("userName", expect!["userName"]);
        check("name.givenName", expect!["name.givenName"]);
        check(r#"emails[type eq "work"].value"#, expect![[r#"emails[type eq "work"].value"#]]);
        check(
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            expect![[r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#]],
        );
        check(
            r#"addresses[type eq "work" and value co "]"]"#,
            expect![[r#"addresses[type eq "work" and value co "]"]"#]],
        );
        check(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            expect!["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"],
        );
        check(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user",
            expect!["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        );
        check(
            "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName",
            expect!["urn:ietf:params:scim:schemas:core:2.0:User:name.familyName"],
        );
        check("", expect!["error: 400 invalidPath: invalid path '': the path is empty"]);
        check("emails[type eq", expect!["error: 400 invalidPath: invalid path 'emails[type eq': no closing ']'"]);
        check(
            "emails[type eq]",
            expect![
                "error: 400 invalidPath: invalid path 'emails[type eq]': syntax error at position 7: expected a value: a quoted string, a number, true, false or null"
            ],
        );
        check(
            r#"emails[type pr]value"#,
            expect!["error: 400 invalidPath: invalid path 'emails[type pr]value': only '.subAttribute' may follow ']'"],
        );
        check(
            r#"name.givenName[type pr]"#,
            expect![
                "error: 400 invalidPath: invalid path 'name.givenName[type pr]': a value filter applies to an attribute, not a sub-attribute"
            ],
        );
        check("a b", expect!["error: 400 invalidPath: invalid path 'a b': not an attribute path"]);
        check("9abc", expect!["error: 400 invalidPath: invalid path '9abc': not an attribute path"]);
    }
}
