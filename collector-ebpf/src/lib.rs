//! Strata's eBPF collector: samples stacks of every process on the host.
//!
//! Filled by a later issue; what will live here:
//! - `bpf/`: the C BPF programs (compiled with clang, loaded with aya);
//! - `sampler`: perf events per CPU, stack maps, per-process mappings;
//! - `batch`: turning raw samples into engine batches via `ingest`.
#![deny(missing_docs)]
