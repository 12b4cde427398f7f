//! Pages as any server may send them (scripts, meta policies, forms); the first line is the page's
//! host.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (host, html) = text.split_once('\n').unwrap_or(("example.com", &text));
    let _ = vantage_probes::html::summarize_html(html, host);
});
