//! Shared workload generators for Strata benchmarks.
