//! Facts about an HTML page, from a small tag scanner (no DOM is built and nothing of the page is
//! kept): scripts and whether external ones carry Subresource Integrity, sub-resources loaded over
//! plain HTTP, forms and password inputs.

use vantage_observations::http::HtmlSummary;

/// The value of `name="…"` (or '…' or bare) inside one tag's text, lower-cased tag assumed.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(name) {
        let start = from + found;
        let before_ok = start == 0 || lower.as_bytes()[start - 1].is_ascii_whitespace();
        let rest = lower[start + name.len()..].trim_start();
        if before_ok && rest.starts_with('=') {
            let offset = tag.len() - rest.len() + 1;
            let value = tag[offset..].trim_start();
            return Some(match value.chars().next() {
                Some(quote @ ('"' | '\'')) => value[1..].split(quote).next().unwrap_or(""),
                _ => value
                    .split(|c: char| c.is_whitespace() || c == '>')
                    .next()
                    .unwrap_or(""),
            });
        }
        if before_ok
            && (rest.starts_with('>')
                || rest.starts_with('/')
                || rest.is_empty()
                || rest.starts_with(char::is_whitespace))
        {
            return Some("");
        }
        from = start + name.len();
    }
    None
}

/// Scans `html` tag by tag.
pub fn summarize_html(html: &str) -> HtmlSummary {
    let mut summary = HtmlSummary::default();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('>') else { break };
        let tag = &rest[..close];
        rest = &rest[close + 1..];
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let insecure = |attr: &str| {
            attribute(tag, attr)
                .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("http://"))
        };
        match name.as_str() {
            "script" => {
                summary.scripts += 1;
                if let Some(src) = attribute(tag, "src") {
                    let src = src.trim().to_ascii_lowercase();
                    if src.starts_with("http://")
                        || src.starts_with("https://")
                        || src.starts_with("//")
                    {
                        summary.external_scripts += 1;
                        if attribute(tag, "integrity").is_none_or(str::is_empty) {
                            summary.external_scripts_without_sri += 1;
                        }
                    }
                }
                if insecure("src") {
                    summary.insecure_subresources += 1;
                }
            }
            "link" if insecure("href") => summary.insecure_subresources += 1,
            "img" | "iframe" | "audio" | "video" | "source" | "embed" if insecure("src") => {
                summary.insecure_subresources += 1;
            }
            "form" => summary.forms += 1,
            "input"
                if attribute(tag, "type").is_some_and(|t| t.eq_ignore_ascii_case("password")) =>
            {
                summary.password_inputs += 1;
            }
            _ => {}
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counts_what_matters() {
        let page = r#"<html><head>
            <script src="https://cdn.example/lib.js" integrity="sha384-abc" crossorigin></script>
            <script src="//cdn.example/other.js"></script>
            <script>inline()</script>
            <SCRIPT SRC='http://cdn.example/old.js'></SCRIPT>
            <link rel="stylesheet" href="http://cdn.example/a.css">
            <img src=http://img.example/x.png>
            </head><body><form action="/login"><input name="u"><input type="PASSWORD" name="p"></form></body></html>"#;
        assert_eq!(
            summarize_html(page),
            HtmlSummary {
                scripts: 4,
                external_scripts: 3,
                external_scripts_without_sri: 2,
                insecure_subresources: 3,
                forms: 1,
                password_inputs: 1,
            }
        );
    }

    proptest! {
        #[test]
        fn never_panics(page in "\\PC{0,400}") {
            let summary = summarize_html(&page);
            prop_assert!(summary.external_scripts_without_sri <= summary.external_scripts);
            prop_assert!(summary.external_scripts <= summary.scripts);
        }
    }
}
