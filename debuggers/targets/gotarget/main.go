// Command gotarget is the Go target of the debuggers experiment, for
// Delve: THREADS goroutines, each locked to an OS thread of its own. The
// main one, once the debugger sets Release, keeps writing the eight
// watched variables with a rising count, so that any write watchpoint on
// them is hit at once, by one thread. Until then it sleeps, so the target
// costs nothing while the debugger attaches. The THREADS-1 others block
// for ever, as the idle threads of a real program do: the debugger still
// programs, resumes and stops each of them. It prints "ready" when all of
// them run and is killed by its parent. The Go runtime adds threads of
// its own beside them.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The watched variables. Atomic stores, because the compiler drops plain
// stores that nothing reads.
var Watch0, Watch1, Watch2, Watch3, Watch4, Watch5, Watch6, Watch7 int64

// Release is set to 1 by the debugger.
var Release int32

// idle holds an OS thread of its own for ever.
func idle(started *sync.WaitGroup) {
	runtime.LockOSThread() // never unlocked: one thread per goroutine
	started.Done()
	select {}
}

func writeForever() {
	for atomic.LoadInt32(&Release) == 0 {
		time.Sleep(time.Millisecond)
	}
	for n := int64(1); ; n++ {
		atomic.StoreInt64(&Watch0, n)
		atomic.StoreInt64(&Watch1, n)
		atomic.StoreInt64(&Watch2, n)
		atomic.StoreInt64(&Watch3, n)
		atomic.StoreInt64(&Watch4, n)
		atomic.StoreInt64(&Watch5, n)
		atomic.StoreInt64(&Watch6, n)
		atomic.StoreInt64(&Watch7, n)
	}
}

func main() {
	t := 0
	if len(os.Args) == 2 {
		t, _ = strconv.Atoi(os.Args[1])
	}
	if t < 1 || t > 100000 {
		fmt.Fprintf(os.Stderr, "usage: %s THREADS (1..100000)\n", os.Args[0])
		os.Exit(2)
	}
	var started sync.WaitGroup
	started.Add(t - 1)
	for i := 1; i < t; i++ {
		go idle(&started)
	}
	started.Wait()
	runtime.LockOSThread()
	fmt.Println("ready")
	writeForever()
}
