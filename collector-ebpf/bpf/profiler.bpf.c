// SPDX-License-Identifier: GPL-2.0
//
// Strata's whole-host CPU sampler.
//
// Attached to a software cpu-clock perf event on every online CPU. On each sample it records
// who was running (pid, tid, comm, cgroup id) and both stacks as raw instruction pointers
// (`bpf_get_stack`, so there is no stack-map hash collision to lose frames to): the user stack
// walked by the kernel through frame pointers, and the kernel stack.
//
// Two programs, one per transport; userspace loads only the one its config selects:
//
// - `profile_cpu` (transport `ring_buffer`): one record per sample into a BPF ring buffer that
//   userspace polls on a timer (no wake-ups from here). A reservation that fails (userspace too
//   slow, ring full) is counted as a drop. The record also carries the user registers (ip, sp,
//   bp) at the interruption, so a future `.eh_frame` unwinder can start from them without
//   changing the record's layout; see `src/event.rs` for the userspace view of
//   `struct strata_sample`.
// - `profile_cpu_map` (transport `map`): samples are counted in the kernel, in a hash map keyed
//   by (pid, cgroup id, comm, user stack, kernel stack) — no tid, no timestamp, no registers, so
//   equal stacks of a process's threads share an entry. There are two such maps, `counts_0` and
//   `counts_1`; `active` says which one the program writes. Each poll, userspace flips `active`,
//   waits until every program that may have read the old value has finished (the per-CPU
//   `COUNTER_SAMPLES` / `COUNTER_SETTLED` pair below), then reads and deletes every entry of the
//   map no longer written: nothing is lost or counted twice. A sample that finds the map full
//   (`MAP_MAX_ENTRIES` distinct keys in one poll) is counted as a drop.
//
// User stacks: when userspace has loaded the unwind tables of the sampled process
// (`proc_unwind[pid]`, see "CFI unwinding" below), both programs walk the user stack themselves
// from the interrupted registers with those tables (compiled from `.eh_frame`/`.debug_frame`),
// falling back to frame pointers in mappings without call frame information and stopping,
// with a counted reason, where they cannot go on. Otherwise the kernel walks it by frame
// pointers (`bpf_get_stack`).
//
// Rebuild with `bpf/build.sh` (clang 14 + libbpf-dev); the compiled object is committed.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define MAX_STACK_DEPTH 127
#define TASK_COMM_LEN 16

// Bits of `struct sample.flags`.
#define SAMPLE_FLAG_USER_REGS 1 // user_regs holds the interrupted user registers
#define SAMPLE_FLAG_CFI 2       // the user stack was walked with the unwind tables
#define SAMPLE_FLAG_OFF_CPU 4   // an off-CPU record: off_cpu_ns blocked from ktime_ns on

// Indexes of the per-CPU `counters` array.
#define COUNTER_SAMPLES 0 // samples seen (idle excluded)
#define COUNTER_DROPS 1   // samples lost because the ring buffer (or the counts map) was full
#define COUNTER_SETTLED 2 // samples `profile_cpu_map` is done with (map written or drop counted)
// Why a walk with the unwind tables ended (one count per walked user stack); the order is
// `UNWIND_STOPS` in src/bpf.rs.
#define COUNTER_UNWIND_FIRST 3
#define STOP_END 0          // the outermost frame (RA undefined) or a zero return address
#define STOP_NO_MAPPING 1   // a pc in no known mapping
#define STOP_JIT 2          // a pc in anonymous memory (JIT code)
#define STOP_NO_CFI 3       // a pc no FDE covers
#define STOP_UNSUPPORTED 4  // CFI the unwinder cannot follow
#define STOP_READ_FAILED 5  // a stack read faulted
#define STOP_RBP_LOST 6     // a rule needed rbp, whose saved value is not known
#define STOP_DEPTH 7        // MAX_STACK_DEPTH frames
#define STOP_NO_TABLE 8     // a row index out of the loaded tables (a table being replaced)
#define STOP_NUM 9
#define COUNTER_OFF_CPU_SAMPLED (COUNTER_UNWIND_FIRST + STOP_NUM) // blocks whose stack was taken
#define COUNTER_OFF_CPU_DROPS (COUNTER_OFF_CPU_SAMPLED + 1) // off-CPU records lost (ring or storage full)
#define COUNTER_NUM (COUNTER_OFF_CPU_DROPS + 1)

