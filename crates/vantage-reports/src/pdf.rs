//! The PDF report: the HTML report's content on A4 pages, written with `pdf-writer` (typst's
//! maintained, dependency-free PDF writer; see ARCHITECTURE.md) — no browser, no font file. Text is
//! set in the PDF standard fonts Helvetica and Helvetica-Bold (every reader has them, so nothing is
//! embedded) in WinAnsiEncoding, wrapped by their published advance widths. Characters outside
//! WinAnsi are written as `?`. The trend is drawn as a line chart with vector operators.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use vantage_rules::Severity;

use crate::html::{change_label, triage_label};
use crate::{GENERATOR, GENERATOR_VERSION, Report};

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 50.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
const MONO: Name<'static> = Name(b"F3");

/// Helvetica's advance widths (per 1000 em) of the printable ASCII characters 32..=126, from Adobe's
/// AFM; Helvetica-Bold is wider, taken as 5 % wider here, which only ever wraps early.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' '../
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0-9
    278, 278, 584, 584, 584, 556, 1015, // :..@
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667,
    611, 722, 667, 944, 667, 667, 611, // A-Z
    278, 278, 278, 469, 556, 333, // [..`
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500,
    278, 556, 500, 722, 500, 500, 500, // a-z
    334, 260, 334, 584, // {..~
];

#[derive(Clone, Copy)]
enum Font {
    Regular,
    Bold,
    Mono,
}

impl Font {
    fn name(self) -> Name<'static> {
        match self {
            Self::Regular => REGULAR,
            Self::Bold => BOLD,
            Self::Mono => MONO,
        }
    }

    /// The width of one WinAnsi byte at `size` points.
    fn width(self, byte: u8, size: f32) -> f32 {
        let em = match self {
            // Courier: every glyph is 600.
            Self::Mono => 600.0,
            _ => {
                let base = match byte {
                    32..=126 => f32::from(HELVETICA[usize::from(byte - 32)]),
                    _ => 1000.0,
                };
                if matches!(self, Self::Bold) {
                    base * 1.05
                } else {
                    base
                }
            }
        };
        em * size / 1000.0
    }
}

/// Text as WinAnsiEncoding bytes: Latin-1 as is, the typographic marks WinAnsi has, `?` otherwise.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '\u{20}'..='\u{7e}' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '€' => 0x80,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '\t' | '\n' | '\r' => b' ',
            _ => b'?',
        })
        .collect()
}

/// Lays text out top to bottom, starting a new page when one is full.
struct Layout {
    pages: Vec<Vec<u8>>,
    content: Content,
    y: f32,
}

impl Layout {
    fn new() -> Self {
        Self {
            pages: Vec::new(),
            content: Content::new(),
            y: PAGE_H - MARGIN,
        }
    }

    fn new_page(&mut self) {
        let full = std::mem::replace(&mut self.content, Content::new());
        self.pages.push(full.finish().into_vec());
        self.y = PAGE_H - MARGIN;
    }

    fn ensure(&mut self, height: f32) {
        if self.y - height < MARGIN {
            self.new_page();
        }
    }

    fn space(&mut self, height: f32) {
        self.y -= height;
    }

