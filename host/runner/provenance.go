package runner

import (
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/host/store"
)

// provenance is what a run records of its launch: the broker's report of
// the credential resolution (source, the stored credential's state, key
// id and stamps, or the refusal) and the layer of every variable of the
// child's environment (launch.BuildEnvProvenance). Names, layers, states
// and stamps only: never a value, a hash of one or a length.
func provenance(rep broker.Report, origins []launch.Origin) *store.Provenance {
	p := &store.Provenance{CredentialSource: string(rep.Source), Credential: rep.Credential, Refusal: rep.Refusal}
	if len(origins) > 0 {
		p.Env = make([]store.EnvVar, len(origins))
		for i, o := range origins {
			p.Env[i] = store.EnvVar{Name: o.Name, Layer: store.EnvLayer(o.Layer)}
		}
	}
	return p
}
