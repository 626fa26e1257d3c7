// Writes real Go CPU and heap profiles for Strata's ingest benchmark: a workload whose calls
// wander through a tree of eight functions, so the profiles hold thousands of distinct stacks
// of depth 10-30, as a large service's would.
//
// Usage: goprof <out dir> [cpu seconds, default 4]. Writes cpu.pb.gz and heap.pb.gz (gzipped
// pprof, as runtime/pprof writes them).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"
)

var sink []byte
var mu sync.Mutex

type step func(depth int, path uint64, work func())

var steps [8]step

func next(depth int, path uint64, work func()) {
	if depth == 0 {
		work()
		return
	}
	path = path*6364136223846793005 + 1442695040888963407
	steps[(path>>33)%8](depth-1, path, work)
}

//go:noinline
func f0(d int, p uint64, w func()) { next(d, p, w) }

//go:noinline
func f1(d int, p uint64, w func()) { next(d, p, w) }

//go:noinline
func f2(d int, p uint64, w func()) { next(d, p, w) }

//go:noinline
func f3(d int, p uint64, w func()) { next(d, p, w) }

//go:noinline
func f4(d int, p uint64, w func()) { next(d, p, w) }

//go:noinline
func f5(d int, p uint64, w func()) { next(d, p, w) }

//go:noinline
func f6(d int, p uint64, w func()) { next(d, p, w) }

//go:noinline
func f7(d int, p uint64, w func()) { next(d, p, w) }

func spin() {
	x := uint64(1)
	for i := 0; i < 20000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	if x == 0 {
		fmt.Println(x)
	}
}

func alloc() {
	b := make([]byte, 256)
	mu.Lock()
	sink = b
	mu.Unlock()
}

func main() {
	steps = [8]step{f0, f1, f2, f3, f4, f5, f6, f7}
	out := os.Args[1]
	seconds := 4
	if len(os.Args) > 2 {
		seconds, _ = strconv.Atoi(os.Args[2])
	}
	runtime.MemProfileRate = 1

	cpu, err := os.Create(filepath.Join(out, "cpu.pb.gz"))
	if err != nil {
		panic(err)
	}
	// 1000 Hz instead of Go's 100, for more samples in little time (runtime/pprof warns that
	// the rate is already set, and keeps this one).
	runtime.SetCPUProfileRate(1000)
	if err := pprof.StartCPUProfile(cpu); err != nil {
		panic(err)
	}
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := uint64(g) << 32; time.Now().Before(deadline); i++ {
				next(10+int(i%21), i, spin)
			}
		}(g)
	}
	wg.Wait()
	pprof.StopCPUProfile()
	cpu.Close()

	for i := uint64(0); i < 60000; i++ {
		next(10+int(i%21), i, alloc)
	}
	heap, err := os.Create(filepath.Join(out, "heap.pb.gz"))
	if err != nil {
		panic(err)
	}
	if err := pprof.WriteHeapProfile(heap); err != nil {
		panic(err)
	}
	heap.Close()
}
