// Package server is connhost's daemon: the one place the host is wired
// together, top to bottom, and run until its context ends.
//
// Run, in order:
//
//  0. before anything is created: the plugin dir is checked (one that does
//     not exist or cannot be read refuses the start), the TLS files are
//     loaded when given, and the listener is bound (a busy address refuses
//     the start) and answers at once — /healthz "starting", /readyz and
//     every other request 503 unavailable until step 6;
//  1. the data dir (created 0700, and locked: one host per data dir; a
//     refused start removes the lock file, and the empty data dir, that
//     it created), the
//     store's location (--store: the SQLite file in the data dir by
//     default, locked too — one host per SQLite store — or a PostgreSQL
//     database several hosts share), the runtime dir (<data-dir>/run,
//     0700, swept of what a crashed process left: every plugin's socket
//     dir lives there) and the logger (hclog, text or JSON);
//  2. the keyset: under the configured KEK (env variable, file or KMS
//     URI), or — none configured — the dev-mode cleartext keyset (0600),
//     with a loud warning on every start; loaded, or created on first
//     start;
//  3. the store (migrated; on PostgreSQL under an advisory lock, with the
//     notification bus of its hosts), and the operator token
//     (<data-dir>/operator.token or --token-file, 0600, 32 random bytes in
//     hex, generated on first start and never logged);
//  4. the launcher and the catalog: every plugin in the plugin dir is
//     described once (8 at a time, each within PluginDescribeTimeout) and
//     pinned by checksum, registered in the store, and a new or changed
//     binary is audited (connector.register, connector.reregister); a
//     rescan (POST /v1/connectors/rescan, SIGHUP) does the same later and
//     swaps the catalog, runs in flight keeping their binary;
//  5. the broker (the only decrypter, over a keyset holder that a rotation
//     swaps atomically, and reloads when another host rotates it), the
//     runner (the single launch seam; a random host id per process), the
//     dispatcher (the occurrence queue's bounded worker pool), the
//     scheduler (the clock) on the real clock, the control service, boot
//     enrollment — logged as one summary line, "enrollment done:
//     connections=N enrolled=… skipped_env=…" — then the host's membership (register,
//     reap dead hosts; on SQLite every earlier process of the store), the
//     runner's recovery of what an older process left, and the scheduler,
//     dispatcher and heartbeats start;
//  6. Prometheus metrics, the HTTP API and the gRPC admin service (with
//     server reflection) on the one listener, in cleartext or TLS (HTTP/2
//     requests with content-type application/grpc go to gRPC; cleartext
//     HTTP/2 is accepted for them); then /readyz turns ready.
//
// When ctx ends (the CLI cancels it on SIGINT or SIGTERM) Run stops
// accepting connections, stops the scheduler, hands the work back (no more
// claims; claimed occurrences that had not started go back to the queue),
// shuts the runner down (runs end cancelled with host_shutdown, their
// children killed, their leases released, and are queued again as
// retries; followers of a run receive its end), leaves the cluster, ends
// the remaining event streams, waits for in-flight requests, and closes the
// store — all within ShutdownTimeout. Nothing reads stdin. SIGHUP, from
// Run's start to its end, never stops the host: once it is ready, each
// one re-scans the plugin dir.
package server

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connhost/connhost/host/api"
	"github.com/connhost/connhost/host/api/adminrpc"
	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/cluster"
	"github.com/connhost/connhost/host/console"
	"github.com/connhost/connhost/host/contain"
	"github.com/connhost/connhost/host/control"
	"github.com/connhost/connhost/host/dispatch"
	"github.com/connhost/connhost/host/enroll"
	"github.com/connhost/connhost/host/explain"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/health"
	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/host/metrics"
	"github.com/connhost/connhost/host/notify"
	"github.com/connhost/connhost/host/runevents"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/postgres"
	"github.com/connhost/connhost/host/store/sqlite"
	"github.com/connhost/connhost/host/version"
	"github.com/connhost/connhost/keysets"
	"github.com/hashicorp/go-hclog"
	"github.com/oklog/ulid/v2"
	"google.golang.org/grpc"
)

// Run starts the host with cfg (after Defaults and Validate) and blocks
// until ctx is done, then shuts down gracefully within ShutdownTimeout. It
// returns nil after a clean shutdown. A refused start is returned, not
// logged: the caller reports it once.
func Run(ctx context.Context, cfg Config) error {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := newLogger(&cfg)
	hup, stopHup := hangups()
	defer stopHup()
	h, err := assemble(ctx, &cfg, log)
	if err != nil {
		// The caller reports it (the CLI prints it once, on stderr).
		return err
	}
	return h.serve(ctx, hup)
}

