package control

import (
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/sdk/manifest"
)

func TestScheduleInForceAndJitter(t *testing.T) {
	t.Parallel()
	auto := manifest.Schedule{Spec: "@every 1m", AutoEnroll: true}
	manual := manifest.Schedule{Spec: "@every 1m"}
	for name, tc := range map[string]struct {
		own           store.Schedule
		def           manifest.Schedule
		spec, source  string
		jitterRefusal string // "" = accepted
	}{
		"own spec":                          {own: store.Schedule{Spec: "@every 1h", Jitter: time.Minute}, def: auto, spec: "@every 1h", source: ScheduleOwn},
		"own spec bounds the jitter":        {own: store.Schedule{Spec: "@every 30s", Jitter: time.Minute}, def: auto, spec: "@every 30s", source: ScheduleOwn, jitterRefusal: "period"},
		"connector default":                 {own: store.Schedule{Jitter: 30 * time.Second}, def: auto, spec: "@every 1m", source: ScheduleConnectorDefault},
		"connector default bounds jitter":   {own: store.Schedule{Jitter: 2 * time.Minute}, def: auto, spec: "@every 1m", source: ScheduleConnectorDefault, jitterRefusal: "period"},
		"default that does not auto-enroll": {own: store.Schedule{Jitter: time.Second}, def: manual, source: ScheduleNone, jitterRefusal: "needs a schedule"},
		"no default":                        {own: store.Schedule{}, source: ScheduleNone},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec, source := ScheduleInForce(tc.own, tc.def)
			if spec != tc.spec || source != tc.source {
				t.Errorf("ScheduleInForce = %q %q, want %q %q", spec, source, tc.spec, tc.source)
			}
			err := checkJitter(tc.own, tc.def)
			switch {
			case tc.jitterRefusal == "" && err != nil:
				t.Errorf("checkJitter = %v, want accepted", err)
			case tc.jitterRefusal != "" && (err == nil || !strings.Contains(err.Error(), tc.jitterRefusal)):
				t.Errorf("checkJitter = %v, want a refusal saying %q", err, tc.jitterRefusal)
			}
		})
	}
}
