package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// flags is a command's flag set, with the synopsis and the description
// that -h prints.
type flags struct {
	*flag.FlagSet
	name   string // "validate", "job retry"
	args   string // what follows the flags: "FILE", "[FILE|-]"
	about  string // one line
	stdout io.Writer
	stderr io.Writer
}

func newFlags(name, args, about string, stdout, stderr io.Writer) *flags {
	fs := flag.NewFlagSet("driftd "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse reports errors itself
	fs.Usage = func() {}
	return &flags{FlagSet: fs, name: name, args: args, about: about, stdout: stdout, stderr: stderr}
}

// parse parses args. When ok is false the command ends with code: 0 after
// -h or -help, which print the usage on stdout; exitUsage after a flag it
// does not know or cannot read, said on stderr with the usage.
func (f *flags) parse(args []string) (code int, ok bool) {
	err := f.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		f.usage(f.stdout)
		return exitOK, false
	default:
		return f.usageError("%v", err), false
	}
}

// usageError reports arguments the command cannot take, and its usage, on
// stderr.
func (f *flags) usageError(format string, a ...any) int {
	fmt.Fprintf(f.stderr, "driftd %s: %s\n\n", f.name, fmt.Sprintf(format, a...))
	f.usage(f.stderr)
	return exitUsage
}

// usage writes the synopsis, the description and each flag.
func (f *flags) usage(w io.Writer) {
	synopsis := "driftd " + f.name
	hasFlags := false
	f.VisitAll(func(*flag.Flag) { hasFlags = true })
	switch {
	case strings.HasPrefix(f.args, "-"): // a required flag: agent -config FILE
		synopsis += " " + f.args + " [flags]"
	case hasFlags:
		synopsis += " [flags]"
	}
	if f.args != "" && !strings.HasPrefix(f.args, "-") {
		synopsis += " " + f.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", synopsis, f.about)
	if !hasFlags {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// subcommands dispatches `driftd name <sub>` for commands such as job and
// plugin. help is their usage.
func subcommands(name, help string, subs map[string]func([]string) int, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, help)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, help)
		return exitOK
	}
	if run, ok := subs[args[0]]; ok {
		return run(args[1:])
	}
	fmt.Fprintf(stderr, "driftd %s: unknown subcommand %q\n\n%s", name, args[0], help)
	return exitUsage
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
