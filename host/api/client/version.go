package client

import (
	"context"
	"net/http"

	"github.com/connhost/connhost/host/version"
)

// Version reads GET /v1/version: the server's version and build.
func (c *Client) Version(ctx context.Context) (version.Info, error) {
	var v version.Info
	err := c.do(ctx, http.MethodGet, "/v1/version", nil, nil, &v)
	return v, err
}
