//! How results reach the operator: aligned text tables by default, one JSON document
//! with `--json`. Every command builds a report that is both [`serde::Serialize`] (for
//! `--json`) and [`Render`] (for people), and hands it to [`emit`].

use serde::Serialize;
use std::fmt::Write;

/// A report that can be shown to a person.
pub trait Render {
    /// Appends the human-readable form to `out`.
    fn render(&self, out: &mut String);
}

/// Prints `report` on stdout as JSON (`json`) or as text.
pub fn emit<R: Render + Serialize>(report: &R, json: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    let text = if json {
        let mut s = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
        s.push('\n');
        s
    } else {
        let mut s = String::new();
        report.render(&mut s);
        s
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // `kvtool ... | head` closes the pipe early; that is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text columns.
    Left,
    /// Number columns.
    Right,
}

/// A table of text cells with a header row, printed with aligned columns.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<(String, Align)>,
    rows: Vec<Row>,
}

#[derive(Debug, Clone)]
enum Row {
    Cells(Vec<String>),
    /// A free line under the previous row (not aligned, not widening columns).
    Note(String),
}

impl Table {
    /// A table with these columns.
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Table {
            headers: columns.iter().map(|(h, a)| (h.to_string(), *a)).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells print empty, extra cells are dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(Row::Cells(cells));
    }

    /// Adds a free line under the last row, indented a little more than the table.
    pub fn note(&mut self, line: String) {
        self.rows.push(Row::Note(line));
    }

    /// Appends the table to `out`, each line indented by `indent` spaces.
    pub fn render(&self, out: &mut String, indent: usize) {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self
            .headers
            .iter()
            .map(|(h, _)| h.chars().count())
            .collect();
        for row in &self.rows {
            let Row::Cells(row) = row else { continue };
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
            let mut text = " ".repeat(indent);
            for (i, cell) in cells.take(n).enumerate() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                if i > 0 {
                    text.push_str("  ");
                }
                match self.headers[i].1 {
                    Align::Left => {
                        text.push_str(cell);
                        text.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        text.push_str(&" ".repeat(pad));
                        text.push_str(cell);
                    }
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(out, &mut self.headers.iter().map(|(h, _)| h.as_str()));
        for row in &self.rows {
            match row {
                Row::Cells(row) => {
                    let mut cells = row.iter().map(String::as_str).chain(std::iter::repeat(""));
                    line(out, &mut cells);
                }
                Row::Note(text) => {
                    let _ = writeln!(out, "{:w$}{text}", "", w = indent + 4);
                }
            }
        }
    }
}

/// Label/value lines with the values aligned: `  label:   value`.
pub fn fields(out: &mut String, indent: usize, pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (label, value) in pairs {
        let _ = writeln!(
            out,
            "{:indent$}{:width$}  {}",
            "",
            format!("{label}:"),
            value,
            width = width + 1
        );
    }
}

/// `12.3 MiB`-style size.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A ratio with two decimals, or `-` when it is undefined.
pub fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => format!("{r:.2}"),
        _ => "-".to_string(),
    }
}

/// `lo..hi` (`sep` between), or `-` unless both ends are known.
pub fn span<T: std::fmt::Display>(lo: Option<T>, hi: Option<T>, sep: &str) -> String {
    match (lo, hi) {
        (Some(a), Some(b)) => format!("{a}{sep}{b}"),
        _ => "-".to_string(),
    }
}

/// `1 error`, `3 errors`.
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// `a / b` when `b` is not zero.
pub fn divide(a: u64, b: u64) -> Option<f64> {
    (b != 0).then(|| a as f64 / b as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&[("level", Align::Left), ("bytes", Align::Right)]);
        t.row(vec!["L0".into(), "5".into()]);
        t.row(vec!["L1".into(), "12345".into()]);
        let mut s = String::new();
        t.render(&mut s, 2);
        assert_eq!(s, "  level  bytes\n  L0         5\n  L1     12345\n");
    }

    #[test]
    fn sizes_are_readable() {
        assert_eq!(bytes(10), "10 B");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 + 1), "3.0 MiB");
        assert_eq!(ratio(divide(3, 2)), "1.50");
        assert_eq!(ratio(divide(3, 0)), "-");
    }
}
