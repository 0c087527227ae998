//! .NET regular expressions on top of the linear-time `regex` crate.
//!
//! Entra evaluates patterns with .NET's backtracking engine. We translate the syntax the two share
//! (and the few spellings that differ, such as `(?'name'...)` and literal `[` inside a class), and
//! refuse constructs that need backtracking (look-around, back-references, atomic and conditional
//! groups, balancing groups) with an error that names them. We never fall back to a backtracking
//! engine, so a hostile pattern cannot hang the service; compiled sizes are capped as well.

use regex::{Regex, RegexBuilder};

use crate::error::RegexError;

/// The longest pattern we accept, in bytes.
pub(crate) const MAX_PATTERN_LEN: usize = 4096;
const SIZE_LIMIT: usize = 1 << 20;

/// Compiles a .NET pattern (unanchored search semantics, like `Regex.IsMatch`).
pub(crate) fn compile(pattern: &str, case_insensitive: bool) -> Result<Regex, RegexError> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(RegexError::TooLong { length: pattern.len(), limit: MAX_PATTERN_LEN });
    }
    let translated = translate(pattern)?;
    RegexBuilder::new(&translated)
        .case_insensitive(case_insensitive)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .nest_limit(64)
        .build()
        .map_err(|err| RegexError::Invalid { pattern: pattern.to_owned(), message: first_line(&err.to_string()) })
}

fn first_line(message: &str) -> String {
    // The regex crate's messages are multi-line drawings; the last line holds the reason.
    message.lines().rev().find(|line| line.trim_start().starts_with("error:")).map_or_else(
        || message.lines().next().unwrap_or("").to_owned(),
        |line| line.trim_start().trim_start_matches("error:").trim().to_owned(),
    )
}

fn unsupported(pattern: &str, construct: &'static str) -> RegexError {
    RegexError::Unsupported { pattern: pattern.to_owned(), construct }
}

