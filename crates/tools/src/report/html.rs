//! The report as one HTML file: inline CSS and SVG, no script, nothing fetched when it is opened
//! (it can be mailed or archived as is). Every product row carries `data-sku`, so tools (and the
//! headless-browser test) can find it.

use std::fmt::Write;

use super::calibration::Calibration;
use super::svg;
use super::tables::{CategoryRow, Meta, NewProductRow, ProductRow, Report, RestockRow};
use trendcast_engine::publish::Direction;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}\
h1{margin-bottom:4px}h2{margin-top:36px;border-bottom:2px solid #2f5597;padding-bottom:4px}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{padding:4px 6px;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:middle}\
th{background:#f3f6fb}td.n{text-align:right;font-variant-numeric:tabular-nums}.meta{color:#555;font-size:13px}\
.rising{color:#548235;font-weight:600}.falling{color:#c00000;font-weight:600}.flat{color:#666}\
.note{color:#555;font-size:12px;max-width:900px}.panel{display:flex;gap:32px;align-items:flex-start;flex-wrap:wrap}";

/// Renders the report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>trendcast trend report</title><style>{STYLE}</style></head><body>"
    );
    header(&mut out, &report.meta);
    let bucket = bucket_word(report.meta.bucket_ms);
    let _ = write!(out, "<h2 id=\"rising\">Rising products</h2><p class=\"note\">Called rising: the next {} {bucket}s are expected to sell more than the flat band above the last {} {bucket}s' average (docs/TRENDS.md). Surest first. Blue: the last weeks' actual units; orange: the forecast, line = expected units, band = 10–90 %. Change: the demand model's expected level against the recent level; the call and p_up are the direction classifier's, which has learnt when a move persists, so the two can disagree in sign (docs/TRENDS.md).</p>", report.meta.horizon, report.meta.horizon);
    products(&mut out, &report.rising, "rising", bucket);
    let _ = write!(out, "<h2 id=\"falling\">Falling products</h2><p class=\"note\">Called falling, lowest probability of a rise first.</p>");
    products(&mut out, &report.falling, "falling", bucket);
    categories(&mut out, &report.categories, bucket);
    new_products(&mut out, &report.new_products);
    restock(&mut out, &report.restock);
    calibration(&mut out, &report.calibration);
    out.push_str("</body></html>\n");
    out
}

/// `v` with `digits` decimals, "–" when it is not a number (no call to judge, no actuals).
fn num(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "–".into()
    }
}

fn bucket_word(bucket_ms: i64) -> &'static str {
    match bucket_ms {
        86_400_000 => "day",
        3_600_000 => "hour",
        604_800_000 => "week",
        _ => "bucket",
    }
}

fn header(out: &mut String, m: &Meta) {
    let span = m
        .span
        .as_ref()
        .map(|(a, b)| {
            format!(
                "{} to {}",
                a.get(..10).unwrap_or(a),
                b.get(..10).unwrap_or(b)
            )
        })
        .unwrap_or_else(|| "no sales read".into());
    let _ = write!(
        out,
        "<h1>Trend report</h1><p class=\"meta\" id=\"meta\">Model <b>{}</b> · sales data {} ({} events) · forecasts as of {} · {} SKUs with forecasts, {} updates read · horizon {} {}s · source: {}{}</p>",
        escape(&m.models.join(", ")),
        escape(&span),
        m.sales_events,
        escape(&m.newest_as_of),
        m.skus_with_updates,
        m.updates,
        m.horizon,
        bucket_word(m.bucket_ms),
        escape(&m.source),
        if m.unreadable > 0 { format!(" · {} unreadable messages skipped", m.unreadable) } else { String::new() }
    );
    for topic in &m.not_read {
        let _ = write!(out, "<p class=\"meta\">Not read: {}</p>", escape(topic));
    }
}

fn call(direction: Direction) -> &'static str {
    match direction {
        Direction::Rising => "rising",
        Direction::Falling => "falling",
        Direction::Flat => "flat",
    }
}

fn products(out: &mut String, rows: &[ProductRow], kind: &str, per: &str) {
    if rows.is_empty() {
        let _ = write!(
            out,
            "<p>No product is called {kind} with enough volume.</p>"
        );
        return;
    }
    let _ = write!(out, "<table><tr><th>SKU</th><th>Product</th><th>Category</th><th>Last weeks and forecast</th><th>Call</th><th>p_up</th><th>Change</th><th>Recent / {per}</th><th>Expected / {per}</th></tr>");
    for r in rows {
        let _ = write!(
            out,
            "<tr class=\"product\" data-sku=\"{0}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td><td class=\"{4}\">{4}</td><td class=\"n\">{5:.2}</td><td class=\"n\">{6:+.0} %</td><td class=\"n\">{7:.1}</td><td class=\"n\">{8:.1}</td></tr>",
            escape(&r.sku),
            escape(&r.title),
            escape(&r.category),
            svg::sparkline(&r.history, &r.fan),
            call(r.direction),
            r.p_up,
            100.0 * r.strength,
            r.recent_level,
            r.expected_level
        );
    }
    out.push_str("</table>");
}

