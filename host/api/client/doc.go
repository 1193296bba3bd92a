// Package client is a small typed client for connhost's HTTP API (/v1).
// The CLI uses it; so can any Go program that operates a connhost host.
//
// Every method maps to one route of package apitypes and returns the
// apitypes value the server wrote. Lists come back as the server's
// envelope (apitypes.List) so callers can follow the Next cursor; the list
// routes without paging (connectors, connections) return the items.
//
// Errors: a non-2xx response is a *APIError carrying the HTTP status and
// the server's typed code, message and field. A transport failure (the
// server is down, the address is wrong) wraps ErrUnavailable; a response
// that is not the JSON the contract promises wraps ErrBadResponse. No
// error of this package holds a request body, so the one secret-bearing
// request (SetCredential) can never leak through an error string; the
// operator token is sent only in the Authorization header and never
// appears in an error either.
//
// Following a run: RunEvents opens the Server-Sent Events stream of
// GET /v1/runs/{id}/events and returns an *EventStream whose Next yields
// apitypes.RunEvent values until the "end" event (then io.EOF).
//
//	c, err := client.New("http://127.0.0.1:7480", token, nil)
//	run, err := c.TriggerRun(ctx, connectionID)
//	events, err := c.RunEvents(ctx, run.ID)
//	defer events.Close()
//	for {
//		ev, err := events.Next()
//		if err == io.EOF {
//			break
//		}
//		…
//	}
package client
