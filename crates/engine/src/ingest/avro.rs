//! Avro input values in the Confluent wire format (sales and clicks here; inventory snapshots and
//! catalog entries in the signals component): the writer's schema is fetched from the registry
//! by the id in the frame (once per id), the datum decoded with it and written out as the JSON
//! the input's decoder reads.
//!
//! Why go through JSON: the decoder, its validation and its rejection reasons stay the one path
//! every input takes (stream, export and evaluate read JSON); an Avro record with the fields of
//! `schemas/sales_event.schema.json` (or the click schema) becomes exactly that JSON, so it is
//! validated and applied like any other event. The cost, a second encoding, is paid only by
//! Avro values.
//!
//! What is not bad input is not rejected: a registry that cannot be reached is an error for the
//! supervisor (ingest stops, nothing past the last checkpoint is committed, a restart reads the
//! value again), never a dead letter. A schema id the registry answers 404 for, a Protobuf
//! schema or a datum that does not decode with its schema is bad input and is dead-lettered.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::publish::{RegistryError, SchemaRegistry};
use crate::vocab::{wire, RejectReason, Rejection};

/// What one schema id turned out to be.
enum Known {
    /// An Avro schema: its datums are transcoded.
    Avro(Box<apache_avro::Schema>),
    /// JSON Schema: the body is JSON already.
    Json,
    /// Not readable (Protobuf, or not an Avro schema): the rejection every value framed with it
    /// gets.
    Unreadable(Rejection),
    /// Not in the registry when asked: rejected, and asked again after [`MISSING_RECHECK`] (a
    /// registry follower may not have caught up with a schema just registered).
    Missing(Rejection, Instant),
}

/// How long an id the registry did not know is rejected without asking again.
const MISSING_RECHECK: Duration = Duration::from_secs(60);

/// Ids remembered at most: the ids come from input bytes, so garbage must not grow the cache
/// without bound (past it, new ids are asked about on every value).
const MAX_KNOWN: usize = 4_096;

/// What a value became: the JSON of an Avro value (`None`: decode the value as it is), or the
/// rejection bad input gets. A registry that cannot be asked is the outer error of
/// [`AvroInputs::transcode`]: not bad input, so the caller stops and reads the value again
/// after a restart.
pub type Transcoded = Result<Option<Vec<u8>>, Rejection>;

/// Schemas seen so far, by id, and the registry to ask for new ones.
pub struct AvroInputs {
    registry: Option<SchemaRegistry>,
    known: HashMap<u32, Known>,
}

impl AvroInputs {
    /// Reads Avro values through `registry`; without one, framed values are read as JSON only.
    pub fn new(registry: Option<SchemaRegistry>) -> Self {
        Self {
            registry,
            known: HashMap::new(),
        }
    }

    /// The JSON of `payload` when it is a framed Avro value; `None` when it is to be decoded as
    /// it is: plain or framed JSON, longer than `max_bytes` (the decoder says so), or no
    /// registry to ask. With a registry every new schema id is looked up once, JSON ones too:
    /// an Avro datum may start with any byte.
    pub fn transcode(
        &mut self,
        payload: Option<&[u8]>,
        max_bytes: usize,
    ) -> Result<Transcoded, RegistryError> {
        self.transcode_with(payload, max_bytes, Nulls::TopLevel)
    }

    /// The JSON of `payload` when it is one of the engine's own outputs framed as Avro
    /// (`[schema_registry] output_format = "avro"`), read back by the query view and the
    /// signals component; `None` when it is JSON. Unlike [`Self::transcode`], a null is left
    /// out only where the Avro field's default is null: the JSON form of a restock signal
    /// carries `"stockout_at": null`, while a horizon step without a mean has no `mean`.
    pub fn transcode_output(
        &mut self,
        payload: Option<&[u8]>,
    ) -> Result<Transcoded, RegistryError> {
        self.transcode_with(payload, usize::MAX, Nulls::Defaulted)
    }

    fn transcode_with(
        &mut self,
        payload: Option<&[u8]>,
        max_bytes: usize,
        nulls: Nulls,
    ) -> Result<Transcoded, RegistryError> {
        let Some((Some(id), body)) = payload.map(wire::unframe) else {
            return Ok(Ok(None));
        };
        let Some(registry) = &self.registry else {
            return Ok(Ok(None));
        };
        if payload.map_or(0, <[u8]>::len) > max_bytes {
            return Ok(Ok(None));
        }
        let stale =
            |k: &Known| matches!(k, Known::Missing(_, at) if at.elapsed() >= MISSING_RECHECK);
        let asked;
        let known = match self.known.get(&id) {
            Some(k) if !stale(k) => k,
            _ => {
                asked = learn(registry, id)?;
                if self.known.len() < MAX_KNOWN || self.known.contains_key(&id) {
                    &*self.known.entry(id).insert_entry(asked).into_mut()
                } else {
                    &asked
                }
            }
        };
        Ok(match known {
            Known::Avro(schema) => datum_json(schema, id, body, nulls).map(Some),
            Known::Unreadable(rejection) | Known::Missing(rejection, _) => Err(rejection.clone()),
            Known::Json => Ok(None),
        })
    }
}

