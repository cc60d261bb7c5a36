// Command hiddenlab trains and evaluates recipes, runs sweeps, and analyses
// run directories.
//
//	hiddenlab run <recipe> [key.path=value ...]   train and evaluate one recipe
//	hiddenlab run -resume <run dir>               continue an interrupted run
//	hiddenlab sweep <experiment.yaml>             run a grid of recipes and tabulate it
//	hiddenlab config <recipe> [key.path=value ...] print the resolved recipe and each value's source
//	hiddenlab help <command>                      help on any command
//
// Flags take one dash or two (-nproc 2 is --nproc 2). Exit status: 0 on
// success, 1 when a run fails, 2 for a usage error (unknown command or flag,
// wrong arguments, a flag value out of range), 130 when a run is interrupted.
//
// The Makefile wraps these: make run RECIPE=x.yaml ARGS="k=v", make sweep EXP=….
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	_ "github.com/hiddenlab/hiddenlab/families" // every model family registers itself
	"github.com/hiddenlab/hiddenlab/recipe"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
)

// version is the build's version, set by the Makefile with
// -ldflags "-X main.version=…".
var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// newRoot builds the command tree. The command list is here, in one place.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "hiddenlab <command>",
		Short: "Train, sweep and analyse hidden-feature Transformers on libtorch",
		Long: `hiddenlab trains recipes (recipes/*.yaml) into run directories, runs sweeps
(experiments/*.yaml) and analyses finished runs.

A recipe is layered, lowest precedence first: base files (configs/), the
recipe file, a stage of the recipe, environment variables
HIDDENLAB_<SECTION>__<KEY> (HIDDENLAB_TRAIN__STEPS=200), then key.path=value
arguments. "hiddenlab config <recipe>" shows where each value comes from.

Flags take one dash or two: -nproc 2 and --nproc 2 are the same.
Exit status: 0 on success, 1 when a run fails, 2 for a usage error,
130 when a run was interrupted (resume it with run -resume <run dir>).`,
		Version:                    versionString(),
		SilenceErrors:              true,
		SilenceUsage:               true,
		SuggestionsMinimumDistance: 2,
		Args:                       subcommandArgs("command"),
		RunE:                       unreachable,
		PersistentPreRunE:          checkEnvironment,
		CompletionOptions:          cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("hiddenlab {{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(
		runCmd(),
		sweepCmd(),
		configCmd(),
		codebookCmd(),
		atlasCmd(),
		mohdCmd(),
		hrpoCmd(),
		importCmd(),
		exportCmd(),
		dataCmd(),
		infoCmd(),
	)
	root.SetHelpCommand(helpCmd())
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" { // cobra's: make a missing or wrong shell a usage error
			c.Args = subcommandArgs("shell")
			c.RunE = unreachable
		}
	}
	markFailures(root)
	return root
}

func versionString() string {
	return fmt.Sprintf("%s (libtorch %s, %s, %s/%s)", version, torch.Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// run executes the command line args and returns the exit status: 0, 1 for a
// failed run, 2 for a usage error, 130 for an interrupted run.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(normalizeFlags(root, args))
	cmd, err := root.ExecuteC()
	code := exitCode(err)
	switch {
	case code == 2:
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", cmd.CommandPath(), strings.TrimRight(err.Error(), "\n"), cmd.CommandPath())
	case err != nil:
		fmt.Fprintf(stderr, "hiddenlab: %s\n", strings.TrimRight(err.Error(), "\n"))
	}
	return code
}

// exitCode maps a command's error to the exit status: 0 for none, 130 for
// an interrupted run, 1 for other failures of a command that started, 2 for
// everything else (usage errors, and whatever cobra reports itself).
func exitCode(err error) int {
	var f *failure
	switch {
	case err == nil:
		return 0
	case errors.As(err, &f) && errors.Is(err, runner.ErrInterrupted):
		return 130
	case errors.As(err, &f):
		return 1
	}
	return 2
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return &usageError{fmt.Errorf(format, args...)} }

// failure is an error of a command that started: exit status 1 (130 for an
// interrupted run).
type failure struct{ err error }

func (e *failure) Error() string { return e.err.Error() }
func (e *failure) Unwrap() error { return e.err }

// markFailures wraps every command's run functions so that their errors
// count as failures unless they are usage errors. Everything cobra reports
// itself (unknown commands and flags, bad flag values, argument checks) is a
// usage error.
func markFailures(c *cobra.Command) {
	wrap := func(f func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
		if f == nil {
			return nil
		}
		return func(c *cobra.Command, args []string) error {
			err := f(c, args)
			var u *usageError
			if err == nil || errors.As(err, &u) {
				return err
			}
			return &failure{err}
		}
	}
	c.RunE = wrap(c.RunE)
	c.PersistentPreRunE = wrap(c.PersistentPreRunE)
	for _, sub := range c.Commands() {
		markFailures(sub)
	}
}

// checkEnvironment rejects unknown HIDDENLAB_ variables before any command
// runs (shell completion and help excepted).
func checkEnvironment(c *cobra.Command, _ []string) error {
	for p := c; p != nil; p = p.Parent() {
		switch p.Name() {
		case "completion", "help", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
			return nil
		}
	}
	return recipe.CheckEnv(os.Environ())
}

// subcommandArgs is the argument check of a command that only groups
// others: a missing or unknown subcommand is a usage error with suggestions.
func subcommandArgs(noun string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		var names []string
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		if len(args) == 0 {
			return usagef("missing %s; one of: %s", noun, strings.Join(names, ", "))
		}
		msg := fmt.Sprintf("unknown %s %q (want one of: %s)", noun, args[0], strings.Join(names, ", "))
		if c.SuggestionsMinimumDistance <= 0 {
			c.SuggestionsMinimumDistance = 2
		}
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return usagef("%s", msg)
	}
}

// unreachable is the run function of grouping commands: their argument
// check always fails first, but a command needs one to be runnable (cobra
// prints help and succeeds for commands that are not).
func unreachable(c *cobra.Command, args []string) error {
	return usagef("%s: no such command", c.CommandPath())
}

// helpCmd is "hiddenlab help [command]": an unknown topic is a usage error.
func helpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help provides help for any command: hiddenlab help codebook top.",
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil {
				return usagef("%v", err)
			}
			if len(rest) > 0 && target.HasAvailableSubCommands() {
				return subcommandArgs("help topic")(target, rest)
			}
			if len(rest) > 0 {
				return usagef("unknown help topic %q (%s has no subcommands)", strings.Join(args, " "), target.CommandPath())
			}
			target.InitDefaultHelpFlag() // as cobra's help command does, so the flags list -h
			target.InitDefaultVersionFlag()
			return target.Help()
		},
	}
}
