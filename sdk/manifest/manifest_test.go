package manifest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/connhost/connhost/sdk/manifest"
)

func valid() manifest.Manifest {
	return manifest.Manifest{
		ConnectorKey:   "github",
		Version:        "1.2.3",
		DisplayName:    "GitHub",
		Description:    "Issues and pull requests — in UTF-8.",
		Auth:           manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"GITHUB_TOKEN", "GITHUB_USER"}},
		EnvPassthrough: []string{"GITHUB_API_URL"},
		Streams: []manifest.Stream{
			{Name: "issues", KeyFields: []string{"id"}},
			{Name: "pull_requests", KeyFields: []string{"repo", "number"}},
		},
		DefaultSchedule: manifest.Schedule{Spec: "*/15 * * * *", AutoEnroll: true},
		ConfigSchema:    `{"type":"object"}`,
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", manifest.MaxStringLen+1)
	tests := []struct {
		name   string
		edit   func(m *manifest.Manifest)
		field  string // "" means valid
		reason string // a substring of the reason
	}{
		{"valid", func(*manifest.Manifest) {}, "", ""},
		{"auth none", func(m *manifest.Manifest) { m.Auth = manifest.Auth{Kind: manifest.AuthNone} }, "", ""},
		{"no schedule", func(m *manifest.Manifest) { m.DefaultSchedule = manifest.Schedule{} }, "", ""},
		{"no schema", func(m *manifest.Manifest) { m.ConfigSchema = "" }, "", ""},
		{"empty key", func(m *manifest.Manifest) { m.ConnectorKey = "" }, "connector_key", "is empty"},
		{"url key", func(m *manifest.Manifest) { m.ConnectorKey = "https://github.com" }, "connector_key", "looks like a URL"},
		{"path key", func(m *manifest.Manifest) { m.ConnectorKey = "acme/github" }, "connector_key", "looks like a URL or path"},
		{"upper-case key", func(m *manifest.Manifest) { m.ConnectorKey = "GitHub" }, "connector_key", "does not match"},
		{"one-letter key", func(m *manifest.Manifest) { m.ConnectorKey = "g" }, "connector_key", "does not match"},
		{"empty version", func(m *manifest.Manifest) { m.Version = "" }, "version", "is empty"},
		{"long version", func(m *manifest.Manifest) { m.Version = long }, "version", "longer than"},
		{"long display name", func(m *manifest.Manifest) { m.DisplayName = long }, "display_name", "longer than"},
		{"long description", func(m *manifest.Manifest) { m.Description = long }, "description", "longer than"},
		{"description not UTF-8", func(m *manifest.Manifest) { m.Description = "caf\xe9" }, "description", "UTF-8"},
		{"display name not UTF-8", func(m *manifest.Manifest) { m.DisplayName = "\xff" }, "display_name", "UTF-8"},
		{"long schedule", func(m *manifest.Manifest) { m.DefaultSchedule.Spec = long }, "default_schedule.spec", "longer than"},
		{"empty auth kind", func(m *manifest.Manifest) { m.Auth.Kind = "" }, "capabilities.auth.kind", "is empty"},
		{"unknown auth kind", func(m *manifest.Manifest) { m.Auth.Kind = "oauth" }, "capabilities.auth.kind", `"oauth"`},
		{"static secret without names", func(m *manifest.Manifest) { m.Auth.Required = nil }, "capabilities.auth.required", "at least one"},
		{"none with names", func(m *manifest.Manifest) { m.Auth.Kind = manifest.AuthNone }, "capabilities.auth.required", "must be empty"},
		{"bad env name", func(m *manifest.Manifest) { m.Auth.Required = []string{"GITHUB-TOKEN"} }, "capabilities.auth.required[0]", "not an environment"},
		{"reserved env name", func(m *manifest.Manifest) { m.Auth.Required = []string{"CONNHOST_TOKEN"} }, "capabilities.auth.required[0]", "reserved prefix"},
		{"duplicate env name", func(m *manifest.Manifest) { m.Auth.Required = []string{"A", "A"} }, "capabilities.auth.required[1]", "duplicate"},
		{"too many names", func(m *manifest.Manifest) { m.EnvPassthrough = make([]string, manifest.MaxNames+1) }, "env_passthrough", "more than"},
		{"passthrough of a secret", func(m *manifest.Manifest) { m.EnvPassthrough = []string{"X", "GITHUB_TOKEN"} }, "env_passthrough[1]", "secrets are never passed through"},
		{"no streams", func(m *manifest.Manifest) { m.Streams = nil }, "streams", "is empty"},
		{"too many streams", func(m *manifest.Manifest) { m.Streams = make([]manifest.Stream, manifest.MaxStreams+1) }, "streams", "more than"},
		{"bad stream name", func(m *manifest.Manifest) { m.Streams[1].Name = "Pull-Requests" }, "streams[1].name", "does not match"},
		{"duplicate stream", func(m *manifest.Manifest) { m.Streams[1].Name = "issues" }, "streams[1].name", "duplicate"},
		{"no key fields", func(m *manifest.Manifest) { m.Streams[0].KeyFields = nil }, "streams[0].key_fields", "is empty"},
		{"too many key fields", func(m *manifest.Manifest) { m.Streams[0].KeyFields = make([]string, manifest.MaxKeyFields+1) }, "streams[0].key_fields", "more than"},
		{"bad key field", func(m *manifest.Manifest) { m.Streams[0].KeyFields = []string{"a b"} }, "streams[0].key_fields[0]", "not a field name"},
		{"duplicate key field", func(m *manifest.Manifest) { m.Streams[1].KeyFields = []string{"repo", "repo"} }, "streams[1].key_fields[1]", "duplicate"},
		{"bad schedule", func(m *manifest.Manifest) { m.DefaultSchedule.Spec = "daily" }, "default_schedule.spec", "five cron fields"},
		{"auto-enroll without schedule", func(m *manifest.Manifest) { m.DefaultSchedule.Spec = "" }, "default_schedule.auto_enroll", "spec is empty"},
		{"schema not JSON", func(m *manifest.Manifest) { m.ConfigSchema = "{" }, "config_schema", "not a JSON object"},
		{"schema an array", func(m *manifest.Manifest) { m.ConfigSchema = "[]" }, "config_schema", "not a JSON object"},
		{"schema null", func(m *manifest.Manifest) { m.ConfigSchema = "null" }, "config_schema", "not a JSON object"},
		{"schema too long", func(m *manifest.Manifest) {
			m.ConfigSchema = `{"a":"` + strings.Repeat("x", manifest.MaxConfigSchema) + `"}`
		}, "config_schema", "longer than"},
		{"schema not UTF-8", func(m *manifest.Manifest) { m.ConfigSchema = "{\"a\":\"\xff\"}" }, "config_schema", "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := valid()
			tt.edit(&m)
			err := m.Validate(manifest.CheckSchedule)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *manifest.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, manifest.ErrInvalid) {
				t.Fatalf("Validate = %v, want a *FieldError wrapping ErrInvalid", err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Errorf("Validate = %q %q, want field %q with reason containing %q", fe.Field, fe.Reason, tt.field, tt.reason)
			}
		})
	}
}

