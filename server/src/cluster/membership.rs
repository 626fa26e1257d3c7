//! An ingester's membership of its cluster: every `cluster.heartbeat_interval` it writes its
//! heartbeat into the bucket (`cluster/ingesters/<id>.json`) and takes its share of the scrape
//! targets among the ingesters whose heartbeat is fresh (written within three intervals), so
//! each target is scraped by one ingester and its series stay there (server-side deltas of
//! cumulative profiles need the previous scrape). While membership changes (an ingester
//! starts or stops), a target may be scraped twice or skipped for up to three intervals.

use std::sync::Arc;
use std::time::Duration;

use strata_engine::Engine;
use tracing::warn;

use crate::scrape::{ScrapeShard, Scraper};

/// The heartbeat loop of an ingester answering at `address`; runs until aborted.
pub async fn run(
    engine: Engine,
    address: String,
    interval: Duration,
    scraper: Option<Arc<Scraper>>,
) {
    let Some(id) = engine.ingester_id().map(str::to_owned) else {
        return;
    };
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        if let Err(e) = engine.write_heartbeat(&address).await {
            warn!(error = %e, "writing this ingester's heartbeat failed");
            continue;
        }
        let Some(scraper) = &scraper else { continue };
        let beats = match engine.ingester_heartbeats().await {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "reading the ingesters' heartbeats failed");
                continue;
            }
        };
        let fresh_after = strata_engine::now_ns() / 1_000_000 - 3 * interval.as_millis() as i64;
        let live: Vec<&str> = beats
            .iter()
            .filter(|b| b.at_ms as i64 >= fresh_after || b.id == id)
            .map(|b| b.id.as_str())
            .collect();
        let shard = live.iter().position(|i| *i == id).map(|index| ScrapeShard {
            index,
            count: live.len(),
        });
        if let Err(e) = scraper.set_shard(shard) {
            warn!(error = %e, "re-applying the scrape configuration failed");
        }
    }
}
