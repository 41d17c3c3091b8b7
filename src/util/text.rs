//! Making text from the input safe to show: in a terminal, in a CSV cell a
//! spreadsheet opens, and in a Markdown page a browser renders.

use std::borrow::Cow;

/// `s` with every control character (C0, DEL, C1) and every bidirectional
/// override written as its escape (`\u{1b}`), so a label can neither move
/// the cursor, retitle the terminal, break a line nor reverse what
/// follows it.
pub fn printable(s: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if unsafe_char(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// A CSV text cell that a spreadsheet will not run as a formula: one that
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
/// leading `'` (OWASP's advice for CSV injection).
pub fn csv_text(s: &str) -> Cow<'_, str> {
    match s.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

/// `s` as literal Markdown text inside a line: the characters that open
/// emphasis, code, links, images, headings and table cells backslash-
/// escaped, `<`, `>` and `&` as entities, control characters escaped, so a
/// label can add no link, image, tag, table cell or line.
pub fn markdown_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '!' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_made_harmless() {
        assert_eq!(printable("PortScan"), "PortScan");
        assert_eq!(
            printable("\u{1b}[2Jx\u{7}\0\n"),
            "\\u{1b}[2Jx\\u{7}\\u{0}\\u{a}"
        );
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(csv_text("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_text("-2+3"), "'-2+3");
        assert_eq!(csv_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_text("BENIGN"), "BENIGN");
        assert_eq!(csv_text(""), "");
        assert_eq!(
            markdown_text("<img src=x> ![p](http://e/t.png) [c](javascript:x) | # h"),
            "&lt;img src=x&gt; \\!\\[p\\]\\(http://e/t.png\\) \\[c\\]\\(javascript:x\\) \\| \\# h"
        );
        assert_eq!(markdown_text("a\nb"), "a\\\\u\\{a\\}b");
    }
}
