package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// normalizeFlags rewrites single-dash long flags (-nproc 2, -resume=dir,
// -no-progress) as double-dash ones (--nproc 2) before cobra parses them, so
// that the Go-flag style the Makefile, the scripts, sweep jobs and old habits
// use keeps working. Shorthands (-h, -v) stay as they are; so do flag values
// (-seqs -5 keeps -5), negative numbers and everything after "--". A
// one-letter long flag (codebook top -n 5) becomes --n.
func normalizeFlags(root *cobra.Command, args []string) []string {
	out := make([]string, 0, len(args))
	cmd := root
	positional := false // once a positional argument is seen, no more subcommands
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if !positional {
				if sub := findSub(cmd, a); sub != nil {
					cmd = sub
					out = append(out, a)
					continue
				}
				positional = true
			}
			out = append(out, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		name, _, hasValue := strings.Cut(name, "=")
		if !strings.HasPrefix(a, "--") {
			// -h, -5, -0.5 stay; a one-letter long flag (-n 5) does not.
			if name == "" || !isLetter(name[0]) || len(name) == 1 && lookupFlag(cmd, name) == nil {
				out = append(out, a)
				continue
			}
			a = "-" + a
		}
		out = append(out, a)
		if f := lookupFlag(cmd, name); f != nil && f.NoOptDefVal == "" && !hasValue && i+1 < len(args) {
			i++ // the flag's value, whatever it looks like
			out = append(out, args[i])
		}
	}
	return out
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// findSub finds the subcommand of c named (or aliased) name.
func findSub(c *cobra.Command, name string) *cobra.Command {
	for _, sub := range c.Commands() {
		if sub.Name() == name || sub.HasAlias(name) {
			return sub
		}
	}
	return nil
}

// lookupFlag finds a long flag of c, its own or inherited.
func lookupFlag(c *cobra.Command, name string) *pflag.Flag {
	if f := c.Flags().Lookup(name); f != nil {
		return f
	}
	for p := c; p != nil; p = p.Parent() {
		if f := p.PersistentFlags().Lookup(name); f != nil {
			return f
		}
	}
	return nil
}

// checks returns the first error of a list of flag checks.
func checks(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// intAtLeast checks an int flag's lower bound.
func intAtLeast(c *cobra.Command, name string, lo int) error {
	v, err := c.Flags().GetInt(name)
	if err != nil {
		return err
	}
	if v < lo {
		return usagef("--%s %d: must be at least %d", name, v, lo)
	}
	return nil
}

// floatIn checks that a float flag lies in [lo, hi], or in (lo, hi) when
// open.
func floatIn(c *cobra.Command, name string, lo, hi float64, open bool) error {
	v, err := c.Flags().GetFloat64(name)
	if err != nil {
		return err
	}
	if open && (v <= lo || v >= hi) {
		return usagef("--%s %v: want a number in (%v, %v)", name, v, lo, hi)
	}
	if !open && (v < lo || v > hi) {
		return usagef("--%s %v: want a number in [%v, %v]", name, v, lo, hi)
	}
	return nil
}

// oneOf checks a string flag against its allowed values.
func oneOf(c *cobra.Command, name string, allowed ...string) error {
	v, err := c.Flags().GetString(name)
	if err != nil {
		return err
	}
	var want []string
	for _, a := range allowed {
		if v == a {
			return nil
		}
		if a != "" {
			want = append(want, a)
		}
	}
	return usagef("--%s %q: want %s", name, v, strings.Join(want, " or "))
}

// overrideArgs checks key.path=value arguments.
func overrideArgs(args []string) error {
	for _, a := range args {
		if k, _, ok := strings.Cut(a, "="); !ok || strings.TrimSpace(k) == "" {
			return usagef("argument %q: want key.path=value (a recipe override)", a)
		}
	}
	return nil
}

// logger writes progress lines to the command's standard error.
func logger(c *cobra.Command) func(format string, args ...any) {
	w := c.ErrOrStderr()
	return func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
}

// environ is the environment recipes are loaded with.
func environ() []string { return os.Environ() }
