//! [`RawSample`]: the userspace view of the BPF program's `struct strata_sample` (ring buffer
//! transport) and `struct strata_stack_key` (map transport).
//!
//! Records and keys are read field by field from their bytes (little endian, the layouts of
//! `bpf/profiler.bpf.c`), so no unsafe cast is needed; [`RawSample::SIZE`] and
//! [`RawSample::KEY_SIZE`] are checked against every record and key.

/// Deepest stack the BPF program records (user and kernel each).
pub const MAX_STACK_DEPTH: usize = 127;
const COMM_LEN: usize = 16;

/// `flags` bit: `user_regs` holds the interrupted user registers.
pub const FLAG_USER_REGS: u32 = 1;
/// `flags` bit: the user stack was walked with the unwind tables (not frame pointers).
pub const FLAG_CFI: u32 = 2;
/// `flags` bit: an off-CPU record — the thread blocked at `ktime_ns` with these stacks and
/// stayed off the CPU for `off_cpu_ns`.
pub const FLAG_OFF_CPU: u32 = 4;

/// One sample as the BPF program recorded it. From the `map` transport it stands for all the
/// samples of one counts-map entry: `tid`, `ktime_ns`, `cpu`, `flags` and `user_regs` are zero
/// there (not part of the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawSample {
    /// Process (thread group) id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// The cgroup (v2) id of the task: the inode of its cgroup directory.
    pub cgroup_id: u64,
    /// `bpf_ktime_get_ns()` at the sample (CLOCK_MONOTONIC).
    pub ktime_ns: u64,
    /// The CPU sampled.
    pub cpu: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// User registers ip, sp, bp at the interruption (when `flags & FLAG_USER_REGS`); the
    /// starting point of a future `.eh_frame` unwinder.
    pub user_regs: [u64; 3],
    /// The task's command name.
    pub comm: String,
    /// User stack, instruction pointers, leaf first (frame-pointer walk by the kernel).
    pub user_stack: Vec<u64>,
    /// Kernel stack, instruction pointers, leaf first.
    pub kernel_stack: Vec<u64>,
    /// Negative errno of the user-stack read, if it failed.
    pub user_error: Option<i32>,
    /// Negative errno of the kernel-stack read, if it failed.
    pub kernel_error: Option<i32>,
    /// Off-CPU records ([`FLAG_OFF_CPU`]): nanoseconds the thread stayed blocked.
    pub off_cpu_ns: u64,
}

struct Reader<'a>(&'a [u8], usize);

impl Reader<'_> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.0[self.1..self.1 + N]);
        self.1 += N;
        out
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
    fn comm(&mut self) -> String {
        let bytes: [u8; COMM_LEN] = self.bytes();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    }
    fn stack(&mut self, len: i32) -> Vec<u64> {
        let n = (len.max(0) as usize / 8).min(MAX_STACK_DEPTH);
        let start = self.1;
        let out = (0..n)
            .map(|i| {
                let o = start + i * 8;
                u64::from_le_bytes(self.0[o..o + 8].try_into().expect("8 bytes"))
            })
            .collect();
        self.1 = start + MAX_STACK_DEPTH * 8;
        out
    }
}

impl RawSample {
    /// Size in bytes of one record.
    pub const SIZE: usize =
        4 + 4 + 8 + 8 + 4 + 4 + 4 + 4 + 24 + COMM_LEN + 2 * MAX_STACK_DEPTH * 8 + 8;

    /// Size in bytes of one counts-map key (`struct strata_stack_key`).
    pub const KEY_SIZE: usize = 4 + 4 + 4 + 4 + 8 + COMM_LEN + 2 * MAX_STACK_DEPTH * 8;

    /// Parses one counts-map key; `None` when it has the wrong size.
    pub fn parse_key(bytes: &[u8]) -> Option<RawSample> {
        if bytes.len() < Self::KEY_SIZE {
            return None;
        }
        let mut r = Reader(bytes, 0);
        let pid = r.u32();
        let user_len = r.i32();
        let kernel_len = r.i32();
        let _reserved = r.u32();
        let cgroup_id = r.u64();
        let comm = r.comm();
        let user_stack = r.stack(user_len);
        let kernel_stack = r.stack(kernel_len);
        Some(RawSample {
            pid,
            tid: 0,
            cgroup_id,
            ktime_ns: 0,
            cpu: 0,
            flags: 0,
            user_regs: [0; 3],
            comm,
            user_stack,
            kernel_stack,
            user_error: (user_len < 0).then_some(user_len),
            kernel_error: (kernel_len < 0).then_some(kernel_len),
            off_cpu_ns: 0,
        })
    }

