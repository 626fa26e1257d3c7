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

// ---- CFI unwinding ------------------------------------------------------------------------
//
// Userspace compiles each ELF file's call frame information into rows (src/unwind/rows.rs),
// sorted by pc, and loads them into `unwind_chunks`, 64 rows per element, one contiguous run
// of elements per file (shared by every process that maps it). For each process it writes
// `proc_unwind[pid]`: its executable mappings sorted by address, each saying where its file's
// rows are. A row holds from its pc to the next row's.

#define UNWIND_CHUNK_ROWS 64
#define MAX_PROC_MAPPINGS 256
#define MAX_ROW_SEARCH 24 // steps of the row search: tables of up to 2^24 rows

// `struct unwind_row.kinds`, low nibble (src/unwind/rows.rs `kind`).
#define CFA_NO_COVERAGE 0
#define CFA_RSP 1
#define CFA_RBP 2
#define CFA_PLT 3
#define CFA_DEREF_RSP 4
#define CFA_DEREF_RBP 5
#define CFA_SIGNAL 6
#define CFA_OUTERMOST 7
#define CFA_UNSUPPORTED 8
// High nibble.
#define RBP_UNCHANGED 0
#define RBP_AT_CFA 1
#define RBP_LOST 2

// `struct proc_mapping.kind`.
#define MAPPING_CFI 0 // rows in unwind_chunks
#define MAPPING_FP 1  // an ELF file without call frame information: frame pointers
#define MAPPING_JIT 2 // anonymous or otherwise unwalkable memory: stop

struct unwind_row {
	__u32 pc; // offset from the table's base
	__u8 kinds;
	__s8 rbp_offset; // in units of 8 bytes from the CFA
	__u16 cfa_offset;
};

struct unwind_chunk {
	struct unwind_row rows[UNWIND_CHUNK_ROWS];
};

// Layout shared with src/unwind/tables.rs (`ProcMapping`).
struct proc_mapping {
	__u64 start;    // first address
	__u64 end;      // end address (exclusive)
	__u64 rel_base; // a pc's row offset is pc - rel_base
	__u32 first_row; // index of the file's first row in unwind_chunks (in rows)
	__u32 rows;      // rows of the file
	__u32 kind;      // MAPPING_*
	__u32 reserved;
};

struct proc_unwind {
	__u32 count; // mappings used
	__u32 reserved;
	struct proc_mapping mappings[MAX_PROC_MAPPINGS];
};

// Sized by userspace at load (`unwind_table_max_bytes`).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_chunk);
} unwind_chunks SEC(".maps");

// Not preallocated: memory follows the processes sampled (max_entries set by userspace).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct proc_unwind);
} proc_unwind SEC(".maps");

// ---- CPython frames ---------------------------------------------------------------------
//
// For a process running CPython (src/python/interpreter.rs writes `py_procs[pid]`), when the
// native walk reaches a pc inside `_PyEval_EvalFrameDefault`, the Python frames that call
// evaluates take its place: from the sampled thread's current `_PyInterpreterFrame` (found
// once per walk, by the thread's native id, in the interpreter's thread list) through
// `previous` to the call's entry frame. Each is written as PY_FRAME_TAG | instruction index
// << 47 | code object address; userspace reads the code object's names and line table.

#define PY_FRAME_TAG (1ULL << 63)
#define PY_CODE_MASK ((1ULL << 47) - 1)
#define PY_MAX_FRAMES_PER_CALL 32
#define PY_MAX_THREADS 32
#define PY_OFFSET_NONE 0xffffffff
#define PY_ENTRY_IS_ENTRY 0     // 3.11: the frame's is_entry byte marks the call's last frame
#define PY_ENTRY_OWNER_CSTACK 1 // 3.12+: a shim frame owned by the C stack (3) ends the call
#define PY_FRAME_OWNED_BY_CSTACK 3

// Layout shared with src/python/interpreter.rs (`PythonProcesses::load_process`).
struct py_proc {
	__u64 runtime;    // &_PyRuntime
	__u64 eval_start; // _PyEval_EvalFrameDefault
	__u64 eval_end;
	__u32 interp_head;
	__u32 interp_threads_head;
	__u32 tstate_next;
	__u32 tstate_native_tid;
	__u32 tstate_frame;
	__u32 cframe_current;
	__u32 frame_code;
	__u32 frame_previous;
	__u32 frame_instr;
	__u32 frame_entry;
	__u32 entry_mark;
	__u32 code_adaptive;
	__u32 reserved[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct py_proc);
} py_procs SEC(".maps");