// Store is what the host needs of its store: the whole model and Close.
type Store interface {
	store.Store
}

// host is an assembled host.
type host struct {
	cfg  *Config
	log  hclog.Logger
	id   string
	ln   net.Listener
	tls  bool
	gate *gate
	// serveErr receives what http.Server.Serve returned.
	serveErr chan error
	// scan is the catalog's options, for rescans.
	scan    catalog.Options
	rescan  *rescanner
	store   Store
	bus     *notify.Postgres // nil on a store this host owns alone
	relay   *notify.Relay
	runner  *runner.Runner
	sched   *schedule.Scheduler
	disp    *dispatch.Dispatcher
	member  *cluster.Member
	api     *api.API
	admin   *adminrpc.Service
	grpc    *grpc.Server
	http    *http.Server
	unlock  func()
	contain *contain.Manager
	// health keeps the connections' health report (metrics, the
	// attention summary in the log).
	health     *health.Monitor
	healthLoop *healthLoop
	// runtimeLink is the short link to the runtime dir and its target,
	// when plugins reach the dir through one; removed at shutdown.
	runtimeLink [2]string
}

// assemble builds every part of the host in dependency order. On error
// it undoes what it built.
func assemble(ctx context.Context, cfg *Config, log hclog.Logger) (_ *host, err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	h := &host{cfg: cfg, log: log, id: "host_" + ulid.Make().String(), unlock: func() {}}
	clock := offsetClock(cfg.ClockOffset)
	if cfg.ClockOffset != 0 {
		log.Warn("this host's clock is offset (a clock-skew test setting)", "offset", cfg.ClockOffset)
	}

	// 0. Before anything is created: the plugin dir, the TLS files and
	// the listener (a busy port leaves a new data dir absent). From here
	// the listener answers: /readyz is 503 until the host is assembled.
	kek, err := cfg.KEKSource()
	if err != nil {
		return nil, err
	}
	pluginDir, pluginDirEmpty, err := checkPluginDir(cfg.PluginDir)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	h.ln, err = listen(cfg.Listen, tlsCfg)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = h.ln.Close() })
	addr := h.ln.Addr().String()
	h.tls = tlsCfg != nil
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)            // over TLS, negotiated by ALPN
	protocols.SetUnencryptedHTTP2(true) // gRPC clients speak cleartext HTTP/2
	h.gate = &gate{}
	h.http = &http.Server{
		Handler:           h.gate,
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	h.serveErr = make(chan error, 1)
	go func() { h.serveErr <- h.http.Serve(h.ln) }()
	undo = append(undo, func() { _ = h.http.Close() })
	log.Info("listening; not ready until the host is assembled", "addr", addr, "tls", h.tls)
	if cfg.OnListen != nil {
		cfg.OnListen(addr)
	}

	// 1. Data dir, the store's location.
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("server: data dir: %w", err)
	}
	if _, err := os.Stat(dataDir); errors.Is(err, os.ErrNotExist) {
		// A refused start leaves no empty data dir behind (Remove
		// keeps one that is not empty).
		undo = append(undo, func() { _ = os.Remove(dataDir) })
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: create data dir: %w", err)
	}
	cfg.DataDir = dataDir
	loc, err := cfg.StoreLocation()
	if err != nil {
		return nil, err
	}
	// One host per data dir (its runtime dir is swept at start), and one
	// host per SQLite store: a second serve would reclaim the first one's
	// work as a crashed host's.
	// A refused start removes the lock files it created, still holding
	// their locks (lockDataDir trusts no lock on a removed file), so the
	// refusal leaves the data dir as it found it.
	var locks []*dirLock
	h.unlock = func() {
		for _, l := range locks {
			l.release()
		}
	}
	undo = append(undo, func() { h.unlock() })
	undo = append(undo, func() {
		for _, l := range locks {
			l.dropCreated()
		}
	})
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return nil, err
	}
	locks = append(locks, lock)
	if loc.Kind == StoreSQLite {
		if loc.Path, err = filepath.Abs(loc.Path); err != nil {
			return nil, fmt.Errorf("server: store path: %w", err)
		}
		if storeDir := filepath.Dir(loc.Path); storeDir != dataDir {
			lock, err := lockDataDir(storeDir)
			if err != nil {
				return nil, err
			}
			locks = append(locks, lock)
		}
	}
	// Kill what launches of a host of this data dir that died left
	// running (their files stay until the runtime dir is swept, once
	// every boot check has passed: a refused start changes no byte).
	if _, err := contain.Sweep(filepath.Join(dataDir, RuntimeDirName), log.Named("contain")); err != nil {
		log.Warn("could not fully sweep what an earlier process left", "error", err)
	}
	if fi, err := os.Stat(dataDir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the data dir is accessible by group or others; it holds the store, the keyset and the operator token",
			"path", dataDir, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	log.Info("starting connhost", "version", version.Version, "host_id", h.id, "data_dir", dataDir, "store", loc.Redacted)
	if pluginDirEmpty {
		log.Warn("the plugin dir is empty: no connector is catalogued until plugins are put there and rescanned (connhost connector rescan, or SIGHUP)",
			"plugin_dir", pluginDir)
	}

	// 2. The store, checked against the data dir before anything is
	// written; then the keyset, created only where no credential needs
	// the one that is missing.
	kcfg := keysets.Config{Path: cfg.KeysetPath(), KEK: kek, Logger: log.Named("keyset")}
	ks, err := keysets.Load(ctx, kcfg)
	keysetMissing := errors.Is(err, keysets.ErrNotFound)
	switch {
	case errors.Is(err, keysets.ErrInvalidKeyset):
		return nil, fmt.Errorf("server: load keyset: %w: restore %s from a backup (it holds the keys every stored credential is sealed under); only if the store holds no credential, delete it and the next start makes a new one",
			err, kcfg.Path)
	case errors.Is(err, keysets.ErrKEKRequired):
		return nil, kekRequiredErr(kcfg.Path, dataDir, cfg.KEKEnv)
	case errors.Is(err, keysets.ErrWrongKEK):
		return nil, wrongKEKErr(err, dataDir, cfg)
	case err != nil && !keysetMissing:
		return nil, fmt.Errorf("server: load keyset: %w", err)
	case !keysetMissing && cfg.NewKeyset:
		return nil, fmt.Errorf("%w: --new-keyset creates a keyset where none is, and %s exists; drop the flag to use it", ErrInvalidConfig, kcfg.Path)
	case keysetMissing:
		// The keyset is created after the store opens: its KEK must be
		// usable before anything is written (a missing --kek-file, an
		// unserved --kms-uri refuse a new data dir with no file made).
		if err := keysets.CheckKEK(ctx, kek); err != nil {
			return nil, fmt.Errorf("server: create keyset: %w", err)
		}
	}
	mk, hasMarker, err := readMarker(dataDir)
	if err != nil {
		return nil, err
	}
	// A token file that exists must be usable (private, not empty) before
	// the store is opened; a missing one is created further on.
	if err := checkTokenFile(cfg.TokenPath()); err != nil {
		return nil, err
	}
	if loc.Kind == StoreSQLite {
		if err := checkSQLiteFile(cfg, loc, mk, hasMarker); err != nil {
			return nil, err
		}
		// Every refusal that needs the store's contents is decided on a
		// read-only look first: opening the file for writing would fold
		// its WAL in on close, and a refusal must change no byte.
		in, err := sqlite.Preflight(ctx, loc.Path)
		if err != nil {
			return nil, err
		}
		if in.Exists {
			if err := identityRefusal(cfg, loc, mk, hasMarker, in.StoreID, in.StoreID != ""); err != nil {
				return nil, err
			}
		}
		if keysetMissing && len(in.KeyIDs) > 0 && !cfg.NewKeyset {
			return nil, keysetMissingErr(kcfg.Path, in.KeyIDs)
		}
	}
	st, bus, err := openStore(ctx, loc, h.id, clock.Now, log)
	if err != nil {
		return nil, err
	}
	h.store, h.bus = st, bus
	undo = append(undo, func() { _ = st.Close() })
	storeID, err := reconcileIdentity(ctx, st, cfg, loc, mk, hasMarker, clock.Now())
	if err != nil {
		return nil, err
	}
	created := false
	if keysetMissing {
		ids, err := st.CredentialKeyIDs(ctx)
		if err != nil {
			return nil, err
		}
		if len(ids) > 0 && !cfg.NewKeyset {
			return nil, keysetMissingErr(kcfg.Path, ids)
		}
		if ks, err = keysets.Create(ctx, kcfg); err != nil {
			return nil, fmt.Errorf("server: create keyset: %w", err)
		}
		created = true
	}
	log.Info("store ready", "store", loc.Redacted, "store_id", storeID)
	log.Info("keyset ready", "path", kcfg.Path, "created", created, "kek", kek.String(), "primary_key_id", ks.PrimaryKeyID())
	if kek.Kind() == keysets.KEKKindEnv {
		log.Warn(keysets.EnvAdvice, "kek", kek.String())
	}
	ring := &keyring{cfg: kcfg, log: log.Named("keyset"), use: st}
	ring.cur.Store(ks)

	// 3. The operator token.
	token, created, err := ensureToken(cfg.TokenPath())
	if err != nil {
		return nil, err
	}
	log.Info("operator token ready", "path", cfg.TokenPath(), "created", created)
	al := &audit.Log{Store: st, Logger: log.Named("audit")}
	ring.audit = al

	// 4. Launcher, catalog, connector registrations.
	runtimeDir, err := prepareRuntimeDir(dataDir, log)
	if err != nil {
		return nil, err
	}
	if real := filepath.Join(dataDir, RuntimeDirName); runtimeDir != real {
		h.runtimeLink = [2]string{runtimeDir, real}
		undo = append(undo, func() { removeShortLink(runtimeDir, real) })
	}
	h.contain, err = contain.New(contain.Config{RuntimeDir: filepath.Join(dataDir, RuntimeDirName), Subreaper: true,
		Logger: log.Named("contain")})
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = h.contain.Close() })
	if mode, why := h.contain.Mode(); why != "" {
		log.Info("plugin containment", "mode", mode, "cgroup_unavailable", why)
	} else {
		log.Info("plugin containment", "mode", mode)
	}
	environ := withholdHostSecrets(cfg.Environ, cfg.KEKEnv)
	m := metrics.New()
	l, err := launch.New(launch.Config{Logger: log.Named("plugin"), Environ: environ, RunTimeout: cfg.RunTimeout,
		TempDir: runtimeDir, ObserveStart: m.ObserveLaunch, Contain: h.contain})
	if err != nil {
		return nil, err
	}
	// Scan logs every file it rejects (connector list --all lists them);
	// the host serves what loaded.
	// Scan pins each binary once (copies for systems without memfd go to
	// the runtime dir); a launch that finds a catalogued binary changed
	// on disk is refused, and the change audited once.
	h.scan = catalog.Options{CheckSchedule: schedule.Check, Logger: log.Named("catalog"), DescribeTimeout: cfg.PluginDescribeTimeout,
		ImageDir: runtimeDir, OnChange: auditPluginChange(al)}
	cat, _ := catalog.Scan(ctx, pluginDir, l, h.scan)
	if _, err := registerConnectors(ctx, st, cat, al, audit.ActorHost, log); err != nil {
		return nil, err
	}

	// 5. Broker, runner, membership, recovery, dispatch, scheduler,
	// control, enrollment.
	var nb notify.Bus = notify.None{}
	hub := &runevents.Hub{}
	if bus != nil {
		nb = bus
		h.relay = notify.NewRelay(bus, hub, log.Named("notify"))
		undo = append(undo, h.relay.Close)
	}
	lookup := envLookup(environ)
	b, err := broker.New(broker.Config{Store: st, Keyset: ring, HostEnv: lookup,
		AllowHostEnv: cfg.AllowHostEnvCredentials, Audit: al, Logger: log.Named("broker")})
	if err != nil {
		return nil, err
	}
	ring.broker, ring.bus = b, nb
	// Health reads what the enrollment gate reads: presence only, never
	// decrypting; the host env through the broker's lookup and setting.
	assessor := &health.Assessor{Manifests: control.Manifests{Catalog: cat}, Credentials: st,
		KeyHeld: func(id uint32) bool { return ring.Info().Holds(id) }, HostEnv: lookup, AllowHostEnv: cfg.AllowHostEnvCredentials}
	h.health = health.NewMonitor(health.MonitorConfig{Store: st, Assessor: assessor, Logger: log.Named("health"),
		OnReport: func(r health.Report) { m.ConnectionHealth(r.Counts) }})
	nb.Subscribe(notify.Connection, func(string) { h.health.Poke() })
	// A run that holds its connection re-evaluates it at once (its job
	// goes, the report says why, the other hosts are told); control is
	// built after the runner, so the hook reaches it through ctlRef.
	var ctlRef atomic.Pointer[control.Service]
	rcfg := runner.Config{Store: st, Catalog: cat, Broker: b, Launcher: l, HostID: h.id,
		HostEnv: environ, RunTimeout: cfg.RunTimeout, Events: hub, Bus: nb, Observer: healthObserver{Observer: m, poke: h.health.Poke},
		Audit: al, Logger: log.Named("runner"), Now: clock.Now, BackoffCap: cfg.BackoffCap,
		OnHold: func(ctx context.Context, id string) {
			if ctl := ctlRef.Load(); ctl != nil {
				ctl.Reevaluate(ctx, id)
			}
		}}
	if h.relay != nil {
		rcfg.Relay = h.relay
	}
	r, err := runner.New(rcfg)
	if err != nil {
		return nil, err
	}
	h.runner = r
	undo = append(undo, func() {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		_ = r.Shutdown(sctx)
	})
	alone := loc.Kind == StoreSQLite
	h.member, err = cluster.New(cluster.Config{Store: st, HostID: h.id, Addr: addr, Version: version.Version,
		Alone: alone, TTL: cfg.HostTTL, MaxClockSkew: cfg.MaxClockSkew, Clock: clock,
		RunsActive: func() int { return len(r.Active()) }, Ended: r.Ended,
		OnLost: func() {
			r.CancelAll(failure.New(failure.HostCrashed, "the other hosts declared this host dead and took its runs back"))
		},
		Audit: al, Logger: log.Named("cluster")})
	if err != nil {
		return nil, err
	}
	dcfg := dispatch.Config{Store: st, Launcher: r.ForDispatch(), HostID: h.id,
		Workers: int(cfg.MaxConcurrentRuns), Clock: clock, Bus: nb, Observer: m, Logger: log.Named("dispatch")}
	if alone {
		// Nobody else could take what this host claims ahead.
		dcfg.Prefetch = dispatch.PrefetchAll
	} else {
		// The hosts share out the recording of ticks (and with it the
		// work); a backup waits out twice the skew, and a second more.
		dcfg.Primary = h.member.Primary
		dcfg.BackupDelay = 2*cfg.MaxClockSkew + time.Second
	}
	h.disp, err = dispatch.New(dcfg)
	if err != nil {
		return nil, err
	}
	// A job enrolled records the instants of the last skew window (a
	// host behind may not have recorded them yet); on a shared store also
	// those only a backup may hold yet, so a host that joins, or takes a
	// connection over, never writes an instant ahead of an older one.
	catchUp := cfg.MaxClockSkew
	if !alone {
		catchUp += dcfg.BackupDelay
	}
	sched, err := schedule.New(schedule.Config{Clock: clock, CatchUp: catchUp, Logger: log.Named("schedule"), Observer: m}, h.disp)
	if err != nil {
		return nil, err
	}
	h.sched = sched
	gate := &enroll.Gate{Presence: broker.Presence{Store: st, Keys: ring}, Manifests: control.Manifests{Catalog: cat},
		HostEnv: lookup, AllowHostEnv: cfg.AllowHostEnvCredentials, CheckSpec: schedule.Check}
	ctl, err := control.New(control.Config{Store: st, Catalog: cat, Broker: b, Runner: r, Queue: h.disp, Scheduler: sched,
		Gate: gate, Bus: nb, Audit: al, Logger: log.Named("control")})
	if err != nil {
		return nil, err
	}
	ctlRef.Store(ctl)
	if bus != nil {
		bus.Subscribe(notify.Keyset, func(string) { go ring.Reload(context.Background()) })
		bus.OnReconnect(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := ctl.Resync(ctx); err != nil {
				log.Error("resync connections after a lost notification connection", "error", err)
			}
		})
		if err := bus.Start(ctx); err != nil {
			return nil, err
		}
		undo = append(undo, func() { _ = bus.Close() })
	}
	// A connector back, or host env names provided, since the last
	// start release the holds their absence caused.
	if ids, err := ctl.ReleaseAddressedHolds(ctx, audit.ActorHost); err != nil {
		log.Error("release addressed holds", "error", err)
	} else if len(ids) > 0 {
		log.Info("holds whose cause is gone released", "connections", len(ids))
	}
	entries, err := ctl.Boot(ctx)
	if err != nil {
		return nil, fmt.Errorf("server: boot enrollment: %w", err)
	}
	log.Info("enrollment done", enrollmentFields(entries)...)
	// The attention summary, once at boot; the monitor logs it again
	// whenever the list changes.
	if _, err := h.health.Refresh(ctx); err != nil {
		log.Warn("could not derive the connections' health at boot", "error", err)
	}
	// Join only now, every schedule enrolled and its recent instants
	// buffered: the other hosts hand this host its share of the recording
	// as soon as they see it.
	if err := h.member.Join(ctx); err != nil {
		return nil, err
	}
	undo = append(undo, func() {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		_ = h.member.Leave(sctx)
	})
	if alone {
		// Every lease and unfinished run predates this process.
		if n, err := r.Recover(ctx); err != nil {
			return nil, fmt.Errorf("server: recover runs: %w", err)
		} else if n > 0 {
			log.Warn("runs left unfinished by a previous process marked failed", "runs", n, "failure_code", "host_crashed")
		}
	}
	sched.Start()
	h.disp.Start()
	h.member.Start()
	undo = append(undo, func() {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		_ = sched.Shutdown(sctx)
		h.disp.Stop()
		_ = r.Shutdown(sctx)
		_ = h.disp.Wait(sctx)
	})

	// 6. Metrics, HTTP API, gRPC admin; rescans (the API's and SIGHUP's).
	h.rescan = &rescanner{dir: pluginDir, d: l, opts: h.scan, cat: cat, st: st, al: al, ctl: ctl, log: log.Named("catalog"),
		changed: h.health.Poke}
	// Explain gets presence only: credential metadata, the keyset's key
	// ids, the host env the children get; never the keyset itself.
	manifests := control.Manifests{Catalog: cat}
	explainer, err := explain.New(explain.Config{Store: st, Manifests: manifests, Gate: gate,
		Health:    assessor,
		Predictor: broker.Predictor{Credentials: st, Keys: ring, HostEnv: lookup, AllowHostEnv: cfg.AllowHostEnvCredentials},
		HostEnv:   environ})
	if err != nil {
		return nil, err
	}
	// The console calls the API's handler in process (set just below),
	// poking the health monitor on writes as a remote call does.
	var apiHandler http.Handler
	con, err := console.New(console.Config{
		API:   pokeOnWrite(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { apiHandler.ServeHTTP(w, r) }), h.health.Poke),
		Token: token, Secure: h.tls, SessionLifetime: cfg.UISessionLifetime, Now: clock.Now, Logger: log.Named("console")})
	if err != nil {
		return nil, err
	}
	h.api, err = api.New(api.Config{Token: token, Store: st, Control: ctl, Catalog: cat, Runs: r, Schedule: sched,
		Keyset: ring, Rescanner: h.rescan, Health: assessor, Explainer: explainer, Console: con, Metrics: m.Handler(), Observer: m, Logger: log.Named("http")})
	if err != nil {
		return nil, err
	}
	apiHandler = h.api.Handler()
	h.admin, err = adminrpc.New(adminrpc.Config{Token: token, Control: ctl, Store: st, Runs: r, Observer: m, Logger: log.Named("grpc")})
	if err != nil {
		return nil, err
	}
	h.grpc = h.admin.Server()
	h.healthLoop = startHealth(h.health)
	undo = append(undo, h.healthLoop.stop)
	h.gate.open(pokeOnWrite(route(h.grpc, h.api.Handler(), con.Handler()), h.health.Poke))
	return h, nil
}

