// Command bpbench runs the bpbench experiments and reports on them; see
// package bpbench/cli for the commands.
package main

import (
	"os"

	"bpbench/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
