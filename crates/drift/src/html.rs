//! The HTML report: one self-contained page (inline CSS and SVG, no script, no network
//! fetch) with the verdict, the table of per-column scores, a reference-vs-current histogram
//! per column, prediction drift and performance.

use crate::report::{ColumnReport, DriftReport, Histogram, Metrics};
use std::fmt::Write;

/// Reads one metric out of [`Metrics`].
type MetricGetter = fn(&Metrics) -> Option<f64>;

const REF_COLOR: &str = "#4c78a8";
const CUR_COLOR: &str = "#f58518";

/// Renders `report` as a complete HTML document.
pub fn render(report: &DriftReport) -> String {
    let mut h = String::with_capacity(64 * 1024);
    h.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Data drift report</title><style>\
         body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1200px}\
         h1{font-size:22px}h2{font-size:18px;margin-top:28px}\
         .verdict{padding:12px 16px;border-radius:6px;margin:12px 0;font-size:16px}\
         .bad{background:#fde2e1;border:1px solid #e8a3a0}.good{background:#e3f4e1;border:1px solid #9fd39a}\
         table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}\
         th{background:#f4f4f4}td.l,th.l{text-align:left}tr.drift td{background:#fff3f2}\
         .cards{display:flex;flex-wrap:wrap;gap:16px}.card{border:1px solid #ddd;border-radius:6px;padding:8px;width:560px}\
         .card h3{font-size:14px;margin:0 0 4px 0}.muted{color:#666;font-size:12px}\
         .legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}\
         </style></head><body>\n",
    );
    let _ = writeln!(h, "<h1>Data drift report</h1>");
    let _ = writeln!(
        h,
        "<p class=\"muted\">Reference: {} ({} rows) &middot; Current: {} ({} rows) &middot; tests as in Evidently {} DataDriftPreset</p>",
        esc(&report.reference.path),
        report.reference.rows,
        esc(&report.current.path),
        report.current.rows,
        report.evidently_version
    );
    let (class, text) =
        if report.significant_drift { ("bad", "Significant drift detected") } else { ("good", "No significant drift") };
    let _ = write!(h, "<div class=\"verdict {class}\"><b>{text}</b><br>");
    let _ = write!(
        h,
        "{} of {} columns drifted (share {:.3}; dataset drift when &ge; {}: <b>{}</b>). Largest PSI {} (threshold {}).",
        report.number_of_drifted_columns,
        report.number_of_columns,
        report.share_of_drifted_columns,
        report.drift_share,
        if report.dataset_drift { "yes" } else { "no" },
        num(report.max_psi),
        report.psi_threshold
    );
    for r in &report.significant_drift_reasons {
        let _ = write!(h, "<br>&bull; {}", esc(r));
    }
    h.push_str("</div>\n");

    h.push_str("<h2>Columns</h2><table><tr><th class=\"l\">column</th><th class=\"l\">type</th><th class=\"l\">test</th><th>score</th><th>threshold</th><th class=\"l\">drift</th><th>PSI</th><th>ref. values</th><th>cur. values</th></tr>\n");
    for c in &report.columns {
        let _ = writeln!(
            h,
            "<tr{}><td class=\"l\"><a href=\"#col-{}\">{}</a></td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if c.drift_detected { " class=\"drift\"" } else { "" },
            anchor(&c.name),
            esc(&c.name),
            c.column_type.as_str(),
            esc(c.stattest_display_name),
            num(c.drift_score),
            num(c.threshold),
            if c.drift_detected { "<b>detected</b>" } else { "not detected" },
            num(c.psi),
            c.reference.count,
            c.current.count
        );
    }
    h.push_str("</table>\n");
    if !report.skipped_columns.is_empty() {
        h.push_str("<p class=\"muted\">Not compared: ");
        let items: Vec<String> =
            report.skipped_columns.iter().map(|s| format!("{} ({})", esc(&s.column), esc(&s.reason))).collect();
        h.push_str(&items.join("; "));
        h.push_str("</p>\n");
    }

    if let Some(p) = &report.prediction_drift {
        let _ = writeln!(
            h,
            "<h2>Prediction drift</h2><p>Column <b>{}</b>: {} = {} (threshold {}), drift {}; PSI {}.</p>",
            esc(&p.column),
            p.stattest.display_name(),
            num(p.drift_score),
            num(p.threshold),
            if p.drift_detected { "<b>detected</b>" } else { "not detected" },
            num(p.psi)
        );
    }
    if let Some(p) = &report.performance {
        let _ = writeln!(
            h,
            "<h2>Performance ({})</h2><p class=\"muted\">target <b>{}</b>, prediction <b>{}</b></p>",
            p.task,
            esc(&p.target),
            esc(&p.prediction)
        );
        h.push_str("<table><tr><th class=\"l\">metric</th><th>reference</th><th>current</th><th>change</th></tr>\n");
        let rows: [(&str, MetricGetter); 6] = [
            ("RMSE", |m| m.rmse),
            ("MAE", |m| m.mae),
            ("mean error", |m| m.mean_error),
            ("accuracy", |m| m.accuracy),
            ("share of positive predictions", |m| m.positive_rate),
            ("share of positive targets", |m| m.target_positive_rate),
        ];
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">rows</td><td>{}</td><td>{}</td><td></td></tr>",
            p.reference.as_ref().map_or("-".into(), |m| m.rows.to_string()),
            p.current.as_ref().map_or("-".into(), |m| m.rows.to_string())
        );
        for (label, get) in rows {
            let cell = |m: &Option<Metrics>| m.as_ref().and_then(get).map_or("-".to_owned(), num);
            if p.reference.as_ref().and_then(get).is_none() && p.current.as_ref().and_then(get).is_none() {
                continue;
            }
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{label}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                cell(&p.reference),
                cell(&p.current),
                cell(&p.delta)
            );
        }
        h.push_str("</table>\n");
        let dist = |m: &Option<Metrics>| m.as_ref().and_then(|m| m.confidence_distribution.clone());
        let (r, c) = (dist(&p.reference), dist(&p.current));
        if r.is_some() || c.is_some() {
            let labels: Vec<String> = (0..10).map(|i| format!("{:.1}", i as f64 / 10.0)).collect();
            let r = r.unwrap_or_else(|| vec![0.0; 10]);
            let c = c.unwrap_or_else(|| vec![0.0; 10]);
            h.push_str("<div class=\"card\"><h3>Prediction confidence distribution</h3>");
            h.push_str(&bars_svg(&labels, &r, &c));
            h.push_str("</div>\n");
        }
    }

    h.push_str(&format!(
        "<h2>Distributions</h2><p class=\"legend muted\"><span style=\"background:{REF_COLOR}\"></span>reference<span style=\"background:{CUR_COLOR}\"></span>current (share of values per bin)</p><div class=\"cards\">\n"
    ));
    for c in &report.columns {
        h.push_str(&column_card(c));
    }
    h.push_str("</div></body></html>\n");
    h
}