// One walk's state, in a per-CPU map rather than on the program's stack: the walked pcs are
// too big for the stack, and the verifier knows nothing of values loaded from a map, so the
// states of the bpf_loop steps and of the searches' iterations are all alike and it prunes
// them (tracking them on the stack made it explore every path of every search: "program is
// too large"). The `volatile` fields are re-read from the map at every use for that reason.
struct walk_scratch {
	__u64 pcs[MAX_STACK_DEPTH + 1];
	volatile __u64 pc;
	volatile __u64 sp;
	volatile __u64 bp;
	volatile __u32 n;     // frames written
	volatile __u32 stop;  // STOP_* once the walk is over
	volatile __u32 lo;    // search bounds
	volatile __u32 hi;
	volatile __u32 exact; // pc is an interrupted instruction (leaf, signal frame), not a return address
	volatile __u32 bp_lost; // bp is not the caller's rbp
	volatile __u32 done;
	volatile __u32 py_state; // 0: thread state not looked up, 1: py_frame is the next frame, 2: none
	volatile __u64 py_frame; // the next Python frame to emit
	volatile __u64 py_cursor; // thread-list / frame-walk cursor
};

static const __u64 zero_pcs[MAX_STACK_DEPTH + 1] = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_scratch);
} unwind_scratch SEC(".maps");

// What each bpf_loop step is handed (on the program's stack; constant during the walk).
struct walk_ctx {
	struct proc_unwind *proc;
	struct walk_scratch *w;
	struct py_proc *py; // NULL unless the process runs CPython
	__u64 tid;
};

// The mapping of `proc` holding `addr`, or NULL.
static __always_inline struct proc_mapping *find_mapping(struct walk_scratch *w,
							 struct proc_unwind *proc, __u64 addr)
{
	w->lo = 0;
	w->hi = proc->count;
	for (int i = 0; i < 9; i++) {
		__u32 lo = w->lo, hi = w->hi;
		if (lo >= hi || hi > MAX_PROC_MAPPINGS)
			return NULL;
		__u32 mid = (lo + hi) / 2;
		struct proc_mapping *m = &proc->mappings[mid & (MAX_PROC_MAPPINGS - 1)];
		if (addr < m->start)
			w->hi = mid;
		else if (addr >= m->end)
			w->lo = mid + 1;
		else
			return m;
	}
	return NULL;
}

static __always_inline struct unwind_row *row_at(__u32 index)
{
	__u32 chunk = index / UNWIND_CHUNK_ROWS;
	struct unwind_chunk *c = bpf_map_lookup_elem(&unwind_chunks, &chunk);
	if (!c)
		return NULL;
	return &c->rows[index & (UNWIND_CHUNK_ROWS - 1)];
}

// The row in force at row offset `rel` of mapping `m`'s file (the last with pc <= rel), or
// NULL when none is or the tables do not hold it.
static __always_inline struct unwind_row *find_row(struct walk_scratch *w, struct proc_mapping *m,
						   __u64 rel)
{
	__u32 first = m->first_row;
	if (m->rows == 0 || rel > 0xffffffffULL)
		return NULL;
	w->lo = 0;
	w->hi = m->rows;
	for (int i = 0; i < MAX_ROW_SEARCH; i++) {
		__u32 lo = w->lo, hi = w->hi;
		if (lo + 1 >= hi)
			break;
		__u32 mid = lo + (hi - lo) / 2;
		struct unwind_row *r = row_at(first + mid);
		if (!r)
			return NULL;
		if (r->pc <= rel)
			w->lo = mid;
		else
			w->hi = mid;
	}
	struct unwind_row *r = row_at(first + w->lo);
	if (!r || r->pc > rel)
		return NULL;
	return r;
}

static __always_inline bool read_word(__u64 addr, __u64 *out)
{
	return bpf_probe_read_user(out, sizeof(*out), (void *)addr) == 0;
}

// Ends the walk with `why`.
static __always_inline long stop_walk(struct walk_scratch *w, __u32 why)
{
	w->stop = why;
	w->done = 1;
	return 1;
}

// Moves the walk to the caller: pc, sp, bp as unwound.
static __always_inline long step_to(struct walk_scratch *w, __u64 pc, __u64 sp, __u64 bp,
				    __u32 exact)
{
	w->pc = pc;
	w->sp = sp;
	w->bp = bp;
	w->exact = exact;
	return pc == 0 ? stop_walk(w, STOP_END) : 0;
}

