//! How every `tenantsync bench` reports: a Markdown table — what was measured, the result, the baseline measured in
//! the same run, the aim — headed by the run's context (date, build, backend, size), ready to paste into the README;
//! then the JSON summary as the last line, for scripts (`.ci/run` counts those lines).

use std::fmt::Write as _;

/// The middle of the rounds a benchmark repeats (the lower middle for an even count; 0 for none).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len().saturating_sub(1) / 2).copied().unwrap_or(0.0)
}

/// A benchmark's figures.
pub(crate) struct Table {
    title: String,
    rows: Vec<[String; 4]>,
}

impl Table {
    /// A table for `bench` with `context` (backend, size, …); the date and the build are added.
    pub(crate) fn new(bench: &str, context: &str) -> Table {
        let build = if cfg!(debug_assertions) { "debug build (figures not comparable)" } else { "release build" };
        let date = time::OffsetDateTime::now_utc().date();
        Table { title: format!("tenantsync bench {bench} — {date}, {build}, {context}"), rows: Vec::new() }
    }

    /// One measure: its result, the baseline from the same run ("" when there is none) and the aim ("" likewise).
    pub(crate) fn row(&mut self, measure: impl Into<String>, result: impl Into<String>, baseline: &str, aim: &str) {
        self.rows.push([measure.into(), result.into(), baseline.to_owned(), aim.to_owned()]);
    }

    /// The table as Markdown, columns padded to their widest cell.
    pub(crate) fn render(&self) -> String {
        let header = ["measure", "result", "baseline (same run)", "aim"];
        let mut widths = header.map(|cell| cell.chars().count());
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 4]| {
            let mut out = String::from("|");
            for (cell, width) in cells.iter().zip(widths) {
                let pad = width - cell.chars().count();
                let _ = write!(out, " {cell}{} |", " ".repeat(pad));
            }
            out
        };
        let mut out = format!("{}\n\n", self.title);
        out.push_str(&line(header));
        out.push('\n');
        let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
        out.push_str(&line([&rule[0], &rule[1], &rule[2], &rule[3]]));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
            out.push('\n');
        }
        out
    }

    /// Prints the table, then `summary` as the last line.
    pub(crate) fn print(&self, summary: &serde_json::Value) {
        println!("{}", self.render());
        println!("{summary}");
    }
}

/// `n` with thousands separators (`100,000`), as the README writes figures.
pub(crate) fn grouped(n: f64) -> String {
    let digits = format!("{:.0}", n.abs());
    let mut out = String::new();
    for (idx, digit) in digits.chars().enumerate() {
        if idx > 0 && (digits.len() - idx) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if n < 0.0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_aligned_markdown_table_with_its_context() {
        let mut table = Table::new("sync", "sqlite, 100,000 users");
        table.row("initial sync", "3.1 s", "raw copy 0.3 s", "5 s");
        table.row("propagation p99", "13.2 ms", "", "under 100 ms");
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("tenantsync bench sync — "), "{text}");
        assert!(lines[0].ends_with(", sqlite, 100,000 users"), "{text}");
        assert_eq!(lines[1], "");
        assert_eq!(lines[2], "| measure         | result  | baseline (same run) | aim          |");
        assert_eq!(lines[3], "| --------------- | ------- | ------------------- | ------------ |");
        assert_eq!(lines[4], "| initial sync    | 3.1 s   | raw copy 0.3 s      | 5 s          |");
        assert_eq!(lines[5], "| propagation p99 | 13.2 ms |                     | under 100 ms |");
    }

    #[test]
    fn the_median_is_the_middle_round() {
        assert_eq!(median(&[12.0, 9.5, 30.0]), 12.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.0, "the lower middle of an even count");
        assert_eq!(median(&[7.0]), 7.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(999.4), "999");
        assert_eq!(grouped(1_000.0), "1,000");
        assert_eq!(grouped(100_000.0), "100,000");
        assert_eq!(grouped(1_234_567.0), "1,234,567");
        assert_eq!(grouped(-4_200.0), "-4,200");
    }
}
