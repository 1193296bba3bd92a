package apitypes

// RejectedPlugin is a file of the host's plugin dir that was not
// catalogued at the last scan (boot or rescan).
type RejectedPlugin struct {
	// File is the rejected file's path on the host.
	File string `json:"file"`
	// Field is the manifest field at fault ("connector_key",
	// "capabilities.auth.kind", …), absent when the binary could not be
	// described at all.
	Field string `json:"field,omitempty"`
	// Code is the failure code of a launch failure
	// (plugin_handshake_failed, plugin_describe_timeout, …), absent for a
	// manifest that breaks a rule.
	Code string `json:"code,omitempty"`
	// Reason says what is wrong.
	Reason string `json:"reason"`
}

// ConnectorList is GET /v1/connectors: the catalogued connectors, and
// with ?all=true the files of the plugin dir that were rejected.
type ConnectorList struct {
	Items []Connector `json:"items"`
	// Next is always empty: the catalog is one page.
	Next string `json:"next"`
	// Rejected is present (possibly empty) only with ?all=true.
	Rejected []RejectedPlugin `json:"rejected,omitzero"`
}

// RescanReport is POST /v1/connectors/rescan: what this host's re-scan of
// its plugin dir found and registered.
type RescanReport struct {
	PluginDir string `json:"plugin_dir"`
	// Connectors is how many connectors the host serves now.
	Connectors int `json:"connectors"`
	// Added, Reregistered (a new binary, version or path) and Removed
	// (no longer in the plugin dir: its connections' runs are refused)
	// are connector keys, sorted.
	Added        []string `json:"added"`
	Reregistered []string `json:"reregistered"`
	Removed      []string `json:"removed"`
	// Rejected lists the files that were not catalogued.
	Rejected []RejectedPlugin `json:"rejected"`
}
