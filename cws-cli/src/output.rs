//! Printing: one JSON document on stdout, or aligned tables for people.
//!
//! Tables escape every cell with [`shown`]: their cells hold names, tags and ids from the
//! cloud. JSON is written as it is; serde escapes control characters and keeps the real string.

use std::borrow::Cow;
use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::sanitize::{Shown, shown};

/// Prints one JSON document (pretty) on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A plain aligned table. Every cell (and header) is escaped with [`shown`], so a newline in
/// a name cannot forge a row and an escape sequence in a tag cannot reach the terminal.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Table {
            headers: headers.into_iter().map(cell).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(cell).collect());
    }

    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut s = String::new();
        let line = |cells: &[String], s: &mut String| {
            let mut parts = Vec::new();
            for (i, c) in cells.iter().enumerate().take(n) {
                if i + 1 == n {
                    parts.push(c.clone());
                } else {
                    let pad = widths[i].saturating_sub(c.chars().count());
                    parts.push(format!("{c}{}", " ".repeat(pad)));
                }
            }
            s.push_str(parts.join("  ").trim_end());
            s.push('\n');
        };
        line(&self.headers, &mut s);
        for r in &self.rows {
            line(r, &mut s);
        }
        s
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// A cell as shown: escaped, and not copied again when nothing needed escaping.
fn cell(value: impl Into<String>) -> String {
    let value = value.into();
    match shown(&value) {
        Cow::Borrowed(_) => value,
        Cow::Owned(escaped) => escaped,
    }
}

/// The line every table output starts with, naming the provider.
pub fn provider_line(info: &cws_provider::ProviderInfo) -> String {
    if info.simulated {
        format!(
            "Provider: {} — {} (simulated: no real AWS resources are created)",
            Shown(&info.name),
            Shown(&info.description)
        )
    } else {
        format!(
            "Provider: {} — {}",
            Shown(&info.name),
            Shown(&info.description)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(["A", "LONGER"]);
        t.row(["xxxx", "y"]);
        assert_eq!(t.render(), "A     LONGER\nxxxx  y\n");
    }

    #[test]
    fn cells_are_escaped_so_no_row_is_forged_and_no_sequence_reaches_the_terminal() {
        let mut t = Table::new(["NAME", "TAG"]);
        t.row(["ok\nFORGED  row", "\u{1b}]0;pwned\u{7}"]);
        t.row(["abc\u{202e}fed".to_string(), "été 中文".to_string()]);
        let text = t.render();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text}"
        );
        assert!(text.contains("ok\\nFORGED  row"), "{text}");
        assert!(text.contains("\\e]0;pwned\\u{7}"), "{text}");
        assert!(text.contains("abc\\u{202e}fed"), "{text}");
        assert!(text.contains("été 中文"), "{text}");
    }
}
