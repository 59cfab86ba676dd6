//! Untrusted text never reaches the terminal raw.
//!
//! Image names, descriptions and tags, instance names, snapshot ids, provider error messages,
//! the pending-images file and template files are not cws's to trust: an ESC sequence in a tag
//! could clear the screen or set the window title, a newline in a name could forge a table row,
//! U+202E could reverse the text after it. Everything the CLI prints for people that holds such
//! text goes through [`Shown`] (or [`shown`]), which escapes the characters
//! [`cws_util::text::is_unsafe_to_show`] names: ESC as `\e`, newline `\n`, tab `\t`, carriage
//! return `\r`, any other as `\u{202e}` and the like. Plain text, non-ASCII letters included,
//! is unchanged (and borrowed, not copied). `--json` output is never escaped here: JSON escapes
//! control characters itself and keeps the real string.
//!
//! Backslashes are not escaped, so escaping twice changes nothing and paths stay readable.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use cws_util::text::is_unsafe_to_show;

/// `s` as it may be shown on a terminal: on one line, with every control, bidirectional or
/// invisible formatting character escaped. Borrowed when nothing needed escaping.
pub fn shown(s: &str) -> Cow<'_, str> {
    escaped(s, Layout::OneLine)
}

/// Like [`shown`], but keeps line breaks and tabs: for multi-line text the CLI lays out itself
/// (its own message followed by a `help:` line, a YAML document, a table of costs) after the
/// untrusted parts inside it were escaped with [`shown`].
pub fn shown_lines(s: &str) -> Cow<'_, str> {
    escaped(s, Layout::KeepLines)
}

/// Shows a value's `Display` with [`shown`]'s escapes, without copying it first:
/// `println!("Deregistered {}", Shown(&image.name))`. Width and precision (`{:12}`) apply to
/// the escaped text.
pub struct Shown<T>(pub T);

impl<T: fmt::Display> fmt::Display for Shown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_some() || f.precision().is_some() {
            let mut s = String::new();
            write!(
                Escaper {
                    out: &mut s,
                    layout: Layout::OneLine
                },
                "{}",
                self.0
            )?;
            return f.pad(&s);
        }
        write!(
            Escaper {
                out: f,
                layout: Layout::OneLine,
            },
            "{}",
            self.0
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    OneLine,
    KeepLines,
}

fn needs_escape(c: char, layout: Layout) -> bool {
    is_unsafe_to_show(c) && !(layout == Layout::KeepLines && matches!(c, '\n' | '\t'))
}

fn escaped(s: &str, layout: Layout) -> Cow<'_, str> {
    if !s.chars().any(|c| needs_escape(c, layout)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    // Writing to a String cannot fail.
    let _ = Escaper {
        out: &mut out,
        layout,
    }
    .write_str(s);
    Cow::Owned(out)
}

/// A writer that escapes what it is given on the way through.
struct Escaper<W> {
    out: W,
    layout: Layout,
}

impl<W: fmt::Write> fmt::Write for Escaper<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, c) in s.char_indices() {
            if !needs_escape(c, self.layout) {
                continue;
            }
            self.out.write_str(&s[start..i])?;
            match c {
                '\u{1b}' => self.out.write_str("\\e")?,
                '\n' => self.out.write_str("\\n")?,
                '\t' => self.out.write_str("\\t")?,
                '\r' => self.out.write_str("\\r")?,
                other => write!(self.out, "\\u{{{:x}}}", u32::from(other))?,
            }
            start = i + c.len_utf8();
        }
        self.out.write_str(&s[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_borrowed(c: Cow<'_, str>) -> bool {
        matches!(c, Cow::Borrowed(_))
    }

    #[test]
    fn plain_and_non_ascii_text_is_borrowed_unchanged() {
        for s in [
            "",
            "My Setup",
            "ami-0123456789abcdef0",
            "Café été",
            "中文 名前",
            "path\\to\\file",
            "👩‍🔬 lab",
        ] {
            assert_eq!(shown(s), s);
            assert!(is_borrowed(shown(s)), "{s:?} was copied");
            assert!(is_borrowed(shown_lines(s)));
            assert_eq!(Shown(s).to_string(), s);
        }
    }

    #[test]
    fn escape_sequences_newlines_and_bidi_overrides_are_escaped() {
        assert_eq!(shown("\u{1b}]0;pwned\u{7}"), "\\e]0;pwned\\u{7}");
        assert_eq!(shown("\u{1b}[2J"), "\\e[2J");
        assert_eq!(shown("a\nb"), "a\\nb");
        assert_eq!(shown("a\r\tb"), "a\\r\\tb");
        assert_eq!(shown("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(
            shown("\u{2066}x\u{2069}\u{200f}"),
            "\\u{2066}x\\u{2069}\\u{200f}"
        );
        // C1 controls, including the 8-bit CSI and NEL.
        assert_eq!(shown("\u{9b}2J\u{85}"), "\\u{9b}2J\\u{85}");
        assert_eq!(
            shown("a\u{200b}b\u{feff}\u{7f}\0"),
            "a\\u{200b}b\\u{feff}\\u{7f}\\u{0}"
        );
        assert_eq!(shown("é\u{1b}中"), "é\\e中");
        assert!(!is_borrowed(shown("a\nb")));
    }

    #[test]
    fn escaping_is_idempotent() {
        let once = shown("x\u{1b}[31m\n\u{202e}").into_owned();
        assert_eq!(shown(&once), once);
        assert!(is_borrowed(shown(&once)));
    }

    #[test]
    fn shown_lines_keeps_line_breaks_and_tabs_only() {
        assert_eq!(
            shown_lines("one\n  help:\ttwo\u{1b}[2J\r\u{202e}"),
            "one\n  help:\ttwo\\e[2J\\r\\u{202e}"
        );
    }

    #[test]
    fn the_display_wrapper_escapes_any_display_and_pads_the_escaped_text() {
        assert_eq!(Shown("a\nb").to_string(), "a\\nb");
        assert_eq!(format!("[{:6}]", Shown("a\nb")), "[a\\nb  ]");
        assert_eq!(format!("[{:>4}]", Shown("é")), "[   é]");
        let err = std::io::Error::other("denied: \u{1b}]0;title\u{7}");
        assert_eq!(
            format!("error: {}", Shown(&err)),
            "error: denied: \\e]0;title\\u{7}"
        );
    }
}
