package imapconn

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/connhost/connhost/sdk"
	"github.com/connhost/connhost/sdk/sdktest"
	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// strictDecode decodes a config the way the SDK does: unknown fields and
// trailing data are errors.
func strictDecode(b []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, err
	}
	if dec.More() {
		return c, errors.New("trailing data")
	}
	return c, nil
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxMailboxNameLength+1)
	many := make([]string, MaxMailboxes+1)
	for i := range many {
		many[i] = "box" + strings.Repeat("x", i%7) + string(rune('A'+i%26)) + strings.Repeat("y", i/182)
	}
	tests := []struct {
		name string
		cfg  Config
		// want is a substring of the error; "" means valid.
		want string
	}{
		{"host only", Config{Host: "imap.example.com"}, ""},
		{"trailing dot", Config{Host: "imap.example.com."}, ""},
		{"ipv4", Config{Host: "192.0.2.1"}, ""},
		{"ipv6", Config{Host: "2001:db8::1"}, ""},
		{"everything", Config{Host: "imap.fastmail.com", Port: 993, TLS: TLSImplicit, CAFile: "/etc/ssl/ca.pem",
			Mailboxes: Mailboxes{Names: []string{"INBOX", "Archive", "[Gmail]/All Mail"}}, Since: "2025-01-01",
			MaxMessagesPerRun: MaxMaxMessages, Bodies: BodiesText, MaxBodyBytes: MaxMaxBodyBytes}, ""},
		{"starttls", Config{Host: "mail.example.org", TLS: TLSStartTLS, Port: 143}, ""},
		{"all mailboxes", Config{Host: "h", Mailboxes: Mailboxes{All: true}}, ""},
		{"plaintext localhost", Config{Host: "localhost", InsecurePlaintext: true}, ""},
		{"plaintext LOCALHOST.", Config{Host: "LOCALHOST.", InsecurePlaintext: true}, ""},
		{"plaintext 127.0.0.1", Config{Host: "127.0.0.1", InsecurePlaintext: true, Port: 10143}, ""},
		{"plaintext 127.1.2.3", Config{Host: "127.1.2.3", InsecurePlaintext: true}, ""},
		{"plaintext ::1", Config{Host: "::1", InsecurePlaintext: true}, ""},
		{"body bounds low", Config{Host: "h", MaxBodyBytes: MinMaxBodyBytes}, ""},
		{"max messages 1", Config{Host: "h", MaxMessagesPerRun: 1}, ""},
		{"bodies none", Config{Host: "h", Bodies: BodiesNone}, ""},
		{"inbox any case", Config{Host: "h", Mailboxes: Mailboxes{Names: []string{"inbox", "Inbox2"}}}, ""},

		{"no host", Config{}, "host is required"},
		{"host too long", Config{Host: strings.Repeat("a.", 127) + "ab"}, "longer than 253"},
		{"host with port", Config{Host: "imap.example.com:993"}, "holds a port"},
		{"host bracketed v6 with port", Config{Host: "[::1]:993"}, "holds a port"},
		// The message says "holds a port" (SplitHostPort reads "imaps" and
		// "//imap.example.com"); the host is refused either way.
		{"host url", Config{Host: "imaps://imap.example.com"}, `host: "imaps://imap.example.com"`},
		{"host space", Config{Host: "imap example.com"}, "not a DNS name"},
		{"host leading dash", Config{Host: "-imap.example.com"}, "not a DNS name"},
		{"host empty label", Config{Host: "imap..example.com"}, "not a DNS name"},
		{"host label too long", Config{Host: strings.Repeat("a", 64) + ".com"}, "not a DNS name"},
		{"port negative", Config{Host: "h", Port: -1}, "port: -1"},
		{"port too big", Config{Host: "h", Port: 65536}, "port: 65536"},
		{"tls unknown", Config{Host: "h", TLS: "ssl"}, `tls: "ssl"`},
		{"tls case", Config{Host: "h", TLS: "Implicit"}, "tls:"},
		{"plaintext with tls", Config{Host: "localhost", InsecurePlaintext: true, TLS: TLSStartTLS}, "cannot be combined with tls"},
		{"plaintext with ca_file", Config{Host: "localhost", InsecurePlaintext: true, CAFile: "/ca.pem"}, "cannot be combined with ca_file"},
		{"plaintext remote", Config{Host: "imap.example.com", InsecurePlaintext: true}, "loopback addresses only"},
		{"plaintext private ip", Config{Host: "10.0.0.1", InsecurePlaintext: true}, "loopback addresses only"},
		{"plaintext localhost subdomain", Config{Host: "localhost.example.com", InsecurePlaintext: true}, "loopback addresses only"},
		{"plaintext unspecified", Config{Host: "0.0.0.0", InsecurePlaintext: true}, "loopback addresses only"},
		{"ca_file relative", Config{Host: "h", CAFile: "ca.pem"}, "not an absolute path"},
		{"mailboxes both", Config{Host: "h", Mailboxes: Mailboxes{All: true, Names: []string{"INBOX"}}}, "both"},
		{"mailboxes empty list", Config{Host: "h", Mailboxes: Mailboxes{Names: []string{}}}, "mailboxes: empty"},
		{"mailboxes too many", Config{Host: "h", Mailboxes: Mailboxes{Names: many}}, "more than 1000"},
		{"mailbox empty name", Config{Host: "h", Mailboxes: Mailboxes{Names: []string{"INBOX", ""}}}, "mailboxes[1]: empty name"},
		{"mailbox too long", Config{Host: "h", Mailboxes: Mailboxes{Names: []string{long}}}, "longer than 1000"},
		{"mailbox not utf-8", Config{Host: "h", Mailboxes: Mailboxes{Names: []string{"a\xffb"}}}, "not UTF-8"},
		{"mailbox star", Config{Host: "h", Mailboxes: Mailboxes{Names: []string{"*"}}}, "wildcard"},
		{"mailbox percent", Config{Host: "h", Mailboxes: Mailboxes{Names: []string{"Lists/%"}}}, "wildcard"},
		{"mailbox newline", Config{Host: "h", Mailboxes: Mailboxes{Names: []string{"a\nb"}}}, "control character"},
		{"mailbox DEL", Config{Host: "h", Mailboxes: Mailboxes{Names: []string{"a\x7fb"}}}, "control character"},
		{"mailbox twice", Config{Host: "h", Mailboxes: Mailboxes{Names: []string{"Archive", "Archive"}}}, `"Archive" is listed twice`},
		{"inbox twice any case", Config{Host: "h", Mailboxes: Mailboxes{Names: []string{"INBOX", "Inbox"}}}, "listed twice"},
		{"since not a date", Config{Host: "h", Since: "yesterday"}, "since:"},
		{"since impossible", Config{Host: "h", Since: "2025-02-30"}, "since:"},
		{"since with time", Config{Host: "h", Since: "2025-01-01T00:00:00Z"}, "since:"},
		{"max messages negative", Config{Host: "h", MaxMessagesPerRun: -1}, "max_messages_per_run"},
		{"max messages too many", Config{Host: "h", MaxMessagesPerRun: MaxMaxMessages + 1}, "max_messages_per_run"},
		{"bodies unknown", Config{Host: "h", Bodies: "full"}, `bodies: "full"`},
		{"body too small", Config{Host: "h", MaxBodyBytes: MinMaxBodyBytes - 1}, "max_body_bytes"},
		{"body too big", Config{Host: "h", MaxBodyBytes: MaxMaxBodyBytes + 1}, "max_body_bytes"},
		{"body negative", Config{Host: "h", MaxBodyBytes: -1}, "max_body_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", tt.want)
			}
			if !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, sdk.ErrInvalidConfig) {
				t.Errorf("Validate() = %v, not ErrInvalidConfig and sdk.ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestConfigNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"defaults", Config{Host: "h"}, Config{Host: "h", Port: DefaultTLSPort, TLS: TLSImplicit,
			Mailboxes: Mailboxes{Names: []string{DefaultMailbox}}, MaxMessagesPerRun: DefaultMaxMessages,
			Bodies: BodiesNone, MaxBodyBytes: DefaultMaxBodyBytes}},
		{"starttls port", Config{Host: "h", TLS: TLSStartTLS}, Config{Host: "h", Port: DefaultPlainPort, TLS: TLSStartTLS,
			Mailboxes: Mailboxes{Names: []string{DefaultMailbox}}, MaxMessagesPerRun: DefaultMaxMessages,
			Bodies: BodiesNone, MaxBodyBytes: DefaultMaxBodyBytes}},
		{"plaintext keeps tls empty", Config{Host: "localhost", InsecurePlaintext: true}, Config{Host: "localhost", Port: DefaultPlainPort,
			InsecurePlaintext: true, Mailboxes: Mailboxes{Names: []string{DefaultMailbox}}, MaxMessagesPerRun: DefaultMaxMessages,
			Bodies: BodiesNone, MaxBodyBytes: DefaultMaxBodyBytes}},
		{"explicit values kept, inbox folded", Config{Host: "h", Port: 1993, TLS: TLSImplicit,
			Mailboxes: Mailboxes{Names: []string{"inbox", "Inbox.Sub"}}, Since: "2024-12-31", MaxMessagesPerRun: 7,
			Bodies: BodiesText, MaxBodyBytes: 2048},
			Config{Host: "h", Port: 1993, TLS: TLSImplicit,
				Mailboxes: Mailboxes{Names: []string{"INBOX", "Inbox.Sub"}}, Since: "2024-12-31", MaxMessagesPerRun: 7,
				Bodies: BodiesText, MaxBodyBytes: 2048}},
		{"all mailboxes kept", Config{Host: "h", Mailboxes: Mailboxes{All: true}}, Config{Host: "h", Port: DefaultTLSPort, TLS: TLSImplicit,
			Mailboxes: Mailboxes{All: true}, MaxMessagesPerRun: DefaultMaxMessages, Bodies: BodiesNone, MaxBodyBytes: DefaultMaxBodyBytes}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.in.Validate(); err != nil {
				t.Fatalf("Validate() before Normalize = %v", err)
			}
			got := tt.in
			got.Normalize()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Normalize() (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate() after Normalize = %v", err)
			}
			again := got
			again.Mailboxes.Names = append([]string(nil), got.Mailboxes.Names...)
			again.Normalize()
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("Normalize() twice changed the config (-once +twice):\n%s", diff)
			}
		})
	}
}

func TestConfigAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Host: "imap.gmail.com"}, "imap.gmail.com:993"},
		{Config{Host: "mail.example.org", TLS: TLSStartTLS}, "mail.example.org:143"},
		{Config{Host: "::1", InsecurePlaintext: true, Port: 10143}, "[::1]:10143"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			c := tt.cfg
			c.Normalize()
			if got := c.Addr(); got != tt.want {
				t.Errorf("Addr() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMailboxesJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Mailboxes
		// out is the JSON MarshalJSON writes back.
		out string
		// bad is a substring of the decode error.
		bad string
	}{
		{name: "star", in: `"*"`, want: Mailboxes{All: true}, out: `"*"`},
		{name: "star spaced", in: ` "*" `, want: Mailboxes{All: true}, out: `"*"`},
		{name: "one", in: `["INBOX"]`, want: Mailboxes{Names: []string{"INBOX"}}, out: `["INBOX"]`},
		{name: "several", in: `["INBOX","Archive","[Gmail]/All Mail"]`, want: Mailboxes{Names: []string{"INBOX", "Archive", "[Gmail]/All Mail"}}, out: `["INBOX","Archive","[Gmail]/All Mail"]`},
		{name: "unicode", in: `["Entw\u00fcrfe"]`, want: Mailboxes{Names: []string{"Entwürfe"}}, out: `["Entwürfe"]`},
		{name: "empty list", in: `[]`, want: Mailboxes{Names: []string{}}, out: `[]`},
		{name: "other string", in: `"INBOX"`, bad: "neither"},
		{name: "star list", in: `"**"`, bad: "neither"},
		{name: "number", in: `5`, bad: "not a list of names"},
		{name: "object", in: `{"INBOX":true}`, bad: "not a list of names"},
		{name: "list of numbers", in: `[1,2]`, bad: "not a list of names"},
		{name: "bool", in: `true`, bad: "not a list of names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got Mailboxes
			err := json.Unmarshal([]byte(tt.in), &got)
			if tt.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("Unmarshal(%s) = %v, want an error with %q", tt.in, err, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s) = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Unmarshal(%s) (-want +got):\n%s", tt.in, diff)
			}
			out, err := json.Marshal(got)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(out) != tt.out {
				t.Errorf("Marshal = %s, want %s", out, tt.out)
			}
			var back Mailboxes
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatalf("Unmarshal(Marshal) = %v", err)
			}
			if diff := cmp.Diff(got, back); diff != "" {
				t.Errorf("round trip (-first +second):\n%s", diff)
			}
		})
	}
}

func TestMailboxesInConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Mailboxes
	}{
		{"left out", `{"host":"h"}`, Mailboxes{}},
		{"null", `{"host":"h","mailboxes":null}`, Mailboxes{}},
		{"star", `{"host":"h","mailboxes":"*"}`, Mailboxes{All: true}},
		{"list", `{"host":"h","mailboxes":["INBOX","Sent"]}`, Mailboxes{Names: []string{"INBOX", "Sent"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := strictDecode([]byte(tt.in))
			if err != nil {
				t.Fatalf("decode %s: %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, c.Mailboxes); diff != "" {
				t.Errorf("Mailboxes (-want +got):\n%s", diff)
			}
			// A config left without mailboxes writes none back (omitzero).
			out, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if c.Mailboxes.IsZero() == strings.Contains(string(out), `"mailboxes"`) {
				t.Errorf("Marshal = %s: mailboxes present %v, want %v", out, !c.Mailboxes.IsZero(), !c.Mailboxes.IsZero())
			}
		})
	}
}

func TestMailboxesString(t *testing.T) {
	t.Parallel()
	for in, want := range map[*Mailboxes]string{
		{All: true}:                        "*",
		{Names: []string{"INBOX", "Sent"}}: "INBOX, Sent",
		{}:                                 "",
	} {
		if got := in.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", *in, got, want)
		}
	}
}

