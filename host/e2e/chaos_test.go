package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	_ "modernc.org/sqlite"
)

// chaosCycles is how many kill -9 cycles TestChaos runs: CHAOS_CYCLES, or
// 5 (the bounded form make test runs; make chaos runs 30).
func chaosCycles(t *testing.T) int {
	t.Helper()
	s := os.Getenv("CHAOS_CYCLES")
	if s == "" {
		return 5
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("CHAOS_CYCLES=%q: want a positive count", s)
	}
	return n
}

// chaosTally counts what each cycle checked and what it found wrong.
type chaosTally struct {
	cycles, killed, orphans, notCrashed, leases, checkpointAhead, dupKeys, nextFailed, runtimeLeft int
	refusals, refusalsWrong, dataDirChanged                                                        int
}

func (c chaosTally) violations() int {
	return c.orphans + c.notCrashed + c.leases + c.checkpointAhead + c.dupKeys + c.nextFailed + c.runtimeLeft +
		c.refusalsWrong + c.dataDirChanged
}

func (c chaosTally) String() string {
	return fmt.Sprintf("chaos: cycles=%d processes_killed_with_host=%d orphans=%d not_host_crashed=%d stale_leases=%d checkpoint_ahead=%d duplicate_keys=%d next_run_failed=%d runtime_leftovers=%d refusals=%d refusals_wrong=%d data_dir_changed=%d violations=%d",
		c.cycles, c.killed, c.orphans, c.notCrashed, c.leases, c.checkpointAhead, c.dupKeys, c.nextFailed, c.runtimeLeft,
		c.refusals, c.refusalsWrong, c.dataDirChanged, c.violations())
}

var hostIDRE = regexp.MustCompile(`host_id=(host_\S+)`)

