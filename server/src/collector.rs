//! The eBPF collector: in this process, into the default tenant's store ([`in_process`]), or
//! as `strata agent`, pushing to a remote store through Parca's `WriteRaw` ([`agent`]).

pub mod agent;
pub mod in_process;
