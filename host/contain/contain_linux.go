package contain

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// New returns a Manager for the host. With cfg.Subreaper it makes the
// calling process a child subreaper and starts reaping adopted processes.
func New(cfg Config) (*Manager, error) {
	if cfg.RuntimeDir == "" {
		return nil, ErrNoRuntimeDir
	}
	if cfg.KillTimeout <= 0 {
		cfg.KillTimeout = 5 * time.Second
	}
	m := &Manager{cfg: cfg, mode: ModeProc, leaders: map[int]struct{}{}}
	switch parent, err := cgroupParent(); {
	case cfg.DisableCgroup:
		m.why = "disabled by configuration"
	case err != nil:
		m.why = err.Error()
	default:
		m.mode, m.cgParent = ModeCgroup, parent
	}
	if cfg.Subreaper {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("contain: become a child subreaper: %w", err)
		}
		m.stop, m.done = make(chan struct{}), make(chan struct{})
		go m.reaper()
	}
	return m, nil
}

// cgroupParent returns the directory new launch cgroups are made in: the
// host's own cgroup v2 group, if the host may create and kill groups there.
func cgroupParent() (string, error) {
	mount, root, err := cgroup2Mount()
	if err != nil {
		return "", err
	}
	own, err := ownCgroup()
	if err != nil {
		return "", err
	}
	if root != "/" {
		rel, ok := strings.CutPrefix(own, root)
		if !ok {
			return "", fmt.Errorf("contain: the host's cgroup %s is outside the mounted hierarchy %s", own, root)
		}
		own = rel
	}
	parent := filepath.Join(mount, own)
	probe := filepath.Join(parent, cgroupPrefix+"probe-"+randomHex(6))
	if err := os.Mkdir(probe, 0o755); err != nil {
		return "", fmt.Errorf("contain: cannot create a cgroup in %s: %w", parent, err)
	}
	defer os.Remove(probe)
	if _, err := os.Stat(filepath.Join(probe, "cgroup.kill")); err != nil {
		return "", fmt.Errorf("contain: the kernel has no cgroup.kill (5.14 or later): %w", err)
	}
	return parent, nil
}

// cgroup2Mount finds the cgroup v2 mount in /proc/self/mountinfo: its
// mount point and the hierarchy path mounted there.
func cgroup2Mount() (mount, root string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", fmt.Errorf("contain: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mount-point options [optional...] - fstype source super-options
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 1 || qf[0] != "cgroup2" {
			continue
		}
		if strings.Contains(","+pf[5]+",", ",ro,") {
			continue
		}
		return unescapeMount(pf[4]), unescapeMount(pf[3]), nil
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("contain: %w", err)
	}
	return "", "", errors.New("contain: no writable cgroup v2 hierarchy is mounted")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroup returns the calling process's cgroup v2 path.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("contain: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("contain: the host is in no cgroup v2 group")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Scope is the processes of one launch.
type Scope struct {
	m      *Manager
	dir    string // the launch's private dir, symbolic links resolved
	marker string // an environment entry every process of the launch starts with

	cgPath string   // ModeCgroup: the launch's cgroup
	record string   // ModeCgroup: the runtime-dir file naming it
	cgFD   *os.File // ModeCgroup: open until the leader is spawned

	mu     sync.Mutex
	leader int
	closed bool
}

// noCloneInto is set once clone3(CLONE_INTO_CGROUP) is refused; leaders
// are then moved into their cgroup just after they start.
var noCloneInto atomic.Bool

// ErrRetryStart is returned by Scope.Start when the command could not be
// spawned into its cgroup directly and must be built again and restarted
// (an exec.Cmd cannot be started twice); the next Start moves it instead.
var ErrRetryStart = errors.New("contain: retry the start without CLONE_INTO_CGROUP")

