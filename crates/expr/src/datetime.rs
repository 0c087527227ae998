//! Date and time support: the `M/d/yyyy h:mm:ss tt` rendering, CDate's accepted inputs, AD FILETIME
//! ticks, VBA-style DateAdd/DateDiff, .NET custom format strings (FormatDateTime) and ISO 8601
//! durations (dynamic rules' `system.now -plus p1d`).
//!
//! Every instant is handled in UTC; this module never reads the clock (callers pass "now").

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Ticks (100 ns) between 1601-01-01 and 1970-01-01.
const FILETIME_UNIX_EPOCH: i128 = 116_444_736_000_000_000;

/// `M/d/yyyy h:mm:ss tt`, invariant culture, in UTC.
pub(crate) fn render(instant: OffsetDateTime) -> String {
    let utc = instant.to_offset(UtcOffset::UTC);
    let hour12 = match utc.hour() % 12 {
        0 => 12,
        other => other,
    };
    let meridiem = if utc.hour() < 12 { "AM" } else { "PM" };
    format!(
        "{}/{}/{:04} {}:{:02}:{:02} {}",
        u8::from(utc.month()),
        utc.day(),
        utc.year(),
        hour12,
        utc.minute(),
        utc.second(),
        meridiem
    )
}

/// A tiny cursor over ASCII input.
struct Cursor<'a> {
    bytes: &'a [u8],
    idx: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Cursor<'a> {
        Cursor { bytes: text.as_bytes(), idx: 0 }
    }
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.idx).copied()
    }
    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.idx += 1;
            true
        } else {
            false
        }
    }
    fn eat_ignore_case(&mut self, word: &str) -> bool {
        let end = self.idx + word.len();
        if end <= self.bytes.len() && self.bytes[self.idx..end].eq_ignore_ascii_case(word.as_bytes()) {
            self.idx = end;
            true
        } else {
            false
        }
    }
    /// Between `min` and `max` digits, greedy.
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.idx;
        let mut value: u32 = 0;
        while self.idx - start < max {
            match self.peek() {
                Some(byte @ b'0'..=b'9') => {
                    value = value * 10 + u32::from(byte - b'0');
                    self.idx += 1;
                }
                _ => break,
            }
        }
        if self.idx - start < min {
            self.idx = start;
            return None;
        }
        Some(value)
    }
    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.idx += 1;
        }
    }
    fn done(&self) -> bool {
        self.idx == self.bytes.len()
    }
}

fn make_date(year: u32, month: u32, day: u32) -> Option<Date> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()
}

fn make_time(hour: u32, minute: u32, second: u32, nanos: u32) -> Option<Time> {
    Time::from_hms_nano(u8::try_from(hour).ok()?, u8::try_from(minute).ok()?, u8::try_from(second).ok()?, nanos).ok()
}

/// Reads `Z` or `±HH[:mm]` (or `±HHmm`).
fn parse_offset(cursor: &mut Cursor<'_>) -> Option<Option<UtcOffset>> {
    if cursor.eat(b'Z') || cursor.eat(b'z') {
        return Some(Some(UtcOffset::UTC));
    }
    let sign = match cursor.peek() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Some(None),
    };
    cursor.idx += 1;
    let hours = cursor.digits(2, 2)?;
    let minutes = if cursor.eat(b':') { cursor.digits(2, 2)? } else { cursor.digits(2, 2).unwrap_or(0) };
    if hours > 14 || minutes > 59 {
        return None;
    }
    let seconds = sign * (hours as i32 * 3600 + minutes as i32 * 60);
    Some(Some(UtcOffset::from_whole_seconds(seconds).ok()?))
}

