package client

import (
	"context"
	"net/http"

	"github.com/connhost/connhost/host/api/apitypes"
)

// ExplainConnection is GET /v1/connections/{id}/explain: what the
// connection's next launch would do (nothing is started or decrypted).
func (c *Client) ExplainConnection(ctx context.Context, id string) (apitypes.Explain, error) {
	var v apitypes.Explain
	if id == "" {
		return v, errEmptyID("connection id")
	}
	err := c.do(ctx, http.MethodGet, pathOf("v1", "connections", id, "explain"), nil, nil, &v)
	return v, err
}
