package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/failure"
)

// A list filter that names a thing (a connector, a connection, a stream,
// a host) that does not exist is a 404 naming the filter and the value,
// not an empty list: an operator's typo must not read as "nothing there".
// The code is the thing's *_not_found code where one exists, else
// not_found; Field is the query parameter. A name that is not known but
// still matches stored rows (a connector whose plugin was removed, a
// stream an older connector version emitted, the runs of a deleted
// connection or of a pruned host row) lists them as before: the check
// runs only when the first page comes back empty.

// unknownFilter is the 404 of a filter naming nothing.
func unknownFilter(code, param, value, reason string) *Error {
	if len(value) > 64 {
		value = value[:64]
	}
	value = strings.ToValidUTF8(value, "")
	return &Error{Status: http.StatusNotFound, Body: errBody(code,
		fmt.Sprintf("%s %q %s", param, value, reason), param)}
}

// checkConnectionFilter refuses a connection filter naming no connection.
func (a *API) checkConnectionFilter(ctx context.Context, param, id string) error {
	if id == "" {
		return nil
	}
	if _, err := a.cfg.Store.GetConnection(ctx, id); err != nil {
		if failure.Has(err, failure.ConnectionNotFound) {
			return unknownFilter(string(failure.ConnectionNotFound), param, id, "names no connection")
		}
		return err
	}
	return nil
}

// checkHostFilter refuses a host filter naming no host of the store.
func (a *API) checkHostFilter(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	hosts, err := a.cfg.Store.ListHosts(ctx)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		if h.ID == id {
			return nil
		}
	}
	return unknownFilter(apitypes.CodeNotFound, "host", id, "names no host of this store")
}

// catalogued reports whether key is a catalogued connector.
func (a *API) catalogued(key string) bool {
	_, ok := a.cfg.Catalog.Get(key)
	return ok
}

// streamDeclared reports whether the connector declares the stream; a
// connector not in the catalog declares nothing.
func (a *API) streamDeclared(connectorKey, stream string) (bool, []string) {
	e, ok := a.cfg.Catalog.Get(connectorKey)
	if !ok {
		return false, nil
	}
	names := make([]string, 0, len(e.Manifest.Streams))
	for _, s := range e.Manifest.Streams {
		names = append(names, s.Name)
	}
	return slices.Contains(names, stream), names
}
