//! The trust badge: a shields-style SVG ("security | B") a site owner embeds in a page. Label on the
//! left in grey, the grade on the right in its colour; text widths from Verdana's advance widths at
//! 11 px (the font shields.io measures with), so the badge is as wide as its text in any browser.

use crate::escape_markup as esc;

/// The badge's label.
pub const LABEL: &str = "security";

/// Verdana's advance width at 11 px of a character, by groups of like widths (anything else is
/// taken as wide as `W`, so the text always fits).
fn char_width(c: char) -> f64 {
    match c {
        ' ' => 3.87,
        'i' | 'l' | 'I' | '|' | '\'' | '.' | ',' | ':' | ';' | '!' => 3.0,
        'f' | 'j' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' => 4.3,
        'a' | 'c' | 'e' | 'k' | 's' | 'v' | 'x' | 'y' | 'z' | 'J' => 6.6,
        'b' | 'd' | 'g' | 'h' | 'n' | 'o' | 'p' | 'q' | 'u' => 6.96,
        '0'..='9' | '+' | '=' | '<' | '>' | '#' | '$' | '_' | '~' | '?' => 7.0,
        'A' | 'B' | 'E' | 'F' | 'K' | 'L' | 'P' | 'R' | 'S' | 'T' | 'V' | 'X' | 'Y' | 'Z' => 7.6,
        'C' | 'D' | 'G' | 'H' | 'N' | 'O' | 'Q' | 'U' => 8.4,
        'w' | 'M' | '%' | '&' | '@' => 10.0,
        'm' | 'W' => 11.3,
        _ => 11.3,
    }
}

fn text_width(text: &str) -> f64 {
    text.chars().map(char_width).sum()
}

/// The colour of a grade: green for A, through yellow and orange, red for F and for T / M.
pub fn colour(grade: Option<&str>) -> &'static str {
    match grade.and_then(|g| g.chars().next()) {
        Some('A') => "#4c1",
        Some('B') => "#97ca00",
        Some('C') => "#dfb317",
        Some('D' | 'E') => "#fe7d37",
        Some(_) => "#e05d44",
        None => "#9f9f9f",
    }
}

/// The badge of a domain whose latest grade is `grade` (`None`: no graded scan yet).
pub fn render(grade: Option<&str>) -> String {
    let value = grade.unwrap_or("not graded");
    let (left_w, right_w) = (
        (text_width(LABEL) + 12.0).round(),
        (text_width(value) + 12.0).round(),
    );
    let total = left_w + right_w;
    let (label_x, value_x) = (left_w / 2.0, left_w + right_w / 2.0);
    let colour = colour(grade);
    let value = esc(value);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{LABEL}: {value}"><title>{LABEL}: {value}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{left_w}" height="20" fill="#555"/><rect x="{left_w}" width="{right_w}" height="20" fill="{colour}"/><rect width="{total}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11"><text x="{label_x}" y="15" fill="#010101" fill-opacity=".3">{LABEL}</text><text x="{label_x}" y="14">{LABEL}</text><text x="{value_x}" y="15" fill="#010101" fill-opacity=".3">{value}</text><text id="grade" x="{value_x}" y="14">{value}</text></g></svg>"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grade_is_the_badge_text_in_its_colour() {
        let svg = render(Some("A+"));
        assert!(svg.contains(r#"<text id="grade" x="#));
        assert!(svg.contains(">A+</text></g></svg>"));
        assert!(svg.contains("#4c1"));
        assert!(render(Some("F")).contains("#e05d44"));
        assert!(render(None).contains("not graded"));
    }

    #[test]
    fn wider_text_makes_a_wider_badge() {
        let width = |svg: &str| -> f64 {
            let start = svg.find("width=\"").unwrap() + 7;
            svg[start..start + svg[start..].find('"').unwrap()]
                .parse()
                .unwrap()
        };
        assert!(width(&render(None)) > width(&render(Some("A"))));
    }
}