// openStore opens the store loc names, and for a shared (PostgreSQL)
// store the notification bus of its hosts.
func openStore(ctx context.Context, loc StoreLocation, hostID string, now func() time.Time, log hclog.Logger) (Store, *notify.Postgres, error) {
	slog := newSlog(log.Named("store"))
	switch loc.Kind {
	case StorePostgres:
		st, err := postgres.Open(ctx, postgres.Config{URL: loc.URL, Now: now, Logger: slog})
		if err != nil {
			return nil, nil, err
		}
		bus, err := notify.NewPostgres(notify.PostgresConfig{Origin: hostID, DB: st.DB(), Conn: st.ConnConfig(), Namespace: st.Schema(), Logger: log.Named("notify")})
		if err != nil {
			_ = st.Close()
			return nil, nil, err
		}
		log.Info("store opened", "store", loc.Redacted, "schema_version", st.SchemaVersion())
		return st, bus, nil
	default:
		// assemble ran sqlite.Preflight (quick_check included) just before.
		st, err := sqlite.Open(ctx, sqlite.Config{DataDir: filepath.Dir(loc.Path), FileName: filepath.Base(loc.Path), Now: now, Logger: slog,
			Checked: true})
		if err != nil {
			return nil, nil, err
		}
		return st, nil, nil
	}
}

