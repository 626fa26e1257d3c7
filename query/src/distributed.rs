//! Distributed queries: with [`Distribution`] set on a [`QueryEngine`](crate::QueryEngine),
//! its sessions plan with datafusion-distributed — a merge's leaf ([`StackSumsExec`]) is split
//! into one task per querier that owns some of its blocks (rendezvous hashing of block ids
//! over the live queriers, so each querier's caches of a block's footer and index stay warm),
//! the partial aggregation runs there, and only per-stack partial sums cross the network.
//! Every querier is also a worker ([`worker`]), served on its own port.
//!
//! Without workers (a single process, or one querier) the plans are the ordinary local ones.

mod placement;
mod resolver;

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_distributed::{DistributedExt, SessionStateBuilderExt, Worker, WorkerQueryContext};
use http::HeaderMap;
use strata_engine::Engine;

pub use datafusion_distributed::Worker as DistributedWorker;
pub use resolver::{QuerierChannels, QuerierResolver};

use crate::table::{EngineExt, StackSumsCodec};

/// Scan parts this process read for a query planned by another querier (a distributed
/// task's leaf), since it started.
static PARTS_READ_FOR_OTHERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn count_part_read_for_another() {
    PARTS_READ_FOR_OTHERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// How many scan parts this process read for queries other queriers planned.
pub fn parts_read_for_others() -> u64 {
    PARTS_READ_FOR_OTHERS.load(std::sync::atomic::Ordering::Relaxed)
}

/// How a process's queries are distributed: the live queriers, the channels to them, this
/// process's own worker (tasks routed here run in-process), and the headers every worker
/// request carries (a token).
#[derive(Clone)]
pub struct Distribution {
    /// The queriers (workers), this one included.
    pub resolver: QuerierResolver,
    /// Connections to them, shared by every query.
    pub channels: QuerierChannels,
    /// This process's worker and its URL among the queriers: tasks routed to it run
    /// in-process.
    pub local: Option<(Worker, url::Url)>,
    /// Headers sent with every task (e.g. `authorization`).
    pub headers: HeaderMap,
}

impl std::fmt::Debug for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distribution")
            .field("resolver", &self.resolver)
            .finish_non_exhaustive()
    }
}

/// Adds what every distributed session needs (coordinator or worker): the leaf's codec and
/// placement, the shared channels.
fn with_leaf(builder: SessionStateBuilder, channels: QuerierChannels) -> SessionStateBuilder {
    builder
        .with_distributed_user_codec(StackSumsCodec)
        .with_distributed_desired_task_count_handler(placement::desired_task_count)
        .with_distributed_scale_up_leaf_node_handler(placement::scale_up)
        .with_distributed_route_tasks_handler(placement::route_tasks)
        .with_distributed_channel_resolver(channels)
}

/// A query session over `engine`: distributed with `distribution` (its tasks carrying
/// `tenant` as a header), else local.
pub(crate) fn session(
    engine: &Engine,
    distribution: Option<&Distribution>,
    tenant: Option<&(String, String)>,
) -> DfResult<SessionContext> {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_extension(Arc::new(EngineExt(engine.clone())));
    let Some(d) = distribution else {
        return Ok(SessionContext::new_with_config(config));
    };
    if let Some((_, url)) = &d.local {
        config = config.with_extension(Arc::new(placement::Coordinator(url.clone())));
    }
    let mut headers = d.headers.clone();
    if let Some((name, value)) = tenant {
        headers.insert(
            http::HeaderName::try_from(name.as_str())
                .map_err(|e| DataFusionError::External(Box::new(e)))?,
            http::HeaderValue::try_from(value.as_str())
                .map_err(|e| DataFusionError::External(Box::new(e)))?,
        );
    }
    let mut builder = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_distributed_worker_resolver(d.resolver.clone())
        .with_distributed_planner();
    builder =
        with_leaf(builder, d.channels.clone()).with_distributed_passthrough_headers(headers)?;
    if let Some((worker, url)) = &d.local {
        builder = builder
            .with_distributed_local_worker_context(worker.to_local_worker_context(url.clone()));
    }
    Ok(SessionContext::new_with_state(builder.build()))
}

/// The engine of the tenant a task's headers name (the worker's side of [`session`]).
pub type EngineOfTenant = Arc<
    dyn Fn(&HeaderMap) -> futures::future::BoxFuture<'static, Result<Engine, DataFusionError>>
        + Send
        + Sync,
>;

/// This querier's worker: it reads each task's parts from the engine `engine_of` finds for
/// the task's headers, and passes `forward` headers (tenant, token) on to the workers it asks.
pub fn worker(
    engine_of: EngineOfTenant,
    channels: QuerierChannels,
    forward: Vec<String>,
) -> Worker {
    Worker::from_session_builder(move |ctx: WorkerQueryContext| {
        let (engine_of, channels, forward) = (engine_of.clone(), channels.clone(), forward.clone());
        async move {
            let engine = engine_of(&ctx.headers).await?;
            let mut fwd = HeaderMap::new();
            for name in &forward {
                if let Some(v) = ctx.headers.get(name.as_str())
                    && let Ok(n) = http::HeaderName::try_from(name.as_str())
                {
                    fwd.insert(n, v.clone());
                }
            }
            let mut builder =
                with_leaf(ctx.builder, channels).with_distributed_passthrough_headers(fwd)?;
            builder
                .config()
                .get_or_insert_default()
                .set_extension(Arc::new(EngineExt(engine)));
            Ok(builder.build())
        }
    })
    .with_version(env!("CARGO_PKG_VERSION"))
}
