//! The HTML report: one self-contained page (inline CSS and SVG, no script, no network
//! fetch) with the verdict, the table of per-column scores, a reference-vs-current histogram
//! per column, prediction drift and performance.

use crate::report::{
    ColumnReport, DriftReport, Estimate, EstimatedPerformance, Estimates, Histogram, Metrics, Performance,
    PredictionDrift,
};
use std::fmt::Write;

/// Reads one metric out of [`Metrics`].
type MetricGetter = fn(&Metrics) -> Option<f64>;
/// A label and how to read that metric's estimate out of [`Estimates`].
type EstimateRow = (&'static str, fn(&Estimates) -> Estimate);

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

    if !report.text_columns.is_empty() {
        h.push_str(&text_section(report));
    }
    if let Some(p) = &report.prediction_drift {
        h.push_str(&prediction_section(p));
    }
    if let Some(p) = &report.performance {
        h.push_str(&performance_section(p));
    }
    if let Some(e) = &report.estimated_performance {
        h.push_str(&estimated_section(e));
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

/// Free-text columns: their descriptors' tests and the vocabulary behind the OOV share.
fn text_section(report: &DriftReport) -> String {
    let mut h = String::from("<h2>Text columns</h2>\n");
    for t in &report.text_columns {
        let v = &t.vocabulary;
        let _ = writeln!(
            h,
            "<p><b>{}</b> ({}; {} reference and {} current values). Vocabulary for OOV words: {} \
             (about {:.0} distinct words in a {} KiB sketch, false-positive rate {}).</p>",
            esc(&t.column),
            t.source,
            t.reference_values,
            t.current_values,
            if v.source == "file" {
                "the given word list"
            } else {
                "the reference's own words, leave-one-out for reference rows"
            },
            v.estimated_words,
            v.bytes / 1024,
            num(v.false_positive_rate)
        );
        h.push_str("<table><tr><th class=\"l\">descriptor</th><th class=\"l\">test</th><th>score</th><th>threshold</th><th class=\"l\">drift</th><th>ref. mean</th><th>cur. mean</th></tr>\n");
        for c in report.columns.iter().filter(|c| c.text_descriptor.as_ref().is_some_and(|d| d.column == t.column)) {
            let d = c.text_descriptor.as_ref().expect("filtered");
            let _ = writeln!(
                h,
                "<tr{}><td class=\"l\"><a href=\"#col-{}\">{}</a></td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td></tr>",
                if c.drift_detected { " class=\"drift\"" } else { "" },
                anchor(&c.name),
                esc(&d.display_name),
                esc(c.stattest_display_name),
                num(c.drift_score),
                num(c.threshold),
                if c.drift_detected { "<b>detected</b>" } else { "not detected" },
                c.reference.mean.map_or("-".into(), num),
                c.current.mean.map_or("-".into(), num)
            );
        }
        h.push_str("</table>\n");
    }
    h
}

/// The model's outputs: label and probability drift, and the share of positive predictions.
fn prediction_section(p: &PredictionDrift) -> String {
    let mut h = String::from("<h2>Prediction drift</h2>\n<table><tr><th class=\"l\">output</th><th class=\"l\">column</th><th class=\"l\">test</th><th>score</th><th>threshold</th><th class=\"l\">drift</th><th>PSI</th><th>ref. mean</th><th>cur. mean</th></tr>\n");
    for (what, o) in [("predicted label", &p.prediction), ("probability", &p.probability)] {
        let Some(o) = o else { continue };
        let _ = writeln!(
            h,
            "<tr{}><td class=\"l\">{what}</td><td class=\"l\"><a href=\"#col-{}\">{}</a></td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if o.drift_detected { " class=\"drift\"" } else { "" },
            anchor(&o.column),
            esc(&o.column),
            o.stattest.display_name(),
            num(o.drift_score),
            num(o.threshold),
            if o.drift_detected { "<b>detected</b>" } else { "not detected" },
            num(o.psi),
            o.reference_mean.map_or("-".into(), num),
            o.current_mean.map_or("-".into(), num)
        );
    }
    h.push_str("</table>\n");
    if let (Some(pos), Some(r), Some(c)) = (&p.pos_label, p.reference_share_of_positives, p.current_share_of_positives)
    {
        let _ = write!(
            h,
            "<div class=\"card\"><h3>Share of positive predictions ('{}'): reference {:.1}%, current {:.1}%</h3>",
            esc(pos),
            r * 100.0,
            c * 100.0
        );
        let labels = [format!("'{}'", pos), "other".to_owned()];
        h.push_str(&bars_svg(&labels, &[r, 1.0 - r], &[c, 1.0 - c]));
        h.push_str("</div>\n");
    }
    h
}

fn performance_section(p: &Performance) -> String {
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<h2>Performance ({})</h2><p class=\"muted\">target <b>{}</b>, prediction <b>{}</b>{}{}{}</p>",
        p.task,
        esc(&p.target),
        esc(&p.prediction),
        p.probability.as_ref().map_or(String::new(), |c| format!(", probability <b>{}</b>", esc(c))),
        p.pos_label.as_ref().map_or(String::new(), |l| format!(", positive class <b>{}</b>", esc(l))),
        p.labels_joined.map_or(String::new(), |n| format!("; current labels: {n} joined by request id")),
    );
    h.push_str("<table><tr><th class=\"l\">metric</th><th>reference</th><th>current</th><th>change</th></tr>\n");
    let rows: [(&str, MetricGetter); 15] = [
        ("RMSE", |m| m.rmse),
        ("MAE", |m| m.mae),
        ("mean error", |m| m.mean_error),
        ("accuracy", |m| m.accuracy),
        ("precision", |m| m.precision),
        ("recall", |m| m.recall),
        ("F1", |m| m.f1),
        ("ROC AUC", |m| m.roc_auc),
        ("log loss", |m| m.log_loss),
        ("TPR", |m| m.tpr),
        ("TNR", |m| m.tnr),
        ("FPR", |m| m.fpr),
        ("FNR", |m| m.fnr),
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
    h.push_str("</table>\n<div class=\"cards\">\n");
    for (side, m) in [("reference", &p.reference), ("current", &p.current)] {
        if let Some(cm) = m.as_ref().and_then(|m| m.confusion_matrix) {
            let _ = writeln!(
                h,
                "<div class=\"card\" style=\"width:260px\"><h3>Confusion matrix, {side}</h3><table>\
                 <tr><th></th><th>predicted +</th><th>predicted &minus;</th></tr>\
                 <tr><th>actual +</th><td>{}</td><td>{}</td></tr><tr><th>actual &minus;</th><td>{}</td><td>{}</td></tr></table></div>",
                cm.tp, cm.fn_, cm.fp, cm.tn
            );
        }
    }
    let dist = |m: &Option<Metrics>| m.as_ref().and_then(|m| m.confidence_distribution.clone());
    let (r, c) = (dist(&p.reference), dist(&p.current));
    if r.is_some() || c.is_some() {
        let labels: Vec<String> = (0..10).map(|i| format!("{:.1}", i as f64 / 10.0)).collect();
        let r = r.unwrap_or_else(|| vec![0.0; 10]);
        let c = c.unwrap_or_else(|| vec![0.0; 10]);
        h.push_str("<div class=\"card\"><h3>Probability distribution of the labelled rows</h3>");
        h.push_str(&bars_svg(&labels, &r, &c));
        h.push_str("</div>\n");
    }
    h.push_str("</div>\n");
    h
}

/// CBPE: estimated metrics with their ±3σ bands next to the realised ones.
fn estimated_section(e: &EstimatedPerformance) -> String {
    let mut h = format!(
        "<h2>Estimated performance ({})</h2><p class=\"muted\">Estimated from the probabilities of the positive class \
         ('{}'), taken as calibrated, before labels arrive; band = estimate &plusmn; 3 sampling errors \
         (NannyML's). Realised = from true labels, where they exist.</p>\n",
        e.method,
        esc(&e.pos_label)
    );
    h.push_str("<table><tr><th class=\"l\">metric</th><th>reference realised</th><th>reference estimated</th><th>current estimated</th><th>current band</th><th>current realised</th></tr>\n");
    let metrics: [EstimateRow; 5] = [
        ("accuracy", |e| e.accuracy),
        ("precision", |e| e.precision),
        ("recall", |e| e.recall),
        ("F1", |e| e.f1),
        ("ROC AUC", |e| e.roc_auc),
    ];
    let opt = |x: Option<f64>| x.map_or("-".to_owned(), num);
    for (label, get) in metrics {
        let r = e.reference.as_ref().map(get);
        let c = e.current.as_ref().map(get);
        let band = c.and_then(|c| {
            Some(format!("{} – {}", num(c.lower_confidence_boundary?), num(c.upper_confidence_boundary?)))
        });
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{label}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            opt(r.and_then(|r| r.realized)),
            opt(r.map(|r| r.value)),
            opt(c.map(|c| c.value)),
            band.unwrap_or_else(|| "-".into()),
            opt(c.and_then(|c| c.realized)),
        );
    }
    h.push_str("</table>\n<div class=\"card\"><h3>Estimated (bars: ±3σ band) and realised (&#9670;) metrics</h3>");
    h.push_str(&estimate_svg(e, &metrics));
    h.push_str("</div>\n");
    h
}

