//! A self-contained SVG bar chart (feature importance), small enough to need no plotting crate.

/// Horizontal bars, largest first, labelled with name and value.
pub fn bar_chart_svg(title: &str, items: &[(String, f64)]) -> String {
    let (row, left, width) = (22.0, 170.0, 360.0);
    let height = 40.0 + row * items.len() as f64;
    let max = items.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max).max(f64::MIN_POSITIVE);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{t}</text>",
        w = left + width + 70.0,
        t = escape(title)
    );
    for (i, (name, value)) in items.iter().enumerate() {
        let y = 32.0 + row * i as f64;
        let w = (value / max * width).max(0.0);
        svg.push_str(&format!(
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{n}</text>\
             <rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{h}\" fill=\"#3b82f6\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\">{value:.3}</text>",
            lx = left - 6.0,
            ty = y + 13.0,
            n = escape(name),
            h = row - 6.0,
            vx = left + w + 4.0,
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn bars_are_scaled_and_escaped() {
        let svg = super::bar_chart_svg("imp <x>", &[("a&b".into(), 0.75), ("c".into(), 0.25)]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("imp &lt;x&gt;") && svg.contains("a&amp;b"));
        assert!(svg.contains("width=\"360.0\"") && svg.contains("width=\"120.0\""));
    }
}
