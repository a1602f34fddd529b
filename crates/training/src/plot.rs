//! Self-contained SVG charts small enough to need no plotting crate: a bar chart (feature
//! importance), a classifier's confusion matrix and its calibration (reliability) curve.

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

/// The 2×2 confusion matrix `[tn, fp, fn, tp]`, rows = true class, columns = predicted.
pub fn confusion_svg(c: [usize; 4]) -> String {
    let max = c.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut svg = String::from(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"360\" height=\"300\" font-family=\"sans-serif\" \
         font-size=\"13\"><rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Confusion matrix (holdout)</text>\
         <text x=\"210\" y=\"50\" text-anchor=\"middle\">predicted</text>\
         <text x=\"150\" y=\"70\" text-anchor=\"middle\">0</text><text x=\"270\" y=\"70\" text-anchor=\"middle\">1</text>\
         <text x=\"40\" y=\"190\" text-anchor=\"middle\" transform=\"rotate(-90 40 190)\">true</text>\
         <text x=\"80\" y=\"135\">0</text><text x=\"80\" y=\"255\">1</text>",
    );
    for (k, &n) in c.iter().enumerate() {
        let (x, y) = (90.0 + 120.0 * (k % 2) as f64, 80.0 + 120.0 * (k / 2) as f64);
        let shade = 0.15 + 0.85 * n as f64 / max;
        let ink = if shade > 0.55 { "white" } else { "black" };
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"118\" height=\"118\" fill=\"#1d4ed8\" fill-opacity=\"{shade:.3}\"/>\
             <text x=\"{tx}\" y=\"{ty}\" text-anchor=\"middle\" font-size=\"18\" fill=\"{ink}\">{n}</text>",
            tx = x + 59.0,
            ty = y + 65.0,
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// Reliability curve: the rows cut into ten equal-width bins of predicted probability; per
/// non-empty bin, the mean prediction against the share of positives (scikit-learn's
/// `calibration_curve(strategy="uniform")`), over the diagonal of perfect calibration.
pub fn calibration_svg(y: &[f64], p: &[f64]) -> String {
    let mut bins = [(0.0, 0.0, 0usize); 10];
    for (&t, &q) in y.iter().zip(p) {
        let b = ((q * 10.0) as usize).min(9);
        bins[b].0 += q;
        bins[b].1 += t;
        bins[b].2 += 1;
    }
    let (left, top, size) = (50.0, 40.0, 260.0);
    let at = |v: f64, w: f64| -> (f64, f64) { (left + v * size, top + size - w * size) };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"340\" height=\"340\" font-family=\"sans-serif\" \
         font-size=\"12\"><rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Calibration (holdout)</text>\
         <rect x=\"{left}\" y=\"{top}\" width=\"{size}\" height=\"{size}\" fill=\"none\" stroke=\"#999\"/>\
         <line x1=\"{left}\" y1=\"{b}\" x2=\"{r}\" y2=\"{top}\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\
         <text x=\"{mx}\" y=\"{lb}\" text-anchor=\"middle\">mean predicted probability</text>\
         <text x=\"16\" y=\"{my}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {my})\">share of positives</text>",
        b = top + size,
        r = left + size,
        mx = left + size / 2.0,
        lb = top + size + 30.0,
        my = top + size / 2.0,
    );
    let points: Vec<(f64, f64)> =
        bins.iter().filter(|b| b.2 > 0).map(|&(sp, sy, n)| at(sp / n as f64, sy / n as f64)).collect();
    let path: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    svg.push_str(&format!(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#1d4ed8\" stroke-width=\"2\"/>",
        path.join(" ")
    ));
    for (x, y) in points {
        svg.push_str(&format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"#1d4ed8\"/>"));
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

    #[test]
    fn confusion_cells_hold_the_counts() {
        let svg = super::confusion_svg([7, 1, 2, 40]);
        for n in [">7<", ">1<", ">2<", ">40<"] {
            assert!(svg.contains(n), "{n}");
        }
    }

    #[test]
    fn calibration_points_are_bin_means() {
        // Bins [0.1, 0.2): 0.1 → (0.1, 0); [0.2, 0.3): 0.2, 0.25 → (0.225, 0.5); 1.0 joins the
        // last bin → (1.0, 1).
        let svg = super::calibration_svg(&[0.0, 1.0, 0.0, 1.0], &[0.1, 0.2, 0.25, 1.0]);
        assert!(svg.contains("76.0,300.0 108.5,170.0 310.0,40.0"), "{svg}");
    }
}