/// Asks the registry what schema `id` is.
fn learn(registry: &SchemaRegistry, id: u32) -> Result<Known, RegistryError> {
    let unreadable =
        |detail: String| Known::Unreadable(Rejection::new(RejectReason::UnknownSchema, detail));
    let held = match registry.schema(id) {
        Ok(held) => held,
        Err(RegistryError::Refused {
            status: 404, body, ..
        }) => {
            let detail = format!("schema id {id} is not in the registry: {body}");
            let rejection = Rejection::new(RejectReason::UnknownSchema, detail);
            return Ok(Known::Missing(rejection, Instant::now()));
        }
        Err(e) => return Err(e),
    };
    Ok(match held.schema_type.as_str() {
        "AVRO" => match apache_avro::Schema::parse_str(&held.schema) {
            Ok(schema) => Known::Avro(Box::new(schema)),
            Err(e) => unreadable(format!("schema id {id} is not a readable Avro schema: {e}")),
        },
        "JSON" => Known::Json,
        other => unreadable(format!(
            "schema id {id} is a {other} schema: only Avro and JSON are read"
        )),
    })
}

/// Which null fields of a decoded record its JSON leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nulls {
    /// Every null field of the top-level record: the input JSON Schemas leave optional fields
    /// out, and a producer's Avro schema may not give them a default.
    TopLevel,
    /// At any depth, the null fields whose default is null, and only those: the engine's own
    /// Avro outputs (`schemas/avro/`) mark so the fields their JSON form leaves out.
    Defaulted,
}

/// The JSON text of the Avro datum `body` written with `schema`.
fn datum_json(
    schema: &apache_avro::Schema,
    id: u32,
    body: &[u8],
    nulls: Nulls,
) -> Result<Vec<u8>, Rejection> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        Rejection::new(
            RejectReason::InvalidAvro,
            format!("{what} with Avro schema id {id}: {e}"),
        )
    };
    let mut reader = body;
    let value = apache_avro::from_avro_datum(schema, &mut reader, None)
        .map_err(|e| invalid("the body does not decode", &e))?;
    if !reader.is_empty() {
        return Err(Rejection::new(
            RejectReason::InvalidAvro,
            format!(
                "{} bytes left after the datum of Avro schema id {id}",
                reader.len()
            ),
        ));
    }
    let mut json = serde_json::Value::try_from(value)
        .map_err(|e| invalid("the datum has no JSON form", &e))?;
    // Avro has no absent field: an optional one is a union with null, written as null. The
    // JSON Schemas these records mirror leave optional fields out instead (a catalog entry's
    // `description` is a string when present), so a null field is dropped.
    match nulls {
        Nulls::TopLevel => {
            if let serde_json::Value::Object(fields) = &mut json {
                fields.retain(|_, v| !v.is_null());
            }
        }
        Nulls::Defaulted => drop_defaulted_nulls(&mut json, schema),
    }
    serde_json::to_vec(&json).map_err(|e| invalid("the datum has no JSON form", &e))
}