/// Fractional seconds after the dot, as nanoseconds (at most 9 digits kept).
fn parse_fraction(cursor: &mut Cursor<'_>) -> Option<u32> {
    let start = cursor.idx;
    let mut nanos = 0u32;
    let mut n_digits = 0;
    while let Some(byte @ b'0'..=b'9') = cursor.peek() {
        if n_digits < 9 {
            nanos = nanos * 10 + u32::from(byte - b'0');
            n_digits += 1;
        }
        cursor.idx += 1;
    }
    if cursor.idx == start {
        return None;
    }
    for _ in n_digits..9 {
        nanos *= 10;
    }
    Some(nanos)
}

/// CDate's accepted inputs (spec §1.6): ISO `yyyy-MM-dd[(T| )HH:mm[:ss[.f+]]][Z|±HH:mm]` and
/// `M/d/yyyy [h:mm[:ss] [AM|PM]]`. No offset means UTC.
pub(crate) fn parse_cdate(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    parse_iso(text).or_else(|| parse_us(text))
}

fn parse_iso(text: &str) -> Option<OffsetDateTime> {
    let mut cursor = Cursor::new(text);
    let year = cursor.digits(4, 4)?;
    if !cursor.eat(b'-') {
        return None;
    }
    let month = cursor.digits(2, 2)?;
    if !cursor.eat(b'-') {
        return None;
    }
    let day = cursor.digits(2, 2)?;
    let date = make_date(year, month, day)?;
    let mut time = Time::MIDNIGHT;
    if cursor.peek() == Some(b'T') || cursor.peek() == Some(b't') || cursor.peek() == Some(b' ') {
        cursor.idx += 1;
        let hour = cursor.digits(2, 2)?;
        if !cursor.eat(b':') {
            return None;
        }
        let minute = cursor.digits(2, 2)?;
        let mut second = 0;
        let mut nanos = 0;
        if cursor.eat(b':') {
            second = cursor.digits(2, 2)?;
            if cursor.eat(b'.') || cursor.eat(b',') {
                nanos = parse_fraction(&mut cursor)?;
            }
        }
        time = make_time(hour, minute, second, nanos)?;
    }
    let offset = parse_offset(&mut cursor)?.unwrap_or(UtcOffset::UTC);
    if !cursor.done() {
        return None;
    }
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset).to_offset(UtcOffset::UTC))
}

fn parse_us(text: &str) -> Option<OffsetDateTime> {
    let mut cursor = Cursor::new(text);
    let month = cursor.digits(1, 2)?;
    if !cursor.eat(b'/') {
        return None;
    }
    let day = cursor.digits(1, 2)?;
    if !cursor.eat(b'/') {
        return None;
    }
    let year = cursor.digits(4, 4)?;
    let date = make_date(year, month, day)?;
    let mut time = Time::MIDNIGHT;
    cursor.skip_spaces();
    if !cursor.done() {
        let mut hour = cursor.digits(1, 2)?;
        if !cursor.eat(b':') {
            return None;
        }
        let minute = cursor.digits(2, 2)?;
        let second = if cursor.eat(b':') { cursor.digits(2, 2)? } else { 0 };
        cursor.skip_spaces();
        if cursor.eat_ignore_case("AM") {
            if !(1..=12).contains(&hour) {
                return None;
            }
            hour %= 12;
        } else if cursor.eat_ignore_case("PM") {
            if !(1..=12).contains(&hour) {
                return None;
            }
            hour = hour % 12 + 12;
        }
        time = make_time(hour, minute, second, 0)?;
    }
    cursor.skip_spaces();
    let offset = parse_offset(&mut cursor)?.unwrap_or(UtcOffset::UTC);
    if !cursor.done() {
        return None;
    }
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset).to_offset(UtcOffset::UTC))
}

/// AD FILETIME ticks to an instant.
pub(crate) fn from_filetime(ticks: i64) -> Option<OffsetDateTime> {
    let unix_nanos = (i128::from(ticks) - FILETIME_UNIX_EPOCH) * 100;
    OffsetDateTime::from_unix_timestamp_nanos(unix_nanos).ok()
}

