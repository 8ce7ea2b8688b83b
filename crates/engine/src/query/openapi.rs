//! The API as an OpenAPI 3.1 document, made from the route table ([`super::api::ROUTES`]) and
//! the message schemas of `schemas/` (compiled in), so the document cannot drift from the routes
//! or the messages. OpenAPI 3.1 uses JSON Schema 2020-12, the dialect of `schemas/`, so the
//! schemas go in as components unchanged.

use serde_json::{json, Map, Value};

use crate::publish::OUTPUT_SCHEMAS;

use super::api::{Answer, Route, DEFAULT_HOT_LIMIT, MAX_BATCH, MAX_HOT_LIMIT, ROUTES};

/// The document.
pub fn document() -> Value {
    let mut schemas = Map::new();
    for output in OUTPUT_SCHEMAS {
        // a schema that does not parse is a build defect caught by the unit test below
        let schema: Value = serde_json::from_str(output.text).unwrap_or(Value::Null);
        schemas.insert(output.name.to_string(), schema);
    }
    schemas.insert(
        "error".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}),
    );
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        entry[route.method.to_ascii_lowercase()] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "trendcast query API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Latest forecasts, restock signals, new-product forecasts and hot products, answered from a global view of the output topics (docs/ARCHITECTURE.md).",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

fn operation(route: &Route) -> Value {
    let ok = json!({
        "description": "OK",
        "content": {"application/json": {"schema": answer_schema(route.answer)}},
    });
    let mut responses = Map::new();
    responses.insert("200".into(), ok);
    for code in route.errors {
        responses.insert(
            code.to_string(),
            json!({
                "description": error_meaning(*code),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}},
            }),
        );
    }
    let mut op = json!({"summary": route.summary, "responses": responses});
    if route.path.contains("{sku}") {
        op["parameters"] = json!([{
            "name": "sku", "in": "path", "required": true, "schema": {"type": "string"}
        }]);
    }
    if route.answer == Answer::Hot {
        op["parameters"] = json!([
            {"name": "category", "in": "query", "required": false, "schema": {"type": "string"},
             "description": "only products of this catalog category (needs the catalog topic)"},
            {"name": "limit", "in": "query", "required": false,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_HOT_LIMIT, "default": DEFAULT_HOT_LIMIT}},
        ]);
    }
    if route.method == "POST" {
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": {
                "type": "object", "required": ["skus"],
                "properties": {"skus": {"type": "array", "maxItems": MAX_BATCH, "items": {"type": "string"}}}
            }}}
        });
    }
    op
}

/// The schema of a successful answer's body.
fn answer_schema(answer: Answer) -> Value {
    match answer {
        Answer::Published(name) => json!({"$ref": format!("#/components/schemas/{name}")}),
        Answer::Batch => json!({
            "type": "object",
            "required": ["forecasts", "missing"],
            "additionalProperties": false,
            "properties": {
                "forecasts": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/trend_update"}},
                "missing": {"type": "array", "items": {"type": "string"}},
            },
        }),
        Answer::Hot => json!({
            "type": "object",
            "required": ["generated_at", "as_of", "top"],
            "additionalProperties": false,
            "properties": {
                "generated_at": {"type": ["string", "null"], "format": "date-time"},
                "as_of": {"type": ["string", "null"], "format": "date-time"},
                "top": {"$ref": "#/components/schemas/hot_products/properties/top"},
            },
        }),
        Answer::Status => json!({
            "type": "object",
            "required": ["ok"],
            "properties": {"ok": {"const": true}, "forecasts": {"type": "integer", "minimum": 0}},
        }),
        Answer::Document => json!({"type": "object", "required": ["openapi", "paths"]}),
    }
}

fn error_meaning(code: u16) -> &'static str {
    match code {
        400 => "the request cannot be answered as asked",
        404 => "nothing is known of this SKU, or this deployment does not publish that output (the error says which)",
        413 => "the request body is larger than the API reads",
        503 => "not live or not ready",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_and_schema_is_in_the_document() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            assert!(op.is_object(), "{} {}", route.method, route.path);
            if let Answer::Published(name) = route.answer {
                assert!(
                    doc["components"]["schemas"][name]["properties"].is_object(),
                    "{name} parsed"
                );
            }
        }
        for output in OUTPUT_SCHEMAS {
            let name = output.name;
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }
}
