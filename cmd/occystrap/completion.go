package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/occystrap/occystrap/stage/uri"
)

// CompletionCmd is `occystrap completion bash|zsh|fish`.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"The shell: bash, zsh or fish."`
}

// Run prints the script, generated from the command line's model: every
// command, flag, choice and scheme this binary has.
func (c *CompletionCmd) Run(kctx *kong.Context, a *app) error {
	m := completionModel(kctx.Model)
	switch c.Shell {
	case "bash":
		writeBash(a.stdout, m)
	case "zsh":
		writeZsh(a.stdout, m)
	default:
		writeFish(a.stdout, m)
	}
	return nil
}

// compFlag is a flag as the scripts see it.
type compFlag struct {
	long, short string // without dashes; short may be ""
	help        string
	value       bool     // takes a value
	choices     []string // the values it takes, when known
	files       string   // "file" or "dir" when the value is a path
	repeat      bool
	negatable   bool
}

type compCmd struct {
	name, help string
	flags      []compFlag
	args       []string // fixed words for its arguments (help, completion)
	uris       bool     // its arguments are URIs
}

type compModel struct {
	name     string
	globals  []compFlag
	commands []compCmd
	schemes  []string // "registry://", ...
}

func completionModel(app *kong.Application) compModel {
	m := compModel{name: app.Name, globals: compFlags(app.Flags)}
	var names []string
	for _, c := range commands(app) {
		names = append(names, c.Name)
	}
	for _, c := range commands(app) {
		cc := compCmd{name: c.Name, help: c.Help, flags: compFlags(c.Flags)}
		switch {
		case c.Name == "help":
			cc.args = names
		case len(c.Positional) > 0 && c.Positional[0].Enum != "":
			cc.args = strings.Split(c.Positional[0].Enum, ",")
		case len(c.Positional) > 0 && (c.Positional[0].Name == "source"):
			cc.uris = true
		}
		m.commands = append(m.commands, cc)
	}
	for _, s := range append(slices.Clone(uri.InputSchemes), uri.OutputSchemes...) {
		if !slices.Contains(m.schemes, s+"://") {
			m.schemes = append(m.schemes, s+"://")
		}
	}
	return m
}

func compFlags(fl []*kong.Flag) []compFlag {
	var out []compFlag
	for _, f := range visibleFlags(fl) {
		cf := compFlag{long: f.Name, help: firstSentence(f.Help), value: !f.IsBool() && !f.IsCounter(),
			files: f.Tag.Get("completion"), repeat: f.IsSlice(), negatable: f.Tag.Negatable != ""}
		if f.Short != 0 {
			cf.short = string(f.Short)
		}
		if f.Enum != "" {
			cf.choices = strings.Split(f.Enum, ",")
		}
		out = append(out, cf)
	}
	return out
}

// firstSentence shortens a help text for a completion menu.
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

// words lists a command's flags as typed: --long, -s, --no-long.
func flagWords(fl []compFlag) []string {
	var out []string
	for _, f := range fl {
		out = append(out, "--"+f.long)
		if f.short != "" {
			out = append(out, "-"+f.short)
		}
		if f.negatable {
			out = append(out, "--no-"+f.long)
		}
	}
	return out
}