/// An instant to AD FILETIME ticks.
pub(crate) fn to_filetime(instant: OffsetDateTime) -> Option<i64> {
    i64::try_from(instant.unix_timestamp_nanos() / 100 + FILETIME_UNIX_EPOCH).ok()
}

/// A DateAdd / DateDiff interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interval {
    Year,
    Month,
    Day,
    Week,
    Hour,
    Minute,
    Second,
}

impl Interval {
    pub(crate) fn parse(text: &str) -> Option<Interval> {
        Some(match text.to_ascii_lowercase().as_str() {
            "yyyy" => Interval::Year,
            "m" => Interval::Month,
            "d" => Interval::Day,
            "ww" => Interval::Week,
            "h" => Interval::Hour,
            "n" => Interval::Minute,
            "s" => Interval::Second,
            _ => return None,
        })
    }
}

/// Adds months, clamping the day to the end of the month like .NET `AddMonths`.
pub(crate) fn add_months(instant: OffsetDateTime, months: i64) -> Option<OffsetDateTime> {
    let total = (i64::from(instant.year()) * 12 + i64::from(u8::from(instant.month())) - 1).checked_add(months)?;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let day = instant.day().min(month.length(year));
    let date = Date::from_calendar_date(year, month, day).ok()?;
    Some(instant.replace_date(date))
}

pub(crate) fn date_add(interval: Interval, amount: i64, instant: OffsetDateTime) -> Option<OffsetDateTime> {
    let seconds = |unit: i64| amount.checked_mul(unit).map(Duration::seconds);
    match interval {
        Interval::Year => add_months(instant, amount.checked_mul(12)?),
        Interval::Month => add_months(instant, amount),
        Interval::Day => instant.checked_add(seconds(86_400)?),
        Interval::Week => instant.checked_add(seconds(7 * 86_400)?),
        Interval::Hour => instant.checked_add(seconds(3_600)?),
        Interval::Minute => instant.checked_add(seconds(60)?),
        Interval::Second => instant.checked_add(seconds(1)?),
    }
}

/// VBA DateDiff: counts interval boundaries crossed between the two UTC instants.
pub(crate) fn date_diff(interval: Interval, first: OffsetDateTime, second: OffsetDateTime) -> i64 {
    let first = first.to_offset(UtcOffset::UTC);
    let second = second.to_offset(UtcOffset::UTC);
    let floor = |instant: OffsetDateTime, unit: i64| instant.unix_timestamp().div_euclid(unit);
    match interval {
        Interval::Year => i64::from(second.year()) - i64::from(first.year()),
        Interval::Month => {
            (i64::from(second.year()) - i64::from(first.year())) * 12
                + (i64::from(u8::from(second.month())) - i64::from(u8::from(first.month())))
        }
        Interval::Day => i64::from(second.to_julian_day()) - i64::from(first.to_julian_day()),
        Interval::Week => {
            let week_start = |instant: OffsetDateTime| {
                i64::from(instant.to_julian_day()) - i64::from(instant.weekday().number_days_from_sunday())
            };
            (week_start(second) - week_start(first)) / 7
        }
        Interval::Hour => floor(second, 3_600) - floor(first, 3_600),
        Interval::Minute => floor(second, 60) - floor(first, 60),
        Interval::Second => second.unix_timestamp() - first.unix_timestamp(),
    }
}

