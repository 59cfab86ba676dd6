//! Which characters of untrusted text are unsafe to show as they are.
//!
//! Names, descriptions and tags come from clouds, registries and files. Some of their
//! characters do not show as themselves on a terminal: control characters move the cursor,
//! clear the screen or set the window title (ESC sequences), start new lines that look like
//! output of their own, and bidirectional overrides reverse the text after them. This module
//! decides which characters those are, once, for every crate: the CLI escapes them before
//! printing, and services refuse them where a value is created (an instance's name).

/// Whether `c` must not reach a terminal as it is: a control character (C0 including ESC,
/// newline and tab, DEL, C1), a bidirectional control (U+061C, U+200E, U+200F,
/// U+202A–U+202E, U+2066–U+2069), or another invisible formatting character (soft hyphen,
/// zero-width space, word joiner and invisible operators, U+2028/U+2029 line and paragraph
/// separators, the byte-order mark, interlinear annotations, tag characters).
///
/// Zero-width joiner and non-joiner (U+200D, U+200C) and variation selectors are allowed:
/// emoji sequences and several scripts need them, and they neither reorder nor hide text.
///
/// ```
/// use cws_util::text::is_unsafe_to_show;
/// assert!(is_unsafe_to_show('\u{1b}'));
/// assert!(is_unsafe_to_show('\n'));
/// assert!(is_unsafe_to_show('\u{202e}'));
/// assert!(!is_unsafe_to_show('é'));
/// assert!(!is_unsafe_to_show('中'));
/// ```
pub fn is_unsafe_to_show(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// The first character of `s` that [`is_unsafe_to_show`], with its position in characters
/// (0-based).
pub fn first_unsafe_to_show(s: &str) -> Option<(usize, char)> {
    s.chars().enumerate().find(|(_, c)| is_unsafe_to_show(*c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_bidi_and_invisible_format_characters_are_unsafe() {
        for c in [
            '\0',
            '\t',
            '\n',
            '\r',
            '\u{1b}',
            '\u{7f}',
            '\u{80}',
            '\u{85}',
            '\u{9b}',
            '\u{9f}',
            '\u{200e}',
            '\u{200f}',
            '\u{202a}',
            '\u{202e}',
            '\u{2066}',
            '\u{2069}',
            '\u{200b}',
            '\u{2028}',
            '\u{2029}',
            '\u{feff}',
            '\u{e0041}',
        ] {
            assert!(is_unsafe_to_show(c), "{:?}", c);
        }
    }

    #[test]
    fn printable_text_is_safe() {
        for c in [
            'a', ' ', '~', '\\', 'é', 'ß', '中', 'ж', 'ا', '😀', '\u{200d}', '\u{fe0f}', '\u{a0}',
        ] {
            assert!(!is_unsafe_to_show(c), "{:?}", c);
        }
    }

    #[test]
    fn the_first_unsafe_character_is_found_by_position() {
        assert_eq!(first_unsafe_to_show("ab\ncd"), Some((2, '\n')));
        assert_eq!(first_unsafe_to_show("été\u{202e}"), Some((3, '\u{202e}')));
        assert_eq!(first_unsafe_to_show("plain été 中文"), None);
    }
}
