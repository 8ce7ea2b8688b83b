//! The HTTP routes of the query API, answered from the [`LatestView`].
//!
//! Per-SKU answers are the bytes the engine published, so a client parses them with the same
//! schema as a topic subscriber (`schemas/`). Errors are JSON `{"error": "..."}` with the status
//! that says what went wrong: 404 for a SKU nothing is known of, 400 for a request that cannot be
//! answered as asked, and 404 too for an output this deployment does not publish (the error
//! says which): a 5xx would tell clients and monitors the server failed, and it did not.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::view::{LatestView, Output};
use super::ReaderState;

/// Most SKUs one batch request may ask for.
pub const MAX_BATCH: usize = 1_000;
/// Products in a hot-products answer when no `limit` is given.
pub const DEFAULT_HOT_LIMIT: usize = 20;
/// The most products a hot-products answer may ask for.
pub const MAX_HOT_LIMIT: usize = 1_000;

/// What the routes share.
#[derive(Clone)]
pub struct ApiState {
    /// The global table.
    pub view: LatestView,
    /// The reader feeding it.
    pub reader: Arc<ReaderState>,
    /// Outputs this deployment reads (others answer 404, saying so).
    pub outputs: Vec<Output>,
}

/// One route: method, path, what it answers (also the OpenAPI document's paths).
pub struct Route {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path, with `{sku}` for the SKU.
    pub path: &'static str,
    /// One line on what it answers.
    pub summary: &'static str,
    /// What a successful answer holds.
    pub answer: Answer,
    /// The error statuses it can answer with (a JSON `{"error": ...}` body each).
    pub errors: &'static [u16],
}

/// The body of a route's successful (200) answer, for the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// One published message, valid against this schema of `schemas/` (a component name).
    Published(&'static str),
    /// `{"forecasts": {sku: trend update}, "missing": [sku]}`.
    Batch,
    /// The merged ranking: `{"generated_at", "as_of", "top": [hot product]}`.
    Hot,
    /// `{"ok": true, ...}`.
    Status,
    /// This document.
    Document,
}

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/v1/forecasts/{sku}",
        summary: "The latest trend update of a SKU, exactly as published (404 when none)",
        answer: Answer::Published("trend_update"),
        errors: &[400, 404],
    },
    Route {
        method: "POST",
        path: "/v1/forecasts:batch",
        summary: "The latest trend updates of up to 1,000 SKUs: {\"skus\": [...]} -> {\"forecasts\": {sku: update}, \"missing\": [...]}",
        answer: Answer::Batch,
        errors: &[400, 413],
    },
    Route {
        method: "GET",
        path: "/v1/hot-products",
        summary: "The hot products of every partition's newest ranking, best first; ?category=&limit=",
        answer: Answer::Hot,
        errors: &[400, 404],
    },
    Route {
        method: "GET",
        path: "/v1/restock/{sku}",
        summary: "The latest restock signal of a SKU, with its inventory position",
        answer: Answer::Published("restock_signal"),
        errors: &[400, 404],
    },
    Route {
        method: "GET",
        path: "/v1/new-products/{sku}",
        summary: "The latest new-product forecast of a SKU",
        answer: Answer::Published("new_product_forecast"),
        errors: &[400, 404],
    },
    Route {
        method: "GET",
        path: "/healthz",
        summary: "Liveness: 200 while the view's reader runs",
        answer: Answer::Status,
        errors: &[503],
    },
    Route {
        method: "GET",
        path: "/readyz",
        summary: "Readiness: 200 once the view has read what the topics held at start",
        answer: Answer::Status,
        errors: &[503],
    },
    Route {
        method: "GET",
        path: "/openapi.json",
        summary: "This API as an OpenAPI 3.1 document",
        answer: Answer::Document,
        errors: &[],
    },
];

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/forecasts/{sku}", get(forecast))
        .route("/v1/forecasts:batch", post(forecast_batch))
        .route("/v1/hot-products", get(hot_products))
        .route("/v1/restock/{sku}", get(restock))
        .route("/v1/new-products/{sku}", get(new_product))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .fallback(no_route)
        .with_state(state)
}

/// The latest message of the SKU in the path, or why there is none.
fn lookup(state: &ApiState, output: Output, sku: Result<Path<String>, PathRejection>) -> Response {
    match sku {
        Ok(Path(sku)) => latest(state, output, &sku),
        Err(e) => bad_path(e),
    }
}

/// A SKU path segment axum could not decode (percent-encoded bytes that are not UTF-8).
fn bad_path(e: PathRejection) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        format!("the SKU in the path cannot be read: {}", e.body_text()),
    )
}

/// Any path no route takes, answered in the API's error form.
async fn no_route() -> Response {
    error(StatusCode::NOT_FOUND, "no such path (see /openapi.json)")
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn published(payload: Arc<[u8]>) -> Response {
    // the body shares the held bytes: no copy per answer
    (
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from_owner(payload),
    )
        .into_response()
}

/// The latest message of `sku` on `output`, or why there is none.
fn latest(state: &ApiState, output: Output, sku: &str) -> Response {
    if !state.outputs.contains(&output) {
        return error(
            StatusCode::NOT_FOUND,
            format!("this deployment publishes no {} topic", output.as_str()),
        );
    }
    match state.view.latest(output, sku) {
        Some(payload) => published(payload),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no {} for SKU {sku:?}", output.as_str()),
        ),
    }
}