/// Leaves out, at any depth of `json` (the JSON of a datum of `schema`), every null record
/// field whose Avro default is null. A named type used a second time (a reference) is not
/// followed: the output schemas define each of theirs once.
fn drop_defaulted_nulls(json: &mut serde_json::Value, schema: &apache_avro::Schema) {
    use apache_avro::Schema;
    use serde_json::Value;
    match (schema, json) {
        (Schema::Record(record), Value::Object(fields)) => {
            for field in &record.fields {
                let Some(value) = fields.get_mut(&field.name) else {
                    continue;
                };
                if value.is_null() && field.default == Some(Value::Null) {
                    fields.remove(&field.name);
                } else {
                    drop_defaulted_nulls(value, &field.schema);
                }
            }
        }
        (Schema::Array(array), Value::Array(items)) => {
            for item in items {
                drop_defaulted_nulls(item, &array.items);
            }
        }
        (Schema::Map(map), Value::Object(values)) => {
            for value in values.values_mut() {
                drop_defaulted_nulls(value, &map.types);
            }
        }
        (Schema::Union(union), json) if !json.is_null() => {
            let mut others = union.variants().iter().filter(|v| **v != Schema::Null);
            if let (Some(only), None) = (others.next(), others.next()) {
                drop_defaulted_nulls(json, only);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value;

    const SALE: &str = r#"{"type": "record", "name": "Sale", "fields": [
        {"name": "sku", "type": "string"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "qty", "type": "double"},
        {"name": "unit_price", "type": ["null", "double"], "default": null}]}"#;

    #[test]
    fn an_avro_sale_becomes_the_json_the_decoder_reads() {
        let schema = apache_avro::Schema::parse_str(SALE).unwrap();
        let record = Value::Record(vec![
            ("sku".into(), Value::String("A".into())),
            ("ts".into(), Value::TimestampMillis(1_294_221_600_000)),
            ("qty".into(), Value::Double(2.0)),
            ("unit_price".into(), Value::Union(0, Box::new(Value::Null))),
        ]);
        let body = apache_avro::to_avro_datum(&schema, record).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&datum_json(&schema, 9, &body, Nulls::TopLevel).unwrap())
                .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"sku": "A", "ts": 1_294_221_600_000_i64, "qty": 2.0}),
            "the null unit price left out, as JSON producers leave it out"
        );
        let e = datum_json(&schema, 9, &body[..body.len() - 3], Nulls::TopLevel).unwrap_err();
        assert_eq!(e.reason, RejectReason::InvalidAvro);
        assert!(e.detail.contains("schema id 9"), "{}", e.detail);
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(
            datum_json(&schema, 9, &longer, Nulls::TopLevel)
                .unwrap_err()
                .reason,
            RejectReason::InvalidAvro
        );
    }

    #[test]
    fn an_avro_catalog_entry_without_a_description_is_a_valid_entry() {
        const ENTRY: &str = r#"{"type": "record", "name": "Entry", "fields": [
            {"name": "sku", "type": "string"},
            {"name": "title", "type": "string"},
            {"name": "description", "type": ["null", "string"], "default": null},
            {"name": "category", "type": ["null", "string"], "default": null}]}"#;
        let schema = apache_avro::Schema::parse_str(ENTRY).unwrap();
        let record = Value::Record(vec![
            ("sku".into(), Value::String("B".into())),
            ("title".into(), Value::String("Blue mug".into())),
            ("description".into(), Value::Union(0, Box::new(Value::Null))),
            (
                "category".into(),
                Value::Union(1, Box::new(Value::String("kitchen".into()))),
            ),
        ]);
        let body = apache_avro::to_avro_datum(&schema, record).unwrap();
        let json = datum_json(&schema, 4, &body, Nulls::TopLevel).unwrap();
        let entry: crate::catalog::CatalogEntry = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            (entry.description.as_str(), entry.category.as_str()),
            ("", "kitchen")
        );
    }

    /// An output written as Avro reads back as its JSON: an optional field left out stays out
    /// (a horizon step without a mean), a required null stays null (a restock signal's
    /// `stockout_at`).
    #[test]
    fn an_avro_output_reads_back_as_the_json_it_was_written_from() {
        use crate::publish::{avro, RESTOCK_SIGNAL, TREND_UPDATE};
        let update = serde_json::json!({
            "sku": "A", "as_of": "2011-01-05T00:00:00Z", "model": "m@1", "seq": 7,
            "horizon": [
                {"start": "2011-01-06T00:00:00Z", "end": "2011-01-07T00:00:00Z",
                 "quantiles": {"0.1": 1.0, "0.5": 2.5, "0.9": 4.0}, "mean": 2.6},
                {"start": "2011-01-07T00:00:00Z", "end": "2011-01-08T00:00:00Z",
                 "quantiles": {"0.5": 3.0}}],
            "trend": {"direction": "rising", "strength": 0.4, "p_up": 0.8}});
        let restock = serde_json::json!({
            "sku": "A", "ts": "2011-01-05T00:00:00Z", "action": "reorder",
            "reason": "crossed_reorder_point", "order_qty": 12.0, "reorder_point": 5.0,
            "order_up_to": 20.0, "inventory_position": 8.0, "on_hand": 8.0, "on_order": 0.0,
            "lead_time_days": 7.0, "service_level": 0.95,
            "lead_time_demand": {"mean": 4.0, "sd": 1.5, "at_service_level": 6.5},
            "stockout_at": null, "forecast_as_of": "2011-01-05T00:00:00Z", "model": "m@1",
            "seq": 3});
        for (output, json) in [(TREND_UPDATE, update), (RESTOCK_SIGNAL, restock)] {
            let schema = avro::parse(output.name, output.avro).unwrap();
            let datum = avro::encode(&schema, json.to_string().as_bytes()).unwrap();
            let back = datum_json(&schema, 1, &datum, Nulls::Defaulted).unwrap();
            let back: serde_json::Value = serde_json::from_slice(&back).unwrap();
            assert_eq!(back, json, "{}", output.name);
        }
    }

    #[test]
    fn plain_and_json_bodies_need_no_registry() {
        let mut inputs = AvroInputs::new(None);
        let limit = usize::MAX;
        assert!(matches!(
            inputs.transcode(Some(b"{\"sku\":1}"), limit),
            Ok(Ok(None))
        ));
        let framed = [&wire::frame(3)[..], b"{}"].concat();
        assert!(matches!(
            inputs.transcode(Some(&framed), limit),
            Ok(Ok(None))
        ));
        assert!(matches!(inputs.transcode(None, limit), Ok(Ok(None))));
    }
}
