//! A small RFC 4180 reader: quoted fields, doubled quotes, CRLF or LF line ends, a BOM at the start.

/// Parses `text` into records of fields.
pub fn parse(text: &str) -> Result<Vec<Vec<String>>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut line = 1;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => in_quotes = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                line += 1;
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(format!("unterminated quoted field before line {line}"));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoted_fields_and_line_ends() {
        let records = super::parse("\u{feff}a,\"b,c\",\"d \"\"e\"\"\"\r\n1,,\"multi\nline\"\n").unwrap();
        assert_eq!(records, vec![vec!["a", "b,c", "d \"e\""], vec!["1", "", "multi\nline"]]);
        assert!(super::parse("\"open").is_err());
    }
}
