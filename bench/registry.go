package bench

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// order fixes the presentation order of experiments.
var order = []string{"update", "race", "scaling", "kernel", "registers", "exclusion", "apply", "blindwindow", "ptrace-race", "switch", "switch-model", "debuggers"}

var (
	regMu       sync.Mutex
	experiments = map[string]Experiment{}
)

// register adds an experiment; each experiment's file calls it from init.
func register(e Experiment) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := experiments[e.Name]; dup {
		panic("bench: experiment registered twice: " + e.Name)
	}
	experiments[e.Name] = e
}

func rank(name string) int {
	for i, n := range order {
		if n == name {
			return i
		}
	}
	return len(order)
}

// Experiments returns every registered experiment in presentation order.
func Experiments() []Experiment {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]Experiment, 0, len(experiments))
	for _, e := range experiments {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := rank(out[i].Name), rank(out[j].Name)
		if ri != rj {
			return ri < rj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Lookup returns the named experiment.
func Lookup(name string) (Experiment, error) {
	regMu.Lock()
	e, ok := experiments[name]
	regMu.Unlock()
	if !ok {
		names := []string{}
		for _, e := range Experiments() {
			names = append(names, e.Name)
		}
		return Experiment{}, fmt.Errorf("unknown experiment %q (have %s)", name, strings.Join(names, ", "))
	}
	return e, nil
}
