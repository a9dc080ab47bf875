package bench

import (
	"fmt"
	"strings"
)

// experiments is every experiment, in presentation order (the CLI's run
// order and the report's section order). Each experiment's file defines
// its Experiment value, with the question it answers, next to its cases;
// adding an experiment is adding its line here.
var experiments = []Experiment{
	updateExperiment,
	raceExperiment,
	scalingExperiment,
	kernelExperiment,
	registersExperiment,
	exclusionExperiment,
	applyExperiment,
	blindWindowExperiment,
	ptraceRaceExperiment,
	switchExperiment,
	switchModelExperiment,
	debuggersExperiment,
	kernelTasksExperiment,
	kernelSeriesExperiment,
}

// Experiments returns every experiment in presentation order. The slice is
// the caller's to keep or change.
func Experiments() []Experiment {
	return append([]Experiment(nil), experiments...)
}

// Lookup returns the named experiment.
func Lookup(name string) (Experiment, error) {
	names := make([]string, len(experiments))
	for i, e := range experiments {
		if e.Name == name {
			return e, nil
		}
		names[i] = e.Name
	}
	return Experiment{}, fmt.Errorf("unknown experiment %q (have %s)", name, strings.Join(names, ", "))
}
