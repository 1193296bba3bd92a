package api

import (
	"net/http"
	"net/url"

	"github.com/connhost/connhost/host/api/apitypes"
)

// consoleSignIn issues a one-time sign-in link for the web console.
func (a *API) consoleSignIn(w http.ResponseWriter, r *http.Request) error {
	if err := emptyBody(w, r); err != nil {
		return err
	}
	if a.cfg.Console == nil {
		return &Error{Status: http.StatusServiceUnavailable, Body: errBody(apitypes.CodeUnavailable, "this host serves no web console", "")}
	}
	code, exp := a.cfg.Console.IssueSignIn()
	writeJSON(w, http.StatusOK, apitypes.ConsoleSignIn{
		Path: "/ui/signin?code=" + url.QueryEscape(code), ExpiresAt: stamp(exp)})
	return nil
}
