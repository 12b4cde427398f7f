//! What free text people type may hold: no control characters (NUL, escape sequences, bidi
//! overrides), which would be stored in the log forever and rendered by every client that shows it.
//! Line breaks and tabs are allowed where the text may span lines (comments, notes).

use crate::DomainError;

/// Refuses control characters in `text` (and bidirectional overrides), except `\n`, `\r` and `\t`
/// when `multiline`.
pub(crate) fn plain(field: &'static str, text: &str, multiline: bool) -> Result<(), DomainError> {
    let bad = text.chars().find(|c| {
        let allowed = multiline && matches!(c, '\n' | '\r' | '\t');
        (c.is_control() && !allowed)
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    });
    match bad {
        Some(c) => Err(DomainError::invalid(
            field,
            format!(
                "must not contain control characters (found U+{:04X})",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// Whether `raw` is a slug, as tenant and project ids are: 1–63 characters of `a-z`, `0-9` and
/// `-`, starting with a letter or digit (so it fits in stream names and tokens).
pub(crate) fn is_slug(raw: &str) -> bool {
    (1..=63).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && raw
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_and_line_breaks_only_where_text_spans_lines() {
        assert!(plain("note", "fixed in\nrelease 2\tok", true).is_ok());
        assert!(plain("name", "ci\nkey", false).is_err());
        for bad in [
            "a\0b",
            "\u{1b}[31mred",
            "x\u{7f}",
            "\u{202e}txt.exe",
            "\u{85}",
        ] {
            let refused = plain("note", bad, true).unwrap_err().to_string();
            assert!(refused.contains("control characters"), "{bad:?}: {refused}");
        }
        assert!(plain("note", "naïve — café 日本", true).is_ok());
    }
}