/// An ISO 8601 duration such as `P1D`, `p30d`, `PT12H` or `-P1Y2M` (case-insensitive), applied to
/// `instant` with calendar arithmetic for years and months.
pub(crate) fn add_iso_duration(instant: OffsetDateTime, text: &str) -> Option<OffsetDateTime> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let rest = rest.strip_prefix(['P', 'p'])?;
    let sign = if negative { -1 } else { 1 };
    let mut in_time = false;
    let mut number = String::new();
    let mut result = instant;
    let mut any = false;
    for ch in rest.chars() {
        if ch.is_ascii_digit() {
            number.push(ch);
            continue;
        }
        if ch == 'T' || ch == 't' {
            if in_time || !number.is_empty() {
                return None;
            }
            in_time = true;
            continue;
        }
        let amount: i64 = number.parse().ok()?;
        let amount = amount.checked_mul(sign)?;
        number.clear();
        any = true;
        result = match (in_time, ch.to_ascii_uppercase()) {
            (false, 'Y') => date_add(Interval::Year, amount, result)?,
            (false, 'M') => date_add(Interval::Month, amount, result)?,
            (false, 'W') => date_add(Interval::Week, amount, result)?,
            (false, 'D') => date_add(Interval::Day, amount, result)?,
            (true, 'H') => date_add(Interval::Hour, amount, result)?,
            (true, 'M') => date_add(Interval::Minute, amount, result)?,
            (true, 'S') => date_add(Interval::Second, amount, result)?,
            _ => return None,
        };
    }
    if !number.is_empty() || !any {
        return None;
    }
    Some(result)
}

/// One element of a .NET custom date and time format string.
#[derive(Clone, Debug, PartialEq, Eq)]
enum FormatToken {
    /// A specifier letter repeated `count` times (`yyyy`, `MM`, `fff`, ...).
    Field(char, usize),
    Literal(String),
}

const STANDARD_FORMATS: &[(&str, &str)] = &[
    ("o", "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK"),
    ("O", "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK"),
    ("s", "yyyy'-'MM'-'dd'T'HH':'mm':'ss"),
    ("u", "yyyy'-'MM'-'dd HH':'mm':'ss'Z'"),
    ("d", "M/d/yyyy"),
    ("D", "dddd, dd MMMM yyyy"),
    ("t", "HH:mm"),
    ("T", "HH:mm:ss"),
    ("g", "M/d/yyyy HH:mm"),
    ("G", "M/d/yyyy HH:mm:ss"),
];

fn tokenize_format(format: &str) -> Result<Vec<FormatToken>, String> {
    let format = if format.chars().count() == 1 {
        match STANDARD_FORMATS.iter().find(|(name, _)| *name == format) {
            Some((_, expanded)) => *expanded,
            None => return Err(format!("standard format '{format}' is not supported")),
        }
    } else {
        format
    };
    let chars: Vec<char> = format.chars().collect();
    let mut tokens = Vec::new();
    let mut idx = 0;
    let push_literal = |tokens: &mut Vec<FormatToken>, text: &str| match tokens.last_mut() {
        Some(FormatToken::Literal(existing)) => existing.push_str(text),
        _ => tokens.push(FormatToken::Literal(text.to_owned())),
    };
    while idx < chars.len() {
        let ch = chars[idx];
        match ch {
            'y' | 'M' | 'd' | 'H' | 'h' | 'm' | 's' | 'f' | 'F' | 't' | 'z' | 'K' | 'g' => {
                let mut count = 1;
                while idx + count < chars.len() && chars[idx + count] == ch {
                    count += 1;
                }
                let too_many = match ch {
                    'f' | 'F' => count > 7,
                    'M' | 'd' => count > 4,
                    'y' => count > 5,
                    'K' => count > 1,
                    _ => count > 3,
                } || (matches!(ch, 'H' | 'h' | 'm' | 's' | 't' | 'g') && count > 2);
                if too_many {
                    return Err(format!("format specifier '{}' is invalid", ch.to_string().repeat(count)));
                }
                if ch == 'g' {
                    // The era: invariant culture has only "A.D.", which we don't model.
                    return Err("era specifier 'g' is not supported".to_owned());
                }
                tokens.push(FormatToken::Field(ch, count));
                idx += count;
            }
            '\'' | '"' => {
                let quote = ch;
                let mut literal = String::new();
                idx += 1;
                loop {
                    match chars.get(idx) {
                        None => return Err("unterminated quoted literal in format".to_owned()),
                        Some('\\') if idx + 1 < chars.len() => {
                            literal.push(chars[idx + 1]);
                            idx += 2;
                        }
                        Some(&c) if c == quote => {
                            idx += 1;
                            break;
                        }
                        Some(&c) => {
                            literal.push(c);
                            idx += 1;
                        }
                    }
                }
                push_literal(&mut tokens, &literal);
            }
            '\\' => {
                let Some(&next) = chars.get(idx + 1) else {
                    return Err("format ends with an escape character".to_owned());
                };
                push_literal(&mut tokens, &next.to_string());
                idx += 2;
            }
            '%' => {
                // `%d` is the single-letter custom specifier `d`.
                idx += 1;
            }
            other => {
                push_literal(&mut tokens, &other.to_string());
                idx += 1;
            }
        }
    }
    Ok(tokens)
}

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAY_NAMES: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// The result of `DateTime.ParseExact`: the parsed instant (already converted to UTC when the input
/// carried an offset) and whether it did.
pub(crate) struct Parsed {
    pub(crate) instant: OffsetDateTime,
    pub(crate) had_offset: bool,
}

