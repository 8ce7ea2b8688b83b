//! Catalog files: JSONL catalogs, and the catalog derived from the Online Retail log.
//!
//! A catalog file holds one entry per line, the same body a catalog topic carries.
//! For the UCI Online Retail log, which has descriptions but no categories,
//! [`online_retail_catalog`] derives one entry per stock code: the title is the first
//! description seen, and the category is the description's *product type word*: its last word
//! once trailing colours, sizes, patterns and packaging words are dropped, with a plural `S`
//! removed ("WHITE HANGING HEART T-LIGHT HOLDER" → `HOLDER`, "JUMBO BAG RED RETROSPOT" → `BAG`).
//! The word list is fixed below and was not tuned on any evaluation.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

use super::{open_text, DatasetError};
use trendcast_engine::catalog::CatalogEntry;

/// Reads a JSONL catalog (gzipped or not); a later entry for a SKU replaces an earlier one.
/// Malformed lines are counted, not fatal.
pub fn read_jsonl(path: &Path) -> Result<(Vec<CatalogEntry>, u64), DatasetError> {
    let reader = std::io::BufReader::new(open_text(path)?);
    let mut by_sku: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<CatalogEntry> = Vec::new();
    let mut bad = 0u64;
    for line in reader.lines() {
        let line = line.map_err(|source| DatasetError::Open {
            path: path.display().to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<CatalogEntry>(&line) {
            Ok(e) if e.validate(1024).is_ok() => match by_sku.get(&e.sku) {
                Some(&i) => out[i] = e,
                None => {
                    by_sku.insert(e.sku.clone(), out.len());
                    out.push(e);
                }
            },
            _ => bad += 1,
        }
    }
    Ok((out, bad))
}

/// Writes entries as JSONL.
pub fn write_jsonl(entries: &[CatalogEntry], out: &mut impl Write) -> std::io::Result<()> {
    for e in entries {
        serde_json::to_writer(&mut *out, e)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Trailing words that describe a variant, not the kind of product.
const NOT_A_TYPE: &[&str] = &[
    "PINK",
    "RED",
    "BLUE",
    "GREEN",
    "WHITE",
    "BLACK",
    "IVORY",
    "CREAM",
    "GOLD",
    "SILVER",
    "PURPLE",
    "YELLOW",
    "ORANGE",
    "BROWN",
    "GREY",
    "GRAY",
    "CLEAR",
    "NATURAL",
    "SMALL",
    "LARGE",
    "MEDIUM",
    "MINI",
    "JUMBO",
    "BIG",
    "TINY",
    "GIANT",
    "DESIGN",
    "DESIGNS",
    "SET",
    "ASSORTED",
    "RETROSPOT",
    "POLKADOT",
    "POLKA",
    "DOT",
    "DOTS",
    "SPOT",
    "SPOTS",
    "COLOUR",
    "COLOURS",
    "COLOR",
    "COLORS",
    "VINTAGE",
    "FLORAL",
    "STRIPE",
    "STRIPES",
    "WOODLAND",
    "PAISLEY",
    "S/2",
    "S/3",
    "S/4",
    "S/6",
    "OF",
];

/// The product type word of an Online Retail description (see the module docs); "" if none.
pub fn product_type(description: &str) -> String {
    let words: Vec<String> = description
        .split(|c: char| c.is_whitespace() || c == ',' || c == '+' || c == '&')
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '/' && c != '-'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    let Some(word) = words
        .iter()
        .rev()
        .find(|w| !NOT_A_TYPE.contains(&w.as_str()) && w.chars().any(|c| c.is_ascii_alphabetic()))
    else {
        return String::new();
    };
    match word.strip_suffix('S') {
        Some(stem) if stem.len() >= 3 && !word.ends_with("SS") => stem.to_string(),
        _ => word.clone(),
    }
}

/// One catalog entry per stock code of a loaded Online Retail log, sorted by SKU.
pub fn online_retail_catalog(descriptions: &HashMap<String, String>) -> Vec<CatalogEntry> {
    let mut out: Vec<CatalogEntry> = descriptions
        .iter()
        .map(|(sku, d)| CatalogEntry {
            sku: sku.clone(),
            title: d.split_whitespace().collect::<Vec<_>>().join(" "),
            description: String::new(),
            category: product_type(d),
            image_embedding: None,
        })
        .collect();
    out.sort_by(|a, b| a.sku.cmp(&b.sku));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_type_words() {
        assert_eq!(product_type("WHITE HANGING HEART T-LIGHT HOLDER"), "HOLDER");
        assert_eq!(product_type("JUMBO BAG RED RETROSPOT"), "BAG");
        assert_eq!(product_type("HYACINTH BULB T-LIGHT CANDLES"), "CANDLE");
        assert_eq!(product_type("PACK OF 72 RETROSPOT CAKE CASES"), "CASE");
        assert_eq!(product_type("GLASS"), "GLASS");
        assert_eq!(product_type("PINK SMALL"), "");
    }

    #[test]
    fn catalog_files_round_trip() {
        let e = CatalogEntry {
            sku: "A".into(),
            title: "Mug".into(),
            description: "Blue stoneware".into(),
            category: "MUG".into(),
            image_embedding: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let mut f = std::fs::File::create(&path).unwrap();
        write_jsonl(std::slice::from_ref(&e), &mut f).unwrap();
        writeln!(f, "{{not json").unwrap();
        let (back, bad) = read_jsonl(&path).unwrap();
        assert_eq!((back, bad), (vec![e], 1));
    }
}