// Distinct keys one counts map holds (one poll's worth). `src/bpf.rs` has the same number.
#define MAP_MAX_ENTRIES 16384

// One sample. Layout shared with `src/event.rs` (repr(C), little endian): keep them in step.
struct strata_sample {
	__u32 pid;  // thread group id (the process)
	__u32 tid;  // thread id
	__u64 cgroup_id;
	__u64 ktime_ns; // bpf_ktime_get_ns (CLOCK_MONOTONIC)
	__u32 cpu;
	__u32 flags;
	__s32 user_len;   // bytes of user_stack filled, or a negative errno
	__s32 kernel_len; // bytes of kernel_stack filled, or a negative errno
	__u64 user_regs[3]; // ip, sp, bp of the user context (for an .eh_frame unwinder)
	char comm[TASK_COMM_LEN];
	__u64 user_stack[MAX_STACK_DEPTH];
	__u64 kernel_stack[MAX_STACK_DEPTH];
	__u64 off_cpu_ns; // off-CPU records: how long the thread stayed blocked
};

// The key of the counts maps. Layout shared with `src/event.rs` (`RawSample::parse_key`). Every
// byte is written on each sample (no implicit padding; bpf_get_stack zeroes the part of its
// buffer it does not fill, and the whole buffer on error), so equal samples hash equal.
struct strata_stack_key {
	__u32 pid;
	__s32 user_len;   // bytes of user_stack filled, or a negative errno
	__s32 kernel_len; // bytes of kernel_stack filled, or a negative errno
	__u32 reserved;   // zero
	__u64 cgroup_id;
	char comm[TASK_COMM_LEN];
	__u64 user_stack[MAX_STACK_DEPTH];
	__u64 kernel_stack[MAX_STACK_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_NUM);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// The counts maps of the `map` transport. Not preallocated: memory follows the distinct stacks
// of one poll (the key is 2 KB; 16,384 preallocated entries would pin 35 MB per map whether or
// not they are used). Perf-event programs may use such maps since Linux 6.1 (bpf_mem_alloc).
struct counts_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAP_MAX_ENTRIES);
	__type(key, struct strata_stack_key);
	__type(value, __u64);
};
struct counts_map counts_0 SEC(".maps");
struct counts_map counts_1 SEC(".maps");

// Which counts map `profile_cpu_map` writes: 0 or 1. Flipped by userspace each poll.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} active SEC(".maps");

// Scratch space for the key (too big for the 512-byte BPF stack), one per CPU.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct strata_stack_key);
} key_scratch SEC(".maps");

// Set by userspace: the profiler's own process, left out when non-zero.
const volatile __u32 self_pid = 0;

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += 1;
}

// Like count(), but as an atomic (locked, so fully ordered on x86) add: the `map` transport's
// settle protocol needs COUNTER_SAMPLES visible before `active` is read, and COUNTER_SETTLED
// after the counts map is written.
static __always_inline void count_ordered(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		__sync_fetch_and_add(c, 1);
}

#include "unwind.bpf.h"

// The interrupted task's pid and tid; false when the sample is not work to record: the idle
// task (tid 0) or the collector's own process.
static __always_inline bool sampled_task(__u32 *pid, __u32 *tid)
{
	__u64 id = bpf_get_current_pid_tgid();
	*pid = id >> 32;
	*tid = (__u32)id;
	return *tid != 0 && !(self_pid != 0 && *pid == self_pid);
}

