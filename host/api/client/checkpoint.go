package client

import (
	"context"
	"net/http"

	"github.com/connhost/connhost/host/api/apitypes"
)

// GetCheckpoint is GET /v1/connections/{id}/checkpoint.
func (c *Client) GetCheckpoint(ctx context.Context, id string) (apitypes.Checkpoint, error) {
	var v apitypes.Checkpoint
	if id == "" {
		return v, errEmptyID("connection id")
	}
	err := c.do(ctx, http.MethodGet, pathOf("v1", "connections", id, "checkpoint"), nil, nil, &v)
	return v, err
}

// ResetCheckpoint is DELETE /v1/connections/{id}/checkpoint.
func (c *Client) ResetCheckpoint(ctx context.Context, id string) (apitypes.CheckpointReset, error) {
	var v apitypes.CheckpointReset
	if id == "" {
		return v, errEmptyID("connection id")
	}
	err := c.do(ctx, http.MethodDelete, pathOf("v1", "connections", id, "checkpoint"), nil, nil, &v)
	return v, err
}
