package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/connhost/connhost/host/api/apitypes"
)

// ListConnectorsAll is GET /v1/connectors?all=true: the catalogued
// connectors and the plugin dir's rejected files.
func (c *Client) ListConnectorsAll(ctx context.Context) (apitypes.ConnectorList, error) {
	var l apitypes.ConnectorList
	err := c.do(ctx, http.MethodGet, "/v1/connectors", url.Values{"all": {"true"}}, nil, &l)
	if l.Rejected == nil {
		l.Rejected = []apitypes.RejectedPlugin{}
	}
	return l, err
}

// RescanConnectors is POST /v1/connectors/rescan: the host re-scans its
// plugin dir.
func (c *Client) RescanConnectors(ctx context.Context) (apitypes.RescanReport, error) {
	var v apitypes.RescanReport
	err := c.do(ctx, http.MethodPost, "/v1/connectors/rescan", nil, nil, &v)
	return v, err
}
