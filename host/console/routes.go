package console

import "net/http"

// register declares every console route. Pages are GETs wrapped by
// page (a session or the sign-in form); forms are POSTs wrapped by
// action (session, same origin, CSRF token).
func (c *Console) register() {
	c.mux.Handle("GET "+Prefix+"static/", c.static)
	c.mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	})
	c.mux.HandleFunc("GET "+Prefix+"{$}", c.page(func(w http.ResponseWriter, r *http.Request, _ *session) error {
		http.Redirect(w, r, Prefix+"attention", http.StatusSeeOther)
		return nil
	}))
	c.mux.HandleFunc("GET "+Prefix+"signin", c.signInPage)
	c.mux.Handle("POST "+Prefix+"signin", c.cop.Handler(http.HandlerFunc(c.signIn)))
	c.mux.Handle("POST "+Prefix+"signout", c.action(c.signOut))
	c.registerSetup()
	c.registerActivity()
	// Anything else under the prefix: a typed 404 page (signed in) or the
	// sign-in form.
	c.mux.HandleFunc(Prefix, c.page(func(http.ResponseWriter, *http.Request, *session) error {
		return &pageError{status: http.StatusNotFound, code: "not_found", msg: "there is no such console page"}
	}))
}
