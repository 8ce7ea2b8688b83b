//! Input events: their wire form (JSON, `schemas/*.schema.json`), decoding and validation.
//!
//! Decoding borrows from the message payload; the only allocation on the happy path is for a
//! SKU string that contains JSON escapes. Every failure is a [`Rejection`] with a bounded
//! [`RejectReason`] code (safe as a metric label) and a human-readable detail.

use std::borrow::Cow;
use std::fmt;

use chrono::DateTime;

pub use crate::vocab::{classify, ClickKind, Event, EventBody, RejectReason, Rejection, Source};
use crate::vocab::{wire, EventTime};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Limits every input message is checked against (from `[ingest]`).
#[derive(Debug, Clone)]
pub struct ValidationLimits {
    /// Largest value in bytes.
    pub max_payload_bytes: usize,
    /// Longest SKU in bytes.
    pub max_sku_bytes: usize,
    /// Earliest event time (ms).
    pub min_ts_ms: i64,
    /// Largest lead of an event time over the wall clock (ms).
    pub max_future_ms: i64,
    /// Largest |qty|.
    pub max_abs_qty: f64,
    /// Largest unit price.
    pub max_unit_price: f64,
    /// Reject fields the input schemas do not name (`unknown_field`) instead of skipping them.
    pub strict_schema: bool,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        Self {
            max_payload_bytes: 64 * 1024,
            max_sku_bytes: 128,
            min_ts_ms: 946_684_800_000, // 2000-01-01T00:00:00Z
            max_future_ms: 86_400_000,
            max_abs_qty: 1_000_000.0,
            strict_schema: false,
            max_unit_price: 1_000_000.0,
        }
    }
}

/// Event time as sent: RFC 3339 text or integer epoch milliseconds.
#[derive(Debug)]
enum WireTs<'a> {
    Millis(i64),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for WireTs<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TsVisitor;
        impl<'de> Visitor<'de> for TsVisitor {
            type Value = WireTs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 string or integer epoch milliseconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(WireTs::Millis(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(WireTs::Millis)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(WireTs::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(WireTs::Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_any(TsVisitor)
    }
}

/// A sales event as sent (`schemas/sales_event.schema.json`).
#[derive(Debug)]
struct SaleWire<'a> {
    sku: Cow<'a, str>,
    ts: WireTs<'a>,
    qty: f64,
    unit_price: Option<f64>,
}

/// A click event as sent (`schemas/click_event.schema.json`).
#[derive(Debug)]
struct ClickWire<'a> {
    sku: Cow<'a, str>,
    ts: WireTs<'a>,
    kind: ClickKind,
}

const SALE_FIELDS: &[&str] = &["sku", "ts", "qty", "unit_price", "order_id"];
const CLICK_FIELDS: &[&str] = &["sku", "ts", "kind", "session_id"];

/// A JSON string borrowed from the payload when it has no escapes (an object key or the SKU).
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// Decodes one wire object, counting the fields it does not know, or refusing them when
/// `strict` (the error serde's derive gives, so the reject reason is `unknown_field`).
struct WireSeed<T> {
    strict: bool,
    kind: std::marker::PhantomData<T>,
}

impl<T> WireSeed<T> {
    fn new(strict: bool) -> Self {
        Self {
            strict,
            kind: std::marker::PhantomData,
        }
    }

    /// Skips the value of the unknown field `name`, or refuses it.
    fn unknown<'de, A: de::MapAccess<'de>>(
        &self,
        name: &str,
        fields: &'static [&'static str],
        map: &mut A,
        count: &mut u32,
    ) -> Result<(), A::Error> {
        if self.strict {
            return Err(de::Error::unknown_field(name, fields));
        }
        *count = count.saturating_add(1);
        map.next_value::<de::IgnoredAny>().map(|_| ())
    }
}

/// Sets `slot` from the map's next value, refusing a second one.
fn once<'de, A: de::MapAccess<'de>, V: Deserialize<'de>>(
    slot: &mut Option<V>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

impl<'de> de::DeserializeSeed<'de> for WireSeed<SaleWire<'de>> {
    type Value = (SaleWire<'de>, u32);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_struct("SaleWire", SALE_FIELDS, self)
    }
}

