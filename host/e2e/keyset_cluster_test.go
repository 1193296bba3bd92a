package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
)

// The last step of a rotation on a cluster: two hosts on one PostgreSQL
// store and one keyset file. A rotation on one host, a rewrap on the
// other, then a disable of the old key on the other again: it is refused
// while a credential is sealed under the key, whichever host sealed it;
// once done, every host has the key disabled (reloaded on notification)
// and the credential still decrypts for a run; an enable on the first host
// reaches the second.
func TestClusterDisableOldKey(t *testing.T) {
	c := newCluster(t, 0, 0)
	for _, h := range c.hosts {
		c.start(h)
	}
	a, b := c.hosts[0], c.hosts[1]
	var conn apitypes.Connection
	c.do(a, http.StatusCreated, http.MethodPost, "/v1/connections", apitypes.ConnectionCreateRequest{
		ConnectorKey: "demo", Label: "keyed", Config: map[string]any{"records": 1}}, &conn)
	c.do(a, http.StatusOK, http.MethodPut, "/v1/connections/"+conn.ID+"/credential",
		apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": newCanary(t)}}, nil)
	var before, rotated apitypes.KeysetInfo
	c.get(a, "/v1/keyset", &before)
	c.do(a, http.StatusOK, http.MethodPost, "/v1/keyset/rotate", nil, &rotated)
	old := before.PrimaryKeyID
	statusOn := func(h *clusterHost, id uint32) string {
		var info apitypes.KeysetInfo
		c.get(h, "/v1/keyset", &info)
		for _, k := range info.Keys {
			if k.ID == id {
				return k.Status
			}
		}
		return ""
	}
	c.waitFor(20*time.Second, "the rotation reloaded by the second host", func() (bool, string) {
		var info apitypes.KeysetInfo
		c.get(b, "/v1/keyset", &info)
		return info.PrimaryKeyID == rotated.PrimaryKeyID, fmt.Sprint(info.PrimaryKeyID)
	})

	disable := fmt.Sprintf("/v1/keyset/keys/%d/disable", old)
	res := c.api(b).Call(http.MethodPost, disable, nil)
	if res.Status != http.StatusConflict || res.ErrorBody(t).Code != "key_in_use" {
		t.Fatalf("disable before rewrap: %s", res)
	}
	var rep apitypes.RewrapReport
	c.do(b, http.StatusOK, http.MethodPost, "/v1/keyset/rewrap", nil, &rep)
	if rep.Rewrapped != 1 {
		t.Fatalf("rewrap %+v", rep)
	}
	var ch apitypes.KeyChange
	c.do(b, http.StatusOK, http.MethodPost, disable, nil, &ch)
	if !ch.Changed {
		t.Fatalf("disable %+v", ch)
	}
	c.waitFor(20*time.Second, "the disable reloaded by the first host", func() (bool, string) {
		s := statusOn(a, old)
		return s == "DISABLED", s
	})
	var run apitypes.Run
	c.do(a, http.StatusAccepted, http.MethodPost, "/v1/connections/"+conn.ID+"/runs", nil, &run)
	c.waitFor(60*time.Second, "the run after the disable", func() (bool, string) {
		c.get(a, "/v1/runs/"+run.ID, &run)
		return run.Status == "succeeded" || run.Status == "failed" || run.Status == "refused", run.Status
	})
	if run.Status != "succeeded" {
		t.Fatalf("run after the disable: %+v", run)
	}

	c.do(a, http.StatusOK, http.MethodPost, fmt.Sprintf("/v1/keyset/keys/%d/enable", old), nil, &ch)
	c.waitFor(20*time.Second, "the enable reloaded by the second host", func() (bool, string) {
		s := statusOn(b, old)
		return s == "ENABLED", s
	})
}
