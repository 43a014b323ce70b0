package inflate

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysProcAttr has the kernel kill igzip if occystrap dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// growPipe raises a pipe's buffer to 1 MiB (fewer context switches); a
// refusal leaves the default. It goes through SyscallConn, as Fd would put
// the pipe in blocking mode.
func growPipe(f *os.File) {
	sc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = sc.Control(func(fd uintptr) {
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, 1<<20)
	})
}