impl<'de> Visitor<'de> for WireSeed<SaleWire<'de>> {
    type Value = (SaleWire<'de>, u32);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sales event object")
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut sku, mut ts, mut qty) = (None::<Text<'de>>, None, None);
        let (mut unit_price, mut order_id) = (None::<Option<f64>>, None::<Option<Text<'de>>>);
        let mut unknown = 0;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match key.as_ref() {
                "sku" => once(&mut sku, "sku", &mut map)?,
                "ts" => once(&mut ts, "ts", &mut map)?,
                "qty" => once(&mut qty, "qty", &mut map)?,
                "unit_price" => once(&mut unit_price, "unit_price", &mut map)?,
                "order_id" => once(&mut order_id, "order_id", &mut map)?,
                other => self.unknown(other, SALE_FIELDS, &mut map, &mut unknown)?,
            }
        }
        let wire = SaleWire {
            sku: sku.ok_or_else(|| de::Error::missing_field("sku"))?.0,
            ts: ts.ok_or_else(|| de::Error::missing_field("ts"))?,
            qty: qty.ok_or_else(|| de::Error::missing_field("qty"))?,
            unit_price: unit_price.flatten(),
        };
        Ok((wire, unknown))
    }
}

impl<'de> de::DeserializeSeed<'de> for WireSeed<ClickWire<'de>> {
    type Value = (ClickWire<'de>, u32);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_struct("ClickWire", CLICK_FIELDS, self)
    }
}

impl<'de> Visitor<'de> for WireSeed<ClickWire<'de>> {
    type Value = (ClickWire<'de>, u32);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a click event object")
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut sku, mut ts, mut kind) = (None::<Text<'de>>, None, None);
        let mut session_id = None::<Option<Text<'de>>>;
        let mut unknown = 0;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match key.as_ref() {
                "sku" => once(&mut sku, "sku", &mut map)?,
                "ts" => once(&mut ts, "ts", &mut map)?,
                "kind" => once(&mut kind, "kind", &mut map)?,
                "session_id" => once(&mut session_id, "session_id", &mut map)?,
                other => self.unknown(other, CLICK_FIELDS, &mut map, &mut unknown)?,
            }
        }
        let wire = ClickWire {
            sku: sku.ok_or_else(|| de::Error::missing_field("sku"))?.0,
            ts: ts.ok_or_else(|| de::Error::missing_field("ts"))?,
            kind: kind.ok_or_else(|| de::Error::missing_field("kind"))?,
        };
        Ok((wire, unknown))
    }
}

/// Decodes `text` with `seed`, refusing trailing characters as `serde_json::from_str` does.
fn from_text<'a, S: de::DeserializeSeed<'a>>(
    text: &'a str,
    seed: S,
) -> Result<S::Value, Rejection> {
    let json_err = |e: serde_json::Error| Rejection::new(classify(&e), e.to_string());
    let mut de = serde_json::Deserializer::from_str(text);
    let value = seed.deserialize(&mut de).map_err(json_err)?;
    de.end().map_err(json_err)?;
    Ok(value)
}

fn parse_ts(ts: &WireTs<'_>) -> Result<i64, Rejection> {
    match ts {
        WireTs::Millis(ms) => Ok(*ms),
        WireTs::Text(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .map_err(|e| {
                Rejection::new(
                    RejectReason::InvalidValue,
                    format!("ts {text:?} is not RFC 3339: {e}"),
                )
            }),
    }
}

/// Decodes and validates one message of `source`.
///
/// `key` is the Kafka message key, which must equal the `sku` field; `now_ms` is the wall clock
/// used for the future-time bound. Fields the schema does not name are skipped, unless
/// `limits.strict_schema` (then the message is rejected as `unknown_field`).
pub fn decode<'a>(
    source: Source,
    key: Option<&[u8]>,
    payload: Option<&'a [u8]>,
    limits: &ValidationLimits,
    now_ms: i64,
) -> Result<Event<'a>, Rejection> {
    decode_counting(source, key, payload, limits, now_ms).map(|(event, _)| event)
}

