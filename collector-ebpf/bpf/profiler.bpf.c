// SPDX-License-Identifier: GPL-2.0
//
// Strata's whole-host CPU sampler.
//
// Attached to a software cpu-clock perf event on every online CPU. On each sample it records
// who was running (pid, tid, comm, cgroup id) and both stacks as raw instruction pointers
// (`bpf_get_stack`, so there is no stack-map hash collision to lose frames to): the user stack
// walked by the kernel through frame pointers, and the kernel stack. The record goes to a BPF
// ring buffer that userspace polls on a timer (no wake-ups from here). A reservation that fails
// (userspace too slow, ring full) is counted in a per-CPU counter.
//
// The record also carries the user registers (ip, sp, bp) at the interruption, so a future
// `.eh_frame` unwinder can start from them without changing the record's layout; see
// `src/event.rs` for the userspace view of `struct strata_sample`.
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

// Indexes of the per-CPU `counters` array.
#define COUNTER_SAMPLES 0 // samples seen (idle excluded)
#define COUNTER_DROPS 1   // samples lost because the ring buffer was full
#define COUNTER_NUM 2

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

// Set by userspace: the profiler's own process, left out when non-zero.
const volatile __u32 self_pid = 0;

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += 1;
}

SEC("perf_event")
int profile_cpu(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	__u32 tid = (__u32)id;

	// The idle task (pid 0) is not work.
	if (tid == 0)
		return 0;
	if (self_pid != 0 && pid == self_pid)
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

	s->user_len = bpf_get_stack(ctx, s->user_stack, sizeof(s->user_stack), BPF_F_USER_STACK);
	s->kernel_len = bpf_get_stack(ctx, s->kernel_stack, sizeof(s->kernel_stack), 0);

	bpf_ringbuf_submit(s, BPF_RB_NO_WAKEUP);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
