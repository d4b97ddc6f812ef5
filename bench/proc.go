package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcSample is a server process's CPU time and memory at one moment, read
// from /proc (Linux).
type ProcSample struct {
	PID     int
	CPU     time.Duration // user + system
	RSS     int64         // bytes, now
	PeakRSS int64         // bytes, the process's high-water mark (VmHWM)
	// PSS is the proportional set size now (smaps_rollup): pages shared
	// with other processes count by their share, so the PSS of a
	// multi-process server's processes (Kamailio's workers over its
	// shared memory) adds up to its real footprint where RSS would count
	// the shared pages once per process. 0 when unreadable.
	PSS int64
	// FDs is the number of open file descriptors now (/proc/PID/fd); 0
	// when unreadable (another user's process without privilege).
	FDs int
	// FDLimit is the process's soft limit on open files (RLIMIT_NOFILE,
	// /proc/PID/limits); 0 when unreadable.
	FDLimit int
}

// clockTick is USER_HZ, 100 on every Linux the project supports.
const clockTick = 100

// ReadProc samples process pid.
func ReadProc(pid int) (ProcSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("bench: process %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return ProcSample{}, fmt.Errorf("bench: /proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return ProcSample{}, fmt.Errorf("bench: /proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return ProcSample{}, fmt.Errorf("bench: /proc/%d/stat: bad CPU times", pid)
	}
	s := ProcSample{PID: pid, CPU: time.Duration(utime+stime) * time.Second / clockTick}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcSample{}, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			s.RSS = kb << 10
		case "VmHWM":
			s.PeakRSS = kb << 10
		}
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.FDs = len(fds)
	}
	if limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid)); err == nil {
		for _, line := range strings.Split(string(limits), "\n") {
			if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					s.FDLimit, _ = strconv.Atoi(f[0])
				}
				break
			}
		}
	}
	if rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		for _, line := range strings.Split(string(rollup), "\n") {
			if v, ok := strings.CutPrefix(line, "Pss:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
					s.PSS = kb << 10
				}
				break
			}
		}
	}
	return s, nil
}

// ProcUsage is what a server process spent over a run.
type ProcUsage struct {
	Name       string  `json:"name"`
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_s"`
	PeakRSS    int64   `json:"peak_rss_bytes"`
	RSSStart   int64   `json:"rss_start_bytes"`
	RSSEnd     int64   `json:"rss_end_bytes"`
	PSSEnd     int64   `json:"pss_end_bytes,omitempty"`
}

// Usage is the difference between two samples of one process.
func Usage(name string, before, after ProcSample) ProcUsage {
	return ProcUsage{Name: name, PID: after.PID, CPUSeconds: (after.CPU - before.CPU).Seconds(),
		PeakRSS: after.PeakRSS, RSSStart: before.RSS, RSSEnd: after.RSS, PSSEnd: after.PSS}
}
