//! Forecast tables: `sku,origin,date,q0.1,q0.5,q0.9`, one line per forecast day, with a
//! trailing `mean` column when the forecaster has a mean output (expected units per day).
//!
//! The evaluation writes its model's forecasts in this form so any other tool can score them, and
//! reads other forecasters' files (the Python baselines) in the same form so they are scored by
//! the same metric code on the same (series, origin) pairs.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use trendcast_engine::vocab::DAY_MS;

/// The CSV header.
pub const HEADER: &str = "sku,origin,date,q0.1,q0.5,q0.9";

/// The CSV header of a table with means.
pub const HEADER_WITH_MEAN: &str = "sku,origin,date,q0.1,q0.5,q0.9,mean";

/// One day's forecast: quantiles 0.1/0.5/0.9 and, when the forecaster has one, the mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastRow {
    /// Quantiles 0.1, 0.5, 0.9.
    pub quantiles: [f64; 3],
    /// Expected units.
    pub mean: Option<f64>,
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
pub fn date_of(day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day * DAY_MS)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Days since 1970-01-01 of a text starting `YYYY-MM-DD`.
pub fn day_of(text: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()?;
    Some(
        date.signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?)
            .num_days(),
    )
}

/// Forecasts keyed by (sku, origin day, forecast day).
#[derive(Debug, Default)]
pub struct ForecastTable {
    rows: HashMap<(String, i64, i64), ForecastRow>,
}