SEC("perf_event")
int profile_cpu(struct bpf_perf_event_data *ctx)
{
	__u32 pid, tid;

	if (!sampled_task(&pid, &tid))
		return 0;

	count(COUNTER_SAMPLES);

	struct strata_sample *s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);
	if (!s) {
		count(COUNTER_DROPS);
		return 0;
	}

	s->pid = pid;
	s->tid = tid;
	s->cgroup_id = bpf_get_current_cgroup_id();
	s->ktime_ns = bpf_ktime_get_ns();
	s->cpu = bpf_get_smp_processor_id();
	s->flags = 0;
	s->off_cpu_ns = 0;
	bpf_get_current_comm(s->comm, sizeof(s->comm));

	// The user registers: those the task entered the kernel with (or was interrupted with).
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *uregs = (struct pt_regs *)bpf_task_pt_regs(task);
	s->user_regs[0] = 0;
	s->user_regs[1] = 0;
	s->user_regs[2] = 0;
	if (uregs && BPF_CORE_READ(task, mm)) {
		s->user_regs[0] = BPF_CORE_READ(uregs, ip);
		s->user_regs[1] = BPF_CORE_READ(uregs, sp);
		s->user_regs[2] = BPF_CORE_READ(uregs, bp);
		s->flags |= SAMPLE_FLAG_USER_REGS;
	}

	__u32 n = 0;
	struct walk_scratch *walked = unwind_user(pid, &n);
	if (walked) {
		bpf_probe_read_kernel(s->user_stack, sizeof(s->user_stack), walked->pcs);
		s->user_len = (n > MAX_STACK_DEPTH ? MAX_STACK_DEPTH : n) * 8;
		s->flags |= SAMPLE_FLAG_CFI;
	} else {
		s->user_len =
			bpf_get_stack(ctx, s->user_stack, sizeof(s->user_stack), BPF_F_USER_STACK);
	}
	s->kernel_len = bpf_get_stack(ctx, s->kernel_stack, sizeof(s->kernel_stack), 0);

	bpf_ringbuf_submit(s, BPF_RB_NO_WAKEUP);
	return 0;
}

// Adds one to `key`'s count in `map`; false when the map is full.
static __always_inline bool add_to(void *map, struct strata_stack_key *key)
{
	__u64 *n = bpf_map_lookup_elem(map, key);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return true;
	}
	__u64 one = 1;
	long err = bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
	if (err == 0)
		return true;
	// Another CPU inserted the same key first.
	n = bpf_map_lookup_elem(map, key);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return true;
	}
	return false; // -E2BIG: full (or -ENOMEM)
}

SEC("perf_event")
int profile_cpu_map(struct bpf_perf_event_data *ctx)
{
	__u32 pid, tid;

	if (!sampled_task(&pid, &tid))
		return 0;

	// Entered: counted before `active` is read (see the settle protocol above).
	count_ordered(COUNTER_SAMPLES);

	__u32 zero = 0;
	struct strata_stack_key *k = bpf_map_lookup_elem(&key_scratch, &zero);
	__u32 *which = bpf_map_lookup_elem(&active, &zero);
	if (!k || !which) {
		count(COUNTER_DROPS);
		count_ordered(COUNTER_SETTLED);
		return 0;
	}
	k->pid = pid;
	k->reserved = 0;
	k->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(k->comm, sizeof(k->comm));
	__u32 n = 0;
	struct walk_scratch *walked = unwind_user(pid, &n);
	if (walked) {
		if (n > MAX_STACK_DEPTH)
			n = MAX_STACK_DEPTH;
		bpf_probe_read_kernel(k->user_stack, sizeof(k->user_stack), walked->pcs);
		k->user_len = n * 8;
	} else {
		k->user_len =
			bpf_get_stack(ctx, k->user_stack, sizeof(k->user_stack), BPF_F_USER_STACK);
	}
	k->kernel_len = bpf_get_stack(ctx, k->kernel_stack, sizeof(k->kernel_stack), 0);

	bool ok;
	if (*which)
		ok = add_to(&counts_1, k);
	else
		ok = add_to(&counts_0, k);
	if (!ok)
		count(COUNTER_DROPS);
	count_ordered(COUNTER_SETTLED);
	return 0;
}

