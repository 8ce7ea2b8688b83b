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
            Known::Avro(schema) => datum_json(schema, id, body).map(Some),
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

/// The JSON text of the Avro datum `body` written with `schema`.
fn datum_json(schema: &apache_avro::Schema, id: u32, body: &[u8]) -> Result<Vec<u8>, Rejection> {
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
    if let serde_json::Value::Object(fields) = &mut json {
        fields.retain(|_, v| !v.is_null());
    }
    serde_json::to_vec(&json).map_err(|e| invalid("the datum has no JSON form", &e))
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
            serde_json::from_slice(&datum_json(&schema, 9, &body).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"sku": "A", "ts": 1_294_221_600_000_i64, "qty": 2.0}),
            "the null unit price left out, as JSON producers leave it out"
        );
        let e = datum_json(&schema, 9, &body[..body.len() - 3]).unwrap_err();
        assert_eq!(e.reason, RejectReason::InvalidAvro);
        assert!(e.detail.contains("schema id 9"), "{}", e.detail);
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(
            datum_json(&schema, 9, &longer).unwrap_err().reason,
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
        let json = datum_json(&schema, 4, &body).unwrap();
        let entry: crate::catalog::CatalogEntry = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            (entry.description.as_str(), entry.category.as_str()),
            ("", "kitchen")
        );
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