// keysetMissingErr refuses a start whose keyset is missing while the
// store holds credentials sealed under ids.
func keysetMissingErr(path string, ids []uint32) error {
	return fmt.Errorf("%w: %s does not exist, but the store holds credentials sealed under key ids %v: restore the keyset file (with the KEK it is sealed under) from a backup, or run `connhost serve --new-keyset` once to start a new keyset on purpose (those credentials stay undecryptable: capture them again)",
		ErrKeysetMissing, path, ids)
}

// route sends gRPC requests to the gRPC server, /ui/ to the web console
// and everything else to the HTTP API.
func route(g, rest, ui http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc"):
			g.ServeHTTP(w, r)
		case console.Owns(r.URL.Path):
			ui.ServeHTTP(w, r)
		default:
			rest.ServeHTTP(w, r)
		}
	})
}

// serve serves (the listener has answered since assemble bound it) until
// ctx is done, then shuts down.
func (h *host) serve(ctx context.Context, hup <-chan os.Signal) error {
	addr := h.ln.Addr().String()
	if host, _, _ := net.SplitHostPort(addr); !isLoopback(host) && !h.tls {
		h.log.Warn("the API listens beyond loopback in cleartext; serve with --tls-cert and --tls-key", "addr", addr)
	}
	h.log.Info("ready", "addr", addr, "tls", h.tls, "http", "/v1", "grpc", "connhost.admin.v1.AdminService", "console", "/ui/")
	errc := h.serveErr
	hupCtx, stopHup := context.WithCancel(ctx)
	var hupWG sync.WaitGroup
	h.rescan.onHangup(hupCtx, hup, &hupWG)
	if h.cfg.OnReady != nil {
		h.cfg.OnReady(addr)
	}
	var serveErr error
	select {
	case <-ctx.Done():
		h.log.Info("shutting down", "timeout", h.cfg.ShutdownTimeout)
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr = fmt.Errorf("server: serve: %w", err)
			h.log.Error("server failed; shutting down", "error", err)
		}
	}
	stopHup()
	hupWG.Wait()
	return errors.Join(serveErr, h.shutdown())
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// shutdown stops everything within ShutdownTimeout.
func (h *host) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	// Stop accepting at once; in-flight requests (event streams
	// included) keep running until their runs end below.
	httpDone := make(chan error, 1)
	go func() { httpDone <- h.http.Shutdown(ctx) }()
	if err := h.sched.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	// Hand the work back: no more claims, unstarted claims released; the
	// runner's shutdown ends running runs host_shutdown, and their
	// workers queue them again for a survivor (or this host's next start).
	h.disp.Stop()
	if err := h.runner.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := h.disp.Wait(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := h.member.Leave(ctx); err != nil {
		errs = append(errs, err)
	}
	if h.relay != nil {
		h.relay.Close()
	}
	if h.bus != nil {
		_ = h.bus.Close()
	}
	h.healthLoop.stop()
	h.api.Close()
	h.admin.Close()
	if err := <-httpDone; err != nil {
		errs = append(errs, fmt.Errorf("server: http shutdown: %w", err))
		_ = h.http.Close()
	}
	h.grpc.Stop()
	if err := h.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("server: close store: %w", err))
	}
	h.rescan.cat.Close()
	_ = h.contain.Close()
	if h.runtimeLink[0] != "" {
		removeShortLink(h.runtimeLink[0], h.runtimeLink[1])
	}
	h.unlock()
	if err := errors.Join(errs...); err != nil {
		h.log.Error("shutdown incomplete", "error", err)
		return err
	}
	h.log.Info("stopped")
	return nil
}