/// .NET `DateTime.ParseExact` with a custom format, invariant culture, leading and trailing white
/// space allowed. Missing date parts default to `default_date`.
pub(crate) fn parse_exact(input: &str, format: &str, default_date: Date) -> Result<Parsed, String> {
    let tokens = tokenize_format(format)?;
    let trimmed = input.trim();
    let chars: Vec<char> = trimmed.chars().collect();
    let mut idx = 0;
    let (mut year, mut month, mut day) = (None, None, None);
    let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    let mut hour12: Option<u32> = None;
    let mut pm: Option<bool> = None;
    let mut offset: Option<UtcOffset> = None;
    let fail = || format!("'{input}' does not match the format '{format}'");
    let read_digits = |idx: &mut usize, min: usize, max: usize| -> Option<u32> {
        let start = *idx;
        let mut value: u32 = 0;
        while *idx - start < max && *idx < chars.len() && chars[*idx].is_ascii_digit() {
            value = value.checked_mul(10)?.checked_add(chars[*idx].to_digit(10)?)?;
            *idx += 1;
        }
        if *idx - start < min { None } else { Some(value) }
    };
    for token in &tokens {
        match token {
            FormatToken::Literal(literal) => {
                for expected in literal.chars() {
                    if chars.get(idx) == Some(&expected) {
                        idx += 1;
                    } else if expected.is_whitespace() {
                        // .NET lets white space in the format match nothing.
                    } else {
                        return Err(fail());
                    }
                }
            }
            FormatToken::Field(letter, count) => {
                let count = *count;
                match letter {
                    'y' => {
                        let value = match count {
                            1 | 2 => {
                                let value = read_digits(&mut idx, count, 2).ok_or_else(fail)?;
                                // Two-digit years: .NET's default window is 1930..2029.
                                if value < 30 { 2000 + value } else { 1900 + value }
                            }
                            _ => read_digits(&mut idx, count, count).ok_or_else(fail)?,
                        };
                        year = Some(value);
                    }
                    'M' if count >= 3 => {
                        let rest: String = chars[idx..].iter().collect();
                        let found = MONTH_NAMES.iter().enumerate().find_map(|(number, name)| {
                            let name = if count == 3 { &name[..3] } else { name };
                            rest.get(..name.len())
                                .filter(|prefix| prefix.eq_ignore_ascii_case(name))
                                .map(|_| (number as u32 + 1, name.chars().count()))
                        });
                        let (number, length) = found.ok_or_else(fail)?;
                        month = Some(number);
                        idx += length;
                    }
                    'd' if count >= 3 => {
                        let rest: String = chars[idx..].iter().collect();
                        let length = DAY_NAMES
                            .iter()
                            .map(|name| if count == 3 { &name[..3] } else { name })
                            .find(|name| rest.get(..name.len()).is_some_and(|prefix| prefix.eq_ignore_ascii_case(name)))
                            .map(|name| name.len())
                            .ok_or_else(fail)?;
                        idx += length;
                    }
                    'M' | 'd' | 'H' | 'h' | 'm' | 's' => {
                        let value = read_digits(&mut idx, count, 2).ok_or_else(fail)?;
                        match letter {
                            'M' => month = Some(value),
                            'd' => day = Some(value),
                            'H' => hour = value,
                            'h' => hour12 = Some(value),
                            'm' => minute = value,
                            _ => second = value,
                        }
                    }
                    'f' | 'F' => {
                        let min = if *letter == 'f' { count } else { 0 };
                        let start = idx;
                        let value = read_digits(&mut idx, min, count).ok_or_else(fail)?;
                        let n_digits = idx - start;
                        nanos = if n_digits == 0 { 0 } else { value * 10u32.pow(9 - n_digits as u32) };
                    }
                    't' => {
                        let rest: String = chars[idx..].iter().take(2).collect::<String>().to_ascii_uppercase();
                        if count == 1 {
                            match rest.chars().next() {
                                Some('A') => pm = Some(false),
                                Some('P') => pm = Some(true),
                                _ => return Err(fail()),
                            }
                            idx += 1;
                        } else {
                            match rest.as_str() {
                                "AM" => pm = Some(false),
                                "PM" => pm = Some(true),
                                _ => return Err(fail()),
                            }
                            idx += 2;
                        }
                    }
                    'z' | 'K' => {
                        if *letter == 'K' && chars.get(idx).is_none_or(|ch| !matches!(ch, 'Z' | 'z' | '+' | '-')) {
                            continue;
                        }
                        if matches!(chars.get(idx), Some('Z' | 'z')) {
                            offset = Some(UtcOffset::UTC);
                            idx += 1;
                            continue;
                        }
                        let sign: i32 = match chars.get(idx) {
                            Some('+') => 1,
                            Some('-') => -1,
                            _ => return Err(fail()),
                        };
                        idx += 1;
                        let hours = read_digits(&mut idx, 1, 2).ok_or_else(fail)?;
                        let mut minutes = 0;
                        if (count == 3 || *letter == 'K') && chars.get(idx) == Some(&':') {
                            idx += 1;
                            minutes = read_digits(&mut idx, 2, 2).ok_or_else(fail)?;
                        }
                        if hours > 14 || minutes > 59 {
                            return Err(fail());
                        }
                        let seconds = sign * (hours as i32 * 3600 + minutes as i32 * 60);
                        offset = Some(UtcOffset::from_whole_seconds(seconds).map_err(|_| fail())?);
                    }
                    _ => return Err(fail()),
                }
            }
        }
    }
    if idx != chars.len() {
        return Err(fail());
    }
    if let Some(value) = hour12 {
        if !(1..=12).contains(&value) {
            return Err(fail());
        }
        hour = value % 12;
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 && hour12.is_none() => return Err(fail()),
        _ => {}
    }
    let date = make_date(
        year.unwrap_or(default_date.year() as u32),
        month.unwrap_or(if year.is_some() { 1 } else { u8::from(default_date.month()) as u32 }),
        day.unwrap_or(if year.is_some() || month.is_some() { 1 } else { default_date.day() as u32 }),
    )
    .ok_or_else(fail)?;
    let time = make_time(hour, minute, second, nanos).ok_or_else(fail)?;
    let had_offset = offset.is_some();
    let instant =
        PrimitiveDateTime::new(date, time).assume_offset(offset.unwrap_or(UtcOffset::UTC)).to_offset(UtcOffset::UTC);
    Ok(Parsed { instant, had_offset })
}