// Finds the sampled thread's current Python frame: its PyThreadState in the interpreter's
// thread list (by native thread id), then the frame.
static __always_inline void find_py_frame(struct walk_scratch *w, struct py_proc *py, __u64 tid)
{
	__u64 interp = 0, ts = 0;
	w->py_state = 2;
	if (!read_word(py->runtime + py->interp_head, &interp) || !interp)
		return;
	if (!read_word(interp + py->interp_threads_head, &ts))
		return;
	w->py_cursor = ts;
	for (int i = 0; i < PY_MAX_THREADS; i++) {
		__u64 t = w->py_cursor, native = 0;
		if (!t)
			return;
		if (!read_word(t + py->tstate_native_tid, &native))
			return;
		if (native == tid) {
			__u64 frame = 0;
			if (!read_word(t + py->tstate_frame, &frame))
				return;
			if (py->cframe_current != PY_OFFSET_NONE && frame &&
			    !read_word(frame + py->cframe_current, &frame))
				return;
			w->py_frame = frame;
			w->py_state = 1;
			return;
		}
		__u64 next = 0;
		if (!read_word(t + py->tstate_next, &next))
			return;
		w->py_cursor = next;
	}
}

// Writes the Python frames of one _PyEval_EvalFrameDefault call; returns how many.
static __always_inline __u32 emit_py_frames(struct walk_scratch *w, struct py_proc *py)
{
	__u32 emitted = 0;
	for (int i = 0; i < PY_MAX_FRAMES_PER_CALL; i++) {
		__u64 f = w->py_frame, code = 0, prev = 0, instr = 0;
		__u8 entry = 0;
		if (!f)
			break;
		if (!read_word(f + py->frame_previous, &prev) ||
		    bpf_probe_read_user(&entry, 1, (void *)(f + py->frame_entry)))
			break;
		w->py_frame = prev;
		if (py->entry_mark == PY_ENTRY_OWNER_CSTACK && entry == PY_FRAME_OWNED_BY_CSTACK)
			break; // the shim that starts this call
		if (!read_word(f + py->frame_code, &code) || !read_word(f + py->frame_instr, &instr))
			break;
		__u64 first = code + py->code_adaptive;
		__u64 index = instr > first ? (instr - first) / 2 : 0;
		if (index > 0xffff)
			index = 0xffff;
		__u32 n = w->n;
		if (n >= MAX_STACK_DEPTH)
			break;
		w->pcs[n & MAX_STACK_DEPTH] = PY_FRAME_TAG | (index << 47) | (code & PY_CODE_MASK);
		w->n = n + 1;
		emitted++;
		if (py->entry_mark == PY_ENTRY_IS_ENTRY && entry)
			break; // this call's first frame
	}
	return emitted;
}

