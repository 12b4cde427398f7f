//! The HSTS preload state of a host, from the copy of Chromium's preload list bundled in the binary
//! (`data/hsts-preload-<date>.txt.gz`: every force-HTTPS entry, sorted, with its
//! `include_subdomains`). No traffic: the list is decompressed once, on first use, and searched by
//! binary search for the host and each of its parents. A newer list is a new data file and date.

use std::sync::OnceLock;

use vantage_observations::HstsPreloadObservation;

/// The date of the bundled list.
pub const LIST_DATE: &str = "2025-01-01";
const LIST_GZ: &[u8] = include_bytes!("../data/hsts-preload-2025-01-01.txt.gz");

/// The list's text and the start of each entry line, in order.
struct PreloadList {
    text: String,
    lines: Vec<u32>,
}

impl PreloadList {
    fn load() -> Self {
        use std::io::Read;
        let mut text = String::new();
        // The bundled file is part of the build; a corrupt one is a broken build, found by tests.
        if flate2::read::GzDecoder::new(LIST_GZ)
            .read_to_string(&mut text)
            .is_err()
        {
            text.clear();
        }
        let mut lines = Vec::new();
        let mut start = 0usize;
        for line in text.split_inclusive('\n') {
            if !line.starts_with('#') && !line.trim().is_empty() {
                lines.push(u32::try_from(start).unwrap_or(u32::MAX));
            }
            start += line.len();
        }
        Self { text, lines }
    }

    /// The entry `host` is, with its `include_subdomains`.
    fn entry(&self, host: &str) -> Option<bool> {
        let line = |start: u32| -> (&str, bool) {
            let line = self.text[start as usize..]
                .lines()
                .next()
                .unwrap_or_default();
            let (name, flag) = line.split_once(' ').unwrap_or((line, "0"));
            (name, flag == "1")
        };
        let found = self
            .lines
            .binary_search_by(|start| line(*start).0.cmp(host))
            .ok()?;
        Some(line(self.lines[found]).1)
    }

    fn len(&self) -> usize {
        self.lines.len()
    }
}

fn list() -> &'static PreloadList {
    static LIST: OnceLock<PreloadList> = OnceLock::new();
    LIST.get_or_init(PreloadList::load)
}

/// How many entries the bundled list has.
pub fn entries() -> usize {
    list().len()
}

/// The preload state of `host` (a DNS name; case and a trailing dot do not matter). As Chromium
/// decides: the most specific entry among the host and its parents covers it when it is the host's
/// own or includes subdomains.
pub fn preload_state(host: &str) -> HstsPreloadObservation {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let list = list();
    let mut entry = None;
    let mut include_subdomains = None;
    let mut candidate = host.as_str();
    let mut itself = true;
    loop {
        if let Some(subdomains) = list.entry(candidate) {
            if itself || subdomains {
                entry = Some(candidate.to_owned());
                include_subdomains = Some(subdomains);
            }
            break;
        }
        match candidate.split_once('.') {
            Some((_, parent)) if !parent.is_empty() => candidate = parent,
            _ => break,
        }
        itself = false;
    }
    HstsPreloadObservation {
        host,
        list_date: LIST_DATE.to_owned(),
        entry,
        include_subdomains,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_list_answers_for_hosts_and_their_parents() {
        assert!(entries() > 150_000, "{} entries", entries());
        let github = preload_state("GitHub.com.");
        assert_eq!(github.entry.as_deref(), Some("github.com"));
        assert_eq!(github.include_subdomains, Some(true));
        assert!(github.listed_itself());
        assert_eq!(github.list_date, LIST_DATE);
        let sub = preload_state("gist.github.com");
        assert_eq!(
            sub.entry.as_deref(),
            Some("github.com"),
            "covered by its parent"
        );
        assert!(sub.preloaded() && !sub.listed_itself());
        // A whole TLD is listed with its subdomains.
        assert_eq!(preload_state("anything.dev").entry.as_deref(), Some("dev"));
        let absent = preload_state("example.com");
        assert!(!absent.preloaded());
        assert_eq!(absent.include_subdomains, None);
        // The first and last entries are found (the search's edges).
        assert!(preload_state("0--1.de").preloaded());
    }
}
