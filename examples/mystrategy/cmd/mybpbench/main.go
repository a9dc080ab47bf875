// Command mybpbench is bpbench with one more strategy and one more
// register-writing policy: it imports the example strategy for its
// alloc.Register side effect and the example policy for its
// hwregs.RegisterPolicy one, and hands the command line to cli.Main, so
// every subcommand (run, report, compare, conform, ...) knows
// "example-global" and "example-dr7-zero-first" as well as the built-ins:
//
//	go run ./examples/mystrategy/cmd/mybpbench run --strategies example-global,linux --experiments scaling
//	go run ./examples/mystrategy/cmd/mybpbench run --policies example-dr7-zero-first,changed --experiments registers
package main

import (
	"os"

	"bpbench/cli"
	_ "bpbench/examples/mypolicy"
	_ "bpbench/examples/mystrategy"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
