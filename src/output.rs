//! One rule per output format for text keyshift did not write: names, descriptions and file
//! contents from a vendor reach terminals, spreadsheets, Markdown viewers and browsers, and
//! must not run, break a layout or hide anything there. Every renderer calls the function of
//! its format here; JSON is the exception — it stays exact, and its readers escape for
//! themselves.
//!
//! - [`visible`]: control characters (C0 but newline and tab, DEL, C1) and the characters that
//!   reorder or hide text (bidirectional embeddings, overrides and isolates, zero-width
//!   marks) are shown as `\u{…}`, so a name that says one thing cannot display another.
//! - [`csv_cell`]: the OWASP rule against formula injection — a cell that begins with `=`,
//!   `+`, `-`, `@`, a tab or a carriage return is prefixed with `'` (plain numbers aside) —
//!   after [`visible`].
//! - [`md`]: Markdown's punctuation escaped, so a table keeps its columns and no link, image,
//!   emphasis or inline HTML is made; newlines become spaces.
//! - [`html`]: `& < > " '` escaped.
//! - [`Visible`]: a writer applying [`visible`], for the log lines on stderr.

use std::borrow::Cow;

/// Characters that reorder or hide the text around them.
fn hides(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// Whether `c` must be shown as an escape wherever people read text.
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || hides(c)
}

/// `s` with control and hiding characters shown as `\u{…}` (newline and tab kept).
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A plain number (`-3`, `+1.5`), which a spreadsheet reads as a number and never runs.
fn plain_number(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// One CSV cell's text, safe to open in a spreadsheet.
pub fn csv_cell(s: &str) -> String {
    let v = visible(s);
    let risky = v.starts_with(['=', '+', '-', '@', '\t', '\r']) && !plain_number(&v);
    if risky {
        format!("'{v}")
    } else {
        v.into_owned()
    }
}

/// Markdown text (a table cell, a list item): punctuation escaped, one line.
pub fn md(s: &str) -> String {
    let v = visible(s);
    let mut out = String::with_capacity(v.len() + 8);
    for (i, c) in v.chars().enumerate() {
        match c {
            '\n' | '\t' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            // Block markers mean something only where a line starts.
            '#' | '-' | '+' | '=' | '!' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// HTML text or attribute value.
pub fn html(s: &str) -> String {
    let v = visible(s);
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A writer that shows control and hiding characters ([`visible`]) in everything written
/// through it: the log lines on stderr carry vendor text too. Each write is one formatted
/// line, so no character is split between writes.
pub struct Visible<W>(pub W);

impl<W: std::io::Write> std::io::Write for Visible<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(visible(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A CSV document whose every cell went through [`csv_cell`]: `raw` is what `csv::Writer`
/// made of the rows (headers first), read back and written again cell by cell.
pub fn neutralize_csv(raw: &[u8]) -> anyhow::Result<String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(raw);
    let mut w = csv::Writer::from_writer(Vec::new());
    for rec in r.records() {
        let rec = rec?;
        w.write_record(rec.iter().map(csv_cell))?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_hiding_characters_become_visible() {
        assert_eq!(visible("plain · ünïcode"), "plain · ünïcode");
        assert_eq!(visible("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(visible("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(visible("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(visible("c1\u{9b}x"), "c1\\u{9b}x");
        assert_eq!(
            visible("keeps\nnewline\tand tab"),
            "keeps\nnewline\tand tab"
        );
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        for (raw, want) in [
            ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\r=1", "\\u{d}=1"),
            ("-3", "-3"),
            ("+1.5", "+1.5"),
            ("Partner", "Partner"),
        ] {
            assert_eq!(csv_cell(raw), want, "{raw:?}");
        }
        let doc = neutralize_csv(b"name,id\n\"=HYPERLINK(\"\"x\"\")\",-4\n").unwrap();
        assert_eq!(doc, "name,id\n\"'=HYPERLINK(\"\"x\"\")\",-4\n");
    }

    #[test]
    fn markdown_keeps_columns_and_makes_no_link() {
        assert_eq!(md("a|b"), "a\\|b");
        assert_eq!(md("[x](http://e)"), "\\[x\\](http://e)");
        assert_eq!(md("# not a heading - ok"), "\\# not a heading - ok");
        assert_eq!(md("<img src=x>"), "\\<img src=x\\>");
        assert_eq!(md("two\nlines"), "two lines");
        assert_eq!(md("ok name 7"), "ok name 7");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
