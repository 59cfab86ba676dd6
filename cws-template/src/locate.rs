//! Source positions for key paths.
//!
//! serde gives a position only for the first error it meets while
//! deserialising; our rule checks run on parsed values and would otherwise
//! have nothing to point at. [`Locator`] is a light, indentation-aware scan
//! of the YAML text that records where each key (and each value) of the
//! document starts, keyed by its path (`ami_config.ami_mappings.us-east-1`).
//!
//! It understands block mappings and sequences, flow collections (`{..}`,
//! `[..]`, also across lines), quoted scalars, block scalars (`|`, `>`),
//! comments, anchors and tags. It is a heuristic, not a parser: the document
//! has already been parsed successfully by the real YAML parser before any
//! position is looked up, and for anything it cannot place the caller falls
//! back to the nearest parent key. It never panics and always terminates,
//! whatever the input (a property test feeds it arbitrary text).

use std::collections::HashMap;
use std::fmt;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index (0-based).
    Index(usize),
}

impl From<&str> for Seg {
    fn from(s: &str) -> Self {
        Seg::Key(s.to_string())
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// Formats a path the way messages show it: `ami_config.ami_search.owners[0]`.
pub(crate) struct DisplayPath<'a>(pub &'a [Seg]);

impl fmt::Display for DisplayPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A 1-based line and column (columns count characters, like the YAML
/// parser's own error positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn at(line_idx: usize, col_idx: usize) -> Self {
        Pos {
            line: line_idx + 1,
            column: col_idx + 1,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Spot {
    key: Option<Pos>,
    value: Option<Pos>,
}

/// Positions of the keys and values of one YAML document.
#[derive(Debug, Clone, Default)]
pub(crate) struct Locator {
    spots: HashMap<Vec<Seg>, Spot>,
    duplicates: Vec<Pos>,
}

impl Locator {
    /// Scans `text`. Never fails: what it cannot understand it skips.
    pub(crate) fn new(text: &str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l).chars().collect())
            .collect();
        let mut scanner = Scanner {
            lines,
            spots: HashMap::new(),
            duplicates: Vec::new(),
            stack: Vec::new(),
            pending: None,
        };
        scanner.run();
        Locator {
            spots: scanner.spots,
            duplicates: scanner.duplicates,
        }
    }

    /// Where the key of `path` is written (for sequence items: the `-`).
    pub(crate) fn key(&self, path: &[Seg]) -> Option<Pos> {
        self.spots.get(path).and_then(|s| s.key)
    }

    /// Where the value of `path` starts.
    pub(crate) fn value(&self, path: &[Seg]) -> Option<Pos> {
        self.spots.get(path).and_then(|s| s.value)
    }

    /// The first place at or after `from` where a key is written a second
    /// time in the same mapping (the YAML parser reports duplicates at the
    /// start of the mapping, not at the repeated key).
    pub(crate) fn duplicate_after(&self, from: Pos) -> Option<Pos> {
        self.duplicates
            .iter()
            .filter(|p| (p.line, p.column) >= (from.line, from.column))
            .min_by_key(|p| (p.line, p.column))
            .copied()
    }

    /// Number of located paths (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.spots.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Seq,
}

#[derive(Debug)]
struct Frame {
    indent: usize,
    kind: Kind,
    path: Vec<Seg>,
    next_index: usize,
}

struct Scanner {
    lines: Vec<Vec<char>>,
    spots: HashMap<Vec<Seg>, Spot>,
    duplicates: Vec<Pos>,
    stack: Vec<Frame>,
    /// A key (or `-`) whose value did not start on its own line: the next
    /// more-indented block belongs to it. Holds its path and indentation.
    pending: Option<(Vec<Seg>, usize)>,
}

fn child(path: &[Seg], seg: Seg) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.push(seg);
    p
}

