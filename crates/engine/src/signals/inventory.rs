//! Inventory snapshots from the inventory topic (`schemas/inventory_snapshot.schema.json`).
//!
//! A snapshot replaces what is known of a SKU's stock (it is a level, not a delta), so
//! duplicated or replayed snapshots are harmless. A malformed one is dead-lettered with the same
//! reason codes as sales and clicks and changes nothing else.

use serde::{Deserialize, Serialize};

use crate::vocab::{classify, RejectReason, Rejection};

/// Longest accepted lead time, days.
pub const MAX_LEAD_TIME_DAYS: f64 = 365.0;
/// Largest accepted stock quantity (on hand or on order), units.
pub const MAX_UNITS: f64 = 1e12;

/// A SKU's stock as of `ts_ms`, with optional per-SKU policy overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryLevel {
    /// Snapshot time, epoch ms.
    pub ts_ms: i64,
    /// Units on hand (negative = backorders).
    pub on_hand: f64,
    /// Units ordered and not yet received.
    pub on_order: f64,
    /// Replenishment lead time for this SKU, overriding the configured default.
    pub lead_time_days: Option<f64>,
    /// Cycle service level for this SKU, overriding the configured default.
    pub service_level: Option<f64>,
}

impl InventoryLevel {
    /// Stock position: on hand plus on order.
    pub fn position(&self) -> f64 {
        self.on_hand + self.on_order
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    sku: String,
    ts: serde_json::Value,
    on_hand: f64,
    #[serde(default)]
    on_order: Option<f64>,
    #[serde(default)]
    lead_time_days: Option<f64>,
    #[serde(default)]
    service_level: Option<f64>,
}

fn reject(reason: RejectReason, detail: impl Into<String>) -> Rejection {
    Rejection::new(reason, detail)
}

fn parse_ts(ts: &serde_json::Value) -> Result<i64, Rejection> {
    match ts {
        serde_json::Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| reject(RejectReason::WrongType, "ts: not an integer of epoch ms")),
        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|e| reject(RejectReason::InvalidValue, format!("ts: {e}"))),
        _ => Err(reject(
            RejectReason::WrongType,
            "ts: expected RFC 3339 text or integer epoch ms",
        )),
    }
}

