//! Stats that count every process of a shared backend (Redis): each hub
//! reports its own figures every second, and [`Hub::cluster_stats`] sums
//! what every process reported.

use std::{
    collections::BTreeMap,
    sync::{Arc, Weak},
    time::Duration,
};

use super::{stats::HubStats, Hub, HubInner};
use crate::broker::BackendError;

/// How often a hub on a shared backend reports its figures.
const REPORT_EVERY: Duration = Duration::from_secs(1);

impl Hub {
    /// The hub's stats over every process sharing its backend: this
    /// process's figures now, the others' as they reported them (at most a
    /// second or two old), summed, with [`nodes`](HubStats::nodes) saying how
    /// many processes counted. On a backend of this process alone (the
    /// default), the same as [`stats`](Self::stats).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::{hub::Hub, sse::Event};
    ///
    /// let hub = Hub::new();
    /// hub.publish("news", Event::data("hi")).await?;
    /// let stats = hub.cluster_stats(false).await?;
    /// assert_eq!((stats.published, stats.nodes), (1, None)); // in memory: this process only
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the backend cannot be read.
    pub async fn cluster_stats(&self, per_channel: bool) -> Result<HubStats, BackendError> {
        let backend = self.inner.broker.backend();
        if !backend.shared() {
            return Ok(self.stats(per_channel));
        }
        let own = self.stats(per_channel);
        let reports = backend.stats_reports().await?;
        let mut total = own.clone();
        let mut nodes = 1;
        let mut channels: BTreeMap<String, usize> = own.channels.iter().cloned().collect();
        for report in &reports {
            let Some((node, stats)) = HubStats::from_report(report) else {
                continue;
            };
            if *node == *self.inner.node {
                continue; // counted fresh above
            }
            nodes += 1;
            total.connections += stats.connections;
            total.published += stats.published;
            total.delivered += stats.delivered;
            total.dropped += stats.dropped;
            total.slow_disconnects += stats.slow_disconnects;
            total.resets += stats.resets;
            total.channel_count = total.channel_count.max(stats.channel_count);
            for (name, count) in stats.channels {
                *channels.entry(name).or_default() += count;
            }
        }
        if per_channel {
            total.channel_count = total.channel_count.max(channels.len());
            total.channels = channels.into_iter().collect();
        }
        total.nodes = Some(nodes);
        Ok(total)
    }

    /// Starts reporting this hub's figures to its backend, when the backend
    /// is shared and a runtime runs; stops when the hub is dropped.
    pub(super) fn start_reporting(&self) {
        if !self.inner.broker.backend().shared() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(report(Arc::downgrade(&self.inner)));
        }
    }
}

async fn report(inner: Weak<HubInner>) {
    let mut ticks = tokio::time::interval(REPORT_EVERY);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let hub = Hub { inner };
        let json = hub.stats(true).to_report(&hub.inner.node);
        hub.inner
            .broker
            .backend()
            .report_stats(&hub.inner.node, json);
    }
}

/// A name for this process among the others: random, 64 bits.
pub(super) fn node_name() -> Arc<str> {
    let n = getrandom::u64().unwrap_or_else(|_| u64::from(std::process::id()));
    format!("{n:016x}").into()
}