/// Rewrites .NET syntax into the `regex` crate's, or names the construct it cannot express.
pub(crate) fn translate(pattern: &str) -> Result<String, RegexError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut idx = 0;
    let mut in_class = false;
    // Index in `chars` where the current class's content starts (after `[` or `[^`).
    let mut class_start = 0;
    while idx < chars.len() {
        let ch = chars[idx];
        if ch == '\\' {
            let Some(&next) = chars.get(idx + 1) else {
                return Err(RegexError::Invalid {
                    pattern: pattern.to_owned(),
                    message: "pattern ends with '\\'".to_owned(),
                });
            };
            idx += 2;
            match next {
                '1'..='9' if !in_class => return Err(unsupported(pattern, "a back-reference (\\1 ... \\9)")),
                '1'..='9' => return Err(unsupported(pattern, "an octal escape inside a character class")),
                'k' if !in_class && matches!(chars.get(idx), Some('<' | '\'' | '{')) => {
                    return Err(unsupported(pattern, "a named back-reference (\\k<name>)"));
                }
                'G' => return Err(unsupported(pattern, "the contiguous-match anchor \\G")),
                // .NET's \Z also matches before a final newline; we accept it as end of input.
                'Z' => out.push_str("\\z"),
                'e' => out.push_str("\\x1B"),
                '0' => {
                    let mut value = 0u32;
                    let mut n_digits = 0;
                    while n_digits < 2 && matches!(chars.get(idx), Some('0'..='7')) {
                        value = value * 8 + chars[idx].to_digit(8).unwrap_or(0);
                        idx += 1;
                        n_digits += 1;
                    }
                    out.push_str(&format!("\\x{{{value:X}}}"));
                }
                'c' => {
                    let Some(letter) = chars.get(idx).filter(|letter| letter.is_ascii_alphabetic()) else {
                        return Err(RegexError::Invalid {
                            pattern: pattern.to_owned(),
                            message: "incomplete \\c escape".to_owned(),
                        });
                    };
                    idx += 1;
                    out.push_str(&format!("\\x{:02X}", (letter.to_ascii_uppercase() as u32) & 0x1F));
                }
                'p' | 'P'
                    if chars.get(idx) == Some(&'{')
                        && chars.get(idx + 1) == Some(&'I')
                        && chars.get(idx + 2) == Some(&'s') =>
                {
                    return Err(unsupported(pattern, "a Unicode block class (\\p{IsBlock})"));
                }
                'A' | 'z' | 'b' | 'B' if in_class => {
                    if next == 'b' {
                        out.push_str("\\x08");
                    } else {
                        return Err(RegexError::Invalid {
                            pattern: pattern.to_owned(),
                            message: format!("\\{next} is not allowed in a character class"),
                        });
                    }
                }
                'A' | 'z' | 'b' | 'B' | 'd' | 'D' | 'w' | 'W' | 's' | 'S' | 'n' | 't' | 'r' | 'f' | 'v' | 'a' | 'x'
                | 'u' | 'p' | 'P' => {
                    out.push('\\');
                    out.push(next);
                }
                other if other.is_ascii_alphanumeric() || other == '_' => {
                    return Err(RegexError::Invalid {
                        pattern: pattern.to_owned(),
                        message: format!("unrecognized escape sequence \\{other}"),
                    });
                }
                other if other.is_ascii() => {
                    // Any other escaped ASCII character is itself in .NET.
                    push_literal(&mut out, other, in_class);
                }
                other => out.push(other),
            }
            continue;
        }
        if in_class {
            match ch {
                ']' if idx > class_start => {
                    in_class = false;
                    out.push(']');
                }
                '-' if chars.get(idx + 1) == Some(&'[') => {
                    return Err(unsupported(pattern, "character class subtraction ([a-z-[aeiou]])"));
                }
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(ch);
                }
                '-' if out.ends_with('-') => out.push_str("\\-"),
                _ => out.push(ch),
            }
            idx += 1;
            continue;
        }
        match ch {
            '[' => {
                in_class = true;
                out.push('[');
                idx += 1;
                if chars.get(idx) == Some(&'^') {
                    out.push('^');
                    idx += 1;
                }
                class_start = idx;
            }
            '(' if chars.get(idx + 1) == Some(&'?') => {
                idx = translate_group(pattern, &chars, idx, &mut out)?;
            }
            '{' => {
                if let Some(end) = quantifier_end(&chars, idx) {
                    out.extend(&chars[idx..end]);
                    idx = end;
                } else {
                    out.push_str("\\{");
                    idx += 1;
                }
            }
            '}' => {
                out.push_str("\\}");
                idx += 1;
            }
            _ => {
                out.push(ch);
                idx += 1;
            }
        }
    }
    if in_class {
        return Err(RegexError::Invalid {
            pattern: pattern.to_owned(),
            message: "unterminated character class".to_owned(),
        });
    }
    Ok(out)
}

fn push_literal(out: &mut String, ch: char, in_class: bool) {
    let needs_escape = matches!(
        ch,
        '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' | '#' | '&' | '-' | '~'
    );
    if needs_escape || (in_class && ch == '^') {
        out.push('\\');
    }
    out.push(ch);
}

/// If `{` at `start` begins a valid quantifier (`{n}`, `{n,}`, `{n,m}`), the index after its `}`.
fn quantifier_end(chars: &[char], start: usize) -> Option<usize> {
    let mut idx = start + 1;
    let digits_start = idx;
    while chars.get(idx).is_some_and(|ch| ch.is_ascii_digit()) {
        idx += 1;
    }
    if idx == digits_start {
        return None;
    }
    if chars.get(idx) == Some(&',') {
        idx += 1;
        while chars.get(idx).is_some_and(|ch| ch.is_ascii_digit()) {
            idx += 1;
        }
    }
    (chars.get(idx) == Some(&'}')).then_some(idx + 1)
}

