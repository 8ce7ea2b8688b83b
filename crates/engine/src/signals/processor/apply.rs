//! The input handlers: how one trend update, inventory snapshot or catalog entry changes the
//! state of its SKU's home partition, and what that makes to publish ([`Outcome`]). The poll
//! loop (`super`) routes, publishes and dead-letters; these only decide.

use super::*;
use crate::vocab::wire;

/// The blended new-product forecast of a SKU still inside its blend period (its text forecast
/// fading into the model's as sales history grows), if it has a catalog text and a first sale.
fn blend_new_product(
    library: &LaunchLibrary,
    blend_days: f64,
    sku: &mut SkuSignals,
    update: &TrendUpdate,
) -> Option<new_product::NewProductForecast> {
    let (Some(text), Some(first), Some(hot)) = (&sku.text, sku.first_as_of_ms, &sku.hot) else {
        return None;
    };
    let history = (hot.as_of_ms - first).div_euclid(DAY_MS) + 1;
    if (history as f64) >= blend_days {
        return None;
    }
    let history = u32::try_from(history).unwrap_or(0);
    let t = library.forecast(
        &update.sku,
        &text.embedding,
        history as usize,
        update.horizon.len(),
    );
    let seq = sku.new_product_seq + 1;
    let blended = new_product::blend(update, hot.as_of_ms, history, blend_days, &t, seq)?;
    sku.new_product_seq = seq;
    Some(blended)
}

impl SignalsState {
    /// Applies one message to the state of its SKU's home partition; `transcoded` is the JSON
    /// its Avro value became, if it was one.
    pub(super) fn apply(
        &mut self,
        input: SignalInput,
        msg: &BorrowedMessage<'_>,
        transcoded: Option<&[u8]>,
    ) -> Result<Outcome, Rejection> {
        let invalid =
            |e: &dyn std::fmt::Display| Rejection::new(RejectReason::InvalidValue, e.to_string());
        match input {
            SignalInput::Updates => {
                let update: TrendUpdate =
                    serde_json::from_slice(transcoded.unwrap_or(body(msg)))
                        .map_err(|e| Rejection::new(classify(&e), e.to_string()))?;
                let Some(home) = self.home(&update.sku) else {
                    return Ok(Outcome::misrouted());
                };
                let restock = self.settings.inventory_topic.is_some();
                let Some(part) = self.parts.get_mut(&home) else {
                    return Ok(Outcome::misrouted());
                };
                let applied = part
                    .on_update(&update, restock.then_some(&self.settings.policy))
                    .map_err(|e| invalid(&e))?;
                let mut out = Outcome {
                    ranking_changed: applied.ranking_changed,
                    restock: applied.signal,
                    changed: Some(update.sku.clone()),
                    ..Outcome::default()
                };
                if applied.stale {
                    return Ok(out);
                }
                if let (Some(library), Some(sku)) = (&self.library, part.skus.get_mut(&update.sku))
                {
                    out.new_product =
                        blend_new_product(library, self.settings.blend_days, sku, &update);
                }
                Ok(out)
            }
            SignalInput::Inventory => {
                let now = chrono::Utc::now().timestamp_millis();
                let range = (
                    self.settings.min_ts_ms,
                    now.saturating_add(self.settings.max_future_ms),
                );
                let (sku, level) = inventory::decode(
                    msg.key(),
                    transcoded.or_else(|| msg.payload().map(|p| wire::unframe(p).1)),
                    self.settings.max_sku_bytes,
                    range,
                )?;
                let Some(part) = self.home(&sku).and_then(|h| self.parts.get_mut(&h)) else {
                    return Ok(Outcome::misrouted());
                };
                let applied = part.on_inventory(&sku, level, &self.settings.policy);
                Ok(Outcome {
                    restock: applied.signal,
                    changed: Some(sku),
                    ..Outcome::default()
                })
            }
            SignalInput::Catalog => self.apply_catalog(msg, transcoded),
        }
    }

    /// Embeds a catalog entry's text (unless the same text is held) and, for a SKU that has not
    /// sold yet, makes its text forecast.
    pub(super) fn apply_catalog(
        &mut self,
        msg: &BorrowedMessage<'_>,
        transcoded: Option<&[u8]>,
    ) -> Result<Outcome, Rejection> {
        let entry: CatalogEntry = serde_json::from_slice(transcoded.unwrap_or_else(|| body(msg)))
            .map_err(|e| Rejection::new(classify(&e), e.to_string()))?;
        entry
            .validate(self.settings.max_sku_bytes)
            .map_err(|e| Rejection::new(RejectReason::InvalidValue, e))?;
        if msg.key() != Some(entry.sku.as_bytes()) {
            return Err(Rejection::new(
                RejectReason::KeyMismatch,
                "key differs from sku",
            ));
        }
        let Some(home) = self.home(&entry.sku) else {
            return Ok(Outcome::misrouted());
        };
        let text = entry.text();
        let hash = state::text_hash(&format!("{text}\u{1f}{}", entry.category));
        let held = self
            .parts
            .get(&home)
            .and_then(|p| p.skus.get(&entry.sku))
            .and_then(|s| s.text.as_ref())
            .is_some_and(|t| t.hash == hash);
        if held {
            self.stats.embeddings_reused.add(1);
            return Ok(Outcome::default());
        }
        let Some(embedder) = self.embedder.as_mut() else {
            return Ok(Outcome::default());
        };
        let embedding = embedder
            .embed(&[text.as_str()])
            .map_err(|e| Rejection::new(RejectReason::InvalidValue, e.to_string()))?
            .pop()
            .unwrap_or_default();
        self.stats.embeddings.add(1);
        let Some(part) = self.parts.get_mut(&home) else {
            return Ok(Outcome::misrouted());
        };
        let as_of = part.newest_as_of_ms;
        let sku = part.skus.entry(entry.sku.clone()).or_default();
        sku.text = Some(state::TextState {
            hash,
            category: entry.category.clone(),
            embedding,
        });
        let mut out = Outcome {
            changed: Some(entry.sku.clone()),
            ..Outcome::default()
        };
        if let (Some(library), None, Some(text)) = (&self.library, &sku.hot, &sku.text) {
            let day = DAY_MS;
            let as_of = as_of
                .unwrap_or_else(|| chrono::Utc::now().timestamp_millis().div_euclid(day) * day);
            let t = library.forecast(&entry.sku, &text.embedding, 0, self.settings.horizon_days);
            sku.new_product_seq += 1;
            out.new_product = Some(new_product::text_only(
                &entry.sku,
                as_of,
                &t,
                sku.new_product_seq,
            ));
        }
        Ok(out)
    }
}

/// A message's value without its Confluent framing, if any (`crate::vocab::wire`); empty when
/// it has none, which the decoders refuse.
fn body<'a>(msg: &'a BorrowedMessage<'_>) -> &'a [u8] {
    wire::unframe(msg.payload().unwrap_or_default()).1
}