// Begin opens the scope of a launch whose private working dir is dir.
// marker, if not empty, is a NAME=value entry of the launch's environment
// (its run id) by which its processes are also recognised in ModeProc.
func (m *Manager) Begin(dir, marker string) (*Scope, error) {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	s := &Scope{m: m, dir: dir, marker: marker}
	if m.mode != ModeCgroup {
		return s, nil
	}
	name := cgroupPrefix + randomHex(8)
	s.cgPath = filepath.Join(m.cgParent, name)
	s.record = filepath.Join(m.cfg.RuntimeDir, name+recordSuffix)
	// The record first: a crash between the two leaves a record of a
	// cgroup that does not exist, which Sweep skips.
	if err := os.WriteFile(s.record, []byte(s.cgPath+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("contain: record the launch's cgroup: %w", err)
	}
	if err := os.Mkdir(s.cgPath, 0o755); err != nil {
		os.Remove(s.record)
		return nil, fmt.Errorf("contain: create the launch's cgroup: %w", err)
	}
	fd, err := os.Open(s.cgPath)
	if err != nil {
		os.Remove(s.cgPath)
		os.Remove(s.record)
		return nil, fmt.Errorf("contain: open the launch's cgroup: %w", err)
	}
	s.cgFD = fd
	return s, nil
}

func (s *Scope) start(cmd *exec.Cmd) error {
	if s.cgFD == nil {
		return cmd.Start()
	}
	if noCloneInto.Load() {
		if err := cmd.Start(); err != nil {
			return err
		}
		// The child may fork before it is moved: a window of
		// microseconds, on kernels without CLONE_INTO_CGROUP only.
		if err := os.WriteFile(filepath.Join(s.cgPath, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return fmt.Errorf("contain: move the plugin into its cgroup: %w", err)
		}
		return nil
	}
	attr := &syscall.SysProcAttr{}
	if cmd.SysProcAttr != nil {
		a := *cmd.SysProcAttr
		attr = &a
	}
	attr.UseCgroupFD, attr.CgroupFD = true, int(s.cgFD.Fd())
	cmd.SysProcAttr = attr
	err := cmd.Start()
	var errno syscall.Errno
	if err != nil && errors.As(err, &errno) && (errno == unix.ENOSYS || errno == unix.EPERM ||
		errno == unix.EOPNOTSUPP || errno == unix.EINVAL || errno == unix.EACCES) {
		noCloneInto.Store(true)
		s.m.logger().Warn("the kernel refused to start a plugin in its cgroup; plugins are moved there once started", "error", err)
		return ErrRetryStart
	}
	return err
}

// Kill SIGKILLs every process of the scope now, without waiting.
func (s *Scope) Kill() {
	if s.cgPath != "" {
		s.kill(nil)
		return
	}
	s.kill(s.members())
}

// kill SIGKILLs the scope: its cgroup at once, or else the given members.
func (s *Scope) kill(members []int) {
	if s.cgPath != "" {
		_ = os.WriteFile(filepath.Join(s.cgPath, "cgroup.kill"), []byte("1"), 0)
		return
	}
	for _, pid := range members {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

// Close kills every process of the scope, waits (at most the configured
// KillTimeout) until none is left, reaps those the host adopted, and
// removes the cgroup. The leader is left to its caller: call Close once it
// has exited (a zombie keeps its pid) and before reaping it. Idempotent.
func (s *Scope) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if s.cgFD != nil {
		s.cgFD.Close()
	}
	if s.m.mode == ModeGroup {
		return nil
	}
	candidates := s.members()
	s.kill(candidates)
	deadline := time.Now().Add(s.m.cfg.KillTimeout)
	var err error
	for wait := time.Millisecond; !s.empty(); wait = min(2*wait, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			err = fmt.Errorf("contain: processes of a launch still alive %s after SIGKILL: %v", s.m.cfg.KillTimeout, s.members())
			s.m.logger().Error("processes of a finished launch would not die", "dir", s.dir, "error", err)
			break
		}
		time.Sleep(wait)
		// A process forked between the walk and the kill.
		left := s.members()
		candidates = append(candidates, left...)
		s.kill(left)
	}
	if s.m.cfg.Subreaper {
		s.m.reapEach(candidates, s.leaderPID())
	}
	if s.cgPath != "" {
		for range 50 {
			rerr := os.Remove(s.cgPath)
			if rerr == nil || os.IsNotExist(rerr) {
				os.Remove(s.record)
				break
			}
			// EBUSY until the kernel has let go of the last task.
			time.Sleep(10 * time.Millisecond)
		}
	}
	return err
}

func (s *Scope) leaderPID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leader
}

// empty reports whether no process of the scope is left alive.
func (s *Scope) empty() bool {
	if s.cgPath != "" {
		b, err := os.ReadFile(filepath.Join(s.cgPath, "cgroup.events"))
		if err != nil {
			return os.IsNotExist(err)
		}
		return bytes.Contains(b, []byte("populated 0"))
	}
	return len(s.members()) == 0
}

// members lists the live processes of the scope, the leader excepted.
func (s *Scope) members() []int {
	if s.cgPath != "" {
		return readPIDs(filepath.Join(s.cgPath, "cgroup.procs"), s.leaderPID())
	}
	if s.m.mode != ModeProc {
		return nil
	}
	leader := s.leaderPID()
	return walk(func(p proc) bool {
		return p.pid != leader && (p.cwdIn(s.dir) || (s.marker != "" && p.hasEnv(s.marker)))
	})
}

func readPIDs(path string, except int) []int {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != except {
			out = append(out, pid)
		}
	}
	return out
}

// proc is one entry of /proc.
type proc struct {
	pid, ppid int
	state     byte
}

