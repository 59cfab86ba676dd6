//! Printing: one JSON document on stdout, or aligned tables for people.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

/// Prints one JSON document (pretty) on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A plain aligned table.
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
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
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

/// The line every table output starts with, naming the provider.
pub fn provider_line(info: &cws_provider::ProviderInfo) -> String {
    if info.simulated {
        format!(
            "Provider: {} — {} (simulated: no real AWS resources are created)",
            info.name, info.description
        )
    } else {
        format!("Provider: {} — {}", info.name, info.description)
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
}