// enrollmentFields are the fields of the one enrollment summary line: the
// number of connections, then the count of each outcome, by outcome.
func enrollmentFields(entries []enroll.Entry) []any {
	counts := map[enroll.Outcome]int{}
	for _, e := range entries {
		counts[e.Outcome]++
	}
	fields := []any{"connections", len(entries)}
	for _, o := range slices.Sorted(maps.Keys(counts)) {
		fields = append(fields, string(o), counts[o])
	}
	return fields
}

// envLookup looks a name up in environ's list. The first entry of a name
// wins, as getenv(3), os.Getenv and launch.BuildEnv resolve duplicates, so
// the broker and the child never disagree about a host value.
func envLookup(environ func() []string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for _, kv := range environ() {
			if k, v, ok := strings.Cut(kv, "="); ok && k == name {
				return v, true
			}
		}
		return "", false
	}
}

// vaultTokenEnv is the variable the Vault transit KEK reads its token from.
const vaultTokenEnv = "VAULT_TOKEN"

// withholdHostSecrets returns environ without the variables that hold the
// host's own secrets: the KEK variable (whatever --kek-env names) and
// VAULT_TOKEN. Connectors, the broker and the enrollment gate all see this
// environment, so no manifest can name one of them in env_passthrough or
// auth.required and receive it. (CONNHOST_* names are withheld by
// launch.BuildEnv already.) The keyset reads its KEK from the process
// environment, not from here.
func withholdHostSecrets(environ func() []string, kekEnv string) func() []string {
	withheld := map[string]bool{vaultTokenEnv: true, kekEnv: true}
	return func() []string {
		env := environ()
		out := make([]string, 0, len(env))
		for _, kv := range env {
			if name, _, _ := strings.Cut(kv, "="); !withheld[name] {
				out = append(out, kv)
			}
		}
		return out
	}
}