/// Decodes one inventory message: `key` must equal the `sku` field; `max_sku_bytes` and
/// `[min_ts_ms, max_ts_ms]` bound the SKU and the snapshot time.
pub fn decode(
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    max_sku_bytes: usize,
    ts_range: (i64, i64),
) -> Result<(String, InventoryLevel), Rejection> {
    let payload = payload
        .filter(|p| !p.is_empty())
        .ok_or_else(|| reject(RejectReason::EmptyPayload, "no value"))?;
    let wire: Wire =
        serde_json::from_slice(payload).map_err(|e| reject(classify(&e), e.to_string()))?;
    if wire.sku.trim().is_empty() || wire.sku.len() > max_sku_bytes {
        return Err(reject(
            RejectReason::InvalidValue,
            format!("sku: must be 1..={max_sku_bytes} bytes and not blank"),
        ));
    }
    match key {
        None | Some([]) => return Err(reject(RejectReason::MissingKey, "no message key")),
        Some(k) if k != wire.sku.as_bytes() => {
            return Err(reject(RejectReason::KeyMismatch, "key differs from sku"))
        }
        Some(_) => {}
    }
    let ts_ms = parse_ts(&wire.ts)?;
    if ts_ms < ts_range.0 || ts_ms > ts_range.1 {
        return Err(reject(
            RejectReason::TimestampOutOfRange,
            format!("ts {ts_ms} outside the accepted range"),
        ));
    }
    let units = |name: &str, v: f64, min: f64| {
        if v.is_finite() && v >= min && v.abs() <= MAX_UNITS {
            Ok(v)
        } else {
            Err(reject(
                RejectReason::InvalidValue,
                format!("{name}: {v} is not a finite number in [{min}, {MAX_UNITS}]"),
            ))
        }
    };
    let on_hand = units("on_hand", wire.on_hand, -MAX_UNITS)?;
    let on_order = units("on_order", wire.on_order.unwrap_or(0.0), 0.0)?;
    if let Some(l) = wire.lead_time_days {
        if !(l.is_finite() && l > 0.0 && l <= MAX_LEAD_TIME_DAYS) {
            return Err(reject(
                RejectReason::InvalidValue,
                format!("lead_time_days: {l} is not in (0, {MAX_LEAD_TIME_DAYS}]"),
            ));
        }
    }
    if let Some(s) = wire.service_level {
        if !(s.is_finite() && (0.5..1.0).contains(&s)) {
            return Err(reject(
                RejectReason::InvalidValue,
                format!("service_level: {s} is not in [0.5, 1)"),
            ));
        }
    }
    Ok((
        wire.sku,
        InventoryLevel {
            ts_ms,
            on_hand,
            on_order,
            lead_time_days: wire.lead_time_days,
            service_level: wire.service_level,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANGE: (i64, i64) = (946_684_800_000, 4_102_444_800_000);

    fn d(key: &str, v: &str) -> Result<(String, InventoryLevel), Rejection> {
        decode(Some(key.as_bytes()), Some(v.as_bytes()), 128, RANGE)
    }

    #[test]
    fn a_full_snapshot_decodes() {
        let (sku, inv) = d(
            "A",
            r#"{"sku":"A","ts":"2011-12-01T10:00:00Z","on_hand":12,"on_order":5,"lead_time_days":3.5,"service_level":0.9}"#,
        )
        .unwrap();
        assert_eq!(sku, "A");
        assert_eq!(inv.ts_ms, 1_322_733_600_000);
        assert_eq!(inv.position(), 17.0);
        assert_eq!(inv.lead_time_days, Some(3.5));
        let (_, inv) = d("A", r#"{"sku":"A","ts":1322733600000,"on_hand":-2}"#).unwrap();
        assert_eq!((inv.on_order, inv.service_level), (0.0, None));
    }

    #[test]
    fn bad_snapshots_get_their_reason() {
        let reason = |k: &str, v: &str| d(k, v).unwrap_err().reason;
        assert_eq!(reason("A", "{"), RejectReason::InvalidJson);
        assert_eq!(
            reason("A", r#"{"sku":"A","ts":1322733600000}"#),
            RejectReason::MissingField
        );
        assert_eq!(
            reason("A", r#"{"sku":"A","ts":1322733600000,"on_hand":1,"x":1}"#),
            RejectReason::UnknownField
        );
        assert_eq!(
            reason("A", r#"{"sku":"A","ts":1322733600000,"on_hand":"1"}"#),
            RejectReason::WrongType
        );
        assert_eq!(
            reason("B", r#"{"sku":"A","ts":1322733600000,"on_hand":1}"#),
            RejectReason::KeyMismatch
        );
        assert_eq!(
            reason("A", r#"{"sku":"A","ts":5,"on_hand":1}"#),
            RejectReason::TimestampOutOfRange
        );
        assert_eq!(
            reason(
                "A",
                r#"{"sku":"A","ts":1322733600000,"on_hand":1,"on_order":-1}"#
            ),
            RejectReason::InvalidValue
        );
        assert_eq!(
            reason(
                "A",
                r#"{"sku":"A","ts":1322733600000,"on_hand":1,"service_level":1.0}"#
            ),
            RejectReason::InvalidValue
        );
        assert_eq!(
            reason(
                "A",
                r#"{"sku":"A","ts":1322733600000,"on_hand":1,"lead_time_days":0}"#
            ),
            RejectReason::InvalidValue
        );
        assert_eq!(
            decode(None, Some(br#"{"sku":"A","ts":1,"on_hand":1}"#), 128, RANGE)
                .unwrap_err()
                .reason,
            RejectReason::MissingKey
        );
        assert_eq!(
            decode(Some(b"A"), None, 128, RANGE).unwrap_err().reason,
            RejectReason::EmptyPayload
        );
    }
}