fn is_blank_char(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl Scanner {
    fn ch(&self, line: usize, col: usize) -> Option<char> {
        self.lines.get(line).and_then(|l| l.get(col)).copied()
    }

    fn len(&self, line: usize) -> usize {
        self.lines.get(line).map_or(0, Vec::len)
    }

    fn indent(&self, line: usize) -> usize {
        self.lines
            .get(line)
            .map_or(0, |l| l.iter().take_while(|c| **c == ' ').count())
    }

    fn is_blank_line(&self, line: usize) -> bool {
        self.lines
            .get(line)
            .is_none_or(|l| l.iter().all(|c| is_blank_char(*c)))
    }

    fn skip_spaces(&self, line: usize, mut col: usize) -> usize {
        while self.ch(line, col).is_some_and(is_blank_char) {
            col += 1;
        }
        col
    }

    fn is_dash(&self, line: usize, col: usize) -> bool {
        self.ch(line, col) == Some('-') && self.ch(line, col + 1).is_none_or(is_blank_char)
    }

    fn is_doc_marker(&self, line: usize) -> bool {
        let l = &self.lines[line];
        let starts = |m: &str| {
            l.len() >= 3
                && l[..3].iter().copied().eq(m.chars())
                && l.get(3).is_none_or(|c| is_blank_char(*c))
        };
        starts("---") || starts("...") || l.first() == Some(&'%')
    }

    fn set_key(&mut self, path: &[Seg], pos: Pos) {
        let spot = self.spots.entry(path.to_vec()).or_default();
        match spot.key {
            Some(_) => self.duplicates.push(pos),
            None => spot.key = Some(pos),
        }
    }

    fn set_value(&mut self, path: &[Seg], pos: Pos) {
        let spot = self.spots.entry(path.to_vec()).or_default();
        spot.value.get_or_insert(pos);
    }

    /// If a block-mapping key starts at (line, col), returns it and the
    /// column just after its `:`.
    fn key_at(&self, line: usize, col: usize) -> Option<(String, usize)> {
        let first = self.ch(line, col)?;
        if first == '"' || first == '\'' {
            let (content, end_line, end_col) = self.quoted(line, col);
            if end_line != line {
                return None;
            }
            let j = self.skip_spaces(line, end_col);
            return (self.ch(line, j) == Some(':')
                && self.ch(line, j + 1).is_none_or(is_blank_char))
            .then_some((content, j + 1));
        }
        if "[{#&*!|>%@`?".contains(first) || self.is_dash(line, col) {
            return None;
        }
        let len = self.len(line);
        let mut j = col;
        while j < len {
            let c = self.lines[line][j];
            if c == ':' && self.ch(line, j + 1).is_none_or(is_blank_char) {
                let key: String = self.lines[line][col..j].iter().collect();
                return Some((key.trim_end().to_string(), j + 1));
            }
            if c == '#' && j > col && is_blank_char(self.lines[line][j - 1]) {
                return None;
            }
            j += 1;
        }
        None
    }

    /// Reads a quoted scalar starting at (line, col); returns its content
    /// and the position just after the closing quote (end of text when it
    /// is never closed).
    fn quoted(&self, mut line: usize, col: usize) -> (String, usize, usize) {
        let quote = self.ch(line, col).unwrap_or('"');
        let mut out = String::new();
        let mut c = col + 1;
        while line < self.lines.len() {
            while c < self.len(line) {
                let ch = self.lines[line][c];
                if quote == '"' && ch == '\\' {
                    match self.ch(line, c + 1) {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some(other) => out.push(other),
                        None => {}
                    }
                    c += 2;
                    continue;
                }
                if ch == quote {
                    if quote == '\'' && self.ch(line, c + 1) == Some('\'') {
                        out.push('\'');
                        c += 2;
                        continue;
                    }
                    return (out, line, c + 1);
                }
                out.push(ch);
                c += 1;
            }
            out.push(' ');
            line += 1;
            c = 0;
        }
        (out, self.lines.len(), 0)
    }

    fn run(&mut self) {
        let mut i = 0;
        while i < self.lines.len() {
            let indent = self.indent(i);
            match self.ch(i, indent) {
                None | Some('#') => {
                    i += 1;
                    continue;
                }
                Some(_) => {}
            }
            if indent == 0 && self.is_doc_marker(i) {
                self.stack.clear();
                self.pending = None;
                i += 1;
                continue;
            }
            let dash = self.is_dash(i, indent);
            if let Some((path, key_indent)) = self.pending.take()
                && (indent > key_indent || (indent == key_indent && dash))
            {
                if dash || self.key_at(i, indent).is_some() {
                    self.set_value(&path, Pos::at(i, indent));
                    self.stack.push(Frame {
                        indent,
                        kind: if dash { Kind::Seq } else { Kind::Map },
                        path,
                        next_index: 0,
                    });
                } else {
                    i = self.value(i, indent, &path, key_indent);
                    continue;
                }
            }
            while let Some(top) = self.stack.last() {
                let pop =
                    top.indent > indent || (top.indent == indent && top.kind == Kind::Seq && !dash);
                if !pop {
                    break;
                }
                self.stack.pop();
            }
            match self.stack.last() {
                None => self.stack.push(Frame {
                    indent,
                    kind: if dash { Kind::Seq } else { Kind::Map },
                    path: Vec::new(),
                    next_index: 0,
                }),
                // More indented than the innermost container: a continuation
                // of a multi-line plain scalar, or something we don't model.
                Some(top) if top.indent != indent => {
                    i += 1;
                    continue;
                }
                Some(_) => {}
            }
            i = self.entry(i, indent);
        }
    }

    /// Handles the block entry starting at (line, col) in the innermost
    /// frame; returns the next line to scan.
    fn entry(&mut self, line: usize, col: usize) -> usize {
        if self.stack.len() > MAX_BLOCK_DEPTH {
            return line + 1;
        }
        let dash = self.is_dash(line, col);
        let Some(top) = self.stack.last_mut() else {
            return line + 1;
        };
        match top.kind {
            Kind::Seq => {
                if !dash {
                    return line + 1;
                }
                let index = top.next_index;
                top.next_index += 1;
                let path = child(&top.path, Seg::Index(index));
                self.set_key(&path, Pos::at(line, col));
                let c2 = self.skip_spaces(line, col + 1);
                match self.ch(line, c2) {
                    None | Some('#') => {
                        self.pending = Some((path, col));
                        line + 1
                    }
                    Some(_) if self.is_dash(line, c2) => {
                        self.set_value(&path, Pos::at(line, c2));
                        self.stack.push(Frame {
                            indent: c2,
                            kind: Kind::Seq,
                            path,
                            next_index: 0,
                        });
                        self.entry(line, c2)
                    }
                    Some(_) if self.key_at(line, c2).is_some() => {
                        self.set_value(&path, Pos::at(line, c2));
                        self.stack.push(Frame {
                            indent: c2,
                            kind: Kind::Map,
                            path,
                            next_index: 0,
                        });
                        self.entry(line, c2)
                    }
                    Some(_) => self.value(line, c2, &path, col),
                }
            }
            Kind::Map => {
                let parent = top.path.clone();
                let Some((key, after)) = self.key_at(line, col) else {
                    return line + 1;
                };
                let path = child(&parent, Seg::Key(key));
                self.set_key(&path, Pos::at(line, col));
                let c3 = self.skip_spaces(line, after);
                match self.ch(line, c3) {
                    None | Some('#') => {
                        self.pending = Some((path, col));
                        line + 1
                    }
                    Some(_) => self.value(line, c3, &path, col),
                }
            }
        }
    }

    /// Records the value of `path` starting at (line, col) and skips over
    /// it; returns the next line to scan. `parent_indent` is the indentation
    /// of the key (or `-`) that owns the value.
    fn value(&mut self, line: usize, mut col: usize, path: &[Seg], parent_indent: usize) -> usize {
        // Anchors and tags precede the value proper.
        while matches!(self.ch(line, col), Some('&' | '!')) {
            while self.ch(line, col).is_some_and(|c| !is_blank_char(c)) {
                col += 1;
            }
            col = self.skip_spaces(line, col);
        }
        match self.ch(line, col) {
            None | Some('#') => {
                self.pending = Some((path.to_vec(), parent_indent));
                line + 1
            }
            Some('|' | '>') => {
                self.set_value(path, Pos::at(line, col));
                let mut j = line + 1;
                while j < self.lines.len()
                    && (self.is_blank_line(j) || self.indent(j) > parent_indent)
                {
                    j += 1;
                }
                j
            }
            Some('[' | '{') => {
                let mut flow = Flow {
                    scanner: self,
                    line,
                    col,
                };
                flow.node(path, 0);
                flow.line + 1
            }
            Some('"' | '\'') => {
                self.set_value(path, Pos::at(line, col));
                let (_, end_line, _) = self.quoted(line, col);
                end_line + 1
            }
            Some(_) => {
                self.set_value(path, Pos::at(line, col));
                line + 1
            }
        }
    }
}

/// A cursor over a flow collection, which may span lines.
struct Flow<'a> {
    scanner: &'a mut Scanner,
    line: usize,
    col: usize,
}