    /// Wraps `text` into lines no wider than `width` at `size`.
    fn wrap(text: &[u8], font: Font, size: f32, width: f32) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut line: Vec<u8> = Vec::new();
        let mut line_w = 0.0;
        for word in text.split(|b| *b == b' ').filter(|w| !w.is_empty()) {
            let word_w: f32 = word.iter().map(|b| font.width(*b, size)).sum();
            let space_w = font.width(b' ', size);
            if !line.is_empty() && line_w + space_w + word_w > width {
                lines.push(std::mem::take(&mut line));
                line_w = 0.0;
            }
            if !line.is_empty() {
                line.push(b' ');
                line_w += space_w;
            }
            if word_w > width {
                // A word wider than the line (a URL, a hash): break it anywhere.
                for b in word {
                    let w = font.width(*b, size);
                    if line_w + w > width && !line.is_empty() {
                        lines.push(std::mem::take(&mut line));
                        line_w = 0.0;
                    }
                    line.push(*b);
                    line_w += w;
                }
            } else {
                line.extend_from_slice(word);
                line_w += word_w;
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }

    fn text(&mut self, text: &str, font: Font, size: f32, indent: f32) {
        let leading = size * 1.3;
        let width = PAGE_W - 2.0 * MARGIN - indent;
        for line in Self::wrap(&win_ansi(text), font, size, width) {
            self.ensure(leading);
            self.y -= leading;
            self.content
                .begin_text()
                .set_font(font.name(), size)
                .next_line(MARGIN + indent, self.y)
                .show(Str(&line))
                .end_text();
        }
    }

    fn heading(&mut self, text: &str) {
        self.ensure(40.0);
        self.space(10.0);
        self.text(text, Font::Bold, 13.0, 0.0);
        self.y -= 4.0;
        self.content
            .set_stroke_rgb(0.8, 0.82, 0.85)
            .set_line_width(0.5)
            .move_to(MARGIN, self.y)
            .line_to(PAGE_W - MARGIN, self.y)
            .stroke();
        self.space(4.0);
    }

    fn finish(mut self) -> Vec<Vec<u8>> {
        self.new_page();
        self.pages
    }
}

fn rgb(hex: &str) -> (f32, f32, f32) {
    let channel = |i: usize| {
        u8::from_str_radix(hex.get(i..i + 2).unwrap_or("88"), 16)
            .map_or(0.5, |v| f32::from(v) / 255.0)
    };
    (channel(1), channel(3), channel(5))
}

fn grade_box(layout: &mut Layout, report: &Report) {
    let grade = report.grade();
    let (r, g, b) = rgb(match grade.and_then(|g| g.chars().next()) {
        Some('A') => "#2da44e",
        Some('B') => "#7cb305",
        Some('C') => "#d4a72c",
        Some('D' | 'E') => "#e16f24",
        Some(_) => "#cf222e",
        None => "#8c959f",
    });
    layout.ensure(70.0);
    let top = layout.y - 8.0;
    layout
        .content
        .set_fill_rgb(r, g, b)
        .rect(MARGIN, top - 56.0, 56.0, 56.0)
        .fill_nonzero()
        .set_fill_rgb(1.0, 1.0, 1.0);
    let text = win_ansi(grade.unwrap_or("-"));
    let width: f32 = text.iter().map(|c| Font::Bold.width(*c, 28.0)).sum();
    layout
        .content
        .begin_text()
        .set_font(BOLD, 28.0)
        .next_line(MARGIN + 28.0 - width / 2.0, top - 38.0)
        .show(Str(&text))
        .end_text()
        .set_fill_rgb(0.0, 0.0, 0.0);
    let mut lines = Vec::new();
    match &report.overall {
        Some(overall) => {
            lines.push(format!("Overall grade {}", grade.unwrap_or("none")));
            if let Some(score) = overall.score {
                lines.push(format!("Score {score} / 100 ({})", overall.method));
            }
            if let Some(why) = &overall.unreachable {
                lines.push(format!("No grade: {why}"));
            }
        }
        None => lines.push("No verdict: the scan did not complete.".to_owned()),
    }
    if let Some(grades) = &report.grades {
        if let Some(h) = &grades.headers {
            lines.push(format!("Headers grade {} ({} / 100)", h.grade, h.score));
        }
        if let Some(t) = &grades.tls {
            lines.push(format!("TLS grade {}", t.grade));
        }
    }
    let mut y = top - 12.0;
    for line in lines.iter().take(4) {
        layout
            .content
            .begin_text()
            .set_font(REGULAR, 10.0)
            .next_line(MARGIN + 70.0, y)
            .show(Str(&win_ansi(line)))
            .end_text();
        y -= 13.0;
    }
    layout.y = top - 64.0;
    if let Some(overall) = &report.overall {
        for cap in &overall.caps {
            layout.text(&format!("Capped: {cap}"), Font::Regular, 9.0, 0.0);
        }
    }
}

fn trend_chart(layout: &mut Layout, report: &Report) {
    let scored: Vec<(usize, u32)> = report
        .trend
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.score.map(|s| (i, s)))
        .collect();
    if scored.is_empty() {
        layout.text("No scored scan yet.", Font::Regular, 10.0, 0.0);
        return;
    }
    let height = 100.0;
    layout.ensure(height + 30.0);
    let (left, bottom) = (MARGIN + 24.0, layout.y - height - 8.0);
    let width = PAGE_W - MARGIN - left;
    let c = &mut layout.content;
    c.set_stroke_rgb(0.85, 0.85, 0.85).set_line_width(0.5);
    for tick in [0u32, 50, 100] {
        let y = bottom + height * tick as f32 / 100.0;
        c.move_to(left, y).line_to(left + width, y).stroke();
        c.begin_text()
            .set_font(REGULAR, 7.0)
            .next_line(MARGIN, y - 2.0)
            .show(Str(tick.to_string().as_bytes()))
            .end_text();
    }
    let n = report.trend.len().max(2) - 1;
    let point = |i: usize, s: u32| {
        (
            left + width * i as f32 / n as f32,
            bottom + height * s.min(100) as f32 / 100.0,
        )
    };
    c.set_stroke_rgb(0.12, 0.44, 0.92).set_line_width(1.5);
    for (k, (i, s)) in scored.iter().enumerate() {
        let (x, y) = point(*i, *s);
        if k == 0 {
            c.move_to(x, y);
        } else {
            c.line_to(x, y);
        }
    }
    if scored.len() > 1 {
        c.stroke();
    }
    c.set_fill_rgb(0.12, 0.44, 0.92);
    for (i, s) in &scored {
        let (x, y) = point(*i, *s);
        c.rect(x - 2.0, y - 2.0, 4.0, 4.0).fill_nonzero();
    }
    c.set_fill_rgb(0.0, 0.0, 0.0);
    layout.y = bottom - 4.0;
    if let (Some(first), Some(last)) = (report.trend.first(), report.trend.last()) {
        layout.text(
            &format!(
                "{} scans from {} to {}; latest score {}",
                report.trend.len(),
                first.completed_at.format("%Y-%m-%d"),
                last.completed_at.format("%Y-%m-%d"),
                scored.last().map(|(_, s)| *s).unwrap_or_default()
            ),
            Font::Regular,
            8.0,
            0.0,
        );
    }
}

