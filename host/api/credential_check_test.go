package api_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/store"
	"github.com/google/go-cmp/cmp"
)

// TestCaptureResponseCarriesTheCheck: the answer to a capture says how the
// check that followed it ended. A verdict is the credential's validity; an
// inconclusive check (here a config the connector refuses) is not recorded
// (a rotation cleared the last validity: the new credential is unchecked)
// and says why. A plain read carries no check.
func TestCaptureResponseCarriesTheCheck(t *testing.T) {
	t.Parallel()
	const canary = "CANARY-check-in-answer-3b9d"
	sum := sha256.Sum256([]byte(canary))
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(map[string]any{"records": 1, "token_sha256": hex.EncodeToString(sum[:])}, "")

	valid := e.setToken(c.ID, canary)
	if diff := cmp.Diff(&apitypes.CredentialCheck{Verdict: true, Valid: true, Identity: "demo", Message: "valid for demo"}, valid.Check); diff != "" {
		t.Errorf("check after a valid capture (-want +got):\n%s", diff)
	}
	if valid.Validity == nil || !valid.Validity.Valid {
		t.Fatalf("validity after a valid capture = %+v", valid.Validity)
	}

	// A config the schema let through (or stored before it) that the
	// connector refuses: the check reaches no verdict.
	if _, err := e.h.Store.UpdateConnection(t.Context(), c.ID, store.ConnectionPatch{Config: json.RawMessage(`{"recrods": 5}`)}); err != nil {
		t.Fatal(err)
	}
	r := e.ok(http.StatusOK, "PUT", "/v1/connections/"+c.ID+"/credential",
		apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": canary}}, nil)
	var rotated apitypes.Credential
	if err := json.Unmarshal(r.Body, &rotated); err != nil {
		t.Fatal(err)
	}
	if chk := rotated.Check; chk == nil || chk.Verdict || chk.Valid || !strings.HasPrefix(chk.Message, "invalid_config: ") {
		t.Errorf("check after an inconclusive capture = %+v, want verdict false, invalid_config", chk)
	}
	if rotated.Validity != nil {
		t.Errorf("an inconclusive check was recorded as the validity: %+v", rotated.Validity)
	}
	if strings.Contains(string(r.Body), canary) {
		t.Fatal("the capture's answer holds the token")
	}

	var read apitypes.Credential
	e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID+"/credential", nil, &read)
	if read.Check != nil {
		t.Errorf("a credential read carries a check: %+v", read.Check)
	}
}
