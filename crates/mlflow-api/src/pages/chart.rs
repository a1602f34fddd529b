//! Inline SVG line charts: one series of points over a sequence (the cycles, oldest first),
//! points marked when they crossed a threshold, an optional threshold line, each point with a
//! tooltip. Drawn on the server; the page needs no script and no chart library.

use maud::{html, Markup};

/// One point: its label (the tooltip, e.g. the cycle's time), the value, and whether it is
/// marked (drift detected).
pub struct Point {
    pub label: String,
    pub value: f64,
    pub marked: bool,
}

pub struct Chart<'a> {
    pub title: &'a str,
    pub points: &'a [Point],
    /// A horizontal reference line (a threshold), labelled.
    pub threshold: Option<(f64, &'a str)>,
    pub width: u32,
    pub height: u32,
}

const PAD_LEFT: f64 = 46.0;
const PAD_RIGHT: f64 = 10.0;
const PAD_TOP: f64 = 22.0;
const PAD_BOTTOM: f64 = 18.0;

impl Chart<'_> {
    pub fn render(&self) -> Markup {
        let (w, h) = (f64::from(self.width), f64::from(self.height));
        let finite: Vec<f64> = self.points.iter().map(|p| p.value).filter(|v| v.is_finite()).collect();
        let mut lo = finite.iter().copied().fold(f64::INFINITY, f64::min).min(0.0);
        let mut hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if let Some((t, _)) = self.threshold {
            hi = hi.max(t);
            lo = lo.min(t);
        }
        if !hi.is_finite() || hi <= lo {
            hi = lo + 1.0;
        }
        if !lo.is_finite() {
            lo = 0.0;
        }
        let plot_w = w - PAD_LEFT - PAD_RIGHT;
        let plot_h = h - PAD_TOP - PAD_BOTTOM;
        let n = self.points.len();
        let x = |i: usize| PAD_LEFT + if n <= 1 { plot_w / 2.0 } else { plot_w * i as f64 / (n - 1) as f64 };
        let y = |v: f64| PAD_TOP + plot_h * (1.0 - (v - lo) / (hi - lo));
        let path: String = self
            .points
            .iter()
            .enumerate()
            .filter(|(_, p)| p.value.is_finite())
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value)))
            .collect::<Vec<_>>()
            .join(" ");
        html! {
            svg xmlns="http://www.w3.org/2000/svg" width=(self.width) height=(self.height)
                viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(self.title) style="background:#fff;border:1px solid #d9dee5;border-radius:4px" {
                text x="8" y="15" font-size="12" font-weight="600" fill="#1f2933" { (self.title) }
                line x1=(PAD_LEFT) y1=(PAD_TOP) x2=(PAD_LEFT) y2=(PAD_TOP + plot_h) stroke="#9aa5b1" {}
                line x1=(PAD_LEFT) y1=(PAD_TOP + plot_h) x2=(w - PAD_RIGHT) y2=(PAD_TOP + plot_h) stroke="#9aa5b1" {}
                text x=(PAD_LEFT - 4.0) y=(PAD_TOP + 4.0) font-size="10" text-anchor="end" fill="#52606d" { (tick(hi)) }
                text x=(PAD_LEFT - 4.0) y=(PAD_TOP + plot_h) font-size="10" text-anchor="end" fill="#52606d" { (tick(lo)) }
                @if let Some((t, label)) = self.threshold {
                    line x1=(PAD_LEFT) y1=(y(t)) x2=(w - PAD_RIGHT) y2=(y(t)) stroke="#f79009" stroke-dasharray="4 3" {}
                    text x=(w - PAD_RIGHT) y=(y(t) - 3.0) font-size="10" text-anchor="end" fill="#b54708" { (label) }
                }
                @if n == 0 {
                    text x=(w / 2.0) y=(h / 2.0) font-size="11" text-anchor="middle" fill="#6b7785" { "no data" }
                }
                polyline points=(path) fill="none" stroke="#2563eb" stroke-width="1.6" {}
                @for (i, p) in self.points.iter().enumerate().filter(|(_, p)| p.value.is_finite()) {
                    circle cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(p.value))) r="3.2"
                        fill=(if p.marked { "#d92d20" } else { "#2563eb" }) {
                        title { (p.label) ": " (tick(p.value)) @if p.marked { " (drift)" } }
                    }
                }
            }
        }
    }
}

/// A value as an axis label: short, whatever its size.
fn tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 || v.abs() < 0.001 {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_point_marks_drift_and_escapes_labels() {
        let points = vec![
            Point { label: "<cycle 1>".into(), value: 0.05, marked: false },
            Point { label: "cycle 2".into(), value: f64::NAN, marked: false },
            Point { label: "cycle 3".into(), value: 0.4, marked: true },
        ];
        let svg = Chart { title: "psi", points: &points, threshold: Some((0.2, "0.2")), width: 300, height: 120 }
            .render()
            .into_string();
        assert_eq!(svg.matches("<circle").count(), 2, "{svg}");
        assert_eq!(svg.matches("#d92d20").count(), 1);
        assert!(svg.contains("&lt;cycle 1&gt;") && !svg.contains("<cycle 1>"));
        assert!(svg.contains("stroke-dasharray"));
        let empty = Chart { title: "x", points: &[], threshold: None, width: 100, height: 80 }.render().into_string();
        assert!(empty.contains("no data"));
    }

    #[test]
    fn ticks_stay_short() {
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(1.0), "1");
        assert_eq!(tick(123456.0), "1.23e5");
        assert_eq!(tick(0.0), "0");
    }
}
