//! Reports over a [`FrameProfile`](crate::FrameProfile): each a plain function from a
//! (filtered, grouped) profile to its output.
//!
//! - [`FlameGraph::build`]: a tree with cumulative, flat and diff values per node, pruned below
//!   a threshold and to a node limit, with the pruned mass accounted for;
//! - [`top`]: flat and cumulative per function;
//! - [`CallGraph::build`]: nodes and caller → callee edges;
//! - [`pprof`]: a gzipped pprof that `go tool pprof` opens (also the `pgo-go` export);
//! - [`folded`]: folded stacks text (`root;…;leaf value`);
//! - [`llvm_sample`]: LLVM's text sample-profile format for `-fprofile-sample-use`.

mod callgraph;
mod flamegraph;
mod folded;
mod llvm_sample;
mod pprof;
mod top;

pub use callgraph::{CallGraph, CallGraphEdge, CallGraphNode};
pub use flamegraph::{FlameGraph, FlameGraphOptions, FlameNode};
pub use folded::folded;
pub use llvm_sample::llvm_sample;
pub use pprof::{pprof, pprof_profile};
pub use top::{TopRow, top};
