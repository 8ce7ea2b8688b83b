//! Event logs in any supported format → wire events, each checked by the engine's own decoder.
//!
//! Formats: the engine's JSONL (one sales or click event per line, as in `schemas/`), the
//! engine's CSV (header `sku,ts,qty[,unit_price,order_id]` or `sku,ts,kind[,session_id]`, `ts`
//! as epoch milliseconds or RFC 3339), and the two public logs by name (`online-retail`,
//! `retailrocket`). Files may be gzipped (`.gz`). Lines the engine would reject are counted and
//! skipped, never fatal.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::str::FromStr;

use chrono::DateTime;
use serde::Deserialize;

use super::{
    for_each_csv_row, online_retail, open_text, retailrocket, ClickRecord, DatasetError,
    EventRecord, SaleRecord,
};
use trendcast_engine::ingest::{decode, ValidationLimits};
use trendcast_engine::vocab::Source;

/// How to read a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Decide from the file name and first line.
    Auto,
    /// Engine JSONL.
    Jsonl,
    /// Engine CSV.
    Csv,
    /// UCI Online Retail CSV.
    OnlineRetail,
    /// Retailrocket events CSV.
    Retailrocket,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(LogFormat::Auto),
            "jsonl" => Ok(LogFormat::Jsonl),
            "csv" => Ok(LogFormat::Csv),
            "online-retail" => Ok(LogFormat::OnlineRetail),
            "retailrocket" => Ok(LogFormat::Retailrocket),
            other => Err(format!(
                "unknown format {other:?}: use auto, jsonl, csv, online-retail or retailrocket"
            )),
        }
    }
}

/// A loaded log.
#[derive(Debug, Default)]
pub struct EventLog {
    /// Valid events, in file order.
    pub events: Vec<EventRecord>,
    /// Lines or rows read (header excluded).
    pub lines: u64,
    /// Lines skipped: malformed, or rejected by the engine's validation.
    pub skipped: u64,
}

#[derive(Debug, Deserialize)]
struct CsvRow {
    sku: String,
    ts: String,
    #[serde(default)]
    qty: Option<f64>,
    #[serde(default)]
    unit_price: Option<f64>,
    #[serde(default)]
    order_id: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
}

fn parse_ts(text: &str) -> Option<i64> {
    let t = text.trim();
    t.parse::<i64>().ok().or_else(|| {
        DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|d| d.timestamp_millis())
    })
}

/// True when the engine would accept `record` (everything but lateness, which needs a stream).
fn valid(record: &EventRecord) -> bool {
    let (source, payload) = match record {
        EventRecord::Sale(s) => (Source::Sales, serde_json::to_vec(s)),
        EventRecord::Click(c) => (Source::Clicks, serde_json::to_vec(c)),
    };
    let Ok(payload) = payload else { return false };
    let limits = ValidationLimits {
        max_future_ms: i64::MAX / 4,
        ..ValidationLimits::default()
    };
    decode(
        source,
        Some(record.sku().as_bytes()),
        Some(&payload),
        &limits,
        0,
    )
    .is_ok()
}

fn detect(path: &Path) -> Result<LogFormat, DatasetError> {
    let name = path.display().to_string();
    let trimmed = name.trim_end_matches(".gz");
    if trimmed.ends_with(".jsonl") || trimmed.ends_with(".json") || trimmed.ends_with(".ndjson") {
        return Ok(LogFormat::Jsonl);
    }
    let mut first = String::new();
    BufReader::new(open_text(path)?)
        .read_line(&mut first)
        .map_err(|source| DatasetError::Open {
            path: name.clone(),
            source,
        })?;
    let header = first.trim();
    if header.starts_with('{') {
        Ok(LogFormat::Jsonl)
    } else if header.starts_with("InvoiceNo,") {
        Ok(LogFormat::OnlineRetail)
    } else if header.contains("item_idx") && header.contains("event") {
        Ok(LogFormat::Retailrocket)
    } else if header.split(',').any(|c| c == "sku") {
        Ok(LogFormat::Csv)
    } else {
        Err(DatasetError::Format {
            path: name,
            reason: format!("cannot tell the format from the first line {header:?}; pass --format"),
        })
    }
}

