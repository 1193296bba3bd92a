package sqlite

import (
	"fmt"
	"testing"

	"github.com/connhost/connhost/host/health"
	"github.com/connhost/connhost/sdk/manifest"
)

type benchManifests struct{}

func (benchManifests) Manifest(string) (manifest.Manifest, bool) {
	return manifest.Manifest{Auth: manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"API_USER", "API_TOKEN"}}}, true
}

// BenchmarkHealthScan is what the health monitor pays for one scan of
// every connection (after run ends, debounced, and once a minute): a page
// query and one batched credential metadata read per store.MaxPageSize
// connections, then the derivation.
func BenchmarkHealthScan(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := openTest(b, "", nil)
			seedCredentials(b, s, n)
			a := &health.Assessor{Manifests: benchManifests{}, Credentials: s, KeyHeld: func(uint32) bool { return true }}
			for b.Loop() {
				r, err := a.Scan(b.Context(), s)
				if err != nil {
					b.Fatal(err)
				}
				if r.Connections != n {
					b.Fatalf("scanned %d connections, want %d", r.Connections, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/connection")
		})
	}
}
