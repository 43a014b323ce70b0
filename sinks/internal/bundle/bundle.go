package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/occystrap/occystrap/internal/pyjson"
	"github.com/occystrap/occystrap/sinks/internal/atomicfile"
)

// File names in the bundle directory.
const (
	RootFS          = "rootfs"
	ContainerConfig = "container-config.json"
	RuntimeSpec     = "config.json"
)

// template is runc's default spec as the original occystrap carries it.
const template = `{
    "ociVersion": "1.0.2-dev",
    "process": {
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=xterm"
        ],
        "cwd": "/",
        "capabilities": {
            "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "inheritable": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": true
    },
    "root": {"path": "rootfs", "readonly": true},
    "hostname": "runc",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
    ],
    "linux": {
        "resources": {"devices": [{"allow": false, "access": "rwm"}]},
        "namespaces": [
            {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
            {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
        ],
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
        ],
        "readonlyPaths": [
            "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
        ]
    }
}`

// imageConfig is the part of an image config the runtime spec takes.
type imageConfig struct {
	Config struct {
		Entrypoint []string `json:"Entrypoint"`
		Cmd        []string `json:"Cmd"`
		WorkingDir string   `json:"WorkingDir"`
	} `json:"config"`
}

// RuntimeConfig is config.json for an image whose config is cfg.
func RuntimeConfig(cfg []byte) ([]byte, error) {
	var ic imageConfig
	if err := json.Unmarshal(cfg, &ic); err != nil {
		return nil, fmt.Errorf("read image config for the runtime spec: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(template)))
	dec.UseNumber()
	var spec map[string]any
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("runtime spec template: %w", err)
	}
	proc := spec["process"].(map[string]any)
	cwd := ic.Config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	proc["cwd"] = cwd
	args := append(append([]string{}, ic.Config.Entrypoint...), ic.Config.Cmd...)
	proc["args"] = args
	proc["terminal"] = false
	spec["hostname"] = "occystrap"
	return pyjson.Indent(spec, "    ")
}

// Write writes dir/container-config.json (cfg as it is) and dir/config.json
// (RuntimeConfig), each atomically.
func Write(dir string, cfg []byte) error {
	rc, err := RuntimeConfig(cfg)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ContainerConfig), cfg); err != nil {
		return fmt.Errorf("write container config: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, RuntimeSpec), rc); err != nil {
		return fmt.Errorf("write runtime config: %w", err)
	}
	return nil
}

// Verify checks the bundle in dir: rootfs is a directory, container-config.json
// is a file and config.json a runtime spec whose root is rootfs. It returns
// the problems found, one message each.
func Verify(dir string) []string {
	var problems []string
	root := filepath.Join(dir, RootFS)
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		problems = append(problems, "Root filesystem missing: "+root)
	}
	cc := filepath.Join(dir, ContainerConfig)
	if fi, err := os.Stat(cc); err != nil || !fi.Mode().IsRegular() {
		problems = append(problems, "Config file missing: "+cc)
	}
	rs := filepath.Join(dir, RuntimeSpec)
	b, err := os.ReadFile(rs)
	if err != nil {
		return append(problems, "Runtime config missing: "+rs)
	}
	var spec struct {
		Root struct {
			Path string `json:"path"`
		} `json:"root"`
		Process struct {
			Cwd string `json:"cwd"`
		} `json:"process"`
	}
	if err := json.Unmarshal(b, &spec); err != nil || spec.Root.Path != RootFS || spec.Process.Cwd == "" {
		problems = append(problems, "Runtime config invalid: "+rs)
	}
	return problems
}
