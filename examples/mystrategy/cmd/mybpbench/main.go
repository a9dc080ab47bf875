// Command mybpbench is bpbench with one more strategy: it imports the
// example strategy for its alloc.Register side effect and hands the command
// line to cli.Main, so every subcommand (run, report, compare, conform, ...)
// knows "example-global" as well as the built-in strategies:
//
//	go run ./examples/mystrategy/cmd/mybpbench run --strategies example-global,linux --experiments scaling
package main

import (
	"os"

	"bpbench/cli"
	_ "bpbench/examples/mystrategy"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
