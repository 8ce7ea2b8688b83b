//! The report's tables as CSV files (one per table, a header row each), for spreadsheets.

use std::path::{Path, PathBuf};

use super::tables::{ProductRow, Report};
use trendcast_engine::publish::Direction;

/// Why a CSV file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("could not write {path}: {source}")]
pub struct CsvError {
    /// The file.
    pub path: String,
    /// The cause.
    #[source]
    pub source: csv::Error,
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Rising => "rising",
        Direction::Falling => "falling",
        Direction::Flat => "flat",
    }
}

/// Writes `rows` (each already a list of fields) under `header` to `dir/name`.
fn write(
    dir: &Path,
    name: &str,
    header: &[&str],
    rows: Vec<Vec<String>>,
) -> Result<PathBuf, CsvError> {
    let path = dir.join(name);
    let err = |source| CsvError {
        path: path.display().to_string(),
        source,
    };
    let mut w = csv::Writer::from_path(&path).map_err(err)?;
    w.write_record(header).map_err(err)?;
    for row in rows {
        w.write_record(row.iter().map(|f| defused(f).into_owned()))
            .map_err(err)?;
    }
    w.flush().map_err(|e| err(e.into()))?;
    Ok(path)
}

/// A text field that a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a
/// leading apostrophe; numbers stay as they are.
fn defused(field: &str) -> std::borrow::Cow<'_, str> {
    let formula = field.starts_with(['=', '+', '-', '@']);
    if formula && field.parse::<f64>().is_err() {
        format!("'{field}").into()
    } else {
        field.into()
    }
}

/// One CSV table: file name, header, rows.
type Table = (&'static str, &'static [&'static str], Vec<Vec<String>>);

/// Writes every table of `report` into `dir`; returns the files written.
pub fn write_all(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, CsvError> {
    [
        products("rising.csv", &report.rising),
        products("falling.csv", &report.falling),
        categories(report),
        new_products(report),
        restock(report),
        calibration(report),
    ]
    .into_iter()
    .map(|(name, header, rows)| write(dir, name, header, rows))
    .collect()
}

fn products(name: &'static str, rows: &[ProductRow]) -> Table {
    let header: &[&str] = &[
        "sku",
        "title",
        "category",
        "direction",
        "p_up",
        "strength",
        "recent_per_bucket",
        "expected_per_bucket",
        "as_of",
    ];
    let rows = rows
        .iter()
        .map(|r| {
            vec![
                r.sku.clone(),
                r.title.clone(),
                r.category.clone(),
                direction(r.direction).into(),
                format!("{:.4}", r.p_up),
                format!("{:.4}", r.strength),
                format!("{:.3}", r.recent_level),
                format!("{:.3}", r.expected_level),
                r.as_of.clone(),
            ]
        })
        .collect();
    (name, header, rows)
}

fn categories(report: &Report) -> Table {
    let header: &[&str] = &[
        "category",
        "skus",
        "rising",
        "falling",
        "recent_per_bucket",
        "expected_per_bucket",
        "strength",
    ];
    let rows = report
        .categories
        .iter()
        .map(|c| {
            vec![
                c.category.clone(),
                c.skus.to_string(),
                c.rising.to_string(),
                c.falling.to_string(),
                format!("{:.3}", c.recent_level),
                format!("{:.3}", c.expected_level),
                format!("{:.4}", c.strength),
            ]
        })
        .collect();
    ("categories.csv", header, rows)
}

fn new_products(report: &Report) -> Table {
    let header: &[&str] = &[
        "sku",
        "title",
        "days_of_history",
        "own_weight",
        "units_over_horizon",
        "neighbours",
        "as_of",
    ];
    let rows = report
        .new_products
        .iter()
        .map(|r| {
            let neighbours: Vec<String> = r
                .neighbours
                .iter()
                .map(|(s, _, sim)| format!("{s}:{sim:.3}"))
                .collect();
            vec![
                r.sku.clone(),
                r.title.clone(),
                r.days_of_history.to_string(),
                format!("{:.3}", r.own_weight),
                format!("{:.3}", r.fan.iter().map(|f| f[1]).sum::<f64>()),
                neighbours.join(" "),
                r.as_of.clone(),
            ]
        })
        .collect();
    ("new_products.csv", header, rows)
}

fn restock(report: &Report) -> Table {
    let header: &[&str] = &[
        "sku",
        "title",
        "signal_ts",
        "stockout_at",
        "lead_time_days",
        "on_hand",
        "position",
        "order_qty",
    ];
    let rows = report
        .restock
        .iter()
        .map(|r| {
            vec![
                r.sku.clone(),
                r.title.clone(),
                r.ts.clone(),
                r.stockout_at.clone(),
                r.lead_time_days.to_string(),
                r.on_hand.to_string(),
                r.position.to_string(),
                r.order_qty.to_string(),
            ]
        })
        .collect();
    ("restock_alerts.csv", header, rows)
}

fn calibration(report: &Report) -> Table {
    let header: &[&str] = &[
        "origin",
        "skus",
        "accuracy",
        "rising_precision",
        "brier",
        "brier_base_rate",
        "coverage80",
        "wape",
    ];
    let rows = report
        .calibration
        .origins
        .iter()
        .map(|o| {
            let mut row = vec![o.origin.clone(), o.skus.to_string()];
            for v in [
                o.accuracy,
                o.rising_precision,
                o.brier,
                o.brier_base_rate,
                o.coverage80,
                o.wape,
            ] {
                row.push(format!("{v:.4}"));
            }
            row
        })
        .collect();
    ("calibration.csv", header, rows)
}

#[cfg(test)]
mod tests {
    use super::defused;

    #[test]
    fn formulas_from_the_data_are_defused_and_numbers_are_not() {
        assert_eq!(defused("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defused("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defused("-0.25"), "-0.25");
        assert_eq!(defused("BAG"), "BAG");
    }
}