/// [`decode`], also returning how many fields the schema does not name were skipped (for the
/// `trendcast_input_unknown_fields_total` metric: producers adding fields show there first).
pub fn decode_counting<'a>(
    source: Source,
    key: Option<&[u8]>,
    payload: Option<&'a [u8]>,
    limits: &ValidationLimits,
    now_ms: i64,
) -> Result<(Event<'a>, u32), Rejection> {
    let text = payload_text(payload, limits)?;
    let strict = limits.strict_schema;
    let (sku, ts, body, unknown) = match source {
        Source::Sales => {
            let (w, unknown) = from_text(text, WireSeed::<SaleWire<'a>>::new(strict))?;
            let body = sale_body(&w, limits)?;
            (w.sku, w.ts, body, unknown)
        }
        Source::Clicks => {
            let (w, unknown) = from_text(text, WireSeed::<ClickWire<'a>>::new(strict))?;
            (w.sku, w.ts, EventBody::Click(w.kind), unknown)
        }
    };
    check_sku(&sku, limits)?;
    let ts_ms = parse_ts(&ts)?;
    let latest = now_ms.saturating_add(limits.max_future_ms);
    if ts_ms < limits.min_ts_ms || ts_ms > latest {
        return Err(Rejection::new(
            RejectReason::TimestampOutOfRange,
            format!("ts {ts_ms} ms outside [{}, {latest}]", limits.min_ts_ms),
        ));
    }
    check_key(key, &sku)?;
    let ts = EventTime::from_millis(ts_ms);
    Ok((Event { sku, ts, body }, unknown))
}

/// The message value as text: present, within the size limit, not empty, UTF-8.
fn payload_text<'a>(
    payload: Option<&'a [u8]>,
    limits: &ValidationLimits,
) -> Result<&'a str, Rejection> {
    let payload = payload
        .ok_or_else(|| Rejection::new(RejectReason::EmptyPayload, "message has no value"))?;
    if payload.len() > limits.max_payload_bytes {
        return Err(Rejection::new(
            RejectReason::PayloadTooLarge,
            format!(
                "{} bytes > limit {}",
                payload.len(),
                limits.max_payload_bytes
            ),
        ));
    }
    if payload.is_empty() {
        return Err(Rejection::new(
            RejectReason::EmptyPayload,
            "message value is empty",
        ));
    }
    match wire::unframe(payload) {
        (None, text) => std::str::from_utf8(text).map_err(|e| {
            Rejection::new(
                RejectReason::InvalidUtf8,
                format!("value is not UTF-8: {e}"),
            )
        }),
        (Some(id), body) => std::str::from_utf8(body)
            .ok()
            .filter(|text| text.trim_start().starts_with('{'))
            .ok_or_else(|| {
                Rejection::new(
                    RejectReason::InvalidJson,
                    format!(
                        "value in the Confluent wire format (schema id {id}) whose body is not \
                         a JSON object: only JSON bodies are read (not Avro or Protobuf)"
                    ),
                )
            }),
    }
}

/// A sale's contribution, its quantity and price within the limits.
fn sale_body(w: &SaleWire<'_>, limits: &ValidationLimits) -> Result<EventBody, Rejection> {
    if !w.qty.is_finite() || w.qty.abs() > limits.max_abs_qty {
        return Err(Rejection::new(
            RejectReason::InvalidValue,
            format!("qty {} outside ±{}", w.qty, limits.max_abs_qty),
        ));
    }
    if let Some(p) = w.unit_price {
        if !p.is_finite() || !(0.0..=limits.max_unit_price).contains(&p) {
            return Err(Rejection::new(
                RejectReason::InvalidValue,
                format!("unit_price {p} outside [0, {}]", limits.max_unit_price),
            ));
        }
    }
    Ok(EventBody::Sale {
        qty: w.qty,
        unit_price: w.unit_price,
    })
}

/// The SKU is not blank and within the size limit.
fn check_sku(sku: &str, limits: &ValidationLimits) -> Result<(), Rejection> {
    if sku.trim().is_empty() {
        return Err(Rejection::new(RejectReason::InvalidValue, "sku is empty"));
    }
    if sku.len() > limits.max_sku_bytes {
        return Err(Rejection::new(
            RejectReason::InvalidValue,
            format!(
                "sku is {} bytes > limit {}",
                sku.len(),
                limits.max_sku_bytes
            ),
        ));
    }
    Ok(())
}

