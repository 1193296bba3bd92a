package console

import "context"

// connRef is a connection a page names by id (a run's, an enrollment
// entry's, an audit event's target), with the label to show for it.
type connRef struct {
	ID    string
	Label string
	// Gone is true for a connection that was deleted: the id is all
	// there is to show.
	Gone bool
}

// connLabels looks up the connections ids name, once per distinct id,
// for a page to show each with its label. A connection that is not found
// (deleted) is Gone; any other error is the page's.
func (c *Console) connLabels(ctx context.Context, ids []string) (map[string]connRef, error) {
	refs := make(map[string]connRef, len(ids))
	for _, id := range ids {
		if _, seen := refs[id]; seen || id == "" {
			continue
		}
		conn, err := c.api.GetConnection(ctx, id)
		switch {
		case err == nil:
			refs[id] = connRef{ID: id, Label: conn.Label}
		case isNotFound(err):
			refs[id] = connRef{ID: id, Gone: true}
		default:
			return nil, err
		}
	}
	return refs, nil
}