// TestValidateIsDeterministic: with several fields wrong, the same one is
// reported every time (Validate once ranged over a map).
func TestValidateIsDeterministic(t *testing.T) {
	t.Parallel()
	m := valid()
	long := strings.Repeat("x", manifest.MaxStringLen+1)
	m.Version, m.DisplayName, m.Description = long, long, long
	for range 200 {
		var fe *manifest.FieldError
		if err := m.Validate(nil); !errors.As(err, &fe) || fe.Field != "version" {
			t.Fatalf("Validate = %v, want the version error first", err)
		}
	}
}

func TestValidateWithoutScheduleChecker(t *testing.T) {
	t.Parallel()
	m := valid()
	m.DefaultSchedule.Spec = "whenever"
	if err := m.Validate(nil); err != nil {
		t.Errorf("Validate(nil) = %v; a nil checker skips the grammar", err)
	}
}

func TestStreamByName(t *testing.T) {
	t.Parallel()
	m := valid()
	if s, ok := m.StreamByName("pull_requests"); !ok || s.KeyFields[1] != "number" {
		t.Errorf("StreamByName(pull_requests) = %+v, %v", s, ok)
	}
	if _, ok := m.StreamByName("nope"); ok {
		t.Error("StreamByName(nope) found a stream")
	}
}

func TestFieldErrorTruncatesOnARuneBoundary(t *testing.T) {
	t.Parallel()
	m := valid()
	m.ConnectorKey = strings.Repeat("é", 100) // not a valid key; echoed truncated
	err := m.Validate(nil)
	if err == nil || !strings.Contains(err.Error(), "…") {
		t.Fatalf("Validate = %v, want a truncated echo", err)
	}
	if !strings.Contains(err.Error(), strings.Repeat("é", 40)+"…") {
		t.Errorf("Validate = %q, want 40 whole runes then …", err)
	}
}

func TestCheckSchedule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		want string // "" for valid, else a substring of the error
	}{
		{"@every 1m", ""},
		{"@every 1s", ""},
		{"  @every 90m  ", ""},
		{"*/5 * * * *", ""},
		{"0 */5 * * * *", ""},
		{"0 9 * * MON-FRI", ""},
		{"@hourly", ""},
		{"@daily", ""},
		{"", "empty"},
		{"   ", "empty"},
		{"@every", "want \"@every <duration>\""},
		{"@every soon", "want \"@every <duration>\""},
		{"@every 500ms", "interval below 1s"},
		{"@every -1m", "interval below 1s"},
		{"TZ=Europe/Paris 0 9 * * *", "time zones are not accepted"},
		{"CRON_TZ=UTC 0 9 * * *", "time zones are not accepted"},
		{"* * * *", "got 4"},
		{"* * * * * * *", "got 7"},
		{"61 * * * *", "end of range"},
		{"0 0 30 2 *", "never fires"},
		{"@yearlyish", "unrecognized descriptor"},
		{strings.Repeat("*", 257), "longer than 256"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			t.Parallel()
			err := manifest.CheckSchedule(tt.spec)
			if tt.want == "" {
				if err != nil {
					t.Errorf("CheckSchedule(%q) = %v, want nil", tt.spec, err)
				}
				return
			}
			if !errors.Is(err, manifest.ErrInvalidSchedule) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckSchedule(%q) = %v, want ErrInvalidSchedule containing %q", tt.spec, err, tt.want)
			}
		})
	}
}
