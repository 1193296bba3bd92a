package console

// fixLink is where a connection's health verdict is fixed: the page (or
// the part of it) and the link's text.
type fixLink struct {
	URL  string
	Text string
}

// credentialVerdict reports whether a health verdict is fixed on the
// connection's credential form.
func credentialVerdict(verdict string) bool {
	switch verdict {
	case "needs_credential", "credential_rejected", "credential_unavailable":
		return true
	}
	return false
}

// healthFix is the link to where the connection's verdict is fixed, as
// the verdict's action says it in CLI terms: the credential form for a
// credential verdict, the connectors page (its rescan) for a connector
// missing from the catalog, and the part of the connection page that
// fixes the others (its edit form for a config, its resume form for a
// pause, its latest run for a failure). Any other verdict has no such
// place: its link is the connection page, and specific is false.
func healthFix(connID, verdict string) (fix fixLink, specific bool) {
	conn := connPath(connID)
	switch verdict {
	case "needs_credential":
		return fixLink{URL: conn + "/credential", Text: "Capture the credential"}, true
	case "credential_rejected", "credential_unavailable":
		return fixLink{URL: conn + "/credential", Text: "Capture a new credential"}, true
	case "connector_missing":
		return fixLink{URL: Prefix + "connectors", Text: "Install the connector, then rescan"}, true
	case "invalid_config":
		return fixLink{URL: conn + "#edit-connection", Text: "Edit the config"}, true
	case "paused":
		return fixLink{URL: conn + "#resume-form", Text: "Resume the connection"}, true
	case "failing":
		return fixLink{URL: conn + "#last-run", Text: "Read the latest run"}, true
	}
	return fixLink{URL: conn, Text: "Open the connection"}, false
}
