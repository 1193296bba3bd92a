package console

import (
	"context"
	"fmt"
	"net/http"

	"github.com/connhost/connhost/host/api/apitypes"
)

// confirmation is a destructive action on a connection that takes a
// confirmation page first: GET /ui/connections/{id}/{path} asks, and the
// POST to the same path does it.
type confirmation struct {
	// path is under /ui/connections/{id}/.
	path string
	// title heads the page; button labels its submit button.
	title, button string
	// lines say what the action does and what it keeps.
	lines []string
	// do performs the action and returns the flash and the page to go to.
	do func(ctx context.Context, id string) (flash, next string, err error)
}

// confirmData is confirm.html's data.
type confirmData struct {
	Title  string
	Button string
	Lines  []string
	Conn   apitypes.Connection
	Action string
	Back   string
}

// confirmations are the connection's destructive actions.
func (c *Console) confirmations() []confirmation {
	back := func(id string) string { return connPath(id) }
	return []confirmation{{
		path: "revoke", title: "Revoke connection", button: "Revoke the connection",
		lines: []string{
			"No run of this connection, scheduled or manual, will start again. Revoking cannot be undone.",
			"Its records, checkpoint, credential metadata and run history are kept; delete removes them.",
		},
		do: func(ctx context.Context, id string) (string, string, error) {
			if _, err := c.api.RevokeConnection(ctx, id); err != nil {
				return "", "", err
			}
			return "Connection revoked: it will not run again.", back(id), nil
		},
	}, {
		path: "delete", title: "Delete connection", button: "Delete the connection",
		lines: []string{
			"The connection is removed with its records, checkpoint and stored credential. This cannot be undone.",
			"Its runs and audit events stay in the history.",
		},
		do: func(ctx context.Context, id string) (string, string, error) {
			d, err := c.api.DeleteConnection(ctx, id)
			if err != nil {
				return "", "", err
			}
			return fmt.Sprintf("Connection %s deleted: %d records, checkpoint %s, credential %s.", d.ID, d.Records,
				removedWord(d.Checkpoint), removedWord(d.Credential)), Prefix + "connections", nil
		},
	}, {
		path: "checkpoint/reset", title: "Reset checkpoint", button: "Reset the checkpoint",
		lines: []string{
			"The connection's checkpoint is cleared: its next run starts from scratch.",
			"Its records stay; a run that emits a key again replaces that record. A reset is refused while a run holds the connection.",
		},
		do: func(ctx context.Context, id string) (string, string, error) {
			rep, err := c.api.ResetCheckpoint(ctx, id)
			if err != nil {
				return "", "", err
			}
			if !rep.Removed {
				return "There was no checkpoint to reset.", back(id), nil
			}
			return "Checkpoint reset: the next run starts from scratch.", back(id), nil
		},
	}, {
		path: "credential/revoke", title: "Revoke credential", button: "Revoke the credential",
		lines: []string{
			"The stored credential is revoked: launches that need it are refused until a new one is captured.",
			"Its metadata (names, times) is kept.",
		},
		do: func(ctx context.Context, id string) (string, string, error) {
			if _, err := c.api.RevokeCredential(ctx, id); err != nil {
				return "", "", err
			}
			return "Credential revoked.", back(id), nil
		},
	}, {
		path: "credential/delete", title: "Delete credential", button: "Delete the credential",
		lines: []string{
			"The stored credential's sealed values are destroyed. This cannot be undone; capture a new one to run again.",
		},
		do: func(ctx context.Context, id string) (string, string, error) {
			if _, err := c.api.DeleteCredential(ctx, id); err != nil {
				return "", "", err
			}
			return "Credential deleted.", back(id), nil
		},
	}}
}

func removedWord(b bool) string {
	if b {
		return "removed"
	}
	return "none"
}

// confirmPage asks before cf.
func (c *Console) confirmPage(cf confirmation) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, s *session) error {
		ctx, cancel := pageContext(r)
		defer cancel()
		conn, err := c.api.GetConnection(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		c.render(w, r, s, http.StatusOK, "confirm.html", confirmData{
			Title: cf.title, Button: cf.button, Lines: cf.lines, Conn: conn,
			Action: connPath(conn.ID) + "/" + cf.path, Back: connPath(conn.ID)})
		return nil
	}
}

// confirmed does cf and goes on with a flash; a refusal is the error
// page.
func (c *Console) confirmed(cf confirmation) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, s *session) error {
		ctx, cancel := pageContext(r)
		defer cancel()
		flash, next, err := cf.do(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		c.setFlash(s, flash)
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
}
