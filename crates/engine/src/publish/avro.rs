//! Avro output values (`[schema_registry] output_format = "avro"`): the JSON the scorer and the
//! signals component write, re-encoded with the output's schema under `schemas/avro/`.
//!
//! Why re-encode the JSON rather than serialise the structs to Avro: every output is built,
//! validated and tested as JSON (its JSON Schema is the contract, `schemas/README.md`), and the
//! Avro forms name the same fields with the same meanings. Encoding the finished JSON keeps one
//! way of building each message; the Avro schema then checks it on the way out, so a field
//! that drifted from `schemas/avro/` is an error here rather than a datum no one can read. The
//! cost, a parse and a schema walk per message, is paid only by Avro outputs.

use apache_avro::types::Value;
use apache_avro::Schema;

/// Why an output value could not be written as Avro.
#[derive(Debug, thiserror::Error)]
pub enum AvroEncodeError {
    /// The output's schema text does not parse (it is compiled in: a build defect).
    #[error("the Avro schema of {name} does not parse")]
    Schema {
        /// The output (`trend_update`, ...).
        name: &'static str,
        /// The parser's error.
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// The value is not JSON.
    #[error("the output value is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// The value does not fit the schema (a field missing or of another type).
    #[error("the output value does not fit its Avro schema")]
    Mismatch(#[source] Box<apache_avro::Error>),
}

/// Parses the Avro schema `text` of output `name`.
pub fn parse(name: &'static str, text: &str) -> Result<Schema, AvroEncodeError> {
    Schema::parse_str(text).map_err(|e| AvroEncodeError::Schema {
        name,
        source: Box::new(e),
    })
}

/// The Avro datum (no frame) of the JSON output value `json`, written with `schema`. A field
/// the JSON leaves out takes the schema's default (null for an optional one); a JSON field the
/// schema does not name is an error only if the schema needs it, so `schemas/avro/` is checked
/// against the JSON Schemas by a test instead.
pub fn encode(schema: &Schema, json: &[u8]) -> Result<Vec<u8>, AvroEncodeError> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(AvroEncodeError::NotJson)?;
    let mismatch = |e| AvroEncodeError::Mismatch(Box::new(e));
    let datum = Value::from(value).resolve(schema).map_err(mismatch)?;
    apache_avro::to_avro_datum(schema, datum).map_err(mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::OUTPUT_SCHEMAS;

    #[test]
    fn every_output_schema_parses() {
        for output in OUTPUT_SCHEMAS {
            parse(output.name, output.avro).expect(output.name);
        }
    }

    #[test]
    fn a_value_missing_a_required_field_is_an_error_not_a_datum() {
        let schema = parse("hot_products", crate::publish::HOT_PRODUCTS.avro).unwrap();
        let e = encode(&schema, br#"{"generated_at": "x", "as_of": "y"}"#).unwrap_err();
        assert!(matches!(e, AvroEncodeError::Mismatch(_)), "{e}");
        let e = encode(&schema, b"not json").unwrap_err();
        assert!(matches!(e, AvroEncodeError::NotJson(_)), "{e}");
    }
}
