//! Where a merge's leaf runs: one task per live querier that owns some of its parts, the owner
//! of a part being the rendezvous (highest random weight) choice among the queriers for the
//! part's block id. A querier joining or leaving moves only its share of the blocks.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result as DfResult;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use datafusion_distributed::{
    DesiredTaskCountEvent, DesiredTaskCountEventResponse, DistributedGetterExt,
    DistributedLeafExec, RouteTasksEvent, RouteTasksEventResponse, ScaleUpLeafNodeEvent,
    ScaleUpLeafNodeEventResponse,
};
use url::Url;

use crate::table::StackSumsExec;

/// FNV-1a over the pieces, finished with murmur3's mixer (FNV alone barely mixes the high
/// bits, and rendezvous compares whole values). The same in every process and version.
fn weight(url: &str, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.bytes().chain([0xff]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The planning querier's own URL (a session extension): the ingesters' heads are read there,
/// under its own `cluster.partial_answers` policy and counted in its own partial marks.
#[derive(Debug)]
pub(crate) struct Coordinator(pub Url);

/// The owner of `key` among `urls`.
fn owner<'a>(key: &str, urls: &'a [Url]) -> Option<&'a Url> {
    urls.iter().max_by_key(|u| weight(u.as_str(), key))
}

fn live_urls(config: &SessionConfig) -> DfResult<Vec<Url>> {
    let mut urls = config.get_distributed_worker_resolver()?.get_urls()?;
    urls.sort();
    urls.dedup();
    Ok(urls)
}

/// The leaf's parts (their indexes) grouped by owner; parts only this process can read go to
/// no one (the leaf is then not distributed).
fn by_owner(
    leaf: &StackSumsExec,
    urls: &[Url],
    config: &SessionConfig,
) -> Option<BTreeMap<Url, Vec<usize>>> {
    let coordinator = config
        .get_extension::<Coordinator>()
        .map(|c| c.0.clone())
        .filter(|u| urls.contains(u));
    let mut groups: BTreeMap<Url, Vec<usize>> = BTreeMap::new();
    for (i, p) in leaf.parts().iter().enumerate() {
        let owner = match (p.is_remote_heads(), &coordinator) {
            (true, Some(c)) => c.clone(),
            _ => owner(p.route_key()?, urls)?.clone(),
        };
        groups.entry(owner).or_default().push(i);
    }
    Some(groups)
}

/// One task per owner.
pub(super) fn desired_task_count(
    ev: DesiredTaskCountEvent,
) -> Option<DfResult<DesiredTaskCountEventResponse>> {
    let leaf = ev.plan.downcast_ref::<StackSumsExec>()?;
    let urls = match live_urls(ev.session_config) {
        Ok(u) => u,
        Err(e) => return Some(Err(e)),
    };
    let owners = by_owner(leaf, &urls, ev.session_config).map_or(1, |g| g.len().max(1));
    Some(Ok(DesiredTaskCountEventResponse::desired(owners)))
}

/// Splits the leaf into one variant per task: each owner's parts (or, when the task count is
/// not the owner count, parts spread over the tasks by the same hashing).
pub(super) fn scale_up(ev: ScaleUpLeafNodeEvent) -> Option<DfResult<ScaleUpLeafNodeEventResponse>> {
    let leaf = ev.plan.downcast_ref::<StackSumsExec>()?;
    if ev.task_count <= 1 {
        return None;
    }
    Some((|| {
        let urls = live_urls(ev.session_config)?;
        let groups: Vec<(Option<Url>, Vec<usize>)> = match by_owner(leaf, &urls, ev.session_config)
        {
            Some(g) if g.len() == ev.task_count => {
                g.into_iter().map(|(u, p)| (Some(u), p)).collect()
            }
            _ => {
                let slots: Vec<Url> = (0..ev.task_count)
                    .map(|i| Url::parse(&format!("slot://{i}")).expect("a valid URL"))
                    .collect();
                let mut g = vec![Vec::new(); ev.task_count];
                for (i, p) in leaf.parts().iter().enumerate() {
                    let key = p.route_key().unwrap_or("");
                    let slot = owner(key, &slots).and_then(|s| slots.iter().position(|x| x == s));
                    g[slot.unwrap_or(0)].push(i);
                }
                g.into_iter().map(|p| (None, p)).collect()
            }
        };
        let widest = groups.iter().map(|(_, p)| p.len()).max().unwrap_or(1);
        let n = widest.clamp(1, ev.session_config.target_partitions().max(1));
        let variants = groups
            .into_iter()
            .map(|(url, indexes)| {
                let parts = indexes.iter().map(|&i| leaf.parts()[i].clone()).collect();
                let mut v = StackSumsExec::from_parts(parts, leaf.projection().clone(), n)?;
                v.preferred_url = url;
                Ok(Arc::new(v) as Arc<dyn ExecutionPlan>)
            })
            .collect::<DfResult<Vec<_>>>()?;
        let split = DistributedLeafExec::try_new(Arc::clone(ev.plan), variants)?;
        Ok(ScaleUpLeafNodeEventResponse::new(Arc::new(split)))
    })())
}

/// Sends each task of the leaf's stage to the querier it was planned for, while it is live.
pub(super) fn route_tasks(ev: RouteTasksEvent) -> Option<DfResult<RouteTasksEventResponse>> {
    let mut variants: Option<Vec<Arc<dyn ExecutionPlan>>> = None;
    ev.plan
        .apply(|node| {
            if let Some(split) = node.downcast_ref::<DistributedLeafExec>()
                && split.original().downcast_ref::<StackSumsExec>().is_some()
            {
                variants = Some(split.variants().to_vec());
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .ok()?;
    let variants = variants?;
    Some((|| {
        let urls = live_urls(ev.task_ctx.session_config())?;
        if urls.is_empty() {
            return datafusion::common::exec_err!(
                "no live querier to run {} tasks on",
                ev.task_count
            );
        }
        let routed = (0..ev.task_count)
            .map(|i| {
                variants
                    .get(i)
                    .and_then(|v| v.downcast_ref::<StackSumsExec>())
                    .and_then(|v| v.preferred_url.clone())
                    .filter(|u| urls.contains(u))
                    .unwrap_or_else(|| urls[i % urls.len()].clone())
            })
            .collect();
        Ok(RouteTasksEventResponse::new(routed))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_spread_over_queriers_and_few_move_when_one_joins() {
        let urls: Vec<Url> = (0..3)
            .map(|i| Url::parse(&format!("http://10.0.0.{i}:7070")).unwrap())
            .collect();
        let keys: Vec<String> = (0..600).map(|i| format!("01JBLOCK{i:06}")).collect();
        let owners: Vec<&Url> = keys.iter().map(|k| owner(k, &urls).unwrap()).collect();
        for u in &urls {
            let n = owners.iter().filter(|o| **o == u).count();
            assert!((120..=280).contains(&n), "{u}: {n} of 600");
        }
        let mut more = urls.clone();
        more.push(Url::parse("http://10.0.0.9:7070").unwrap());
        let moved = keys
            .iter()
            .zip(&owners)
            .filter(|(k, o)| owner(k, &more).unwrap() != **o)
            .count();
        assert!(
            moved < 250,
            "{moved} of 600 moved (about a quarter expected)"
        );
    }
}