// TestChaos is the fault suite: it kills `connhost serve` with SIGKILL in
// the middle of a run, cycle after cycle, and checks after each restart
// that nothing was lost or left behind; then it damages the data dir in
// each way an operator might find it and checks that serve refuses, says
// why, and changes no byte of it. It prints one summary line.
func TestChaos(t *testing.T) {
	h := newHarness(t)
	cycles := chaosCycles(t)
	var tally chaosTally
	defer func() { fmt.Println(tally.String()) }()

	h.okLocal("keyset", "init", "--data-dir", h.dataDir, "--kek-file", h.kekFile)
	h.start()
	crashed := filepath.Join(t.TempDir(), "crashed")
	var conn apitypes.Connection
	const perCycle = 2000
	config := func(records int) string {
		return fmt.Sprintf(`{"records":%d,"record_delay_ms":1,"helpers":2}`, records)
	}
	// A yearly schedule: the demo's default (every minute) would start
	// runs of its own beside the ones each cycle triggers.
	h.okJSON(&conn, "connection", "create", "--connector", "demo", "--label", "chaos", "--config", config(perCycle),
		"--schedule", "0 0 1 1 *")
	h.ok("DEMO_TOKEN=chaos-token-0123456789\n", "credential", "set", conn.ID)
	db := openStore(t, filepath.Join(h.dataDir, "connhost.db"))

	for cycle := range cycles {
		tally.cycles++
		if cycle > 0 {
			h.ok("", "connection", "update", conn.ID, "--config", config(perCycle*(cycle+1)))
		}
		hostID := ""
		if m := hostIDRE.FindStringSubmatch(h.srv.stderr.String()); m != nil {
			hostID = m[1]
		}
		var run apitypes.Run
		h.okJSON(&run, "run", conn.ID)
		h.eventually("the run is emitting", func() (bool, string) {
			var r apitypes.Run
			h.okJSON(&r, "runs", "show", run.ID)
			return r.Status == "running" && r.Records > 0, r.Status
		})
		time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
		children := h.children()
		tally.killed += len(children)
		h.kill()
		if cycle == cycles-1 {
			// A crashed data dir (its WAL not folded in, its runtime dir
			// full) for the refusals below.
			copyDir(t, h.dataDir, crashed)
		}

		h.start()
		// What the killed host's plugin left is dead: the plugin died with
		// its host, its helpers at the sweep before the new host served.
		for _, pid := range children {
			if st, ok := procState(pid); ok && st != 'Z' {
				tally.orphans++
				t.Errorf("cycle %d: pid %d outlived its host (state %c)", cycle, pid, st)
			}
		}
		var got apitypes.Run
		h.okJSON(&got, "runs", "show", run.ID)
		if got.Status != "failed" || got.FailureCode != "host_crashed" {
			tally.notCrashed++
			t.Errorf("cycle %d: the interrupted run is %s/%s, want failed/host_crashed", cycle, got.Status, got.FailureCode)
		}
		var stale int
		mustQuery(t, db, `SELECT count(*) FROM leases WHERE holder = ?`, []any{hostID}, &stale)
		if hostID == "" || stale > 0 {
			tally.leases++
			t.Errorf("cycle %d: %d leases still held by the killed host %q", cycle, stale, hostID)
		}
		tally.checkpointAhead += checkCheckpoint(t, db, conn.ID)
		var rows, keys int
		mustQuery(t, db, `SELECT count(*), count(DISTINCT s.name || '/' || r.key) FROM records r JOIN streams s ON s.id = r.stream_id WHERE s.connection_id = ?`, []any{conn.ID}, &rows, &keys)
		if rows != keys {
			tally.dupKeys += rows - keys
			t.Errorf("cycle %d: %d records under %d keys", cycle, rows, keys)
		}
		// The next run resumes from the checkpoint and succeeds.
		res := h.cli("", "run", conn.ID, "--wait")
		if res.code != 0 {
			tally.nextFailed++
			t.Errorf("cycle %d: the next run: exit %d: %s", cycle, res.code, res.stderr)
		}
		tally.checkpointAhead += checkCheckpoint(t, db, conn.ID)
		// Nothing of a finished run is left in the runtime dir.
		if left := runtimeEntries(t, h.dataDir); len(left) > 0 {
			tally.runtimeLeft += len(left)
			t.Errorf("cycle %d: the runtime dir holds %v after the run", cycle, left)
		}
	}
	// The test's reader closes first: the host's clean stop then folds
	// the WAL into the database file.
	db.Close()
	h.stop()

	// The damaged data dirs, each from a clean stop and from a crash: each
	// start is refused with its message, and the data dir's bytes (and
	// modes) are as they were.
	kek := h.kekFile
	faults := []struct {
		name   string
		damage func(dir string)
		says   string // a regular expression
	}{
		// The database file cut in half, and its WAL with it: after a crash
		// the WAL may hold every page the cut removed, and a store whose
		// WAL has them is whole, so it alone would damage nothing.
		{"store truncated", func(d string) {
			truncateHalf(t, filepath.Join(d, "connhost.db"))
			if _, err := os.Stat(filepath.Join(d, "connhost.db-wal")); err == nil {
				truncate(t, filepath.Join(d, "connhost.db-wal"), 0)
			}
		}, "integrity check|is missing or empty"}, // the latter when the file held only its header
		{"store zeroed", func(d string) { truncate(t, filepath.Join(d, "connhost.db"), 0) }, "--new-store"},
		{"store deleted", func(d string) {
			for _, f := range []string{"connhost.db", "connhost.db-wal", "connhost.db-shm"} {
				_ = os.Remove(filepath.Join(d, f))
			}
		}, "--new-store"},
		{"keyset deleted", func(d string) { must(t, os.Remove(filepath.Join(d, "keyset.json"))) }, "--new-keyset"},
		{"keyset garbage", func(d string) {
			must(t, os.WriteFile(filepath.Join(d, "keyset.json"), []byte("{not a keyset"), 0o600))
		}, "from a backup"},
		{"keyset readable by others", func(d string) { must(t, os.Chmod(filepath.Join(d, "keyset.json"), 0o644)) }, "chmod 600"},
		{"token readable by others", func(d string) { must(t, os.Chmod(filepath.Join(d, "operator.token"), 0o644)) }, "chmod 600"},
		{"token emptied", func(d string) { truncate(t, filepath.Join(d, "operator.token"), 0) }, "delete the file"},
		{"another store's id", func(d string) {
			must(t, os.WriteFile(filepath.Join(d, "store.id"), []byte(`{"store_id":"store_other","store":"elsewhere","created_at":"2026-01-02T03:04:05Z"}`), 0o600))
		}, "belongs to store store_other"},
		// A data dir with no lock file yet (as `keyset init` leaves it),
		// served without the KEK its keyset is under: the refused start
		// must not leave a serve.lock behind either.
		{"served without its KEK, no lock file yet", func(d string) {
			_ = os.Remove(filepath.Join(d, "serve.lock"))
		}, "is encrypted, and no KEK is configured"},
	}
	noKEK := map[string]bool{"served without its KEK, no lock file yet": true}
	for _, from := range []struct{ name, dir string }{{"clean stop", h.dataDir}, {"crash", crashed}} {
		for _, fault := range faults {
			dir := filepath.Join(t.TempDir(), "var")
			copyDir(t, from.dir, dir)
			fault.damage(dir)
			before := snapshot(t, dir)
			k := kek
			if noKEK[fault.name] {
				k = ""
			}
			out, code := h.serveOnce(dir, k)
			after := snapshot(t, dir)
			tally.refusals++
			if code == 0 || !regexp.MustCompile(fault.says).MatchString(out) {
				tally.refusalsWrong++
				t.Errorf("%s after a %s: serve exit %d, want a refusal saying %q:\n%s", fault.name, from.name, code, fault.says, tail(out, 20))
			}
			if diff := changed(before, after); len(diff) > 0 {
				tally.dataDirChanged++
				t.Errorf("%s after a %s: the refusal changed %v", fault.name, from.name, diff)
			}
		}
	}
	if n := tally.violations(); n > 0 {
		t.Errorf("%d violations", n)
	}
}