fn column_card(c: &ColumnReport) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<div class=\"card\" id=\"col-{}\"><h3>{} <span class=\"muted\">({}, {} = {}, {})</span></h3>",
        anchor(&c.name),
        esc(&c.name),
        c.column_type.as_str(),
        esc(c.stattest_display_name),
        num(c.drift_score),
        if c.drift_detected { "drift detected" } else { "no drift" }
    );
    let (labels, counts) = match &c.histogram {
        Histogram::Numeric { edges, counts } => {
            (edges.windows(2).map(|w| format!("{}–{}", short(w[0]), short(w[1]))).collect::<Vec<_>>(), counts)
        }
        Histogram::Categorical { labels, counts } => (labels.clone(), counts),
    };
    let tr: u64 = counts.iter().map(|x| x.0).sum();
    let tc: u64 = counts.iter().map(|x| x.1).sum();
    let r: Vec<f64> = counts.iter().map(|x| x.0 as f64 / tr.max(1) as f64).collect();
    let cur: Vec<f64> = counts.iter().map(|x| x.1 as f64 / tc.max(1) as f64).collect();
    s.push_str(&bars_svg(&labels, &r, &cur));
    s.push_str("</div>\n");
    s
}

/// Grouped bars (reference, current) per label, with the first and last label on the axis
/// and every label in a tooltip.
fn bars_svg(labels: &[String], r: &[f64], c: &[f64]) -> String {
    let (w, hgt, left, bottom) = (540.0, 200.0, 36.0, 34.0);
    let n = labels.len().max(1) as f64;
    let plot_w = w - left - 6.0;
    let plot_h = hgt - bottom - 8.0;
    let ymax = r.iter().chain(c).cloned().fold(0.0f64, f64::max).max(1e-12);
    let slot = plot_w / n;
    let bw = (slot * 0.42).max(0.5);
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{hgt}\" viewBox=\"0 0 {w} {hgt}\" role=\"img\">");
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>",
        8.0 + plot_h,
        w - 6.0,
        8.0 + plot_h
    );
    for frac in [0.0, 0.5, 1.0] {
        let y = 8.0 + plot_h - frac * plot_h;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\" fill=\"#666\">{:.0}%</text>",
            left - 3.0,
            y + 3.0,
            frac * ymax * 100.0
        );
    }
    for (i, label) in labels.iter().enumerate() {
        let x0 = left + i as f64 * slot + slot * 0.08;
        for (k, (v, color)) in
            [(r.get(i).copied().unwrap_or(0.0), REF_COLOR), (c.get(i).copied().unwrap_or(0.0), CUR_COLOR)]
                .into_iter()
                .enumerate()
        {
            let bh = v / ymax * plot_h;
            let _ = write!(
                s,
                "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{color}\"><title>{} — {}: {:.2}%</title></rect>",
                x0 + k as f64 * bw,
                8.0 + plot_h - bh,
                bw,
                bh,
                esc(label),
                if k == 0 { "reference" } else { "current" },
                v * 100.0
            );
        }
    }
    let axis_label = |i: usize, anchor: &str, x: f64| {
        format!(
            "<text x=\"{x:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"{anchor}\" fill=\"#444\">{}</text>",
            hgt - bottom + 14.0,
            esc(&truncate(&labels[i], 28))
        )
    };
    if !labels.is_empty() {
        if labels.len() <= 8 {
            for i in 0..labels.len() {
                s.push_str(&axis_label(i, "middle", left + (i as f64 + 0.5) * slot));
            }
        } else {
            s.push_str(&axis_label(0, "start", left));
            s.push_str(&axis_label(labels.len() - 1, "end", w - 6.0));
        }
    }
    s.push_str("</svg>");
    s
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(ch),
        }
    }
    o
}

fn anchor(name: &str) -> String {
    name.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("_{b:02x}") })
        .collect()
}

fn num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e6) {
        format!("{x:.4e}")
    } else {
        format!("{x:.4}")
    }
}

fn short(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e5) {
        format!("{x:.2e}")
    } else {
        let s = format!("{x:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}