func TestConfigSchemaMatchesConfig(t *testing.T) {
	t.Parallel()
	got, err := sdktest.SchemaMismatch(ConfigSchema, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got != "" {
		t.Errorf("SchemaMismatch = %s", got)
	}
}

// compileSchema compiles ConfigSchema as the host does.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(ConfigSchema))
	if err != nil {
		t.Fatalf("ConfigSchema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("imap-config.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("imap-config.json")
	if err != nil {
		t.Fatalf("ConfigSchema does not compile: %v", err)
	}
	return s
}

// TestConfigSchemaAgreesWithValidate checks the schema the host applies
// before storing a config against the decode and Validate the connector
// applies at run time. Where they differ, the table says so: the schema
// is looser than Validate (a host name's finer syntax, a real date),
// and stricter only for explicit zeros and null, which mean "the default"
// to the connector but no operator needs to write.
func TestConfigSchemaAgreesWithValidate(t *testing.T) {
	t.Parallel()
	s := compileSchema(t)
	tests := []struct {
		name     string
		config   string
		schema   bool
		validate bool
	}{
		{"minimal", `{"host":"imap.gmail.com"}`, true, true},
		{"readme example", `{"host":"imap.fastmail.com","mailboxes":["INBOX","Archive"],"since":"2025-01-01"}`, true, true},
		{"everything", `{"host":"imap.example.com","port":993,"tls":"implicit","ca_file":"/etc/ca.pem","mailboxes":"*","since":"2020-02-29","max_messages_per_run":100,"bodies":"text","max_body_bytes":1024}`, true, true},
		{"starttls", `{"host":"imap.example.com","tls":"starttls","port":143}`, true, true},
		{"plaintext loopback", `{"host":"127.0.0.1","port":10143,"insecure_plaintext":true}`, true, true},
		{"plaintext false with tls", `{"host":"h","insecure_plaintext":false,"tls":"starttls"}`, true, true},

		{"empty", `{}`, false, false},
		{"unknown field", `{"host":"h","password":"x"}`, false, false},
		{"host empty", `{"host":""}`, false, false},
		{"host number", `{"host":5}`, false, false},
		{"port too big", `{"host":"h","port":70000}`, false, false},
		{"port negative", `{"host":"h","port":-5}`, false, false},
		{"port string", `{"host":"h","port":"993"}`, false, false},
		{"tls unknown", `{"host":"h","tls":"ssl"}`, false, false},
		{"plaintext with tls", `{"host":"localhost","insecure_plaintext":true,"tls":"implicit"}`, false, false},
		{"plaintext with ca_file", `{"host":"localhost","insecure_plaintext":true,"ca_file":"/ca.pem"}`, false, false},
		{"ca_file relative", `{"host":"h","ca_file":"ca.pem"}`, false, false},
		{"mailboxes empty", `{"host":"h","mailboxes":[]}`, false, false},
		{"mailboxes other string", `{"host":"h","mailboxes":"INBOX"}`, false, false},
		{"mailbox wildcard", `{"host":"h","mailboxes":["Lists/*"]}`, false, false},
		{"mailbox empty name", `{"host":"h","mailboxes":[""]}`, false, false},
		{"mailbox twice", `{"host":"h","mailboxes":["Sent","Sent"]}`, false, false},
		{"since bad", `{"host":"h","since":"01/02/2025"}`, false, false},
		{"max messages too many", `{"host":"h","max_messages_per_run":1000001}`, false, false},
		{"bodies unknown", `{"host":"h","bodies":"html"}`, false, false},
		{"body too small", `{"host":"h","max_body_bytes":100}`, false, false},
		{"body too big", `{"host":"h","max_body_bytes":2000000}`, false, false},

		{"host with port", `{"host":"imap.example.com:993"}`, false, false},
		{"host as URL", `{"host":"imaps://imap.example.com"}`, false, false},
		{"host a dash", `{"host":"-"}`, false, false},
		{"host label ending in a dash", `{"host":"imap-.example.com"}`, false, false},
		{"plaintext remote", `{"host":"imap.example.com","insecure_plaintext":true}`, false, false},
		{"plaintext ipv6 loopback", `{"host":"::1","insecure_plaintext":true}`, true, true},
		{"since month 13", `{"host":"h","since":"2025-13-01"}`, false, false},

		{"host with hex-only name and port", `{"host":"cafe.de:993"}`, false, false},
		{"mailbox control character", `{"host":"h","mailboxes":["a\u0000b"]}`, false, false},

		// The schema is looser: Validate knows more.
		{"since impossible date", `{"host":"h","since":"2025-02-30"}`, true, false},
		{"inbox twice any case", `{"host":"h","mailboxes":["INBOX","inbox"]}`, true, false},
		// The schema is stricter: zero and null mean the default to Validate.
		{"port zero", `{"host":"h","port":0}`, false, true},
		{"max messages zero", `{"host":"h","max_messages_per_run":0}`, false, true},
		{"max body zero", `{"host":"h","max_body_bytes":0}`, false, true},
		{"mailboxes null", `{"host":"h","mailboxes":null}`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			schemaErr := s.Validate(inst)
			if got := schemaErr == nil; got != tt.schema {
				t.Errorf("schema accepts %s: %v (%v), want %v", tt.config, got, schemaErr, tt.schema)
			}
			c, err := strictDecode([]byte(tt.config))
			if err == nil {
				err = c.Validate()
			}
			if got := err == nil; got != tt.validate {
				t.Errorf("decode and Validate accept %s: %v (%v), want %v", tt.config, got, err, tt.validate)
			}
		})
	}
}