func writeBash(w io.Writer, m compModel) {
	fn := "_" + m.name
	fmt.Fprintf(w, `# bash completion for %[1]s, generated from its command line by
# "%[1]s completion bash". Load it with: source <(%[1]s completion bash)
%[2]s() {
    local cur prev cmd="" i words=""
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    if [[ $cur == "=" ]]; then
        cur=""
    elif [[ $prev == "=" && $COMP_CWORD -ge 2 ]]; then
        prev="${COMP_WORDS[COMP_CWORD-2]}"
    fi
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            %[3]s) cmd="${COMP_WORDS[i]}"; break ;;
        esac
    done
    case "$prev" in
`, m.name, fn, strings.Join(commandNames(m), "|"))
	all := slices.Clone(m.globals)
	for _, c := range m.commands {
		all = append(all, c.flags...)
	}
	var valueOnly []string
	done := map[string]bool{}
	for _, f := range all {
		if !f.value || done[f.long] {
			continue
		}
		done[f.long] = true
		pat := "--" + f.long
		if f.short != "" {
			pat += "|-" + f.short
		}
		switch {
		case len(f.choices) > 0:
			fmt.Fprintf(w, "        %s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", pat, strings.Join(f.choices, " "))
		case f.files == "dir":
			fmt.Fprintf(w, "        %s) COMPREPLY=($(compgen -d -- \"$cur\")); return ;;\n", pat)
		case f.files == "file":
			fmt.Fprintf(w, "        %s) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n", pat)
		default:
			valueOnly = append(valueOnly, pat)
		}
	}
	if len(valueOnly) > 0 {
		fmt.Fprintf(w, "        %s) COMPREPLY=(); return ;;\n", strings.Join(valueOnly, "|"))
	}
	fmt.Fprintf(w, "    esac\n    case \"$cmd\" in\n")
	fmt.Fprintf(w, "        \"\") words=%q ;;\n", strings.Join(append(flagWords(m.globals), commandNames(m)...), " "))
	for _, c := range m.commands {
		fmt.Fprintf(w, "        %s)\n", c.name)
		fmt.Fprintf(w, "            if [[ $cur == -* ]]; then words=%q\n", strings.Join(append(flagWords(c.flags), flagWords(m.globals)...), " "))
		switch {
		case c.uris:
			fmt.Fprintf(w, "            elif [[ $cur != *:* ]]; then words=%q; compopt -o nospace 2>/dev/null\n", strings.Join(m.schemes, " "))
		case len(c.args) > 0:
			fmt.Fprintf(w, "            else words=%q\n", strings.Join(c.args, " "))
		}
		fmt.Fprintf(w, "            fi ;;\n")
	}
	fmt.Fprintf(w, `    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F %s %s
`, fn, m.name)
}

func commandNames(m compModel) []string {
	var out []string
	for _, c := range m.commands {
		out = append(out, c.name)
	}
	return out
}

// zshQuote escapes a description for an _arguments spec in single quotes.
func zshQuote(s string) string {
	return strings.NewReplacer("'", `'\''`, "[", `\[`, "]", `\]`, ":", `\:`).Replace(s)
}

func zshSpecs(fl []compFlag) []string {
	var out []string
	for _, f := range fl {
		action := ""
		if f.value {
			switch {
			case len(f.choices) > 0:
				action = ":" + f.long + ":(" + strings.Join(f.choices, " ") + ")"
			case f.files == "dir":
				action = ":" + f.long + ":_files -/"
			case f.files == "file":
				action = ":" + f.long + ":_files"
			default:
				action = ":" + f.long + ": "
			}
		}
		eq := ""
		if f.value {
			eq = "="
		}
		desc := "[" + zshQuote(f.help) + "]"
		rep := ""
		if f.repeat {
			rep = "*"
		}
		if f.short != "" {
			excl := "(-" + f.short + " --" + f.long + ")"
			if f.repeat {
				excl = ""
			}
			out = append(out, fmt.Sprintf("'%s%s'{-%s,--%s%s}'%s%s'", excl, rep, f.short, f.long, eq, desc, action))
		} else {
			out = append(out, fmt.Sprintf("'%s--%s%s%s%s'", rep, f.long, eq, desc, action))
		}
		if f.negatable {
			out = append(out, fmt.Sprintf("'--no-%s[%s]'", f.long, zshQuote("Not: "+f.help)))
		}
	}
	return out
}

