package sdk

import (
	"encoding/json"

	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// Check is one credential check (see ConnectorWithCheck): the config and
// credential a connection would run with, and nothing to emit.
type Check struct {
	req   wire.CheckRequest
	a     *adapter
	creds map[string]string
	log   hclog.Logger
}

// ConnectionID is the id of the connection being checked.
func (c *Check) ConnectionID() string { return c.req.ConnectionID }

// Config decodes the connection's JSON config into v strictly, like
// Run.Config.
func (c *Check) Config(v any) error { return decodeConfig(c.req.Config, v) }

// RawConfig returns the connection's JSON config, {} when empty.
func (c *Check) RawConfig() json.RawMessage { return rawConfig(c.req.Config) }

// Credential returns a declared credential's value, like Run.Credential.
func (c *Check) Credential(name string) string { return credential(c.a, c.creds, name) }

// LookupEnv reads the connector's environment, like Run.LookupEnv.
func (c *Check) LookupEnv(name string) (string, bool) { return c.a.env(name) }

// Logger returns the check's logger, with a connection_id field.
func (c *Check) Logger() hclog.Logger { return c.log }
