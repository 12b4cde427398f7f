//! Facts about an HTML page, from a small tag scanner (no DOM is built and nothing of the page is
//! kept): scripts, where they load from and whether they carry Subresource Integrity, sub-resources
//! loaded over plain HTTP, forms and password inputs, and the policies the page declares in
//! `<meta>` (Content-Security-Policy, referrer).

use vantage_observations::http::{
    HtmlSummary, MAX_META_CHARS, MAX_SCRIPT_SOURCES, MAX_SCRIPT_SRC_CHARS, ScriptLocation,
    ScriptSource,
};

fn capped(value: &str, chars: usize) -> String {
    value.chars().take(chars).collect()
}

/// Where a script `src` points and what that means for the page fetched from `page_host`.
fn script_source(src: &str, integrity: bool, page_host: &str) -> ScriptSource {
    let lower = src.to_ascii_lowercase();
    let location = if lower.starts_with("//") && !lower.starts_with("///") {
        ScriptLocation::ProtocolRelative
    } else if lower.starts_with("http://") || lower.starts_with("https://") {
        ScriptLocation::Absolute
    } else {
        ScriptLocation::Relative
    };
    let same_site = location == ScriptLocation::Absolute
        && url::Url::parse(src)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .is_some_and(|host| crate::site::same_site(&host, page_host));
    ScriptSource {
        src: capped(src, MAX_SCRIPT_SRC_CHARS),
        location,
        secure_scheme: location == ScriptLocation::Absolute && lower.starts_with("https://"),
        same_site,
        integrity,
    }
}

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

/// Scans `html`, fetched from `page_host`, tag by tag.
pub fn summarize_html(html: &str, page_host: &str) -> HtmlSummary {
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
                let integrity = attribute(tag, "integrity").is_some_and(|v| !v.trim().is_empty());
                if let Some(raw) = attribute(tag, "src")
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    let src = raw.to_ascii_lowercase();
                    if src.starts_with("http://")
                        || src.starts_with("https://")
                        || src.starts_with("//")
                    {
                        summary.external_scripts += 1;
                        if !integrity {
                            summary.external_scripts_without_sri += 1;
                        }
                    }
                    if summary.script_sources.len() < MAX_SCRIPT_SOURCES {
                        summary
                            .script_sources
                            .push(script_source(raw, integrity, page_host));
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
            "meta" => {
                let content = attribute(tag, "content").map(|c| capped(c.trim(), MAX_META_CHARS));
                let equiv = attribute(tag, "http-equiv").map(|v| v.trim().to_ascii_lowercase());
                let name = attribute(tag, "name").map(|v| v.trim().to_ascii_lowercase());
                match (equiv.as_deref(), name.as_deref(), content) {
                    (Some("content-security-policy"), _, Some(policy)) if !policy.is_empty() => {
                        summary.meta_csp.push(policy);
                    }
                    (_, Some("referrer"), Some(policy)) if !policy.is_empty() => {
                        summary.meta_referrer = Some(policy);
                    }
                    _ => {}
                }
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
            <meta http-equiv="Content-Security-Policy" content="default-src 'self'">
            <meta name="referrer" content="no-referrer">
            <script src="https://cdn.example/lib.js" integrity="sha384-abc" crossorigin></script>
            <script src="//cdn.example/other.js"></script>
            <script>inline()</script>
            <SCRIPT SRC='http://cdn.example/old.js'></SCRIPT>
            <script src="/app.js" integrity=""></script>
            <script src="https://static.shop.example/x.js"></script>
            <link rel="stylesheet" href="http://cdn.example/a.css">
            <img src=http://img.example/x.png>
            </head><body><form action="/login"><input name="u"><input type="PASSWORD" name="p"></form></body></html>"#;
        let summary = summarize_html(page, "www.shop.example");
        let source = |src: &str, location, secure_scheme, same_site, integrity| ScriptSource {
            src: src.into(),
            location,
            secure_scheme,
            same_site,
            integrity,
        };
        assert_eq!(
            summary,
            HtmlSummary {
                scripts: 6,
                external_scripts: 4,
                external_scripts_without_sri: 3,
                insecure_subresources: 3,
                forms: 1,
                password_inputs: 1,
                meta_csp: vec!["default-src 'self'".into()],
                meta_referrer: Some("no-referrer".into()),
                script_sources: vec![
                    source(
                        "https://cdn.example/lib.js",
                        ScriptLocation::Absolute,
                        true,
                        false,
                        true
                    ),
                    source(
                        "//cdn.example/other.js",
                        ScriptLocation::ProtocolRelative,
                        false,
                        false,
                        false
                    ),
                    source(
                        "http://cdn.example/old.js",
                        ScriptLocation::Absolute,
                        false,
                        false,
                        false
                    ),
                    source("/app.js", ScriptLocation::Relative, false, false, false),
                    source(
                        "https://static.shop.example/x.js",
                        ScriptLocation::Absolute,
                        true,
                        true,
                        false
                    ),
                ],
            }
        );
    }

    proptest! {
        #[test]
        fn never_panics(page in "\\PC{0,400}") {
            let summary = summarize_html(&page, "shop.example");
            prop_assert!(summary.external_scripts_without_sri <= summary.external_scripts);
            prop_assert!(summary.external_scripts <= summary.scripts);
        }
    }
}
