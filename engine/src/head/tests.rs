//! Unit tests of the head.

use super::*;
use proptest::prelude::*;

proptest! {
    #[test]
    fn value_column_returns_what_was_pushed(
        input in prop::collection::vec((prop_oneof![any::<i64>(), (0i64..50).prop_map(|n| n * 10_000_000), -3i64..3], prop_oneof![Just(10_000_000i64), Just(1), Just(0), Just(-5)]), 0..50)
    ) {
        let mut v = Values::Scaled { unit: 1, values: Vec::new() };
        for &(value, period) in &input {
            v.push(value, period);
        }
        for (i, &(value, _)) in input.iter().enumerate() {
            prop_assert_eq!(v.get(i), value);
        }
    }
}

#[test]
fn cpu_nanoseconds_stay_narrow() {
    let mut v = Values::Scaled {
        unit: 1,
        values: Vec::new(),
    };
    for n in 0..1000i64 {
        v.push((n % 400 + 1) * 10_000_000, 10_000_000); // up to 4 s per value
    }
    assert!(matches!(
        v,
        Values::Scaled {
            unit: 10_000_000,
            ..
        }
    ));
    assert_eq!(v.get(399), 4_000_000_000);
}
