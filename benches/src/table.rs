//! Plain-text tables: first column left-aligned, the others right-aligned.

/// Rows of cells under a header.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells print empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, columns separated by two spaces.
    pub fn render(&self) -> String {
        let cols = self.header.len();
        let cell = |r: &Vec<String>, i: usize| r.get(i).cloned().unwrap_or_default();
        let widths: Vec<usize> = (0..cols)
            .map(|i| {
                std::iter::once(self.header[i].len())
                    .chain(self.rows.iter().map(|r| cell(r, i).len()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let fmt = |r: &Vec<String>| {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let c = cell(r, i);
                if i == 0 {
                    line.push_str(&format!("{c:<w$}"));
                } else {
                    line.push_str(&format!("{c:>w$}"));
                }
            }
            line.trim_end().to_string() + "\n"
        };
        let mut out = fmt(&self.header);
        out.push_str(&fmt(&widths.iter().map(|w| "-".repeat(*w)).collect()));
        for r in &self.rows {
            out.push_str(&fmt(r));
        }
        out
    }
}

/// `a / b` as "1.23x", or "-" when either side is missing or zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_string(),
    }
}

/// KiB as "123.4 MiB".
pub fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "-".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_aligned() {
        let mut t = Table::new(&["workload", "ops/s"]);
        t.row(vec!["fillseq".into(), "12345".into()]);
        t.row(vec!["readrandom".into(), "7".into()]);
        assert_eq!(
            t.render(),
            "workload    ops/s\n----------  -----\nfillseq     12345\nreadrandom      7\n"
        );
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50x");
        assert_eq!(ratio(Some(3.0), None), "-");
        assert_eq!(mib(Some(2048)), "2.0 MiB");
    }
}