// ---- Off-CPU time --------------------------------------------------------------------------
//
// `off_cpu_switch` runs at every context switch (tp_btf/sched_switch, Linux 5.18+ for the
// prev_state argument). When a user thread blocks (it leaves the CPU not runnable: sleep, I/O,
// a lock), one block in 2^32 / off_cpu_threshold is sampled: its user and kernel stacks are
// taken there and then (the thread is still current, its memory readable) into task storage
// with the time. When the thread is switched back in, the storage is taken: blocks of at least
// off_cpu_min_block_ns go to the `off_cpu_samples` ring buffer with how long they lasted.
// Task storage, not a per-CPU map: a thread may wake on another CPU. Preemptions (the thread
// stays runnable) are not off-CPU time and are left out.

// Set by userspace: 0 = off, else blocks are sampled when bpf_get_prandom_u32() is below it
// (the sampling ratio times 2^32; 2^32 samples every block).
const volatile __u64 off_cpu_threshold = 0;
// Set by userspace: shorter blocks are not reported.
const volatile __u64 off_cpu_min_block_ns = 1000000;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} off_cpu_samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct strata_sample);
} blocked SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(off_cpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u64 now = bpf_ktime_get_ns();

	// `next` comes back: a sampled block ends.
	struct strata_sample *b = bpf_task_storage_get(&blocked, next, 0, 0);
	if (b) {
		__u64 blocked_ns = now - b->ktime_ns;
		if (blocked_ns >= off_cpu_min_block_ns) {
			b->off_cpu_ns = blocked_ns;
			if (bpf_ringbuf_output(&off_cpu_samples, b, sizeof(*b), 0))
				count(COUNTER_OFF_CPU_DROPS);
		}
		bpf_task_storage_delete(&blocked, next);
	}

	// `prev` (still current) leaves the CPU: sample the block if it is one.
	if (off_cpu_threshold == 0 || preempt || prev_state == 0)
		return 0;
	__u32 pid = BPF_CORE_READ(prev, tgid), tid = BPF_CORE_READ(prev, pid);
	if (tid == 0 || (self_pid != 0 && pid == self_pid) || !BPF_CORE_READ(prev, mm))
		return 0;
	if ((__u64)bpf_get_prandom_u32() >= off_cpu_threshold)
		return 0;
	struct strata_sample *s =
		bpf_task_storage_get(&blocked, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s) {
		count(COUNTER_OFF_CPU_DROPS);
		return 0;
	}
	count(COUNTER_OFF_CPU_SAMPLED);
	s->pid = pid;
	s->tid = tid;
	s->cgroup_id = bpf_get_current_cgroup_id();
	s->ktime_ns = now;
	s->cpu = bpf_get_smp_processor_id();
	s->flags = SAMPLE_FLAG_OFF_CPU;
	s->user_regs[0] = 0;
	s->user_regs[1] = 0;
	s->user_regs[2] = 0;
	s->off_cpu_ns = 0;
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	__u32 n = 0;
	struct walk_scratch *walked = unwind_user(pid, &n);
	if (walked) {
		bpf_probe_read_kernel(s->user_stack, sizeof(s->user_stack), walked->pcs);
		s->user_len = n * 8;
		s->flags |= SAMPLE_FLAG_CFI;
	} else {
		s->user_len =
			bpf_get_stack(ctx, s->user_stack, sizeof(s->user_stack), BPF_F_USER_STACK);
	}
	s->kernel_len = bpf_get_stack(ctx, s->kernel_stack, sizeof(s->kernel_stack), 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
