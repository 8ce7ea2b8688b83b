//! Keeping the component's state: restoring a partition when it is assigned, remembering which
//! SKUs changed, and checkpoints (producer flushed, state table written, offsets committed;
//! see `crate::signals::table`).

use super::*;

impl SignalsState {
    pub(super) fn load(&mut self, partition: u16) {
        match self.restore(partition) {
            Ok(state) => {
                self.parts.insert(partition, state);
            }
            Err(e) => {
                tracing::error!(partition, error = %e, "signal state could not be restored");
                self.failed = Some(e);
            }
        }
        self.ranking_changed = true;
    }

    pub(super) fn restore(&mut self, partition: u16) -> Result<PartitionSignals, SignalsError> {
        let (state, from) = self.table.restore(partition, RESTORE_TIMEOUT)?;
        tracing::info!(partition, from = %from, skus = state.skus.len(), next = ?state.next, "signal state restored");
        Ok(state)
    }

    /// Remembers that `sku`'s state changed, for the next checkpoint.
    pub(super) fn mark_changed(&mut self, sku: Option<String>) {
        let Some(sku) = sku else {
            return;
        };
        if let Some(home) = self.home(&sku) {
            self.table.mark(home, sku);
        }
    }

    /// Flushes the producer, writes `partitions` (all owned when empty) to the state table, and
    /// commits their offsets. Without a state folder or a changelog nothing is saved or
    /// committed.
    pub(super) fn checkpoint(
        &mut self,
        partitions: &[u16],
        consumer: &BaseConsumer<SignalsContext>,
        patience: Duration,
    ) {
        if !self.table.enabled() {
            return;
        }
        if let Err(e) = self.publisher.flush(patience) {
            tracing::warn!(error = %e, "signals checkpoint skipped: the broker did not acknowledge in time");
            return;
        }
        let chosen: Vec<u16> = if partitions.is_empty() {
            self.parts.keys().copied().collect()
        } else {
            partitions
                .iter()
                .copied()
                .filter(|p| self.parts.contains_key(p))
                .collect()
        };
        let states: Vec<(u16, &PartitionSignals)> = chosen
            .iter()
            .filter_map(|p| Some((*p, self.parts.get(p)?)))
            .collect();
        let saved = self.table.save(&self.publisher, &states, patience);
        let mut tpl = TopicPartitionList::new();
        for p in saved {
            self.add_offsets(&mut tpl, p);
        }
        if tpl.count() > 0 {
            if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                tracing::warn!(error = %e, "signal offsets not committed (next checkpoint retries)");
            }
        }
    }

    /// Adds partition `p`'s next input offsets to `tpl`, for the commit.
    pub(super) fn add_offsets(&self, tpl: &mut TopicPartitionList, p: u16) {
        let Some(part) = self.parts.get(&p) else {
            return;
        };
        // in `SignalInput` order, the order of `part.next`
        let topics = [
            Some(&self.settings.updates_topic),
            self.settings.inventory_topic.as_ref(),
            self.settings.catalog_topic.as_ref(),
        ];
        for (topic, next) in topics.into_iter().zip(part.next) {
            if let (Some(topic), true) = (topic, next >= 0) {
                if let Err(e) = tpl.add_partition_offset(topic, i32::from(p), Offset::Offset(next))
                {
                    tracing::warn!(error = %e, "signal offset not committed");
                }
            }
        }
    }
}