func readProc(pid int) (proc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return proc{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || f[0] == "" {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return proc{pid: pid, ppid: ppid, state: f[0][0]}, true
}

// cwdIn reports whether the process works in dir or below it.
func (p proc) cwdIn(dir string) bool {
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(p.pid) + "/cwd")
	if err != nil {
		return false
	}
	return cwd == dir || strings.HasPrefix(cwd, dir+"/")
}

// hasEnv reports whether the process started with entry in its
// environment.
func (p proc) hasEnv(entry string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/environ")
	if err != nil {
		return false
	}
	for e := range bytes.SplitSeq(b, []byte{0}) {
		if string(e) == entry {
			return true
		}
	}
	return false
}

// walk returns the pids of live (not zombie) processes, other than the
// caller, that match.
func walk(match func(proc) bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		p, ok := readProc(pid)
		if !ok || p.state == 'Z' || p.state == 'X' {
			continue
		}
		if match(p) {
			out = append(out, pid)
		}
	}
	return out
}

// reaper reaps adopted processes as they exit.
func (m *Manager) reaper() {
	defer close(m.done)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	defer signal.Stop(ch)
	for {
		select {
		case <-m.stop:
			return
		case <-ch:
			m.reapAdopted()
		}
	}
}

// reapAdopted waits for every zombie child of the host that is not a
// launch's leader: a process a plugin left behind that the host adopted.
func (m *Manager) reapAdopted() int {
	m.forkMu.Lock()
	defer m.forkMu.Unlock()
	self := os.Getpid()
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok := readProc(pid)
		if !ok || p.ppid != self || p.state != 'Z' || m.isLeader(pid) {
			continue
		}
		var ws unix.WaitStatus
		if got, _ := unix.Wait4(pid, &ws, unix.WNOHANG, nil); got == pid {
			n++
		}
	}
	return n
}

// reapEach reaps adopted zombies until none of pids is a zombie the host
// has or is about to adopt (one whose parent was a killed member of the
// same scope), for at most a second.
func (m *Manager) reapEach(pids []int, leader int) {
	members := map[int]bool{leader: true}
	for _, p := range pids {
		members[p] = true
	}
	self := os.Getpid()
	deadline := time.Now().Add(time.Second)
	for {
		m.reapAdopted()
		pending := false
		for _, pid := range pids {
			p, ok := readProc(pid)
			if ok && p.state == 'Z' && (p.ppid == self || members[p.ppid]) {
				pending = true
				break
			}
		}
		if !pending || time.Now().After(deadline) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Sweep kills what launches of an earlier host process of this runtime
// dir left running: every cgroup recorded there (then removed), and (by
// walking /proc) every process working inside the dir. It changes no file
// of the dir — the records stay for whoever empties it — so a boot that
// then refuses to start leaves the data dir as it was. Call it at boot,
// holding the data dir's lock, before the dir is emptied. Running it
// again finds nothing more. It returns how many processes it killed.
func Sweep(runtimeDir string, log hclog.Logger) (int, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ents, err := os.ReadDir(runtimeDir)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("contain: read the runtime dir: %w", err)
	}
	killed := 0
	var errs []error
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), recordSuffix) {
			continue
		}
		n, err := sweepCgroup(filepath.Join(runtimeDir, e.Name()))
		killed += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	dir := runtimeDir
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	for range 100 {
		left := walk(func(p proc) bool { return p.cwdIn(dir) })
		if len(left) == 0 {
			break
		}
		for _, pid := range left {
			if unix.Kill(pid, unix.SIGKILL) == nil {
				killed++
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if killed > 0 {
		log.Warn("killed processes that launches of an earlier host process left running", "processes", killed)
	}
	return killed, errors.Join(errs...)
}

// sweepCgroup kills and removes the cgroup a record names.
func sweepCgroup(record string) (int, error) {
	b, err := os.ReadFile(record)
	if err != nil {
		return 0, fmt.Errorf("contain: read %s: %w", record, err)
	}
	path := strings.TrimSpace(string(b))
	if !filepath.IsAbs(path) || !strings.HasPrefix(filepath.Base(path), cgroupPrefix) {
		return 0, fmt.Errorf("contain: %s names %q, not a connhost cgroup", record, path)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if os.IsNotExist(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("contain: %s: %w", path, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return 0, fmt.Errorf("contain: %s names %s, which is not in a cgroup v2 hierarchy", record, path)
	}
	n := len(readPIDs(filepath.Join(path, "cgroup.procs"), 0))
	_ = os.WriteFile(filepath.Join(path, "cgroup.kill"), []byte("1"), 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := os.Remove(path)
		if err == nil || os.IsNotExist(err) {
			return n, nil
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("contain: remove %s: %w", path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
