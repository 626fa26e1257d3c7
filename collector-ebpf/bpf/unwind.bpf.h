// SPDX-License-Identifier: GPL-2.0
//
// The user-stack walker of Strata's BPF programs (included by profiler.bpf.c): CFI unwinding
// with the rows userspace loads, and CPython frames in place of the interpreter's eval loop.
// Needs `count()`, COUNTER_UNWIND_FIRST, STOP_* and MAX_STACK_DEPTH from profiler.bpf.c.

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

