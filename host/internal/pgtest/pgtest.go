// Package pgtest gives tests a private PostgreSQL schema on the local
// server: each call creates a schema, returns a connection URL whose
// search_path is that schema, and drops it when the test ends.
//
// The server is CONNHOST_TEST_POSTGRES (a libpq URL), default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable. When it does
// not answer, the test is skipped — except under CI=true, where it fails:
// CI must never pass without the PostgreSQL suite.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the server tests use when CONNHOST_TEST_POSTGRES is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// ServerURL returns the test server's URL.
func ServerURL() string {
	if u := os.Getenv("CONNHOST_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultURL
}

// Schema creates a fresh schema and returns a URL that uses it.
func Schema(t testing.TB) string {
	t.Helper()
	base := ServerURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		Unavailable(t, err)
		return ""
	}
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "connhost_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("pgtest: CONNHOST_TEST_POSTGRES is not a URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Unavailable fails the test under CI=true and skips it otherwise.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("PostgreSQL is required under CI=true and did not answer at %s: %v", redacted(ServerURL()), err)
	}
	t.Skipf("PostgreSQL not available at %s (%v); set CI=true to make this a failure", redacted(ServerURL()), err)
}

func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
