// Package tempname names this process's temporary files so that a later
// run can tell the ones a killed run left behind from the ones a live run
// is still writing, and removes the former with beneath.RemoveMatching(dir, ".", depth, tempname.Stale, descend).
//
// Two families of names are ours: spool files in the temporary directory,
// "occystrap-<kind>-<owner>-<random>[.ext]" (Create), and temporaries
// beside an output's final names, ".occystrap-tmp-<owner>-<final name>-..."
// (package sinks/internal/atomicfile and the outputs). The owner is
// "<ns>.<pid>": the process id, and ns, eight hex digits that hash the host
// name and the process's pid namespace, so that a pid is only ever compared
// with processes it can mean.
//
// A temporary is stale when its owner is of this host and pid namespace and
// no process with its pid exists (kill(pid, 0) answers ESRCH). A temporary
// of a live process, of another host or container sharing the directory,
// or of another naming scheme is never touched; a pid reused by an
// unrelated process only delays a removal until a later run. SIGKILL cannot
// be caught, so this is how its leftovers go: every run removes the stale
// temporaries of the directories it writes before it starts.
//
// Removal is package internal/beneath's, which never follows a symlink.
// Every function is safe for concurrent use.
package tempname
