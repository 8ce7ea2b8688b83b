//! Inline SVG charts: a product's actuals with its forecast fan, the reliability diagram of
//! `p_up`, and the category bars. Plain strings, no scripts, nothing fetched.

use std::fmt::Write;

use super::calibration::ReliabilityBin;
use super::tables::CategoryRow;

/// Actuals (a line) followed by the forecast: the 10–90 % band and the expected units.
pub fn sparkline(history: &[f64], fan: &[[f64; 3]]) -> String {
    let (w, h, pad) = (260.0, 56.0, 3.0);
    let n = (history.len() + fan.len()).max(2) as f64;
    let top = history
        .iter()
        .copied()
        .chain(fan.iter().map(|f| f[2]))
        .fold(1.0_f64, f64::max);
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (n - 1.0);
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v.max(0.0) / top;
    let mut s = format!(
        r#"<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="last {} buckets and the forecast">"#,
        history.len()
    );
    let start = history.len();
    if !fan.is_empty() {
        let upper: Vec<String> = fan
            .iter()
            .enumerate()
            .map(|(i, f)| format!("{:.1},{:.1}", x(start + i), y(f[2])))
            .collect();
        let lower: Vec<String> = fan
            .iter()
            .enumerate()
            .rev()
            .map(|(i, f)| format!("{:.1},{:.1}", x(start + i), y(f[0])))
            .collect();
        let _ = write!(
            s,
            r##"<polygon points="{} {}" fill="#f4b183" fill-opacity="0.55"/>"##,
            upper.join(" "),
            lower.join(" ")
        );
        let mean: Vec<String> = fan
            .iter()
            .enumerate()
            .map(|(i, f)| format!("{:.1},{:.1}", x(start + i), y(f[1])))
            .collect();
        let _ = write!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#c55a11" stroke-width="1.5"/>"##,
            mean.join(" ")
        );
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="0" y2="{h}" stroke="#999" stroke-dasharray="2,2"/>"##,
            x(start)
        );
    }
    let line: Vec<String> = history
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    let _ = write!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#2f5597" stroke-width="1.2"/>"##,
        line.join(" ")
    );
    s.push_str("</svg>");
    s
}

/// Mean `p_up` against the observed share of rises, per bin, with the diagonal.
pub fn reliability(bins: &[ReliabilityBin]) -> String {
    let (size, pad) = (240.0, 28.0);
    let p = |v: f64| pad + (size - 2.0 * pad) * v;
    let q = |v: f64| size - pad - (size - 2.0 * pad) * v;
    let mut s = format!(
        r##"<svg class="reliability" width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img" aria-label="reliability of p_up"><rect x="{pad}" y="{pad}" width="{side}" height="{side}" fill="none" stroke="#ccc"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="3,3"/>"##,
        p(0.0),
        q(0.0),
        p(1.0),
        q(1.0),
        side = size - 2.0 * pad,
    );
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" font-size="10" text-anchor="middle">p_up published</text>"##,
        size / 2.0,
        size - 6.0
    );
    let _ = write!(
        s,
        r##"<text x="10" y="{}" font-size="10" transform="rotate(-90 10 {})" text-anchor="middle">share that rose</text>"##,
        size / 2.0,
        size / 2.0
    );
    let total: usize = bins.iter().map(|b| b.count).sum::<usize>().max(1);
    for b in bins {
        let r = 2.0 + 10.0 * (b.count as f64 / total as f64).sqrt();
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="{r:.1}" fill="#2f5597" fill-opacity="0.7"><title>{} calls, mean p_up {:.2}, rose {:.2}</title></circle>"##,
            p(b.mean_p_up),
            q(b.observed),
            b.count,
            b.mean_p_up,
            b.observed
        );
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars of each category's strength (rising right, falling left).
pub fn category_bars(rows: &[CategoryRow]) -> String {
    let (w, row_h, label_w) = (560.0, 18.0, 160.0);
    let h = row_h * rows.len() as f64 + 8.0;
    let limit = rows
        .iter()
        .map(|r| r.strength.abs())
        .fold(0.2_f64, f64::max)
        .min(3.0);
    let mid = label_w + (w - label_w) / 2.0;
    let scale = (w - label_w) / 2.0 / limit;
    let mut s = format!(
        r##"<svg class="categories" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="category trends"><line x1="{mid}" x2="{mid}" y1="0" y2="{h}" stroke="#999"/>"##
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 4.0 + row_h * i as f64;
        let v = r.strength.clamp(-limit, limit) * scale;
        let (x, width, colour) = if v >= 0.0 {
            (mid, v, "#548235")
        } else {
            (mid + v, -v, "#c00000")
        };
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text><rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}: {:+.0} %</title></rect>"##,
            label_w - 6.0,
            y + row_h * 0.7,
            super::html::escape(&r.category),
            y + 2.0,
            width.max(0.5),
            row_h - 4.0,
            super::html::escape(&r.category),
            100.0 * r.strength
        );
    }
    s.push_str("</svg>");
    s
}