// registrar is the part of the store connector registration uses.
type registrar interface {
	ListConnectors(ctx context.Context) ([]store.Connector, error)
	UpsertConnector(ctx context.Context, reg store.ConnectorRegistration) (store.ConnectorUpsert, error)
}

// registerConnectors records the catalog in the store and audits, as
// actor, what changed since the previous registration (the last start or
// rescan): a new connector (connector.register) and a binary whose
// checksum, version or path changed (connector.reregister). It returns the
// changes.
func registerConnectors(ctx context.Context, st registrar, cat *catalog.Catalog, al *audit.Log, actor string, log hclog.Logger) ([]catalog.Change, error) {
	rows, err := st.ListConnectors(ctx)
	if err != nil {
		return nil, fmt.Errorf("server: list connectors: %w", err)
	}
	prev := make([]catalog.Entry, 0, len(rows))
	for _, row := range rows {
		sum, _ := hex.DecodeString(row.SHA256)
		e := catalog.Entry{Key: row.Key, Path: row.Path, SHA256: sum}
		e.Manifest.Version = row.Version
		prev = append(prev, e)
	}
	changes := cat.Diff(prev)
	for _, e := range cat.List() {
		mj, err := json.Marshal(e.Manifest)
		if err != nil {
			return nil, fmt.Errorf("server: encode manifest of %s: %w", e.Key, err)
		}
		if _, err := st.UpsertConnector(ctx, store.ConnectorRegistration{Key: e.Key, Version: e.Manifest.Version,
			Manifest: mj, Path: e.Path, SHA256: e.Checksum()}); err != nil {
			return nil, fmt.Errorf("server: register connector %s: %w", e.Key, err)
		}
	}
	for _, c := range changes {
		switch c.Kind {
		case catalog.Added:
			al.Record(ctx, audit.Event{Actor: actor, Operation: "connector.register", TargetKind: "connector",
				TargetID: c.Key, Detail: map[string]string{"version": c.New.Manifest.Version, "sha256": c.New.Checksum(), "path": c.New.Path}})
			log.Info("connector registered", "connector", c.Key, "version", c.New.Manifest.Version, "sha256", c.New.Checksum())
		case catalog.Reregistered:
			al.Record(ctx, audit.Event{Actor: actor, Operation: "connector.reregister", TargetKind: "connector",
				TargetID: c.Key, Detail: map[string]string{"changed": strings.Join(c.Fields, ","),
					"previous_version": c.Old.Manifest.Version, "version": c.New.Manifest.Version,
					"previous_sha256": hex.EncodeToString(c.Old.SHA256), "sha256": c.New.Checksum(), "path": c.New.Path}})
			log.Warn("connector binary changed since it was registered; re-registered", "connector", c.Key,
				"changed", strings.Join(c.Fields, ","), "sha256", c.New.Checksum())
		case catalog.Removed:
			log.Warn("connector registered before is not in the plugin dir; its connections will be refused",
				"connector", c.Key, "path", c.Old.Path)
		}
	}
	log.Info("connectors catalogued", "plugin_dir", cat.Dir(), "connectors", cat.Len(), "rejected", len(cat.Rejected()))
	return changes, nil
}

// The host's parts satisfy the surfaces' small interfaces.
var (
	_ api.Control      = (*control.Service)(nil)
	_ api.Store        = (*sqlite.Store)(nil)
	_ api.Store        = (*postgres.Store)(nil)
	_ api.Catalog      = (*catalog.Catalog)(nil)
	_ api.Runs         = (*runner.Runner)(nil)
	_ api.Schedule     = (*schedule.Scheduler)(nil)
	_ api.Observer     = (*metrics.Metrics)(nil)
	_ adminrpc.Control = (*control.Service)(nil)
	_ adminrpc.Store   = (*sqlite.Store)(nil)
	_ adminrpc.Runs    = (*runner.Runner)(nil)
	_ registrar        = (*sqlite.Store)(nil)
	_ Store            = (*postgres.Store)(nil)
)
