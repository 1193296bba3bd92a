package server

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/control"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/pluginimage"
	"github.com/connhost/connhost/host/store"
	"github.com/hashicorp/go-hclog"
)

// rescanner re-scans the plugin dir on request (POST
// /v1/connectors/rescan, SIGHUP): it registers what changed, audited as
// at boot, swaps the catalog in place (every part of the host reads it
// through the same *catalog.Catalog), and re-evaluates enrollment, since
// a connector's default schedule or auth may have changed. A run in
// flight holds the catalog.Entry it was launched with — its pinned
// binary — and is left alone. Rescans are serialised. On a shared
// PostgreSQL store a rescan is this host's only: each host scans its
// own plugin dir.
type rescanner struct {
	mu   sync.Mutex
	dir  string
	d    catalog.Describer
	opts catalog.Options
	cat  *catalog.Catalog
	st   registrar
	al   *audit.Log
	ctl  *control.Service
	log  hclog.Logger
	// changed is told after every rescan that changed the catalog (the
	// health monitor: a connector gone or back changes verdicts).
	changed func()
}

// Rescan re-scans the plugin dir. A dir that is gone or unreadable
// refuses the rescan (plugin_dir_unusable) and leaves the catalog as it
// was.
func (r *rescanner) Rescan(ctx context.Context, actor string) (catalog.RescanReport, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, _, err := checkPluginDir(r.dir); err != nil {
		r.log.Error("rescan refused; the catalog stays as it was", "error", err)
		return catalog.RescanReport{}, &failure.Error{Code: failure.PluginDirUnusable,
			Message: strings.TrimPrefix(err.Error(), "server: "), Err: err}
	}
	r.log.Info("rescanning the plugin dir", "plugin_dir", r.dir, "actor", actor)
	next, _ := catalog.Scan(ctx, r.dir, r.d, r.opts)
	changes, err := registerConnectors(ctx, r.st, next, r.al, actor, r.log)
	if err != nil {
		return catalog.RescanReport{}, err
	}
	// Enrollment and the report follow the catalog too, not only the
	// registrations: a binary put back unchanged registers nothing new
	// (the store kept it) but makes its connector known again.
	changes = withCatalogChanges(changes, next.Diff(r.cat.List()))
	r.cat.Replace(next)
	r.al.Record(ctx, audit.Event{Actor: actor, Operation: "connector.rescan", TargetKind: "plugin_dir", TargetID: r.dir,
		Detail: rescanDetail(next.Len(), len(next.Rejected()), changes)})
	// A connector back releases the holds its absence caused, and
	// re-enrolls those connections at once, on every host.
	if ids, err := r.ctl.ReleaseAddressedHolds(ctx, actor); err != nil {
		r.log.Error("release addressed holds after a rescan", "error", err)
	} else if len(ids) > 0 {
		r.log.Info("holds whose cause is gone released", "connections", len(ids))
	}
	if len(changes) > 0 {
		entries, err := r.ctl.Boot(ctx)
		if err != nil {
			r.log.Error("re-evaluate enrollment after a rescan", "error", err)
		} else {
			r.log.Info("enrollment after rescan done", enrollmentFields(entries)...)
		}
	}
	if len(changes) > 0 && r.changed != nil {
		r.changed()
	}
	return catalog.RescanReport{Dir: r.dir, Connectors: next.Len(), Changes: changes, Rejected: next.Rejected()}, nil
}

// onHangup rescans at every SIGHUP received on ch until ctx ends (Run
// listens for SIGHUP from its start: a SIGHUP while the host starts is
// acted on once it is ready, and never kills it).
func (r *rescanner) onHangup(ctx context.Context, ch <-chan os.Signal, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				r.log.Info("SIGHUP received: rescanning the plugin dir")
				sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
				rep, err := r.Rescan(sctx, audit.ActorHost)
				cancel()
				switch {
				case err == nil:
					r.log.Info("rescan after SIGHUP done", "connectors", rep.Connectors, "changes", len(rep.Changes), "rejected", len(rep.Rejected))
				case !errors.Is(err, context.Canceled):
					r.log.Error("rescan after SIGHUP failed", "error", err)
				}
			}
		}
	}()
}

// auditPluginChange returns the catalog's OnChange: a catalogued binary
// found changed on disk by a launch is audited once per change
// (plugin.changed, refused) with its path, the pinned sha256 and the one
// found, or why the file could not be read. Its launches are refused
// until a rescan pins the file as it is now.
func auditPluginChange(al *audit.Log) func(string, *pluginimage.ChangedError) {
	return func(key string, ce *pluginimage.ChangedError) {
		d := map[string]string{"path": ce.Path, "pinned_sha256": hex.EncodeToString(ce.Pinned)}
		if ce.Found != nil {
			d["found_sha256"] = hex.EncodeToString(ce.Found)
		} else {
			d["error"] = ce.Err.Error()
		}
		al.Record(context.Background(), audit.Event{Actor: audit.ActorHost, Operation: "plugin.changed",
			TargetKind: "connector", TargetID: key, Outcome: store.AuditRefused, Detail: d})
	}
}

// hangups returns a channel of the SIGHUPs this process receives from
// now on, and the function that stops them.
func hangups() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

// withCatalogChanges adds to the registration changes those of the
// catalog in memory that the store did not see: a connector whose binary
// comes back unchanged is Added to this host's catalog though its
// registration never left the store.
func withCatalogChanges(reg, cat []catalog.Change) []catalog.Change {
	seen := make(map[string]bool, len(reg))
	for _, c := range reg {
		seen[c.Key] = true
	}
	out := slices.Clone(reg)
	for _, c := range cat {
		if !seen[c.Key] {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b catalog.Change) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// rescanDetail is the audit detail of a rescan: the counts, and the keys
// by kind of change (added, reregistered, removed) for the kinds seen.
func rescanDetail(connectors, rejected int, changes []catalog.Change) map[string]string {
	by := map[catalog.ChangeKind][]string{}
	for _, c := range changes {
		by[c.Kind] = append(by[c.Kind], c.Key)
	}
	d := map[string]string{"connectors": strconv.Itoa(connectors), "rejected": strconv.Itoa(rejected)}
	for kind, keys := range by {
		d[string(kind)] = strings.Join(keys, ",")
	}
	return d
}
