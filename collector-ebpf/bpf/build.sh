#!/usr/bin/env bash
# Rebuilds the committed BPF object from its source, or checks that it is up to date.
#
#   collector-ebpf/bpf/build.sh           rebuild profiler.bpf.o and profiler.bpf.o.sha256
#   collector-ebpf/bpf/build.sh --check   fail when the committed object is stale
#
# Needs clang (14, Debian's), llvm (llvm-strip) and libbpf-dev (bpf_helpers.h):
#   apt-get install -y clang llvm libbpf-dev
# vmlinux.h comes from `bpftool btf dump file /sys/kernel/btf/vmlinux format c` (bpftool package)
# and is committed; CO-RE relocations make the object load on other kernels.
#
# The object is built reproducibly (relative paths, debug prefix mapped, DWARF stripped: BTF
# stays), so --check rebuilds into a temporary file and compares bytes. profiler.bpf.o.sha256
# records the sha256 of the sources the object was built from; the crate's tests compare it
# without needing clang.
set -euo pipefail
cd "$(dirname "$0")"

CLANG=${CLANG:-clang}
STRIP=${LLVM_STRIP:-}
if [ -z "$STRIP" ]; then
  for s in llvm-strip llvm-strip-14; do
    if command -v "$s" >/dev/null 2>&1; then STRIP=$s; break; fi
  done
fi

if [ -z "$STRIP" ]; then
  echo "llvm-strip not found (apt-get install -y llvm)" >&2
  exit 1
fi

build() { # build <output>
  local out=$1
  "$CLANG" -O2 -g -target bpf -D__TARGET_ARCH_x86 \
    -I/usr/include/x86_64-linux-gnu -I. \
    -fdebug-prefix-map="$PWD"=. -fno-ident \
    -c profiler.bpf.c -o "$out"
  "$STRIP" -g "$out"
}

src_hash() {
  cat profiler.bpf.c unwind.bpf.h vmlinux.h | sha256sum | cut -d' ' -f1
}

if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  build "$tmp/profiler.bpf.o"
  status=0
  if ! cmp -s "$tmp/profiler.bpf.o" profiler.bpf.o; then
    echo "collector-ebpf/bpf/profiler.bpf.o is stale: run collector-ebpf/bpf/build.sh and commit it" >&2
    status=1
  fi
  if [ "$(src_hash)" != "$(cat profiler.bpf.o.sha256)" ]; then
    echo "collector-ebpf/bpf/profiler.bpf.o.sha256 is stale: run collector-ebpf/bpf/build.sh" >&2
    status=1
  fi
  exit $status
fi

build profiler.bpf.o
src_hash > profiler.bpf.o.sha256
echo "built collector-ebpf/bpf/profiler.bpf.o ($(wc -c < profiler.bpf.o) bytes)"