// One frame: records the pc, then finds the caller's pc, sp and bp.
static long unwind_step(__u64 index, void *ctx)
{
	struct walk_ctx *c = ctx;
	struct walk_scratch *w = c->w;
	struct proc_unwind *proc = c->proc;
	if (!w)
		return 1;
	if (!proc)
		return stop_walk(w, STOP_NO_TABLE);
	if (w->done)
		return 1;
	__u64 pc = w->pc, sp = w->sp, bp = w->bp;
	if (pc == 0)
		return stop_walk(w, STOP_END);
	// The eval loop of CPython: its Python frames in its place (the native frame when none).
	struct py_proc *py = c->py;
	__u32 emitted = 0;
	if (py && pc >= py->eval_start && pc < py->eval_end) {
		if (w->py_state == 0)
			find_py_frame(w, py, c->tid);
		if (w->py_state == 1)
			emitted = emit_py_frames(w, py);
	}
	if (emitted == 0) {
		__u32 n = w->n;
		if (n >= MAX_STACK_DEPTH)
			return stop_walk(w, STOP_DEPTH);
		w->pcs[n & MAX_STACK_DEPTH] = pc;
		w->n = n + 1;
	}

	// A return address points after its call: look up the call itself.
	__u64 lookup = w->exact ? pc : pc - 1;
	struct proc_mapping *m = find_mapping(w, proc, lookup);
	if (!m)
		return stop_walk(w, STOP_NO_MAPPING);
	__u64 cfa, ra, saved;
	if (m->kind == MAPPING_JIT)
		return stop_walk(w, STOP_JIT);
	if (m->kind == MAPPING_FP) {
		if (w->bp_lost)
			return stop_walk(w, STOP_RBP_LOST);
		if (bp == 0)
			return stop_walk(w, STOP_END);
		if (!read_word(bp, &saved) || !read_word(bp + 8, &ra))
			return stop_walk(w, STOP_READ_FAILED);
		return step_to(w, ra, bp + 16, saved, 0);
	}
	struct unwind_row *r = find_row(w, m, lookup - m->rel_base);
	if (!r)
		return stop_walk(w, STOP_NO_CFI);
	__u8 cfa_kind = r->kinds & 15, rbp_kind = r->kinds >> 4;
	__u16 off = r->cfa_offset;
	__s8 rbp_offset = r->rbp_offset;
	switch (cfa_kind) {
	case CFA_RSP:
		cfa = sp + off;
		break;
	case CFA_RBP:
		if (w->bp_lost)
			return stop_walk(w, STOP_RBP_LOST);
		cfa = bp + off;
		break;
	case CFA_PLT:
		cfa = sp + (off & 0xff) + (((pc & 15) >= (__u64)(off >> 8)) ? 8 : 0);
		break;
	case CFA_DEREF_RSP:
		if (!read_word(sp + (__s16)off, &cfa))
			return stop_walk(w, STOP_READ_FAILED);
		break;
	case CFA_DEREF_RBP:
		if (w->bp_lost)
			return stop_walk(w, STOP_RBP_LOST);
		if (!read_word(bp + (__s16)off, &cfa))
			return stop_walk(w, STOP_READ_FAILED);
		break;
	case CFA_SIGNAL: {
		// rt_sigframe: the ucontext_t is at sp; uc_mcontext at +40 holds the interrupted
		// registers (gregs: rbp [10], rsp [15], rip [16]).
		__u64 isp;
		if (!read_word(sp + 40 + 10 * 8, &saved) || !read_word(sp + 40 + 15 * 8, &isp) ||
		    !read_word(sp + 40 + 16 * 8, &ra))
			return stop_walk(w, STOP_READ_FAILED);
		w->bp_lost = 0;
		return step_to(w, ra, isp, saved, 1);
	}
	case CFA_OUTERMOST:
		return stop_walk(w, STOP_END);
	case CFA_NO_COVERAGE:
		return stop_walk(w, STOP_NO_CFI);
	default:
		return stop_walk(w, STOP_UNSUPPORTED);
	}
	if (!read_word(cfa - 8, &ra))
		return stop_walk(w, STOP_READ_FAILED);
	if (rbp_kind == RBP_AT_CFA) {
		if (!read_word(cfa + (__s64)rbp_offset * 8, &saved))
			return stop_walk(w, STOP_READ_FAILED);
		bp = saved;
		w->bp_lost = 0;
	} else if (rbp_kind == RBP_LOST) {
		w->bp_lost = 1;
	}
	return step_to(w, ra, cfa, bp, 0);
}

// Walks the current task's user stack with the unwind tables into the per-CPU scratch;
// returns the scratch (frames in pcs[0..*n], the rest zero) or NULL when the process has no
// tables loaded (or no user context), leaving the caller to fall back to bpf_get_stack.
static __always_inline struct walk_scratch *unwind_user(__u32 pid, __u32 *n)
{
	__u32 zero = 0;
	struct proc_unwind *proc = bpf_map_lookup_elem(&proc_unwind, &pid);
	if (!proc)
		return NULL;
	struct walk_scratch *w = bpf_map_lookup_elem(&unwind_scratch, &zero);
	if (!w)
		return NULL;
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *uregs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (!uregs || !BPF_CORE_READ(task, mm))
		return NULL;
	// Equal stacks must hash equal (map transport): nothing of an earlier walk may remain.
	bpf_probe_read_kernel(w->pcs, sizeof(w->pcs), zero_pcs);
	w->pc = BPF_CORE_READ(uregs, ip);
	w->sp = BPF_CORE_READ(uregs, sp);
	w->bp = BPF_CORE_READ(uregs, bp);
	w->n = 0;
	w->stop = STOP_DEPTH;
	w->exact = 1;
	w->bp_lost = 0;
	w->done = 0;
	w->py_state = 0;
	w->py_frame = 0;
	struct walk_ctx c = {
		.proc = proc,
		.w = w,
		.py = bpf_map_lookup_elem(&py_procs, &pid),
		.tid = (__u32)bpf_get_current_pid_tgid(),
	};
	bpf_loop(MAX_STACK_DEPTH + 1, unwind_step, &c, 0);
	__u32 stop = w->stop;
	count(COUNTER_UNWIND_FIRST + (stop < STOP_NUM ? stop : STOP_UNSUPPORTED));
	__u32 frames = w->n;
	*n = frames > MAX_STACK_DEPTH ? MAX_STACK_DEPTH : frames;
	return w;
}

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
