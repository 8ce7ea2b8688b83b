//! The Confluent wire format: a value framed as magic byte `0`, a 4-byte big-endian schema id
//! (the id a Schema Registry gave the schema), then the body.
//!
//! Why every reader accepts it without being told: producers that use a Schema Registry
//! serializer (Confluent's JSON Schema serializer, Kafka Connect, ksqlDB) frame every value, and
//! a consumer that expected plain JSON would dead-letter all of it. JSON text never starts with
//! a zero byte, so a value that does is framed and one that does not is plain; both are read.
//! The event decoder reads JSON bodies; sales and clicks with an Avro body are first written out
//! as JSON through the registry (`crate::ingest::avro`). Without a registry an Avro body is
//! rejected as not JSON, its schema id in the detail.
//!
//! The engine frames its own outputs only when told to (`[schema_registry] frame_outputs`),
//! because plain JSON is what a consumer without a registry can read.

/// The first byte of a framed value.
pub const MAGIC: u8 = 0;

/// Bytes before the body of a framed value.
pub const FRAME_LEN: usize = 5;

/// Splits a value into its schema id (when it is framed) and its body.
pub fn unframe(value: &[u8]) -> (Option<u32>, &[u8]) {
    match value {
        [MAGIC, a, b, c, d, body @ ..] => (Some(u32::from_be_bytes([*a, *b, *c, *d])), body),
        _ => (None, value),
    }
}

/// The bytes that frame a value written with schema `id`.
pub fn frame(id: u32) -> [u8; FRAME_LEN] {
    let [a, b, c, d] = id.to_be_bytes();
    [MAGIC, a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_value_gives_its_schema_id_and_body() {
        let mut value = frame(258).to_vec();
        value.extend_from_slice(b"{\"sku\":\"A\"}");
        assert_eq!(unframe(&value), (Some(258), &b"{\"sku\":\"A\"}"[..]));
    }

    #[test]
    fn plain_json_and_short_values_are_not_framed() {
        assert_eq!(unframe(b"{}"), (None, &b"{}"[..]));
        assert_eq!(unframe(&[0, 0, 1]), (None, &[0u8, 0, 1][..]));
        assert_eq!(unframe(b""), (None, &b""[..]));
        assert_eq!(unframe(&frame(7)), (Some(7), &b""[..]));
    }
}
