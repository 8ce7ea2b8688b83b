//! Retailrocket e-commerce events (buyer subset) → click and sales events.
//!
//! Mapping: `item_idx` becomes SKU `RR-<item_idx>`; `timestamp` (Unix seconds, UTC) becomes `ts`
//! in milliseconds; `view` → click `view`, `addtocart` → click `add_to_cart`, `transaction` →
//! a sales event of one unit with no price (the log has neither quantities nor prices);
//! `user_idx` becomes the click's `session_id`. Rows with an unknown event or bad numbers are
//! counted and skipped.

use std::path::Path;

use serde::Deserialize;

use super::{for_each_csv_row, ClickRecord, DatasetError, EventRecord, SaleRecord};

#[derive(Debug, Deserialize)]
struct Row {
    timestamp: String,
    user_idx: String,
    item_idx: String,
    event: String,
}

/// The converted log.
#[derive(Debug, Default)]
pub struct Retailrocket {
    /// Events in file order.
    pub events: Vec<EventRecord>,
    /// Rows read.
    pub lines: u64,
    /// Rows skipped (unknown event or malformed).
    pub skipped: u64,
}

/// Reads the CSV (plain or gzipped) and converts every row.
pub fn load(path: &Path) -> Result<Retailrocket, DatasetError> {
    let mut out = Retailrocket::default();
    let lines = for_each_csv_row(path, |row: Option<Row>| {
        let Some(row) = row else {
            out.skipped += 1;
            return;
        };
        let Ok(secs) = row.timestamp.trim().parse::<i64>() else {
            out.skipped += 1;
            return;
        };
        let sku = format!("RR-{}", row.item_idx.trim());
        let ts = secs * 1000;
        let click = |kind: &str| {
            EventRecord::Click(ClickRecord {
                sku: sku.clone(),
                ts,
                kind: kind.into(),
                session_id: Some(format!("u{}", row.user_idx.trim())),
            })
        };
        let event = match row.event.trim() {
            "view" => click("view"),
            "addtocart" => click("add_to_cart"),
            "transaction" => EventRecord::Sale(SaleRecord {
                sku: sku.clone(),
                ts,
                qty: 1.0,
                unit_price: None,
                order_id: None,
            }),
            _ => {
                out.skipped += 1;
                return;
            }
        };
        out.events.push(event);
    })?;
    out.lines = lines;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_each_event_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rr.csv");
        std::fs::write(
            &path,
            "timestamp,datetime_utc,user_idx,item_idx,event\n\
             1430623510,2015-05-03 03:25:10,1176,6768,view\n\
             1430623535,2015-05-03 03:25:35,1176,6768,addtocart\n\
             1430623600,2015-05-03 03:26:40,1176,6768,transaction\n\
             1430623700,2015-05-03 03:28:20,1176,6768,refund\n",
        )
        .expect("write");
        let rr = load(&path).expect("loads");
        assert_eq!(rr.lines, 4);
        assert_eq!(rr.skipped, 1);
        assert_eq!(rr.events.len(), 3);
        assert!(
            matches!(&rr.events[1], EventRecord::Click(c) if c.kind == "add_to_cart" && c.sku == "RR-6768")
        );
        assert!(
            matches!(&rr.events[2], EventRecord::Sale(s) if s.qty == 1.0 && s.ts == 1_430_623_600_000)
        );
    }
}