/// One row per metric on a [0, 1] axis: reference and current estimates as dots with their
/// bands, realised figures as diamonds.
fn estimate_svg(e: &EstimatedPerformance, metrics: &[EstimateRow]) -> String {
    let (w, row, left, right) = (540.0, 30.0, 80.0, 16.0);
    let hgt = row * metrics.len() as f64 + 30.0;
    let x = |v: f64| left + v.clamp(0.0, 1.0) * (w - left - right);
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{hgt}\" viewBox=\"0 0 {w} {hgt}\" role=\"img\">");
    for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            s,
            "<line x1=\"{0:.1}\" y1=\"4\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#eee\"/><text x=\"{0:.1}\" y=\"{2:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#666\">{t}</text>",
            x(t),
            hgt - 22.0,
            hgt - 8.0
        );
    }
    for (i, (label, get)) in metrics.iter().enumerate() {
        let y = 16.0 + i as f64 * row;
        let _ = write!(s, "<text x=\"4\" y=\"{:.1}\" font-size=\"11\" fill=\"#333\">{label}</text>", y + 4.0);
        for (k, (side, color)) in [(&e.reference, REF_COLOR), (&e.current, CUR_COLOR)].into_iter().enumerate() {
            let Some(est) = side.as_ref().map(get) else { continue };
            let yy = y - 5.0 + k as f64 * 10.0;
            if let (Some(lo), Some(hi)) = (est.lower_confidence_boundary, est.upper_confidence_boundary) {
                let _ = write!(
                    s,
                    "<line x1=\"{:.1}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"{color}\" stroke-width=\"3\" opacity=\"0.45\"/>",
                    x(lo),
                    x(hi)
                );
            }
            if est.value.is_finite() {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{yy:.1}\" r=\"4\" fill=\"{color}\"><title>{label}, {} estimated: {}</title></circle>",
                    x(est.value),
                    if k == 0 { "reference" } else { "current" },
                    num(est.value)
                );
            }
            if let Some(r) = est.realized.filter(|r| r.is_finite()) {
                let cx = x(r);
                let _ = write!(
                    s,
                    "<path d=\"M{:.1} {:.1} l5 5 l-5 5 l-5 -5 z\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\"><title>{label}, {} realised: {}</title></path>",
                    cx,
                    yy - 5.0,
                    if k == 0 { "reference" } else { "current" },
                    num(r)
                );
            }
        }
    }
    s.push_str("</svg>");
    s
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
