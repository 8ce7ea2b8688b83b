//! UCI Online Retail (Chen, Sain & Guo 2012, CC BY 4.0) → sales events.
//!
//! Cleaning rules, applied in this order:
//! 1. Only product lines: `StockCode` starting with five digits (drops POST, DOT, M, C2, D, S,
//!    BANK CHARGES, AMAZONFEE, CRUK, PADS, B, gift vouchers and DCGS lines: 2,995 lines).
//! 2. Stock codes are kept as written (`85123A` and `85123a` stay distinct, as in the source).
//! 3. `InvoiceDate` (minute resolution, the retailer's UK local time) is taken as UTC; the
//!    one-hour British Summer Time shift does not move any line across a daily bucket boundary
//!    before 01:00, and the shop's lines fall between 06:00 and 21:00.
//! 4. Cancellations (`InvoiceNo` starting with "C") keep their negative `Quantity`: they are
//!    returns and subtract from net units. Lines with a zero quantity are dropped.
//! 5. `UnitPrice` is passed through; the engine's validation rejects negative prices (into the
//!    dead-letter topic) rather than the converter hiding them.
//! 6. The first non-empty `Description` seen for a stock code is its display name.
//!
//! Malformed rows (unparseable numbers or dates) are counted and skipped, never fatal.

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDateTime;
use serde::Deserialize;

use super::{for_each_csv_row, DatasetError, SaleRecord};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    invoice_no: String,
    stock_code: String,
    description: String,
    quantity: String,
    invoice_date: String,
    unit_price: String,
}

/// The converted log.
#[derive(Debug, Default)]
pub struct OnlineRetail {
    /// Sales events in file (time) order.
    pub events: Vec<SaleRecord>,
    /// Display name per stock code.
    pub descriptions: HashMap<String, String>,
    /// Lines read.
    pub lines: u64,
    /// Lines dropped by rule 1 (non-product codes).
    pub non_product: u64,
    /// Lines dropped for a zero quantity.
    pub zero_qty: u64,
    /// Rows that could not be parsed.
    pub malformed: u64,
}

/// True for product stock codes (five leading digits).
pub fn is_product_code(code: &str) -> bool {
    code.len() >= 5 && code.as_bytes()[..5].iter().all(u8::is_ascii_digit)
}

/// Reads the CSV (plain or gzipped, by the `.gz` suffix) and applies the cleaning rules.
pub fn load(path: &Path) -> Result<OnlineRetail, DatasetError> {
    let mut out = OnlineRetail::default();
    let lines = for_each_csv_row(path, |row: Option<Row>| {
        let Some(row) = row else {
            out.malformed += 1;
            return;
        };
        if !is_product_code(&row.stock_code) {
            out.non_product += 1;
            return;
        }
        let (Ok(qty), Ok(price), Ok(time)) = (
            row.quantity.trim().parse::<f64>(),
            row.unit_price.trim().parse::<f64>(),
            NaiveDateTime::parse_from_str(row.invoice_date.trim(), "%Y-%m-%d %H:%M:%S"),
        ) else {
            out.malformed += 1;
            return;
        };
        if qty == 0.0 {
            out.zero_qty += 1;
            return;
        }
        let description = row.description.trim();
        if !description.is_empty() && !out.descriptions.contains_key(&row.stock_code) {
            out.descriptions
                .insert(row.stock_code.clone(), description.to_string());
        }
        out.events.push(SaleRecord {
            sku: row.stock_code,
            ts: time.and_utc().timestamp_millis(),
            qty,
            unit_price: Some(price),
            order_id: Some(row.invoice_no),
        });
    })?;
    out.lines = lines;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_codes() {
        assert!(is_product_code("85123A"));
        assert!(is_product_code("71053"));
        assert!(!is_product_code("POST"));
        assert!(!is_product_code("C2"));
        assert!(!is_product_code("gift_0001_20"));
    }

    #[test]
    fn cleans_a_small_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("or.csv");
        std::fs::write(
            &path,
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
             536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n\
             536366,POST,POSTAGE,1,2010-12-01 08:28:00,18.0,,France\n\
             C536379,85123A,,-2,2010-12-01 09:41:00,2.55,14527.0,United Kingdom\n\
             536380,22633,HAND WARMER,0,2010-12-01 09:41:00,1.85,,United Kingdom\n\
             536381,22632,HAND WARMER RED,x,2010-12-01 09:41:00,1.85,,United Kingdom\n",
        )
        .expect("write");
        let or = load(&path).expect("loads");
        assert_eq!(or.lines, 5);
        assert_eq!(or.events.len(), 2);
        assert_eq!(or.non_product, 1);
        assert_eq!(or.zero_qty, 1);
        assert_eq!(or.malformed, 1);
        assert_eq!(or.events[1].qty, -2.0);
        assert_eq!(or.events[0].ts, 1_291_191_960_000);
        assert_eq!(or.descriptions["85123A"], "WHITE HANGING HEART");
    }
}