    /// Parses one ring-buffer record; `None` when it has the wrong size.
    pub fn parse(bytes: &[u8]) -> Option<RawSample> {
        if bytes.len() < Self::SIZE {
            return None;
        }
        let mut r = Reader(bytes, 0);
        let pid = r.u32();
        let tid = r.u32();
        let cgroup_id = r.u64();
        let ktime_ns = r.u64();
        let cpu = r.u32();
        let flags = r.u32();
        let user_len = r.i32();
        let kernel_len = r.i32();
        let user_regs = [r.u64(), r.u64(), r.u64()];
        let comm = r.comm();
        let user_stack = r.stack(user_len);
        let kernel_stack = r.stack(kernel_len);
        let off_cpu_ns = r.u64();
        Some(RawSample {
            pid,
            tid,
            cgroup_id,
            ktime_ns,
            cpu,
            flags,
            user_regs,
            comm,
            user_stack,
            kernel_stack,
            user_error: (user_len < 0).then_some(user_len),
            kernel_error: (kernel_len < 0).then_some(kernel_len),
            off_cpu_ns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_c_layout() {
        let mut b = Vec::new();
        b.extend(7u32.to_le_bytes());
        b.extend(8u32.to_le_bytes());
        b.extend(99u64.to_le_bytes());
        b.extend(5u64.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.extend(FLAG_USER_REGS.to_le_bytes());
        b.extend(16i32.to_le_bytes()); // two user frames
        b.extend((-14i32).to_le_bytes()); // EFAULT
        for r in [0x10u64, 0x20, 0x30] {
            b.extend(r.to_le_bytes());
        }
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"busy");
        b.extend(comm);
        let mut user = vec![0u64; MAX_STACK_DEPTH];
        user[0] = 0x401000;
        user[1] = 0x402000;
        for v in user {
            b.extend(v.to_le_bytes());
        }
        b.extend(vec![0u8; MAX_STACK_DEPTH * 8]);
        b.extend(40_000_000u64.to_le_bytes());
        assert_eq!(b.len(), RawSample::SIZE);
        let s = RawSample::parse(&b).unwrap();
        assert_eq!((s.pid, s.tid, s.cgroup_id, s.cpu), (7, 8, 99, 1));
        assert_eq!(s.comm, "busy");
        assert_eq!(s.user_stack, vec![0x401000, 0x402000]);
        assert!(s.kernel_stack.is_empty());
        assert_eq!(s.kernel_error, Some(-14));
        assert_eq!(s.user_regs, [0x10, 0x20, 0x30]);
        assert_eq!(s.off_cpu_ns, 40_000_000);
        assert!(RawSample::parse(&b[..100]).is_none());
    }

    #[test]
    fn parses_the_c_key_layout() {
        let mut b = Vec::new();
        b.extend(7u32.to_le_bytes());
        b.extend((-14i32).to_le_bytes()); // EFAULT on the user stack
        b.extend(24i32.to_le_bytes()); // three kernel frames
        b.extend(0u32.to_le_bytes());
        b.extend(99u64.to_le_bytes());
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"busy");
        b.extend(comm);
        b.extend(vec![0u8; MAX_STACK_DEPTH * 8]);
        let mut kernel = vec![0u64; MAX_STACK_DEPTH];
        kernel[..3].copy_from_slice(&[0xffff_1000, 0xffff_2000, 0xffff_3000]);
        for v in kernel {
            b.extend(v.to_le_bytes());
        }
        assert_eq!(b.len(), RawSample::KEY_SIZE);
        let s = RawSample::parse_key(&b).unwrap();
        assert_eq!((s.pid, s.tid, s.cgroup_id, s.flags), (7, 0, 99, 0));
        assert_eq!(s.comm, "busy");
        assert!(s.user_stack.is_empty());
        assert_eq!(s.user_error, Some(-14));
        assert_eq!(s.kernel_stack, vec![0xffff_1000, 0xffff_2000, 0xffff_3000]);
        assert_eq!(s.kernel_error, None);
        assert!(RawSample::parse_key(&b[..100]).is_none());
    }
}
