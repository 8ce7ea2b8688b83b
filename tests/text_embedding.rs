//! The engine's product-text embeddings equal the Python reference: sentence-transformers'
//! all-MiniLM-L6-v2 (torch) on the texts in `training/tests/fixtures/minilm_reference.json`.
//! Token ids must match exactly, embeddings to cosine ≥ 0.999.

mod common;

use std::path::PathBuf;

use trendcast::catalog::{cosine, embedding_text, TextEmbedder};

fn model_dir() -> PathBuf {
    std::env::var_os("TRENDCAST_TEXT_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "TRENDCAST_TEXT_MODEL_DIR is not set: run the tests with scripts/test.sh (its \
                 ensure_text_model converts all-MiniLM-L6-v2 to ONNX)"
            )
        })
}

#[test]
fn embeddings_match_sentence_transformers() {
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            common::root().join("training/tests/fixtures/minilm_reference.json"),
        )
        .expect("fixture"),
    )
    .expect("fixture JSON");
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 10);
    let lib = common::ort_library();
    let mut embedder = TextEmbedder::load(&model_dir(), Some(&lib), 1).expect("text model loads");
    let texts: Vec<&str> = cases.iter().filter_map(|c| c["text"].as_str()).collect();
    assert_eq!(texts.len(), cases.len());
    for (text, case) in texts.iter().zip(cases) {
        let want: Vec<i64> = case["input_ids"]
            .as_array()
            .expect("ids")
            .iter()
            .filter_map(|v| v.as_i64())
            .collect();
        assert_eq!(embedder.tokenize(text).expect("tokenize"), want, "{text:?}");
    }
    // all at once: batches mix lengths, so padding and masks are exercised
    let got = embedder.embed(&texts).expect("embed");
    let mut worst = 1.0f32;
    for ((text, case), emb) in texts.iter().zip(cases).zip(&got) {
        let want: Vec<f32> = case["embedding"]
            .as_array()
            .expect("embedding")
            .iter()
            .filter_map(|v| v.as_f64().map(|x| x as f32))
            .collect();
        assert_eq!(emb.len(), want.len());
        let c = cosine(emb, &want);
        worst = worst.min(c);
        assert!(c >= 0.999, "cosine {c} for {text:?}");
    }
    println!("lowest cosine to sentence-transformers: {worst:.7}");
    // one text alone embeds the same as inside a batch
    let alone = embedder.embed(&texts[..1]).expect("embed one");
    assert!(cosine(&alone[0], &got[0]) > 0.99999);
    // similar products are closer than unrelated ones
    let e = embedder
        .embed(&[
            &embedding_text("Ceramic mug", "Blue stoneware coffee mug"),
            "RED RETROSPOT CERAMIC MUG",
            "JUMBO BAG PINK POLKADOT",
        ])
        .expect("embed");
    assert!(cosine(&e[0], &e[1]) > cosine(&e[0], &e[2]) + 0.1);
}
