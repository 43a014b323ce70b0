package tempname

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// OutputPrefix starts every temporary made beside an output's final names.
const OutputPrefix = ".occystrap-tmp-"

// spoolPrefix starts every spool file in the temporary directory.
const spoolPrefix = "occystrap-"

var (
	ownerOnce sync.Once
	ns        string
	owner     string
)

// namespace is the hash of the host name and the pid namespace.
func namespace() string {
	ownerOnce.Do(func() {
		h := fnv.New32a()
		host, _ := os.Hostname()
		pidns, _ := os.Readlink("/proc/self/ns/pid")
		fmt.Fprintf(h, "%s\x00%s", host, pidns)
		ns = fmt.Sprintf("%08x", h.Sum32())
		owner = ns + "." + strconv.Itoa(os.Getpid())
	})
	return ns
}

// Owner is this process's owner tag, "<ns>.<pid>".
func Owner() string {
	namespace()
	return owner
}

// Create creates a new spool file in dir (the system's temporary directory
// when empty) named "occystrap-<kind>-<owner>-<random><ext>", as
// os.CreateTemp does.
func Create(dir, kind, ext string) (*os.File, error) {
	return os.CreateTemp(dir, spoolPrefix+kind+"-"+Owner()+"-*"+ext)
}

// Output is the start of the name of a temporary made beside an output's
// final name base: ".occystrap-tmp-<owner>-<base>".
func Output(base string) string { return OutputPrefix + Owner() + "-" + base }

// ownerOf returns the owner tag a temporary's name carries, if it is one of
// ours.
func ownerOf(name string) (string, bool) {
	var rest string
	switch {
	case strings.HasPrefix(name, OutputPrefix):
		rest = name[len(OutputPrefix):]
	case strings.HasPrefix(name, spoolPrefix):
		// occystrap-<kind>-<owner>-...
		kindEnd := strings.IndexByte(name[len(spoolPrefix):], '-')
		if kindEnd < 0 {
			return "", false
		}
		rest = name[len(spoolPrefix)+kindEnd+1:]
	default:
		return "", false
	}
	o, _, ok := strings.Cut(rest, "-")
	return o, ok
}

// Stale reports whether name is one of our temporaries whose owner is of
// this host and pid namespace and no longer runs.
func Stale(name string) bool {
	o, ok := ownerOf(name)
	if !ok {
		return false
	}
	n, p, ok := strings.Cut(o, ".")
	if !ok || n != namespace() || len(n) != 8 {
		return false
	}
	pid, err := strconv.Atoi(p)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}
