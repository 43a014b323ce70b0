package dir

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// catalogLockName is the file beside catalog.json that writers in separate
// processes flock while they update the catalog.
const catalogLockName = ".catalog.json.lock"

// lockFile takes an exclusive flock on name (created if missing, never
// removed: removing a lock file races with a process that has just opened
// it) and returns the function that releases it. flock is honoured between
// processes on one machine and, on Linux, over NFS v4 (the kernel maps it
// to an NFS byte-range lock); the lock is dropped by the kernel when the
// process dies, so a killed writer never leaves the catalog locked.
func lockFile(name string) (func(), error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