fn categories(out: &mut String, rows: &[CategoryRow], per: &str) {
    out.push_str("<h2 id=\"categories\">Category trends</h2><p class=\"note\">Sums over each category's SKUs with a current forecast: expected units per bucket over the horizon against the recent level, the 20 biggest categories by expected volume.</p>");
    if rows.is_empty() {
        out.push_str("<p>No categories.</p>");
        return;
    }
    let shown = &rows[..rows.len().min(20)];
    let _ = write!(out, "<div class=\"panel\">{}", svg::category_bars(shown));
    let _ = write!(out, "<table style=\"width:auto\"><tr><th>Category</th><th>SKUs</th><th>Rising</th><th>Falling</th><th>Recent / {per}</th><th>Expected / {per}</th><th>Change</th></tr>");
    for c in shown {
        let _ = write!(
            out,
            "<tr class=\"category\" data-category=\"{0}\"><td>{0}</td><td class=\"n\">{1}</td><td class=\"n\">{2}</td><td class=\"n\">{3}</td><td class=\"n\">{4:.1}</td><td class=\"n\">{5:.1}</td><td class=\"n\">{6:+.0} %</td></tr>",
            escape(&c.category), c.skus, c.rising, c.falling, c.recent_level, c.expected_level, 100.0 * c.strength
        );
    }
    out.push_str("</table></div>");
}

fn new_products(out: &mut String, rows: &[NewProductRow]) {
    out.push_str("<h2 id=\"new-products\">New products</h2><p class=\"note\">Forecasts from product text for products with little or no history (docs/COLD_START.md): the curves of the most similar earlier launches, blended with the product's own sales as they come.</p>");
    if rows.is_empty() {
        out.push_str("<p>No new-product forecasts were published (the engine needs a catalog topic, a text model and a launch library: docs/COLD_START.md).</p>");
        return;
    }
    out.push_str("<table><tr><th>SKU</th><th>Product</th><th>Days of history</th><th>Own weight</th><th>Forecast</th><th>Units over horizon</th><th>Nearest earlier products</th></tr>");
    for r in rows {
        let total: f64 = r.fan.iter().map(|f| f[1]).sum();
        let neighbours: Vec<String> = r
            .neighbours
            .iter()
            .take(3)
            .map(|(sku, title, sim)| format!("{} {} ({sim:.2})", escape(sku), escape(title)))
            .collect();
        let _ = write!(
            out,
            "<tr class=\"new-product\" data-sku=\"{0}\"><td>{0}</td><td>{1}</td><td class=\"n\">{2}</td><td class=\"n\">{3:.2}</td><td>{4}</td><td class=\"n\">{5:.0}</td><td>{6}</td></tr>",
            escape(&r.sku), escape(&r.title), r.days_of_history, r.own_weight, svg::sparkline(&[], &r.fan), total, neighbours.join("<br>")
        );
    }
    out.push_str("</table>");
}

fn restock(out: &mut String, rows: &[RestockRow]) {
    let _ = write!(out, "<h2 id=\"restock\">Restock alerts</h2><p class=\"note\">Open reorder signals whose expected stock-out comes before an order placed at the signal would arrive. {} in all; the 30 soonest are shown (the CSV has every one).</p>", rows.len());
    if rows.is_empty() {
        out.push_str("<p>No alerts.</p>");
        return;
    }
    out.push_str("<table><tr><th>SKU</th><th>Product</th><th>Signal</th><th>Stock-out expected</th><th>Lead time (days)</th><th>On hand</th><th>Position</th><th>Order</th></tr>");
    for r in rows.iter().take(30) {
        let _ = write!(
            out,
            "<tr class=\"restock\" data-sku=\"{0}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td><td class=\"n\">{4:.0}</td><td class=\"n\">{5:.0}</td><td class=\"n\">{6:.0}</td><td class=\"n\">{7:.0}</td></tr>",
            escape(&r.sku), escape(&r.title), escape(&r.ts), escape(&r.stockout_at), r.lead_time_days, r.on_hand, r.position, r.order_qty
        );
    }
    out.push_str("</table>");
}

fn calibration(out: &mut String, c: &Calibration) {
    out.push_str("<h2 id=\"calibration\">How past forecasts turned out</h2><p class=\"note\">At each weekly origin whose horizon has passed, every SKU's newest forecast of the week before is judged against what sold. Accuracy: calls equal to what happened (docs/TRENDS.md). Brier: squared error of p_up against \"rose\" (lower is better), beside that of always saying the week's own base rate, a reference known only in hindsight. Coverage: share of the actuals inside the 10–90 % band (0.80 is right). With a compacted trend-update topic only each SKU's newest update is left, so fewer SKUs are judged. WAPE: error of the horizon totals over their sum.</p>");
    if c.origins.is_empty() {
        out.push_str("<p>No origin with a full horizon of actuals yet.</p>");
        return;
    }
    out.push_str("<div class=\"panel\"><table style=\"width:auto\"><tr><th>Origin</th><th>SKUs</th><th>Accuracy</th><th>Rising precision</th><th>Brier</th><th>Brier of base rate</th><th>Coverage 80 %</th><th>WAPE</th></tr>");
    for o in &c.origins {
        let _ = write!(
            out,
            "<tr class=\"origin\"><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(o.origin.get(..10).unwrap_or(&o.origin)),
            o.skus,
            num(o.accuracy, 2),
            num(o.rising_precision, 2),
            num(o.brier, 3),
            num(o.brier_base_rate, 3),
            num(o.coverage80, 2),
            num(o.wape, 2)
        );
    }
    let _ = write!(out, "</table><div>{}<p class=\"note\">Reliability of p_up: each dot is a bin of calls, at its mean p_up (across) and the share that rose (up); on the diagonal is calibrated.</p></div></div>", svg::reliability(&c.reliability));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_data_cannot_break_out_of_the_page() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }
}