/// Loads a log in `format` (or detects it).
pub fn load(path: &Path, format: LogFormat) -> Result<EventLog, DatasetError> {
    let format = match format {
        LogFormat::Auto => detect(path)?,
        f => f,
    };
    match format {
        LogFormat::OnlineRetail => {
            let or = online_retail::load(path)?;
            let mut log = EventLog {
                lines: or.lines,
                skipped: or.non_product + or.zero_qty + or.malformed,
                ..EventLog::default()
            };
            for e in or.events {
                let record = EventRecord::Sale(e);
                if valid(&record) {
                    log.events.push(record);
                } else {
                    log.skipped += 1;
                }
            }
            Ok(log)
        }
        LogFormat::Retailrocket => {
            let rr = retailrocket::load(path)?;
            Ok(EventLog {
                events: rr.events,
                lines: rr.lines,
                skipped: rr.skipped,
            })
        }
        LogFormat::Jsonl => load_jsonl(open_text(path)?),
        LogFormat::Csv => load_csv(path),
        LogFormat::Auto => unreachable_auto(path),
    }
}

fn unreachable_auto(path: &Path) -> Result<EventLog, DatasetError> {
    Err(DatasetError::Format {
        path: path.display().to_string(),
        reason: "format detection failed".into(),
    })
}

fn record_from_value(v: serde_json::Value) -> Option<EventRecord> {
    let obj = v.as_object()?;
    let sku = obj.get("sku")?.as_str()?.to_string();
    let ts = match obj.get("ts")? {
        serde_json::Value::Number(n) => n.as_i64()?,
        serde_json::Value::String(s) => parse_ts(s)?,
        _ => return None,
    };
    let text = |k: &str| obj.get(k).and_then(|v| v.as_str()).map(str::to_string);
    if let Some(kind) = text("kind") {
        Some(EventRecord::Click(ClickRecord {
            sku,
            ts,
            kind,
            session_id: text("session_id"),
        }))
    } else {
        Some(EventRecord::Sale(SaleRecord {
            sku,
            ts,
            qty: obj.get("qty")?.as_f64()?,
            unit_price: obj.get("unit_price").and_then(|v| v.as_f64()),
            order_id: text("order_id"),
        }))
    }
}

fn load_jsonl(reader: Box<dyn Read>) -> Result<EventLog, DatasetError> {
    let mut log = EventLog::default();
    for line in BufReader::new(reader).lines() {
        let line = line.map_err(|source| DatasetError::Open {
            path: "event log".into(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        log.lines += 1;
        match serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(record_from_value)
        {
            Some(r) if valid(&r) => log.events.push(r),
            _ => log.skipped += 1,
        }
    }
    Ok(log)
}

fn load_csv(path: &Path) -> Result<EventLog, DatasetError> {
    let mut log = EventLog::default();
    let lines = for_each_csv_row(path, |row: Option<CsvRow>| {
        let Some(row) = row else {
            log.skipped += 1;
            return;
        };
        let Some(ts) = parse_ts(&row.ts) else {
            log.skipped += 1;
            return;
        };
        let record = match (row.kind, row.qty) {
            (Some(kind), _) => EventRecord::Click(ClickRecord {
                sku: row.sku,
                ts,
                kind,
                session_id: row.session_id.filter(|s| !s.is_empty()),
            }),
            (None, Some(qty)) => EventRecord::Sale(SaleRecord {
                sku: row.sku,
                ts,
                qty,
                unit_price: row.unit_price,
                order_id: row.order_id.filter(|s| !s.is_empty()),
            }),
            (None, None) => {
                log.skipped += 1;
                return;
            }
        };
        if valid(&record) {
            log.events.push(record);
        } else {
            log.skipped += 1;
        }
    })?;
    log.lines = lines;
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_and_csv_give_the_same_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let jsonl = dir.path().join("log.jsonl");
        std::fs::write(
            &jsonl,
            "{\"sku\":\"A\",\"ts\":\"2011-01-05T10:00:00Z\",\"qty\":2,\"unit_price\":1.5}\n\
             {\"sku\":\"A\",\"ts\":1294221600000,\"kind\":\"view\"}\n\
             not json\n\
             {\"sku\":\"A\",\"ts\":1294221600000,\"qty\":2,\"unit_price\":-1}\n",
        )
        .expect("write");
        let csv = dir.path().join("log.csv");
        std::fs::write(
            &csv,
            "sku,ts,qty,unit_price,order_id,kind,session_id\n\
             A,2011-01-05T10:00:00Z,2,1.5,,,\n\
             A,1294221600000,,,,view,\n\
             A,never,2,1.5,,,\n",
        )
        .expect("write");
        let a = load(&jsonl, LogFormat::Auto).expect("jsonl");
        let b = load(&csv, LogFormat::Auto).expect("csv");
        assert_eq!(a.events, b.events);
        assert_eq!(a.events.len(), 2);
        assert_eq!((a.lines, a.skipped), (4, 2));
        assert_eq!((b.lines, b.skipped), (3, 1));
        assert_eq!(a.events[0].ts(), 1_294_221_600_000);
    }
}