// children lists the processes of this test other than the server: the
// plugins and what they started.
func (h *harness) children() []int {
	var out []int
	for _, l := range leftovers(h.marker) {
		pid, _ := strconv.Atoi(strings.Fields(l)[0])
		if pid != h.srv.cmd.Process.Pid {
			out = append(out, pid)
		}
	}
	return out
}

// kill SIGKILLs the server and waits for it to be gone.
func (h *harness) kill() {
	h.t.Helper()
	s := h.srv
	h.srv = nil
	if err := s.cmd.Process.Kill(); err != nil {
		h.t.Fatal(err)
	}
	<-s.done
	h.record("server log (killed)", s.stderr.String())
}

// serveOnce runs serve on dir, which must refuse to start, and returns
// its output and exit status.
func (h *harness) serveOnce(dir, kek string) (string, int) {
	h.t.Helper()
	s := &serverProc{done: make(chan struct{})}
	s.cmd = execServe(h.bin.connhost, dir, h.bin.pluginDir, kek)
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + h.marker, "TMPDIR=" + h.marker}
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	select {
	case <-s.done:
	case <-time.After(readyTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return "did not refuse within " + readyTimeout.String() + "\n" + s.stderr.String(), 0
	}
	out := s.stdout.String() + s.stderr.String()
	h.record("serve refusal", out)
	return out, s.cmd.ProcessState.ExitCode()
}

func procState(pid int) (byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) == 0 {
		return 0, false
	}
	return f[0][0], true
}

func openStore(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

func mustQuery(t *testing.T, db *sql.DB, q string, args []any, dest ...any) {
	t.Helper()
	if err := db.QueryRow(q, args...).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// checkCheckpoint reports 1 (and an error) if the connection's checkpoint
// is ahead of its stored records: every id below "next" must be stored.
func checkCheckpoint(t *testing.T, db *sql.DB, connID string) int {
	t.Helper()
	var state []byte
	err := db.QueryRow(`SELECT state FROM checkpoints WHERE connection_id = ?`, connID).Scan(&state)
	if err == sql.ErrNoRows {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Next int64 `json:"next"`
	}
	if err := json.Unmarshal(state, &st); err != nil {
		t.Fatalf("checkpoint %q: %v", state, err)
	}
	var below int64
	mustQuery(t, db, `SELECT count(*) FROM records r JOIN streams s ON s.id = r.stream_id WHERE s.connection_id = ? AND s.name = 'events' AND CAST(r.key AS INTEGER) < ?`,
		[]any{connID, st.Next}, &below)
	if below != st.Next {
		t.Errorf("checkpoint next=%d, but only %d of the records below it are stored", st.Next, below)
		return 1
	}
	return 0
}

// runtimeEntries lists what is in the data dir's runtime dir.
func runtimeEntries(t *testing.T, dataDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dataDir, "run"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// truncateHalf cuts the file to half its size (at least one byte off).
func truncateHalf(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	truncate(t, path, fi.Size()/2)
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	must(t, os.Truncate(path, size))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the regular files and directories of src to dst, modes
// kept.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(to, fi.Mode().Perm())
		case d.Type().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot maps every entry under dir to its mode and contents. SQLite's
// -shm file is the WAL's shared-memory index, not data: any reader, the
// read-only look a refusal takes included, writes its read marks there,
// and SQLite rebuilds it from the WAL when it is lost. Only its presence
// and mode are compared.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if d.Type().IsRegular() && !strings.HasSuffix(path, "-shm") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		out[path] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// changed lists the entries added, removed or changed between two
// snapshots.
func changed(before, after map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if v, ok := after[k]; !ok {
			out = append(out, "removed "+k)
		} else if v != before[k] {
			out = append(out, "changed "+k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[k]; !ok {
			out = append(out, "added "+k)
		}
	}
	return out
}
