//! [`ScrapeShard`]: which share of the scrape targets one ingester of a cluster scrapes, so
//! each target (and so each of its series, cumulative ones included) stays on one ingester.

/// This process scrapes the targets whose `(job, instance)` hashes to `index` modulo `count`
/// (FNV-1a, the same in every process and version).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScrapeShard {
    /// This process's place among the scrapers, from 0.
    pub index: usize,
    /// How many scrapers share the targets.
    pub count: usize,
}

impl ScrapeShard {
    /// Whether the target `instance` of `job` is this shard's.
    pub fn owns(&self, job: &str, instance: &str) -> bool {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in job.bytes().chain([0xff]).chain(instance.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.count <= 1 || (h % self.count as u64) as usize == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_has_exactly_one_owner() {
        for count in 1..6 {
            for t in 0..200 {
                let instance = format!("10.0.0.{t}:6060");
                let owners = (0..count)
                    .filter(|&index| ScrapeShard { index, count }.owns("app", &instance))
                    .count();
                assert_eq!(owners, 1, "{instance} among {count}");
            }
        }
        // Stable: the same answer in every process.
        assert!(
            ScrapeShard { index: 0, count: 2 }.owns("app", "10.0.0.1:6060")
                != ScrapeShard { index: 1, count: 2 }.owns("app", "10.0.0.1:6060")
        );
    }
}
