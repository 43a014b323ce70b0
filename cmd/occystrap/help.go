package main

import (
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/alecthomas/kong"
)

// HelpCmd is `occystrap help [COMMAND]`.
type HelpCmd struct {
	Command []string `arg:"" optional:"" name:"command" help:"The command to show help for."`
}

// Run prints the help of the command named, as `COMMAND --help` does; an
// unknown command is a bad command line (exit 2).
func (c *HelpCmd) Run(kctx *kong.Context) error {
	if _, err := kctx.Kong.Parse(append(c.Command, "--help")); err != nil {
		// A usage error: exit 2, reported in the asked log format.
		return usage(fmt.Errorf("%w (run '%s help' for the commands)", err, kctx.Model.Name))
	}
	return nil
}

// helpWidth is where help text wraps.
const helpWidth = 80

// printHelp is kong's help printer: the application's overview, or a
// command's usage, summary, examples, arguments and own flags first, then
// (for process) the schemes and filters, then the global flags.
func printHelp(opts kong.HelpOptions, ctx *kong.Context) error {
	app := ctx.Model
	w := ctx.Stdout
	sel := ctx.Selected()
	if opts.Summary {
		usage := "[flags] <command> [args]"
		if sel != nil {
			usage = commandUsage(sel)
		}
		fmt.Fprintf(w, "Usage: %s %s\nRun \"%s help\" for more.\n", app.Name, usage, app.Name)
		return nil
	}
	if sel == nil {
		writeAppHelp(w, app)
		return nil
	}
	fmt.Fprintf(w, "Usage: %s %s\n\n", app.Name, commandUsage(sel))
	writeWrapped(w, "", sel.Help)
	if ex := examples[sel.Name]; len(ex) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range ex {
			fmt.Fprintf(w, "  # %s\n  %s\n", e.What, e.Line)
		}
	}
	if len(sel.Positional) > 0 {
		fmt.Fprintln(w, "\nArguments:")
		var rows [][2]string
		for _, p := range sel.Positional {
			rows = append(rows, [2]string{p.Summary(), p.Help})
		}
		writeRows(w, rows)
	}
	if fl := visibleFlags(sel.Flags); len(fl) > 0 {
		fmt.Fprintln(w, "\nFlags:")
		writeFlagRows(w, fl)
	}
	switch sel.Name {
	case "process", "search", "info", "check", "ls":
		writeSchemes(w, sel.Name)
	}
	fmt.Fprintln(w, "\nGlobal flags (before or after the command):")
	writeFlagRows(w, visibleFlags(app.Flags))
	return nil
}

func writeAppHelp(w io.Writer, app *kong.Application) {
	fmt.Fprintf(w, "Usage: %s [flags] <command> [args]\n\n", app.Name)
	writeWrapped(w, "", app.Help)
	fmt.Fprintln(w, "\nCommands:")
	var rows [][2]string
	for _, c := range commands(app) {
		rows = append(rows, [2]string{c.Name, c.Help})
	}
	writeRows(w, rows)
	if dep := deprecatedCommands(app); len(dep) > 0 {
		fmt.Fprintf(w, "\n%s\n", dep[0].Group.Title)
		writeWrapped(w, "  ", dep[0].Group.Description)
		fmt.Fprintln(w)
		rows = rows[:0]
		for _, c := range dep {
			rows = append(rows, [2]string{c.Name, c.Help})
		}
		writeRows(w, rows)
	}
	fmt.Fprintln(w, "\nFlags:")
	writeFlagRows(w, visibleFlags(app.Flags))
	fmt.Fprintf(w, "\nRun \"%s help COMMAND\" (or \"%s COMMAND --help\") for a command's flags and examples.\n", app.Name, app.Name)
}

// writeSchemes lists the URI schemes (and for process the filters) with the
// options each takes.
func writeSchemes(w io.Writer, cmd string) {
	row := func(d schemeDoc) [2]string {
		h := d.What
		if d.Options != "" {
			h += ". Options: " + d.Options
		}
		return [2]string{d.Form, h}
	}
	fmt.Fprintln(w, "\nSources (URI options after ?, e.g. registry://busybox?arch=arm64):")
	var rows [][2]string
	for _, d := range inputDocs {
		if cmd == "ls" && d.Scheme != "registry" && d.Scheme != "quay" {
			continue
		}
		rows = append(rows, row(d))
	}
	writeRows(w, rows)
	if cmd != "process" {
		return
	}
	fmt.Fprintln(w, "\nDestinations:")
	rows = rows[:0]
	for _, d := range outputDocs {
		rows = append(rows, row(d))
	}
	writeRows(w, rows)
	fmt.Fprintln(w, "\nFilters (-f, repeatable, the first given applied first):")
	rows = rows[:0]
	for _, f := range filterDocs {
		rows = append(rows, [2]string{f.Form, f.What})
	}
	writeRows(w, rows)
}

