//! Loads the committed BPF object into this kernel and reads samples back, through each
//! transport. Fails where the kernel refuses BPF, unless `STRATA_SKIP_EBPF=1`.

mod common;

use std::time::{Duration, Instant};

use strata_collector_ebpf::{BpfProfiler, MAP_MAX_ENTRIES, Transport};

fn loads_attaches_and_samples(transport: Transport) {
    let Some(mut p) = common::bpf(BpfProfiler::load(99, 0, transport, None, None)) else {
        return;
    };
    assert_eq!(p.transport(), transport);
    // Keep one CPU busy for 500 ms.
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < Duration::from_millis(500) {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    std::hint::black_box(x);
    let me = std::process::id();
    let mut mine = 0;
    let mut with_user = 0;
    let mut samples = 0;
    let mut comms = std::collections::BTreeMap::<String, u64>::new();
    let records = p.drain(|s, count| {
        assert!(count >= 1);
        samples += count;
        *comms.entry(s.comm.clone()).or_default() += count;
        if s.pid == me {
            mine += count;
            if !s.user_stack.is_empty() {
                with_user += count;
            }
        }
    });
    let c = p.counters().unwrap();
    eprintln!("{transport}: by comm: {comms:?}");
    eprintln!(
        "{transport}: drained {records} records of {samples} samples, {mine} of this process ({with_user} with a user stack); {c:?}"
    );
    // The host may be busy (shared builders): ask for a few samples, not 50.
    assert!(
        mine >= 3,
        "expected samples of this busy process, got {mine}"
    );
    assert!(with_user > 0);
    assert!(c.samples >= samples);
    match transport {
        Transport::RingBuffer => {
            assert_eq!(records as u64, samples);
            assert_eq!(p.map_capacity(), None);
        }
        Transport::Map => {
            // Counted in the kernel: the busy loop's few stacks repeat.
            assert!(
                (records as u64) < samples,
                "{records} records for {samples} samples"
            );
            assert_eq!(p.map_capacity(), Some(MAP_MAX_ENTRIES));
            // Everything was read and deleted: a second drain right away finds (almost)
            // nothing but what was sampled since.
            let mut again = 0;
            p.drain(|_, n| again += n);
            assert!(again < samples, "{again} samples again after {samples}");
        }
    }
}

#[test]
fn loads_attaches_and_samples_through_the_ring_buffer() {
    loads_attaches_and_samples(Transport::RingBuffer);
}

#[test]
fn loads_attaches_and_samples_through_the_counts_map() {
    loads_attaches_and_samples(Transport::Map);
}