async fn forecast(
    State(state): State<ApiState>,
    sku: Result<Path<String>, PathRejection>,
) -> Response {
    lookup(&state, Output::Forecasts, sku)
}

async fn restock(
    State(state): State<ApiState>,
    sku: Result<Path<String>, PathRejection>,
) -> Response {
    lookup(&state, Output::Restock, sku)
}

async fn new_product(
    State(state): State<ApiState>,
    sku: Result<Path<String>, PathRejection>,
) -> Response {
    lookup(&state, Output::NewProducts, sku)
}

#[derive(Deserialize)]
struct BatchRequest {
    skus: Vec<String>,
}

async fn forecast_batch(
    State(state): State<ApiState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        // a body over axum's limit (413) or one that could not be read
        Err(e) => return error(e.status(), e.body_text()),
    };
    let request: BatchRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"skus\": [\"...\"]}}: {e}"),
            )
        }
    };
    if request.skus.len() > MAX_BATCH {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "{} SKUs asked for; at most {MAX_BATCH} per request",
                request.skus.len()
            ),
        );
    }
    match batch_body(&state.view, &request.skus) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the answer could not be written: {e}"),
        ),
    }
}

/// `{"forecasts": {sku: update}, "missing": [sku]}`, each update spliced in as the bytes the
/// engine published (they were parsed whole when taken into the view, so they are valid JSON):
/// the same bytes a single lookup answers, and no parse and re-encode per SKU.
fn batch_body(view: &LatestView, skus: &[String]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(64 + skus.len() * 1_024);
    out.extend_from_slice(br#"{"forecasts":{"#);
    let mut missing = Vec::new();
    let mut first = true;
    let mut asked = std::collections::HashSet::new();
    // a SKU asked for twice is answered once (an object's keys are unique)
    for sku in skus.iter().filter(|s| asked.insert(s.as_str())) {
        match view.latest(Output::Forecasts, sku) {
            Some(payload) => {
                if !first {
                    out.push(b',');
                }
                first = false;
                serde_json::to_writer(&mut out, sku)?;
                out.push(b':');
                out.extend_from_slice(&payload);
            }
            None => missing.push(sku),
        }
    }
    out.extend_from_slice(br#"},"missing":"#);
    serde_json::to_writer(&mut out, &missing)?;
    out.push(b'}');
    Ok(out)
}

#[derive(Deserialize)]
struct HotQuery {
    category: Option<String>,
    limit: Option<usize>,
}

async fn hot_products(
    State(state): State<ApiState>,
    query: Result<Query<HotQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("category is text, limit a whole number: {e}"),
            )
        }
    };
    if !state.outputs.contains(&Output::HotProducts) {
        return error(
            StatusCode::NOT_FOUND,
            "this deployment publishes no hot-products topic",
        );
    }
    let limit = q.limit.unwrap_or(DEFAULT_HOT_LIMIT);
    if limit == 0 || limit > MAX_HOT_LIMIT {
        return error(
            StatusCode::BAD_REQUEST,
            format!("limit must be between 1 and {MAX_HOT_LIMIT}"),
        );
    }
    if q.category.is_some() && !state.outputs.contains(&Output::Catalog) {
        return error(
            StatusCode::BAD_REQUEST,
            "a category filter needs the catalog topic (signals.catalog_topic)",
        );
    }
    Json(state.view.hot(q.category.as_deref(), limit)).into_response()
}

async fn healthz(State(state): State<ApiState>) -> Response {
    if state.reader.failed() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the view's reader stopped");
    }
    Json(json!({ "ok": true })).into_response()
}

async fn readyz(State(state): State<ApiState>) -> Response {
    if !state.reader.caught_up() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the view is still reading the output topics",
        );
    }
    Json(json!({ "ok": true, "forecasts": state.view.len(Output::Forecasts) })).into_response()
}

async fn openapi() -> Response {
    Json(super::openapi::document()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_answer_splices_the_published_bytes_once_per_sku() {
        let view = LatestView::default();
        let published = br#"{"sku":"a\"b","seq":3,"horizon":[1.5,2]}"#;
        view.apply(Output::Forecasts, published).expect("apply");
        let skus: Vec<String> = ["a\"b", "x", "a\"b", "x"].map(String::from).to_vec();
        let body = batch_body(&view, &skus).expect("body");
        let answer: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
        let expected: serde_json::Value = serde_json::from_slice(published).expect("published");
        assert_eq!(answer["forecasts"]["a\"b"], expected);
        assert_eq!(answer["forecasts"].as_object().map(|o| o.len()), Some(1));
        assert_eq!(answer["missing"], json!(["x"]));
        let text = String::from_utf8(body).expect("UTF-8");
        assert!(
            text.contains(std::str::from_utf8(published).expect("text")),
            "{text}"
        );
        assert_eq!(text.matches(r#""a\"b":"#).count(), 1, "{text}");
    }
}