// commands are the application's visible commands, the deprecated ones
// (the original's old commands, kept for scripts) apart.
func commands(app *kong.Application) []*kong.Node { return commandsIn(app, false) }

func deprecatedCommands(app *kong.Application) []*kong.Node { return commandsIn(app, true) }

func commandsIn(app *kong.Application, deprecated bool) []*kong.Node {
	var out []*kong.Node
	for _, c := range app.Children {
		if c.Type == kong.CommandNode && !c.Hidden && (c.Group != nil && c.Group.Key == legacyGroup) == deprecated {
			out = append(out, c)
		}
	}
	return out
}

// commandUsage is "NAME ARGS [flags]" for a command.
func commandUsage(c *kong.Node) string {
	s := c.Name
	for _, p := range c.Positional {
		s += " " + p.Summary()
	}
	if len(visibleFlags(c.Flags)) > 0 {
		s += " [flags]"
	}
	return s
}

func visibleFlags(fl []*kong.Flag) []*kong.Flag {
	var out []*kong.Flag
	for _, f := range fl {
		if !f.Hidden {
			out = append(out, f)
		}
	}
	return out
}

// flagForm is how a flag is written: "-j, --parallel=INT", "--[no-]verify".
func flagForm(f *kong.Flag) string {
	name := "--" + f.Name
	if f.Tag.Negatable != "" {
		name = "--[no-]" + f.Name
	}
	if f.Short != 0 {
		name = fmt.Sprintf("-%c, %s", f.Short, name)
	}
	if !f.IsBool() && !f.IsCounter() {
		name += "=" + placeholder(f)
	}
	return name
}

// placeholder names a flag's value: its placeholder tag, its choices, N
// for numbers, else its name in capitals.
func placeholder(f *kong.Flag) string {
	switch {
	case f.PlaceHolder != "":
		return f.PlaceHolder
	case f.Enum != "":
		return strings.ReplaceAll(f.Enum, ",", "|")
	}
	switch f.Target.Kind() {
	case reflect.Int, reflect.Int64, reflect.Float64, reflect.Uint, reflect.Int32:
		return "N"
	}
	return strings.ToUpper(f.Name)
}

// flagHelp is a flag's help with its choices, default and environment
// variable.
func flagHelp(f *kong.Flag) string {
	h := f.Help
	var extra []string
	if f.HasDefault && f.Default != "" && !f.IsBool() {
		extra = append(extra, "default "+f.Default)
	}
	if len(f.Envs) > 0 {
		extra = append(extra, "$"+strings.Join(f.Envs, ", $"))
	}
	if len(extra) > 0 {
		h = strings.TrimSuffix(h, ".") + " (" + strings.Join(extra, "; ") + ")."
	}
	return h
}

func writeFlagRows(w io.Writer, fl []*kong.Flag) {
	var rows [][2]string
	for _, f := range fl {
		rows = append(rows, [2]string{flagForm(f), flagHelp(f)})
	}
	writeRows(w, rows)
}

// writeRows prints two columns: the left one indented by 2, the right one
// wrapped at helpWidth beside it, or on the next lines when the left one is
// wide.
func writeRows(w io.Writer, rows [][2]string) {
	left := 0
	for _, r := range rows {
		if n := len(r[0]); n <= 30 && n > left {
			left = n
		}
	}
	col := 2 + left + 3
	for _, r := range rows {
		lines := wrap(r[1], helpWidth-col)
		if len(r[0]) > left {
			fmt.Fprintf(w, "  %s\n", r[0])
			for _, l := range lines {
				fmt.Fprintf(w, "%s%s\n", strings.Repeat(" ", col), l)
			}
			continue
		}
		for i, l := range lines {
			if i == 0 {
				fmt.Fprintf(w, "  %-*s   %s\n", left, r[0], l)
			} else {
				fmt.Fprintf(w, "%s%s\n", strings.Repeat(" ", col), l)
			}
		}
		if len(lines) == 0 {
			fmt.Fprintf(w, "  %s\n", r[0])
		}
	}
}

func writeWrapped(w io.Writer, indent, text string) {
	for _, l := range wrap(text, helpWidth-len(indent)) {
		fmt.Fprintf(w, "%s%s\n", indent, l)
	}
}

// wrap splits text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	width = max(width, 20)
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) > width:
			lines = append(lines, line)
			line = word
		default:
			line += " " + word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
