//! Inline SVG: the domain's score over its scans, drawn into the HTML report with no script and no
//! external asset.

use std::fmt::Write;

use crate::{TrendPoint, escape_markup};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 36.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// The score of every point that has one, as a line over equally spaced scans (oldest left), with a
/// 0–100 axis; each point's tooltip names its scan, time and grade.
pub(crate) fn trend_chart(points: &[TrendPoint]) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" id="trend" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" aria-label="Score of the domain's last {n} scans">"##,
        n = points.len()
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let y = |score: u32| TOP + plot_h * (1.0 - f64::from(score.min(100)) / 100.0);
    for tick in [0u32, 25, 50, 75, 100] {
        let ty = y(tick);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{ty:.1}" x2="{x2}" y2="{ty:.1}" stroke="#ddd"/><text x="{tx}" y="{ly:.1}" font-size="10" text-anchor="end" fill="#555">{tick}</text>"##,
            x2 = WIDTH - RIGHT,
            tx = LEFT - 4.0,
            ly = ty + 3.0,
        );
    }
    let scored: Vec<(usize, &TrendPoint, u32)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.score.map(|s| (i, p, s)))
        .collect();
    let x = |i: usize| {
        if points.len() <= 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (points.len() - 1) as f64
        }
    };
    if scored.len() > 1 {
        let path: Vec<String> = scored
            .iter()
            .map(|(i, _, s)| format!("{:.1},{:.1}", x(*i), y(*s)))
            .collect();
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="{}"/>"##,
            path.join(" ")
        );
    }
    for (i, point, score) in &scored {
        let _ = write!(
            svg,
            r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="3.5" fill="#1f6feb"><title>{title}</title></circle>"##,
            cx = x(*i),
            cy = y(*score),
            title = escape_markup(&format!(
                "{} — {} / 100{} (scan {})",
                point.completed_at.format("%Y-%m-%d %H:%M UTC"),
                score,
                point
                    .grade
                    .as_deref()
                    .map(|g| format!(", grade {g}"))
                    .unwrap_or_default(),
                point.scan_id
            )),
        );
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            svg,
            r##"<text x="{LEFT}" y="{by}" font-size="10" fill="#555">{}</text><text x="{rx}" y="{by}" font-size="10" text-anchor="end" fill="#555">{}</text>"##,
            first.completed_at.format("%Y-%m-%d"),
            last.completed_at.format("%Y-%m-%d"),
            by = HEIGHT - 8.0,
            rx = WIDTH - RIGHT,
        );
    }
    if scored.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="{cx}" y="{cy}" font-size="12" text-anchor="middle" fill="#555">No scored scan yet</text>"##,
            cx = WIDTH / 2.0,
            cy = HEIGHT / 2.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scored_point_is_drawn_once_and_the_line_joins_them() {
        let report = crate::fixtures::report();
        let svg = trend_chart(&report.trend);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("<polyline"));
        // Score 62 sits 62 % of the way up the plot: 12 + 160 × 0.38.
        assert!(svg.contains(r#"cy="72.8""#), "{svg}");
    }

    #[test]
    fn an_empty_history_says_so() {
        let svg = trend_chart(&[]);
        assert!(svg.contains("No scored scan yet"));
        assert!(!svg.contains("<circle"));
    }
}