impl ForecastTable {
    /// Reads a forecast CSV; every malformed line is an error naming the line.
    pub fn read(path: &Path) -> Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut lines = std::io::BufReader::new(file).lines();
        let header = lines
            .next()
            .transpose()?
            .with_context(|| format!("{} is empty", path.display()))?;
        let with_mean = match header.trim() {
            HEADER => false,
            HEADER_WITH_MEAN => true,
            _ => bail!(
                "{}: header must be `{HEADER}` or `{HEADER_WITH_MEAN}`, found `{header}`",
                path.display()
            ),
        };
        let n_fields = if with_mean { 7 } else { 6 };
        let mut rows = HashMap::new();
        for (i, line) in lines.enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let bad = || format!("{} line {}: `{line}`", path.display(), i + 2);
            // the SKU may contain commas only if quoted; baselines write plain SKUs
            let mut fields: Vec<&str> = line.rsplitn(n_fields, ',').collect();
            if fields.len() != n_fields {
                bail!("{}: expected {n_fields} fields", bad());
            }
            let q = |s: &str| -> Result<f64> {
                let v: f64 = s.trim().parse().with_context(bad)?;
                anyhow::ensure!(v.is_finite(), "{}: forecast not finite", bad());
                Ok(v)
            };
            let mean = if with_mean {
                Some(q(fields.remove(0))?)
            } else {
                None
            };
            let (q90, q50, q10) = (q(fields[0])?, q(fields[1])?, q(fields[2])?);
            let date = day_of(fields[3]).with_context(bad)?;
            let origin = day_of(fields[4]).with_context(bad)?;
            let sku = fields[5].trim_matches('"').to_string();
            let row = ForecastRow {
                quantiles: [q10, q50, q90],
                mean,
            };
            rows.insert((sku, origin, date), row);
        }
        Ok(Self { rows })
    }

    /// The forecast for `sku` made at `origin` for `day`.
    pub fn get(&self, sku: &str, origin: i64, day: i64) -> Option<ForecastRow> {
        self.rows.get(&(sku.to_string(), origin, day)).copied()
    }

    /// Adds one forecast.
    pub fn insert(&mut self, sku: &str, origin: i64, day: i64, q: [f64; 3], mean: Option<f64>) {
        let row = ForecastRow { quantiles: q, mean };
        self.rows.insert((sku.to_string(), origin, day), row);
    }

    /// Writes the table sorted by origin, SKU and day.
    pub fn write(&self, out: &mut impl Write) -> Result<()> {
        let mut keys: Vec<_> = self.rows.keys().collect();
        keys.sort_by(|a, b| (a.1, &a.0, a.2).cmp(&(b.1, &b.0, b.2)));
        // a mean column when every row has a mean (a model with a mean output)
        let with_mean = !self.rows.is_empty() && self.rows.values().all(|r| r.mean.is_some());
        writeln!(out, "{}", if with_mean { HEADER_WITH_MEAN } else { HEADER })?;
        for key in keys {
            let row = self.rows[key];
            let q = row.quantiles;
            let sku = if key.0.contains(',') || key.0.contains('"') {
                format!("\"{}\"", key.0.replace('"', "\"\""))
            } else {
                key.0.clone()
            };
            write!(
                out,
                "{sku},{},{},{:.4},{:.4},{:.4}",
                date_of(key.1),
                date_of(key.2),
                q[0],
                q[1],
                q[2]
            )?;
            match row.mean.filter(|_| with_mean) {
                Some(m) => writeln!(out, ",{m:.4}")?,
                None => writeln!(out)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `table` written to `dir/f.csv`: the path and the text.
    fn written(table: &ForecastTable, dir: &Path) -> (std::path::PathBuf, String) {
        let mut bytes = Vec::new();
        table.write(&mut bytes).expect("write");
        let path = dir.join("f.csv");
        std::fs::write(&path, &bytes).expect("file");
        (path, String::from_utf8(bytes).expect("utf8"))
    }

    /// The error of reading `text` written to `path`.
    fn refused(path: &Path, text: &str) -> String {
        std::fs::write(path, text).expect("file");
        let err = ForecastTable::read(path).expect_err("refused");
        format!("{err:#}")
    }

    #[test]
    fn round_trip_and_bad_lines() {
        let mut t = ForecastTable::default();
        t.insert("85123A", 15_282, 15_283, [0.5, 1.25, 3.0], None);
        t.insert("A,B", 15_282, 15_282, [0.0, 1.0, 2.0], None);
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, text) = written(&t, dir.path());
        assert!(
            text.contains("85123A,2011-11-04,2011-11-05,0.5000,1.2500,3.0000"),
            "{text}"
        );
        let back = ForecastTable::read(&path).expect("read");
        let q = |sku: &str, day: i64| back.get(sku, 15_282, day).map(|r| r.quantiles);
        assert_eq!(q("85123A", 15_283), Some([0.5, 1.25, 3.0]));
        assert_eq!(q("A,B", 15_282), Some([0.0, 1.0, 2.0]));
        assert_eq!(back.get("85123A", 15_282, 15_289), None);
        let err = refused(
            &path,
            &format!("{HEADER}\nX,2011-11-04,2011-11-05,1,NaN,2\n"),
        );
        assert!(err.contains("line 2"), "{err}");
        let err = refused(&path, "a,b\n");
        assert!(err.contains("header must be"), "{err}");
    }

    #[test]
    fn means_round_trip_in_a_seventh_column() {
        let mut t = ForecastTable::default();
        t.insert("A,B", 15_282, 15_283, [0.0, 1.0, 4.0], Some(1.75));
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, text) = written(&t, dir.path());
        assert!(text.starts_with(HEADER_WITH_MEAN), "{text}");
        assert!(
            text.contains("\"A,B\",2011-11-04,2011-11-05,0.0000,1.0000,4.0000,1.7500"),
            "{text}"
        );
        let back = ForecastTable::read(&path).expect("read");
        let row = back.get("A,B", 15_282, 15_283).expect("row");
        assert_eq!((row.quantiles, row.mean), ([0.0, 1.0, 4.0], Some(1.75)));
        let err = refused(
            &path,
            &format!("{HEADER_WITH_MEAN}\nX,2011-11-04,2011-11-05,1,2,3\n"),
        );
        assert!(err.contains("expected 7 fields"), "{err}");
    }
}