/// .NET `DateTime.ToString(format, InvariantCulture)` for a UTC value.
pub(crate) fn format_custom(instant: OffsetDateTime, format: &str, utc_kind: bool) -> Result<String, String> {
    let tokens = tokenize_format(format)?;
    let utc = instant.to_offset(UtcOffset::UTC);
    let mut out = String::new();
    for token in &tokens {
        match token {
            FormatToken::Literal(literal) => out.push_str(literal),
            FormatToken::Field(letter, count) => {
                let count = *count;
                match letter {
                    'y' => match count {
                        1 => out.push_str(&(utc.year().rem_euclid(100)).to_string()),
                        2 => out.push_str(&format!("{:02}", utc.year().rem_euclid(100))),
                        _ => out.push_str(&format!("{:0width$}", utc.year(), width = count)),
                    },
                    'M' => match count {
                        1 => out.push_str(&u8::from(utc.month()).to_string()),
                        2 => out.push_str(&format!("{:02}", u8::from(utc.month()))),
                        3 => out.push_str(&MONTH_NAMES[usize::from(u8::from(utc.month())) - 1][..3]),
                        _ => out.push_str(MONTH_NAMES[usize::from(u8::from(utc.month())) - 1]),
                    },
                    'd' => {
                        let weekday = DAY_NAMES[usize::from(utc.weekday().number_days_from_sunday())];
                        match count {
                            1 => out.push_str(&utc.day().to_string()),
                            2 => out.push_str(&format!("{:02}", utc.day())),
                            3 => out.push_str(&weekday[..3]),
                            _ => out.push_str(weekday),
                        }
                    }
                    'H' => out.push_str(&pad(u32::from(utc.hour()), count)),
                    'h' => {
                        let hour12 = match utc.hour() % 12 {
                            0 => 12,
                            other => other,
                        };
                        out.push_str(&pad(u32::from(hour12), count));
                    }
                    'm' => out.push_str(&pad(u32::from(utc.minute()), count)),
                    's' => out.push_str(&pad(u32::from(utc.second()), count)),
                    'f' | 'F' => {
                        let digits = format!("{:09}", utc.nanosecond());
                        let digits = &digits[..count];
                        if *letter == 'f' {
                            out.push_str(digits);
                        } else {
                            let trimmed = digits.trim_end_matches('0');
                            if trimmed.is_empty() && out.ends_with('.') {
                                out.pop();
                            }
                            out.push_str(trimmed);
                        }
                    }
                    't' => {
                        let meridiem = if utc.hour() < 12 { "AM" } else { "PM" };
                        out.push_str(if count == 1 { &meridiem[..1] } else { meridiem });
                    }
                    'z' => out.push_str(match count {
                        1 => "+0",
                        2 => "+00",
                        _ => "+00:00",
                    }),
                    'K' => {
                        if utc_kind {
                            out.push('Z');
                        }
                    }
                    _ => return Err(format!("format specifier '{letter}' is not supported")),
                }
            }
        }
    }
    Ok(out)
}

fn pad(value: u32, count: usize) -> String {
    if count >= 2 { format!("{value:02}") } else { value.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdate_examples() {
        let render_cdate = |text: &str| parse_cdate(text).map(render);
        assert_eq!(render_cdate("2020-03-16-07:00").as_deref(), Some("3/16/2020 7:00:00 AM"));
        assert_eq!(render_cdate("2021-06-30+08:00").as_deref(), Some("6/29/2021 4:00:00 PM"));
        assert_eq!(render_cdate("2009-06-15T01:45:30-07:00").as_deref(), Some("6/15/2009 8:45:30 AM"));
        assert_eq!(render_cdate("8/25/2021 5:41:18 PM").as_deref(), Some("8/25/2021 5:41:18 PM"));
        assert_eq!(render_cdate("2021-02-30"), None);
    }

    #[test]
    fn filetime() {
        let instant = from_filetime(129_699_324_000_000_000).unwrap();
        assert_eq!(render(instant), "1/1/2012 11:00:00 PM");
        assert_eq!(to_filetime(instant), Some(129_699_324_000_000_000));
    }
}