/// Translates a `(?...` construct starting at `start`; returns the index after what it consumed.
fn translate_group(pattern: &str, chars: &[char], start: usize, out: &mut String) -> Result<usize, RegexError> {
    let after = |offset: usize| chars.get(start + offset).copied();
    match (after(2), after(3)) {
        (Some('='), _) => Err(unsupported(pattern, "a look-ahead (?=...)")),
        (Some('!'), _) => Err(unsupported(pattern, "a negative look-ahead (?!...)")),
        (Some('<'), Some('=')) => Err(unsupported(pattern, "a look-behind (?<=...)")),
        (Some('<'), Some('!')) => Err(unsupported(pattern, "a negative look-behind (?<!...)")),
        (Some('>'), _) => Err(unsupported(pattern, "an atomic group (?>...)")),
        (Some('('), _) => Err(unsupported(pattern, "a conditional group (?(...)...)")),
        (Some('#'), _) => {
            // An inline comment: dropped.
            let mut idx = start + 3;
            while idx < chars.len() && chars[idx] != ')' {
                idx += 1;
            }
            Ok((idx + 1).min(chars.len()))
        }
        (Some(open @ ('<' | '\'')), _) => {
            let close = if open == '<' { '>' } else { '\'' };
            let mut idx = start + 3;
            let name_start = idx;
            while idx < chars.len() && chars[idx] != close {
                idx += 1;
            }
            if idx >= chars.len() {
                return Err(RegexError::Invalid {
                    pattern: pattern.to_owned(),
                    message: "unterminated group name".to_owned(),
                });
            }
            let name: String = chars[name_start..idx].iter().collect();
            if name.contains('-') {
                return Err(unsupported(pattern, "a balancing group (?<name1-name2>...)"));
            }
            out.push_str("(?<");
            out.push_str(&name);
            out.push('>');
            Ok(idx + 1)
        }
        (Some('P'), Some('<')) => {
            out.push_str("(?P");
            Ok(start + 3)
        }
        _ => {
            // Inline options (?imnsx-imnsx) or (?imnsx-imnsx:...).
            let mut idx = start + 2;
            while let Some(&flag) = chars.get(idx) {
                match flag {
                    'i' | 'm' | 's' | 'x' | '-' => idx += 1,
                    'n' => return Err(unsupported(pattern, "the explicit-capture option (?n)")),
                    ':' | ')' => break,
                    _ => {
                        return Err(RegexError::Invalid {
                            pattern: pattern.to_owned(),
                            message: format!("unrecognized grouping construct (?{flag}"),
                        });
                    }
                }
            }
            out.extend(&chars[start..idx]);
            Ok(idx)
        }
    }
}

/// Rewrites a .NET `Regex.Replace` replacement (`$1`, `${name}`, `$$`, `$&`) for the `regex` crate.
pub(crate) fn translate_replacement(replacement: &str) -> String {
    let chars: Vec<char> = replacement.chars().collect();
    let mut out = String::with_capacity(replacement.len());
    let mut idx = 0;
    while idx < chars.len() {
        if chars[idx] != '$' {
            out.push(chars[idx]);
            idx += 1;
            continue;
        }
        match chars.get(idx + 1) {
            Some('$') => {
                out.push_str("$$");
                idx += 2;
            }
            Some('&') => {
                out.push_str("${0}");
                idx += 2;
            }
            Some('{') => match chars[idx + 2..].iter().position(|&ch| ch == '}') {
                Some(length) => {
                    let name: String = chars[idx + 2..idx + 2 + length].iter().collect();
                    out.push_str("${");
                    out.push_str(&name);
                    out.push('}');
                    idx += length + 3;
                }
                None => {
                    out.push_str("$$");
                    idx += 1;
                }
            },
            Some(digit) if digit.is_ascii_digit() => {
                let mut end = idx + 1;
                while chars.get(end).is_some_and(|ch| ch.is_ascii_digit()) {
                    end += 1;
                }
                let number: String = chars[idx + 1..end].iter().collect();
                out.push_str("${");
                out.push_str(&number);
                out.push('}');
                idx = end;
            }
            _ => {
                out.push_str("$$");
                idx += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unsupported_constructs() {
        for (pattern, construct) in [
            ("a(?=b)", "look-ahead"),
            ("a(?!b)", "negative look-ahead"),
            ("(?<=a)b", "look-behind"),
            ("(?<!a)b", "negative look-behind"),
            ("(a)\\1", "back-reference"),
            ("(?<x>a)\\k<x>", "named back-reference"),
            ("(?>a+)", "atomic group"),
            ("[a-z-[aeiou]]", "subtraction"),
        ] {
            let err = compile(pattern, false).unwrap_err().to_string();
            assert!(err.contains(construct), "{pattern}: {err}");
        }
    }

    #[test]
    fn translates_dotnet_spellings() {
        assert!(compile(".*\\@domain.com", false).unwrap().is_match("a@domain.com"));
        assert!(compile("(?'n'a)[[]{", false).unwrap().is_match("a[{"));
        assert_eq!(translate_replacement("${phoneNumber}$1a$$"), "${phoneNumber}${1}a$$");
    }
}
