package console

// registerSetup declares the connector, connection and credential pages.
func (c *Console) registerSetup() {
	c.mux.HandleFunc("GET "+Prefix+"connectors", c.page(c.connectorsPage))
	c.mux.Handle("POST "+Prefix+"connectors/rescan", c.action(c.rescan))
}