/// Renders the report as a PDF document.
pub fn render(report: &Report) -> Vec<u8> {
    let mut layout = Layout::new();
    layout.text(
        &format!("Vantage report: {}", report.target),
        Font::Bold,
        18.0,
        0.0,
    );
    layout.text(
        &format!(
            "Scan {} - {} - trigger {} - started {}{}{}",
            report.scan_id,
            report.status.as_str(),
            crate::wire(&report.trigger),
            report.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            report
                .finished_at
                .map(|t| format!(" - finished {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
                .unwrap_or_default(),
            report
                .ruleset_version
                .as_deref()
                .map(|r| format!(" - ruleset {r}"))
                .unwrap_or_default()
        ),
        Font::Regular,
        9.0,
        0.0,
    );
    if let Some(reason) = &report.failure_reason {
        layout.text(&format!("The scan failed: {reason}"), Font::Bold, 10.0, 0.0);
    }
    grade_box(&mut layout, report);

    layout.heading("Findings by severity");
    let c = &report.counts;
    layout.text(
        &format!(
            "critical {}   high {}   medium {}   low {}   info {}   total {}",
            c.critical,
            c.high,
            c.medium,
            c.low,
            c.info,
            c.total()
        ),
        Font::Regular,
        10.0,
        0.0,
    );

    layout.heading(&format!("Trend of {}", report.domain));
    trend_chart(&mut layout, report);

    layout.heading("Since the previous scan");
    match &report.diff {
        None => layout.text(
            "No previous scan to compare with.",
            Font::Regular,
            10.0,
            0.0,
        ),
        Some(diff) => {
            layout.text(
                &format!(
                    "Against scan {}: {} new, {} regressions, {} unchanged, {} fixed.",
                    diff.previous_scan_id.as_deref().unwrap_or("none"),
                    diff.new,
                    diff.regressions,
                    diff.unchanged,
                    diff.fixed.len()
                ),
                Font::Regular,
                10.0,
                0.0,
            );
            for fixed in &diff.fixed {
                layout.text(
                    &format!(
                        "Fixed: {} ({}, {})",
                        fixed.title,
                        fixed.severity.as_str(),
                        fixed.asset
                    ),
                    Font::Regular,
                    9.0,
                    12.0,
                );
            }
        }
    }

    if let Some(analysis) = &report.analysis {
        layout.heading("What the scan reached");
        let yes = |v: bool| if v { "yes" } else { "no" };
        layout.text(
            &format!(
                "Reachable: {} - speaks HTTP: {} - analyzable: {} - kind: {} - authentication: {} - API documents: {}",
                yes(analysis.reachable),
                yes(analysis.speaks_http),
                yes(analysis.analyzable),
                crate::wire(&analysis.kind),
                yes(analysis.auth_detected),
                yes(analysis.api_doc_detected)
            ),
            Font::Regular,
            9.0,
            0.0,
        );
        for port in &analysis.ports {
            let tls = match &port.tls {
                None => "no TLS".to_owned(),
                Some(tls) => format!(
                    "TLS {}{}{}",
                    if tls.valid { "valid" } else { "not valid" },
                    crate::negotiated(tls)
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default(),
                    tls.expires_at
                        .as_deref()
                        .map(|e| format!(", certificate expires {e}"))
                        .unwrap_or_default()
                ),
            };
            let state = if port.tcp_open { "open" } else { "not open" };
            layout.text(
                &format!("Port {}: {state}, {tls}", port.port),
                Font::Regular,
                9.0,
                12.0,
            );
        }
        for path in &analysis.paths {
            layout.text(
                &format!(
                    "{}: {} {}{}",
                    path.url,
                    path.status_code
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "no answer".to_owned()),
                    path.content_type.as_deref().unwrap_or(""),
                    match crate::listed(&path.alternative_services) {
                        none if none.is_empty() => none,
                        services => format!(" - also {services}"),
                    }
                ),
                Font::Regular,
                9.0,
                12.0,
            );
        }
    }

    layout.heading("Findings by priority");
    if report.findings.is_empty() {
        layout.text("No findings.", Font::Regular, 10.0, 0.0);
    }
    for item in &report.findings {
        let f = &item.finding;
        layout.ensure(60.0);
        layout.space(6.0);
        layout.text(
            &format!("[{}] {}", f.severity.as_str().to_uppercase(), f.title),
            Font::Bold,
            11.0,
            0.0,
        );
        layout.text(
            &format!(
                "{} v{} - {} - priority {} - {}{}",
                f.rule_id,
                f.rule_version,
                f.asset,
                f.priority.score,
                triage_label(item.triage),
                item.change
                    .map(|c| format!(" - {}", change_label(c)))
                    .unwrap_or_default()
            ),
            Font::Regular,
            8.5,
            0.0,
        );
        let evidence = serde_json::to_string(&f.evidence).unwrap_or_default();
        layout.text(&format!("Evidence: {evidence}"), Font::Mono, 7.5, 0.0);
        layout.text(
            &format!(
                "Fix (about {} min): {}",
                f.recommended_fix.estimated_minutes, f.recommended_fix.summary
            ),
            Font::Regular,
            9.0,
            0.0,
        );
        for (i, step) in f.recommended_fix.steps.iter().enumerate() {
            layout.text(&format!("{}. {step}", i + 1), Font::Regular, 9.0, 12.0);
        }
        if !f.compliance.is_empty() {
            layout.text(
                &format!("Controls: {}", f.compliance.join(", ")),
                Font::Regular,
                8.0,
                0.0,
            );
        }
        if f.severity >= Severity::High && !f.references.is_empty() {
            layout.text(
                &format!("References: {}", f.references.join(", ")),
                Font::Regular,
                8.0,
                0.0,
            );
        }
    }
    layout.space(12.0);
    layout.text(
        &format!(
            "Generated by {GENERATOR} {GENERATOR_VERSION} at {}.",
            report.generated_at.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        Font::Regular,
        8.0,
        0.0,
    );
    assemble(report, layout.finish())
}

/// Writes the pages' content streams into a document.
fn assemble(report: &Report, pages: Vec<Vec<u8>>) -> Vec<u8> {
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let fonts = [Ref::new(3), Ref::new(4), Ref::new(5)];
    let info = Ref::new(6);
    let first_page = 7;
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(first_page + 2 * i as i32))
        .collect();
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(pages.len() as i32);
    for (font, base) in fonts.iter().zip([
        Name(b"Helvetica"),
        Name(b"Helvetica-Bold"),
        Name(b"Courier"),
    ]) {
        pdf.type1_font(*font)
            .base_font(base)
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    for (id, content) in page_ids.iter().zip(&pages) {
        let content_id = Ref::new(id.get() + 1);
        let mut page = pdf.page(*id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree);
        page.contents(content_id);
        page.resources()
            .fonts()
            .pair(REGULAR, fonts[0])
            .pair(BOLD, fonts[1])
            .pair(MONO, fonts[2]);
        page.finish();
        pdf.stream(content_id, content);
    }
    pdf.document_info(info)
        .title(TextStr(&format!("Vantage report: {}", report.target)))
        .producer(TextStr(&format!("{GENERATOR} {GENERATOR_VERSION}")));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pdf_document_with_the_fonts_it_uses() {
        let pdf = render(&crate::fixtures::report());
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.ends_with(b"%%EOF") || pdf.ends_with(b"%%EOF\n"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Helvetica-Bold"));
        assert!(text.contains("(Framing allowed)") || text.contains("Framing allowed"));
    }

    #[test]
    fn long_words_break_and_lines_fit() {
        let lines = Layout::wrap(
            &win_ansi(&format!("short {}", "x".repeat(400))),
            Font::Regular,
            10.0,
            100.0,
        );
        assert!(lines.len() > 3);
        for line in &lines {
            let w: f32 = line.iter().map(|b| Font::Regular.width(*b, 10.0)).sum();
            assert!(w <= 100.0 + 0.01, "{w}");
        }
    }

    #[test]
    fn many_findings_make_many_pages() {
        let count = |pdf: &[u8]| -> usize {
            let text = String::from_utf8_lossy(pdf);
            let at = text.find("/Count ").expect("a page tree") + 7;
            text[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap()
        };
        let mut report = crate::fixtures::report();
        assert_eq!(count(&render(&report)), 1);
        let one = report.findings[0].clone();
        report.findings = vec![one; 60];
        assert!(count(&render(&report)) > 3);
    }

    #[test]
    fn win_ansi_keeps_latin1_and_typographic_marks() {
        assert_eq!(win_ansi("é—→"), vec![0xe9, 0x97, b'?']);
    }
}
