//! The API as an OpenAPI 3.1 document, made from the route table ([`super::api::ROUTES`]) and
//! the message schemas of `schemas/` (compiled in), so the document cannot drift from the routes
//! or the messages. OpenAPI 3.1 uses JSON Schema 2020-12, the dialect of `schemas/`, so the
//! schemas go in as components unchanged.

use serde_json::{json, Map, Value};

use super::api::ROUTES;

/// `(component name, schema text)` of every message schema.
const SCHEMAS: &[(&str, &str)] = &[
    (
        "trend_update",
        include_str!("../../schemas/trend_update.schema.json"),
    ),
    (
        "restock_signal",
        include_str!("../../schemas/restock_signal.schema.json"),
    ),
    (
        "new_product_forecast",
        include_str!("../../schemas/new_product_forecast.schema.json"),
    ),
    (
        "hot_products",
        include_str!("../../schemas/hot_products.schema.json"),
    ),
];

/// The document.
pub fn document() -> Value {
    let mut schemas = Map::new();
    for (name, text) in SCHEMAS {
        // a schema that does not parse is a build defect caught by the unit test below
        let schema: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        schemas.insert((*name).to_string(), schema);
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

fn operation(route: &super::api::Route) -> Value {
    let ok = match route.schema {
        Some(name) => json!({
            "description": "the latest message, as published",
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}},
        }),
        None => json!({
            "description": "OK",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }),
    };
    let error = json!({
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}},
    });
    let mut responses = Map::new();
    responses.insert("200".into(), ok);
    for (code, why) in [
        ("400", "the request cannot be answered as asked"),
        ("404", "nothing is known of this SKU"),
        ("501", "this deployment does not publish that output"),
        ("503", "not live or not ready"),
    ] {
        let mut e = error.clone();
        e["description"] = json!(why);
        responses.insert(code.into(), e);
    }
    let mut op = json!({"summary": route.summary, "responses": responses});
    if route.path.contains("{sku}") {
        op["parameters"] = json!([{
            "name": "sku", "in": "path", "required": true, "schema": {"type": "string"}
        }]);
    }
    if route.method == "POST" {
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": {
                "type": "object", "required": ["skus"],
                "properties": {"skus": {"type": "array", "maxItems": super::api::MAX_BATCH, "items": {"type": "string"}}}
            }}}
        });
    }
    op
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
            if let Some(name) = route.schema {
                assert!(
                    doc["components"]["schemas"][name]["properties"].is_object(),
                    "{name} parsed"
                );
            }
        }
        for (name, _) in SCHEMAS {
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }
}