func writeZsh(w io.Writer, m compModel) {
	fn := "_" + m.name
	fmt.Fprintf(w, `#compdef %[1]s
# zsh completion for %[1]s, generated from its command line by
# "%[1]s completion zsh". Load it with: source <(%[1]s completion zsh)
# (after compinit), or save it as _%[1]s in a folder of $fpath.
%[2]s() {
  local curcontext="$curcontext" state line ret=1
  typeset -A opt_args
  local -a globals
  globals=(
`, m.name, fn)
	for _, s := range zshSpecs(m.globals) {
		fmt.Fprintf(w, "    %s\n", s)
	}
	fmt.Fprintf(w, `  )
  _arguments -C $globals '1:command:->command' '*::arg:->args' && ret=0
  case $state in
    command)
      local -a cmds
      cmds=(
`)
	for _, c := range m.commands {
		fmt.Fprintf(w, "        '%s:%s'\n", c.name, zshQuote(c.help))
	}
	fmt.Fprintf(w, "      )\n      _describe -t commands '%s command' cmds && ret=0 ;;\n    args)\n      case $words[1] in\n", m.name)
	for _, c := range m.commands {
		specs := append(zshSpecs(c.flags), "$globals")
		switch {
		case c.uris:
			specs = append(specs, "'*:uri:"+fn+"_uris'")
		case len(c.args) > 0:
			specs = append(specs, "'*:"+c.name+":("+strings.Join(c.args, " ")+")'")
		}
		fmt.Fprintf(w, "        %s) _arguments %s && ret=0 ;;\n", c.name, strings.Join(specs, " "))
	}
	fmt.Fprintf(w, `      esac ;;
  esac
  return ret
}
%[1]s_uris() {
  if compset -P '*://'; then
    _files
  else
    local -a schemes
    schemes=(%[2]s)
    compadd -S '' -a schemes
  fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  %[1]s "$@"
else
  compdef %[1]s %[3]s
fi
`, fn, strings.Join(m.schemes, " "), m.name)
}

// fishQuote single-quotes s for fish.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

func writeFish(w io.Writer, m compModel) {
	fmt.Fprintf(w, "# fish completion for %[1]s, generated from its command line by\n# \"%[1]s completion fish\". Load it with: %[1]s completion fish | source\n", m.name)
	fmt.Fprintf(w, "complete -c %s -f\n", m.name)
	names := strings.Join(commandNames(m), " ")
	flag := func(cond string, f compFlag) {
		line := "complete -c " + m.name
		if cond != "" {
			line += " -n " + fishQuote(cond)
		}
		if f.short != "" {
			line += " -s " + f.short
		}
		line += " -l " + f.long
		switch {
		case !f.value:
		case len(f.choices) > 0:
			line += " -x -a " + fishQuote(strings.Join(f.choices, " "))
		case f.files == "dir":
			line += " -x -a '(__fish_complete_directories)'"
		case f.files == "file":
			line += " -r -F"
		default:
			line += " -x"
		}
		fmt.Fprintln(w, line+" -d "+fishQuote(f.help))
		if f.negatable {
			fmt.Fprintf(w, "complete -c %s -l no-%s -d %s\n", m.name, f.long, fishQuote("Not: "+f.help))
		}
	}
	for _, f := range m.globals {
		flag("", f)
	}
	for _, c := range m.commands {
		fmt.Fprintf(w, "complete -c %s -n %s -a %s -d %s\n", m.name, fishQuote("not __fish_seen_subcommand_from "+names), c.name, fishQuote(c.help))
		cond := "__fish_seen_subcommand_from " + c.name
		for _, f := range c.flags {
			flag(cond, f)
		}
		switch {
		case c.uris:
			fmt.Fprintf(w, "complete -c %s -n %s -a %s\n", m.name, fishQuote(cond), fishQuote(strings.Join(m.schemes, " ")))
		case len(c.args) > 0:
			fmt.Fprintf(w, "complete -c %s -n %s -a %s\n", m.name, fishQuote(cond), fishQuote(strings.Join(c.args, " ")))
		}
	}
}
