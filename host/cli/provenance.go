package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/connhost/connhost/host/api/apitypes"
)

// printRunShow prints a run with its launch provenance: the run's fields,
// then the credential line, the refusal lines of a refused launch and the
// child env as a NAME/LAYER table. -o json prints the API's run as is.
func (a *app) printRunShow(r apitypes.Run) error {
	if err := a.printRun(r); err != nil || a.json() {
		return err
	}
	w := a.rt.Stdout
	fmt.Fprintln(w)
	p := r.Provenance
	if p == nil {
		what := "none: the run ended before its credential was resolved"
		if !terminal(r.Status) {
			what = "not yet: recorded when the run starts"
		}
		return fields(w, [][2]string{{"provenance", what}})
	}
	kv := [][2]string{{"credential", credentialLine(p.CredentialSource, p.Credential)}}
	kv = append(kv, refusalLines(p.Refusal)...)
	if err := fields(w, kv); err != nil {
		return err
	}
	if p.Refusal != nil && len(p.Env) == 0 {
		return nil // refused: no child, no env
	}
	fmt.Fprintln(w)
	return envTable(w, p.Env)
}

// credentialLine says where a launch's credential came from and which
// stored credential it was: never a value.
func credentialLine(source string, c *apitypes.ProvenanceCredential) string {
	var parts []string
	switch source {
	case "stored":
		parts = append(parts, "stored credential")
	case "host_env":
		parts = append(parts, "host environment (no credential stored)")
	case "none":
		parts = append(parts, "none needed (the connector declares no auth)")
	case "":
		parts = append(parts, "refused")
	default:
		parts = append(parts, source)
	}
	if c != nil {
		d := []string{c.State}
		if c.KeyID != 0 {
			d = append(d, "key id "+itoa(c.KeyID))
		}
		for _, s := range [][2]string{{"captured", c.CapturedAt}, {"rotated", c.RotatedAt}, {"revoked", c.RevokedAt}, {"deleted", c.DeletedAt}} {
			if s[1] != "" {
				d = append(d, s[0]+" "+ts(s[1]))
			}
		}
		parts = append(parts, "("+strings.Join(d, ", ")+")")
	}
	return strings.Join(parts, " ")
}

// refusalLines are the lines of a refusal: the code (and message when
// the refusal carries one), then each detail the resolution found.
func refusalLines(r *apitypes.Refusal) [][2]string {
	if r == nil {
		return nil
	}
	code := r.Code
	if r.Message != "" {
		code += ": " + r.Message
	}
	kv := [][2]string{{"refused", code}}
	if r.CredentialState != "" {
		kv = append(kv, [2]string{"credential state", r.CredentialState})
	}
	if r.Undecryptable {
		kv = append(kv, [2]string{"undecryptable", "yes: the loaded keyset cannot open it"})
	}
	if len(r.MissingNames) > 0 {
		kv = append(kv, [2]string{"missing names", list(r.MissingNames)})
	}
	if len(r.AbsentEnv) > 0 {
		kv = append(kv, [2]string{"absent from host env", list(r.AbsentEnv)})
	}
	if len(r.EmptyEnv) > 0 {
		kv = append(kv, [2]string{"empty in host env", list(r.EmptyEnv)})
	}
	if r.HostEnvDisallowed {
		kv = append(kv, [2]string{"host env credentials", "turned off (--allow-host-env-credentials=false)"})
	}
	return kv
}

// envTable prints a child env by name and layer.
func envTable(w io.Writer, env []apitypes.EnvVar) error {
	rows := make([][]string, 0, len(env))
	for _, v := range env {
		rows = append(rows, []string{v.Name, v.Layer})
	}
	return table(w, []string{"NAME", "LAYER"}, rows)
}

// printExplain prints what a connection's next launch would do.
func (a *app) printExplain(e apitypes.Explain) error {
	if a.json() {
		return printJSON(a.rt.Stdout, e)
	}
	w := a.rt.Stdout
	l := e.Launch
	enrolled := e.Enrollment.Outcome
	if e.Enrollment.Reason != "" {
		enrolled += ": " + e.Enrollment.Reason
	}
	health := e.Health.Verdict
	if e.Health.Reason != "" {
		health += ": " + e.Health.Reason
	}
	next := "launch (" + l.Trigger
	if l.Outcome == "refused" {
		next = "refused (" + l.Trigger
	}
	if l.NextRun != "" {
		next += ", due " + l.NextRun
	}
	next += ")"
	kv := [][2]string{
		{"connection", e.ConnectionID},
		{"connector", e.ConnectorKey},
		{"state", e.State},
		{"enrollment", enrolled + inForce(e.Enrollment.EvaluatedAt)},
	}
	if re := e.Reevaluation; re != nil {
		line := re.Outcome
		if re.Reason != "" {
			line += ": " + re.Reason
		}
		kv = append(kv, [2]string{"at re-evaluation", line + " (the gate's decision now; in force at the next re-evaluation)"})
	}
	kv = append(kv, [2]string{"health", health})
	if e.Health.Action != "" {
		kv = append(kv, [2]string{"action", e.Health.Action})
	}
	kv = append(kv, [2]string{"next launch", next})
	if l.Outcome != "refused" || l.CredentialSource != "" || l.Credential != nil {
		kv = append(kv, [2]string{"credential", credentialLine(l.CredentialSource, l.Credential)})
	}
	kv = append(kv, refusalLines(l.Refusal)...)
	for _, n := range l.Notes {
		kv = append(kv, [2]string{"note", n})
	}
	if err := fields(w, kv); err != nil {
		return err
	}
	if len(l.Env) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	return envTable(w, l.Env)
}

// inForce marks the enrollment in force, evaluated at at.
func inForce(at string) string {
	if at == "" {
		return " (in force)"
	}
	return " (in force since " + at + ")"
}