/// The message key is the SKU.
fn check_key(key: Option<&[u8]>, sku: &str) -> Result<(), Rejection> {
    match key {
        None | Some([]) => Err(Rejection::new(
            RejectReason::MissingKey,
            "message key (the SKU) is missing",
        )),
        Some(k) if k != sku.as_bytes() => Err(Rejection::new(
            RejectReason::KeyMismatch,
            format!(
                "key {:?} differs from sku {sku:?}",
                String::from_utf8_lossy(k)
            ),
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn sales(key: &str, v: &str) -> Result<Event<'static>, Rejection> {
        let v: &'static [u8] = Box::leak(v.as_bytes().to_vec().into_boxed_slice());
        decode(
            Source::Sales,
            Some(key.as_bytes()),
            Some(v),
            &ValidationLimits::default(),
            NOW,
        )
    }

    fn counted(source: Source, v: &'static str, strict: bool) -> Result<u32, Rejection> {
        let limits = ValidationLimits {
            strict_schema: strict,
            ..ValidationLimits::default()
        };
        decode_counting(source, Some(b"A"), Some(v.as_bytes()), &limits, NOW).map(|(_, n)| n)
    }

    fn framed(id: u32, body: &[u8]) -> &'static [u8] {
        let mut v = crate::vocab::wire::frame(id).to_vec();
        v.extend_from_slice(body);
        Box::leak(v.into_boxed_slice())
    }

    #[test]
    fn a_value_in_the_confluent_wire_format_is_read_as_its_json_body() {
        let body = br#"{"sku":"A","ts":1294221600000,"qty":2}"#;
        let limits = ValidationLimits::default();
        let plain = decode(Source::Sales, Some(b"A"), Some(body), &limits, NOW).unwrap();
        let value = framed(42, body);
        let from_framed = decode(Source::Sales, Some(b"A"), Some(value), &limits, NOW).unwrap();
        assert_eq!(from_framed, plain);
        // an Avro body (binary, here a long and a string) is refused, naming its schema id
        let avro = framed(43, &[0x02, 0x02, b'A']);
        let e = decode(Source::Sales, Some(b"A"), Some(avro), &limits, NOW).unwrap_err();
        assert_eq!(e.reason, RejectReason::InvalidJson);
        assert!(e.detail.contains("schema id 43"), "{}", e.detail);
    }

    #[test]
    fn fields_the_schema_does_not_name_are_skipped_and_counted_unless_strict() {
        let grown = r#"{"sku":"A","store_id":"S1","ts":1294221600000,"qty":2,"promo":{"id":[1,{"x":null}]}}"#;
        assert_eq!(counted(Source::Sales, grown, false), Ok(2));
        let e = counted(Source::Sales, grown, true).unwrap_err();
        assert_eq!(e.reason, RejectReason::UnknownField);
        assert!(e.detail.contains("store_id"), "{}", e.detail);
        let click = r#"{"sku":"A","ts":1294221600000,"kind":"view","device":"ios"}"#;
        assert_eq!(counted(Source::Clicks, click, false), Ok(1));
        assert_eq!(
            counted(Source::Clicks, click, true).unwrap_err().reason,
            RejectReason::UnknownField
        );
        let plain = r#"{"sku":"A","ts":1294221600000,"qty":2,"unit_price":null,"order_id":"o"}"#;
        assert_eq!(counted(Source::Sales, plain, true), Ok(0));
        // what the derived decoder refused, this one refuses the same way
        let twice = r#"{"sku":"A","ts":1294221600000,"qty":2,"qty":3}"#;
        assert!(
            counted(Source::Sales, twice, false).is_err(),
            "duplicate field"
        );
        let trailing = r#"{"sku":"A","ts":1294221600000,"qty":2} x"#;
        assert!(
            counted(Source::Sales, trailing, false).is_err(),
            "trailing characters"
        );
        let positional = r#"["A",1294221600000,2]"#;
        assert_eq!(
            counted(Source::Sales, positional, false)
                .unwrap_err()
                .reason,
            RejectReason::WrongType,
            "an event is an object (serde's derived decoder also took arrays)"
        );
        let escaped = r#"{"s\u006bu":"A","ts":1294221600000,"qty":2}"#;
        assert_eq!(
            counted(Source::Sales, escaped, true),
            Ok(0),
            "an escaped key is a key"
        );
    }

    #[test]
    fn accepts_both_timestamp_forms() {
        let a = sales(
            "A1",
            r#"{"sku":"A1","ts":"2011-01-05T10:00:00Z","qty":3,"unit_price":2.5}"#,
        )
        .expect("valid");
        let b = sales("A1", r#"{"sku":"A1","ts":1294221600000,"qty":3}"#).expect("valid");
        assert_eq!(a.ts, b.ts);
        assert_eq!(
            a.body,
            EventBody::Sale {
                qty: 3.0,
                unit_price: Some(2.5)
            }
        );
    }

    #[test]
    fn rejects_each_kind_of_bad_input() {
        let cases: &[(&str, &str, RejectReason)] = &[
            (
                "A",
                r#"{"sku":"A","ts":1294221600000"#,
                RejectReason::InvalidJson,
            ),
            (
                "A",
                r#"{"sku":"A","ts":1294221600000,"qty":NaN}"#,
                RejectReason::InvalidJson,
            ),
            (
                "A",
                r#"{"sku":"A","ts":1294221600000,"qty":1e400}"#,
                RejectReason::InvalidJson,
            ),
            (
                "A",
                r#"{"sku":"A","ts":1294221600000}"#,
                RejectReason::MissingField,
            ),
            (
                "A",
                r#"{"sku":"A","ts":1294221600000,"qty":"3"}"#,
                RejectReason::WrongType,
            ),
            (
                "A",
                r#"{"sku":"A","ts":1294221600000,"qty":3,"unit_price":-1}"#,
                RejectReason::InvalidValue,
            ),
            (
                "A",
                r#"{"sku":"A","ts":1294221600000,"qty":1e12}"#,
                RejectReason::InvalidValue,
            ),
            (
                "A",
                r#"{"sku":"A","ts":-5,"qty":3}"#,
                RejectReason::TimestampOutOfRange,
            ),
            (
                "A",
                r#"{"sku":"A","ts":4102444800000,"qty":3}"#,
                RejectReason::TimestampOutOfRange,
            ),
            (
                "A",
                r#"{"sku":"A","ts":"yesterday","qty":3}"#,
                RejectReason::InvalidValue,
            ),
            (
                "A",
                r#"{"sku":"","ts":1294221600000,"qty":3}"#,
                RejectReason::InvalidValue,
            ),
            (
                "",
                r#"{"sku":"A","ts":1294221600000,"qty":3}"#,
                RejectReason::MissingKey,
            ),
            (
                "B",
                r#"{"sku":"A","ts":1294221600000,"qty":3}"#,
                RejectReason::KeyMismatch,
            ),
        ];
        for (key, value, want) in cases {
            let got = sales(key, value).expect_err(value);
            assert_eq!(got.reason, *want, "{value}: {got}");
        }
    }

    #[test]
    fn rejects_bytes_and_size() {
        let limits = ValidationLimits::default();
        let bad = [0xff, 0xfe, b'{'];
        let e = decode(Source::Clicks, Some(b"A"), Some(&bad), &limits, NOW).expect_err("utf8");
        assert_eq!(e.reason, RejectReason::InvalidUtf8);
        let big = vec![b' '; limits.max_payload_bytes + 1];
        let e = decode(Source::Clicks, Some(b"A"), Some(&big), &limits, NOW).expect_err("size");
        assert_eq!(e.reason, RejectReason::PayloadTooLarge);
        let e = decode(Source::Clicks, Some(b"A"), None, &limits, NOW).expect_err("none");
        assert_eq!(e.reason, RejectReason::EmptyPayload);
    }

    #[test]
    fn clicks_decode_and_check_kind() {
        let limits = ValidationLimits::default();
        let v =
            br#"{"sku":"A","ts":"2015-06-01T00:00:00Z","kind":"add_to_cart","session_id":"s1"}"#;
        let e = decode(Source::Clicks, Some(b"A"), Some(v), &limits, NOW).expect("valid");
        assert_eq!(e.body, EventBody::Click(ClickKind::AddToCart));
        let v = br#"{"sku":"A","ts":"2015-06-01T00:00:00Z","kind":"purchase"}"#;
        let e = decode(Source::Clicks, Some(b"A"), Some(v), &limits, NOW).expect_err("bad kind");
        assert_eq!(e.reason, RejectReason::InvalidValue);
    }
}