/// Block collections nested deeper than this on one line (`- - - ...`) are
/// not followed, which bounds the scanner's recursion.
const MAX_BLOCK_DEPTH: usize = 256;

/// Flow collections nested deeper than this are skipped, not recursed into.
const MAX_FLOW_DEPTH: usize = 64;

impl Flow<'_> {
    /// The current character; `\n` at the end of a line, `None` at the end.
    fn peek(&self) -> Option<char> {
        if self.line >= self.scanner.lines.len() {
            return None;
        }
        Some(self.scanner.ch(self.line, self.col).unwrap_or('\n'))
    }

    fn bump(&mut self) {
        if self.line >= self.scanner.lines.len() {
            return;
        }
        if self.col >= self.scanner.len(self.line) {
            self.line += 1;
            self.col = 0;
        } else {
            self.col += 1;
        }
    }

    fn pos(&self) -> Pos {
        Pos::at(self.line, self.col)
    }

    fn skip_ws(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\n' | '\r') => self.bump(),
                Some('#') => {
                    self.line += 1;
                    self.col = 0;
                }
                _ => return,
            }
        }
    }

    fn skip_properties(&mut self) {
        while matches!(self.peek(), Some('&' | '!')) {
            while self
                .peek()
                .is_some_and(|c| !matches!(c, ' ' | '\t' | '\n' | ',' | '[' | ']' | '{' | '}'))
            {
                self.bump();
            }
            self.skip_ws();
        }
    }

    fn node(&mut self, path: &[Seg], depth: usize) {
        self.skip_ws();
        self.skip_properties();
        let pos = self.pos();
        match self.peek() {
            None | Some(',' | ']' | '}') => {}
            Some('{') => {
                self.scanner.set_value(path, pos);
                self.bump();
                if depth < MAX_FLOW_DEPTH {
                    self.map(path, depth);
                } else {
                    self.skip_nested();
                }
            }
            Some('[') => {
                self.scanner.set_value(path, pos);
                self.bump();
                if depth < MAX_FLOW_DEPTH {
                    self.seq(path, depth);
                } else {
                    self.skip_nested();
                }
            }
            Some('"' | '\'') => {
                self.scanner.set_value(path, pos);
                self.quoted();
            }
            Some(_) => {
                self.scanner.set_value(path, pos);
                self.plain();
            }
        }
    }

    /// Skips to the end of the current (too deeply nested) collection.
    fn skip_nested(&mut self) {
        let mut depth = 1usize;
        while let Some(c) = self.peek() {
            self.bump();
            match c {
                '[' | '{' => depth += 1,
                ']' | '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    fn quoted(&mut self) -> String {
        let (content, end_line, end_col) = self.scanner.quoted(self.line, self.col);
        self.line = end_line;
        self.col = end_col;
        content
    }

    /// True when a `:` at the cursor ends a key (flow context rules).
    fn at_value_indicator(&self) -> bool {
        self.peek() == Some(':')
            && self
                .scanner
                .ch(self.line, self.col + 1)
                .is_none_or(|c| matches!(c, ' ' | '\t' | ',' | '[' | ']' | '{' | '}'))
    }

    /// Consumes a plain scalar; returns it (trimmed).
    fn plain(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if matches!(c, ',' | ']' | '}' | '\n') || self.at_value_indicator() {
                break;
            }
            if c == '#' && out.ends_with([' ', '\t']) {
                break;
            }
            out.push(c);
            self.bump();
        }
        out.trim().to_string()
    }

    fn map(&mut self, path: &[Seg], depth: usize) {
        loop {
            self.skip_ws();
            match self.peek() {
                None => return,
                Some('}') => {
                    self.bump();
                    return;
                }
                Some(',') => {
                    self.bump();
                    continue;
                }
                _ => {}
            }
            let start = (self.line, self.col);
            let pos = self.pos();
            let key = match self.peek() {
                Some('"' | '\'') => self.quoted(),
                _ => self.plain(),
            };
            let key_path = child(path, Seg::Key(key));
            self.scanner.set_key(&key_path, pos);
            self.skip_ws();
            if self.peek() == Some(':') {
                self.bump();
                self.node(&key_path, depth + 1);
            }
            self.skip_ws();
            match self.peek() {
                None => return,
                Some('}') => {
                    self.bump();
                    return;
                }
                Some(',') => self.bump(),
                Some(_) if (self.line, self.col) == start => self.bump(),
                Some(_) => {}
            }
        }
    }

    fn seq(&mut self, path: &[Seg], depth: usize) {
        let mut index = 0;
        loop {
            self.skip_ws();
            match self.peek() {
                None => return,
                Some(']') => {
                    self.bump();
                    return;
                }
                _ => {}
            }
            let start = (self.line, self.col);
            let item = child(path, Seg::Index(index));
            self.scanner.set_key(&item, self.pos());
            self.node(&item, depth + 1);
            index += 1;
            self.skip_ws();
            match self.peek() {
                None => return,
                Some(']') => {
                    self.bump();
                    return;
                }
                Some(',') => self.bump(),
                Some(_) if (self.line, self.col) == start => self.bump(),
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(segs: &[&str]) -> Vec<Seg> {
        segs.iter()
            .map(|s| match s.parse::<usize>() {
                Ok(n) => Seg::Index(n),
                Err(_) => Seg::Key((*s).to_string()),
            })
            .collect()
    }

    fn key(loc: &Locator, segs: &[&str]) -> Option<(usize, usize)> {
        loc.key(&p(segs)).map(|x| (x.line, x.column))
    }

    fn value(loc: &Locator, segs: &[&str]) -> Option<(usize, usize)> {
        loc.value(&p(segs)).map(|x| (x.line, x.column))
    }

    #[test]
    fn block_mappings_and_sequences() {
        let text = "\
# comment
name: Demo   # trailing
slug: demo
ami_config:
  strategy: ami_preferred
  ami_mappings:
    us-east-1: ami-12345678
  ami_search:
    owners:
      - self
      - \"704381954421\"
packages:
  system:
  - git
  - curl
  conda: [numpy, 'scipy']
post_install: |
  echo hi
  key: not a key
tags:
  cws:template: demo
";
        let loc = Locator::new(text);
        assert_eq!(key(&loc, &["name"]), Some((2, 1)));
        assert_eq!(value(&loc, &["name"]), Some((2, 7)));
        assert_eq!(key(&loc, &["ami_config", "strategy"]), Some((5, 3)));
        assert_eq!(value(&loc, &["ami_config", "strategy"]), Some((5, 13)));
        assert_eq!(
            value(&loc, &["ami_config", "ami_mappings", "us-east-1"]),
            Some((7, 16))
        );
        assert_eq!(
            value(&loc, &["ami_config", "ami_search", "owners", "1"]),
            Some((11, 9))
        );
        assert_eq!(key(&loc, &["packages", "system", "1"]), Some((15, 3)));
        assert_eq!(value(&loc, &["packages", "system", "1"]), Some((15, 5)));
        assert_eq!(value(&loc, &["packages", "conda", "1"]), Some((16, 18)));
        assert_eq!(value(&loc, &["post_install"]), Some((17, 15)));
        assert_eq!(
            key(&loc, &["key"]),
            None,
            "block scalar content is not keys"
        );
        assert_eq!(key(&loc, &["tags", "cws:template"]), Some((21, 3)));
    }

    #[test]
    fn flow_mappings_spanning_lines() {
        let text = "ami_config:\n  ami_mappings: { us-east-1: ami-12345678,\n    \"eu-west-1\": ami-87654321 }\n  marketplace: {product_code: abc}\nx: [[1, 2], {a: b}]\n";
        let loc = Locator::new(text);
        assert_eq!(
            key(&loc, &["ami_config", "ami_mappings", "us-east-1"]),
            Some((2, 19))
        );
        assert_eq!(
            value(&loc, &["ami_config", "ami_mappings", "eu-west-1"]),
            Some((3, 18))
        );
        assert_eq!(
            value(&loc, &["ami_config", "marketplace", "product_code"]),
            Some((4, 31))
        );
        assert_eq!(value(&loc, &["x", "0", "1"]), Some((5, 9)));
        assert_eq!(value(&loc, &["x", "1", "a"]), Some((5, 17)));
    }

    #[test]
    fn sequences_of_mappings_and_nested_sequences() {
        let text = "items:\n- name: a\n  port: 1\n- - x\n  - y\n-\n  name: c\n";
        let loc = Locator::new(text);
        assert_eq!(key(&loc, &["items", "0", "port"]), Some((3, 3)));
        assert_eq!(value(&loc, &["items", "1", "1"]), Some((5, 5)));
        assert_eq!(key(&loc, &["items", "2", "name"]), Some((7, 3)));
    }

    #[test]
    fn value_on_next_line_and_anchors() {
        let text = "a:\n  plain text\nb: &anchor\n  c: 1\nd: !!str 5\n";
        let loc = Locator::new(text);
        assert_eq!(value(&loc, &["a"]), Some((2, 3)));
        assert_eq!(key(&loc, &["b", "c"]), Some((4, 3)));
        assert_eq!(value(&loc, &["d"]), Some((5, 10)));
        assert!(loc.len() >= 4);
    }

    /// Every key path of every bundled template is located, and the text
    /// at each recorded position is that key (or list item).
    #[test]
    fn bundled_templates_are_fully_located() {
        use serde_norway::Value;

        fn visit(
            value: &Value,
            path: &mut Vec<Seg>,
            loc: &Locator,
            lines: &[&str],
            checked: &mut usize,
        ) {
            let at = |p: Pos| -> String { lines[p.line - 1].chars().skip(p.column - 1).collect() };
            match value {
                Value::Mapping(m) => {
                    for (k, v) in m {
                        let k = k.as_str().expect("string keys");
                        path.push(Seg::Key(k.to_string()));
                        let pos = loc
                            .key(path)
                            .unwrap_or_else(|| panic!("{} not located", DisplayPath(path)));
                        assert!(at(pos).starts_with(k), "{}: {}", DisplayPath(path), at(pos));
                        assert!(
                            loc.value(path).is_some(),
                            "{} has no value",
                            DisplayPath(path)
                        );
                        *checked += 1;
                        visit(v, path, loc, lines, checked);
                        path.pop();
                    }
                }
                Value::Sequence(items) => {
                    for (i, v) in items.iter().enumerate() {
                        path.push(Seg::Index(i));
                        let pos = loc
                            .value(path)
                            .unwrap_or_else(|| panic!("{} not located", DisplayPath(path)));
                        if let Some(s) = v.as_str() {
                            let shown = at(pos);
                            let shown = shown.trim_start_matches(['"', '\'']);
                            assert!(shown.starts_with(s), "{}: {shown}", DisplayPath(path));
                        }
                        *checked += 1;
                        visit(v, path, loc, lines, checked);
                        path.pop();
                    }
                }
                _ => {}
            }
        }

        for b in crate::bundled() {
            let value: Value = serde_norway::from_str(b.source).expect("bundled YAML parses");
            let loc = Locator::new(b.source);
            let lines: Vec<&str> = b.source.split('\n').collect();
            let mut checked = 0;
            visit(&value, &mut Vec::new(), &loc, &lines, &mut checked);
            assert!(checked > 20, "{}: only {checked} paths", b.slug);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_text_never_panics(s in "(?s).{0,400}") {
            let _ = Locator::new(&s);
        }

        #[test]
        fn indicator_soup_never_panics(s in "[-:#'\"|>\\[\\]{},&*!? \n\ta-z]{0,300}") {
            let _ = Locator::new(&s);
        }
    }

    #[test]
    fn garbage_does_not_panic() {
        for text in [
            "",
            "\n\n",
            "- ",
            "[",
            "{",
            "{a: [b, {c",
            "\"unterminated",
            "'it''s",
            ":::",
            "a: |\n",
            "- - - -",
            "? complex\n: value",
            "a:\n\t- b",
            "[[[[[[[[[[[[",
            "{ : }",
            "--- \n...\n%YAML",
            "a: 'x\n\n  y'\nb: 1",
        ] {
            let _ = Locator::new(text);
        }
        let deep = "[".repeat(10_000);
        let _ = Locator::new(&format!("a: {deep}"));
        let dashes = "- ".repeat(10_000);
        let _ = Locator::new(&dashes);
        let keys = "a: ".repeat(10_000);
        let _ = Locator::new(&keys);
    }
}
