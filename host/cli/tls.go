package cli

import (
	"net/http"

	"github.com/connhost/connhost/host/api/client"
)

// EnvCAFile is the environment variable of --ca-file: PEM CA
// certificate(s) trusted, besides the system's, for an https:// address.
const EnvCAFile = client.EnvCAFile

// httpClient is the API client's HTTP client: the runtime's, trusting
// --ca-file (CONNHOST_CA_FILE) when given, with errors that say what to do
// about an untrusted certificate or an http:// address of an https host.
func (a *app) httpClient() (*http.Client, error) {
	ca := a.setting("ca-file", EnvCAFile)
	if ca == "" {
		return client.WithTLSHints(a.rt.HTTPClient), nil
	}
	hc, err := client.WithCAFile(a.rt.HTTPClient, ca)
	if err != nil {
		return nil, usageErrorf("--ca-file: %v", err)
	}
	return hc, nil
}
