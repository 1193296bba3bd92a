package console

// registerSetup declares the connector, connection and credential pages.
func (c *Console) registerSetup() {
	c.mux.HandleFunc("GET "+Prefix+"connectors", c.page(c.connectorsPage))
	c.mux.Handle("POST "+Prefix+"connectors/rescan", c.action(c.rescan))

	c.mux.HandleFunc("GET "+Prefix+"connections", c.page(c.connectionsPage))
	c.mux.Handle("POST "+Prefix+"connections", c.action(c.createConnection))
	c.mux.HandleFunc("GET "+Prefix+"connections/{id}", c.page(c.connectionPage))
	c.mux.Handle("POST "+Prefix+"connections/{id}", c.action(c.editConnection))
	c.mux.Handle("POST "+Prefix+"connections/{id}/pause", c.action(c.pauseConnection))
	c.mux.Handle("POST "+Prefix+"connections/{id}/resume", c.action(c.resumeConnection))
	c.mux.Handle("POST "+Prefix+"connections/{id}/runs", c.action(c.triggerRun))

	c.mux.HandleFunc("GET "+Prefix+"connections/{id}/credential", c.page(c.credentialPage))
	c.mux.Handle("POST "+Prefix+"connections/{id}/credential", c.action(c.setCredential))

	for _, cf := range c.confirmations() {
		c.mux.HandleFunc("GET "+Prefix+"connections/{id}/"+cf.path, c.page(c.confirmPage(cf)))
		c.mux.Handle("POST "+Prefix+"connections/{id}/"+cf.path, c.action(c.confirmed(cf)))
	}
}
