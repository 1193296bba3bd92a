// Command testconn is a connector plugin for the launcher's tests, built on
// sdk/wire directly so the tests do not depend on the SDK. It misbehaves on
// request.
//
// Before serving it reads:
//
//	TESTCONN_PIDFILE  append "pid pgid" to this file (and the pid of any
//	                  grandchild it spawns later)
//	TESTCONN_PRE      garbage: print a non-handshake line on stdout, then serve
//	                  secret:  print the value of $TESTCONN_SECRET_ENV on stdout
//	                           and stderr, then serve
//	                  stderr:  print it on stderr only, then serve normally
//	                  exit:    exit 3 without serving
//	                  hang:    sleep without serving
//	TESTCONN_TLS      goplugin: serve with go-plugin alone, as a plugin built
//	                            on an SDK older than the host's TLS identity
//	                            (AutoMTLS answers PLUGIN_CLIENT_CERT)
//	                  impostor: serve with a certificate of its own instead of
//	                            the one the host handed over
//
// Run behaviour comes from the run's config, {"mode": ...}:
//
//	env        one record per variable of its environment on stream "env":
//	           {"name", "sha256", "present"}
//	records    {"n": N} records on stream "events"
//	log        log the value of $config.secret_env (CONNHOST_PLUGIN_TLS_KEY: the
//	           key the host handed over, which Serve removed from the
//	           environment) through hclog (message and argument), log.Printf, raw stderr after serving, fmt to the
//	           redirected os.Stderr and os.Stdout, a progress message and
//	           stream and an interaction; {"encode": E} leaks it encoded
//	           (see encode) instead of as it is
//	crash      emit one record, then panic
//	exit       emit one record, then os.Exit(7)
//	hang       emit one record, then block ignoring cancellation
//	grandchild spawn /bin/sleep, record its pid, emit one record, then wait
//	           for cancellation
//	escape     spawn two /bin/sleep grandchildren, one in its process group
//	           and one in a session of its own (setsid), record their pids,
//	           emit one record, then {"then": "exit"} return at once (a
//	           normal end) or "wait" for cancellation
//	fail       return a wire.Failure {"code","message","retryable"}; with
//	           "secret_env", "$SECRET" in the message is replaced by the
//	           secret (encoded by "encode"), first emitted as a record
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
)

// tlsKey is the TLS key the host handed over, kept from before Serve
// removes it from the environment.
var tlsKey = os.Getenv(wire.EnvServerKey)

func main() {
	origStderr := os.NewFile(2, "stderr") // go-plugin redirects os.Stderr once serving
	recordPID(os.Getpid())
	secret := os.Getenv(os.Getenv("TESTCONN_SECRET_ENV"))
	switch os.Getenv("TESTCONN_PRE") {
	case "garbage":
		fmt.Println("this is not a go-plugin handshake")
	case "secret":
		fmt.Println("leaking before the handshake: " + secret)
		fmt.Fprintln(os.Stderr, "stderr before the handshake: "+secret)
	case "stderr":
		fmt.Fprintln(os.Stderr, "stderr before the handshake: "+secret)
	case "exit":
		os.Exit(3)
	case "hang":
		time.Sleep(time.Hour)
	}
	c := &conn{stderr: origStderr}
	switch os.Getenv("TESTCONN_TLS") {
	case "goplugin":
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: wire.Handshake,
			Plugins:         wire.PluginSet(c),
			GRPCServer:      plugin.DefaultGRPCServer,
		})
		return
	case "impostor":
		cert, key, err := selfSigned()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Setenv(wire.EnvServerCert, cert)
		os.Setenv(wire.EnvServerKey, key)
	}
	wire.Serve(c)
}

// selfSigned returns a fresh Ed25519 certificate for wire.TLSServerName and
// its key, encoded as the host hands them over.
func selfSigned() (cert, key string, err error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{wire.TLSServerName},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(der), base64.StdEncoding.EncodeToString(keyDER), nil
}

func recordPID(pid int) {
	path := os.Getenv("TESTCONN_PIDFILE")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	pgid, _ := syscall.Getpgid(pid)
	fmt.Fprintf(f, "%d %d\n", pid, pgid)
}

type conn struct {
	stderr *os.File
}

func (c *conn) Describe(context.Context) (manifest.Manifest, error) {
	return manifest.Manifest{
		ConnectorKey: "testconn",
		Version:      "1.0.0",
		Auth:         manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"DEMO_TOKEN"}},
		Streams:      []manifest.Stream{{Name: "env", KeyFields: []string{"name"}}, {Name: "events", KeyFields: []string{"id"}}},
	}, nil
}

// Check reports the hash of DEMO_TOKEN as the identity; an empty token is
// rejected.
func (c *conn) Check(_ context.Context, _ wire.CheckRequest) (wire.CheckResult, error) {
	tok := os.Getenv("DEMO_TOKEN")
	if tok == "" {
		return wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeCredentialsRequired, Message: "DEMO_TOKEN is empty"}}, nil
	}
	return wire.CheckResult{Valid: true, Identity: "token " + tok}, nil
}

type config struct {
	Mode      string `json:"mode"`
	N         int    `json:"n"`
	SecretEnv string `json:"secret_env"`
	Encode    string `json:"encode"`
	Then      string `json:"then"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

// encode returns s the way a leaky connector might print it: "" as it is;
// base64, base64url, hex, HEX, url (query escaping); base64-1 and base64-2
// base64 of s behind 1 or 2 bytes of other text, so the secret falls at
// another alignment of base64's 3-byte groups.
func encode(how, s string) string {
	switch how {
	case "base64":
		return base64.StdEncoding.EncodeToString([]byte(s))
	case "base64url":
		return base64.URLEncoding.EncodeToString([]byte(s))
	case "base64-1":
		return base64.StdEncoding.EncodeToString([]byte("x" + s + "!"))
	case "base64-2":
		return base64.RawStdEncoding.EncodeToString([]byte("xy" + s))
	case "hex":
		return hex.EncodeToString([]byte(s))
	case "HEX":
		return strings.ToUpper(hex.EncodeToString([]byte(s)))
	case "url":
		return url.QueryEscape(s)
	}
	return s
}

func (c *conn) Run(ctx context.Context, req wire.RunRequest, emit func(wire.Message) error) error {
	var cfg config
	if len(req.Config) > 0 {
		if err := json.Unmarshal(req.Config, &cfg); err != nil {
			return &wire.Failure{Code: wire.CodeConnectorFailed, Message: "bad config: " + err.Error()}
		}
	}
	one := func(stream, key string, v any) error {
		data, _ := json.Marshal(v)
		return emit(wire.Message{Kind: wire.KindRecords, Records: []wire.Record{{Stream: stream, Key: key, Data: data}}})
	}
	switch cfg.Mode {
	case "env":
		for _, kv := range os.Environ() {
			name, value, _ := strings.Cut(kv, "=")
			sum := sha256.Sum256([]byte(value))
			if err := one("env", name, map[string]any{"name": name, "sha256": hex.EncodeToString(sum[:]), "present": true}); err != nil {
				return err
			}
		}
		return nil
	case "records":
		for i := range cfg.N {
			if err := one("events", fmt.Sprint(i), map[string]int{"id": i}); err != nil {
				return err
			}
		}
		return nil
	case "log":
		secret := os.Getenv(cfg.SecretEnv)
		if cfg.SecretEnv == wire.EnvServerKey {
			secret = tlsKey
		}
		secret = encode(cfg.Encode, secret)
		logger := hclog.New(&hclog.LoggerOptions{Output: c.stderr, JSONFormat: true, Level: hclog.Trace})
		logger.Info("hclog message with "+secret, "token", secret, "nested", map[string]string{"t": secret}, "err", fmt.Errorf("wrapped %s", secret))
		logger.Named(secret).Warn("named after the secret")
		logger.Info("quote\"d and <html> "+secret, "k", "x")
		log.Printf("log.Printf %s", secret)
		fmt.Fprintf(c.stderr, "raw stderr %s\n", secret)
		fmt.Fprintf(c.stderr, "[ERROR] prefixed %s\n", secret)
		fmt.Fprintf(os.Stderr, "redirected stderr %s\n", secret)
		fmt.Fprintf(os.Stdout, "redirected stdout %s\n", secret)
		// The host cuts lines at 32 KiB: put the secret across the cut.
		fmt.Fprintf(c.stderr, "long line %s%s%s\n", strings.Repeat("x", 32<<10-10-3), secret, strings.Repeat("y", 100))
		if err := emit(wire.Message{Kind: wire.KindProgress, Progress: wire.Progress{Stream: "events " + secret, Message: "progress " + secret}}); err != nil {
			return err
		}
		if err := emit(wire.Message{Kind: wire.KindInteraction, Interaction: wire.Interaction{Kind: "asks " + secret, Missing: []string{secret}}}); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond) // let the stdio stream deliver before the host stops us
		// Records are data and pass unredacted: this one tells the test
		// what was leaked.
		return one("events", "0", map[string]any{"id": 0, "leak": secret})
	case "fields":
		logger := hclog.New(&hclog.LoggerOptions{Output: c.stderr, JSONFormat: true, Level: hclog.Trace})
		for i := range 8 {
			logger.Info("fields line", "trigger", "manual", "records", i, "zeta", "z", "alpha", "a", "mid", "m")
		}
		return nil
	case "crash":
		if err := one("events", "0", map[string]int{"id": 0}); err != nil {
			return err
		}
		panic("testconn: crashing on purpose")
	case "exit":
		if err := one("events", "0", map[string]int{"id": 0}); err != nil {
			return err
		}
		os.Exit(7)
	case "hang":
		if err := one("events", "0", map[string]int{"id": 0}); err != nil {
			return err
		}
		select {}
	case "grandchild":
		cmd := exec.Command("/bin/sleep", "300")
		if err := cmd.Start(); err != nil {
			return err
		}
		recordPID(cmd.Process.Pid)
		if err := one("events", "0", map[string]int{"id": 0}); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	case "escape":
		for _, setsid := range []bool{false, true} {
			cmd := exec.Command("/bin/sleep", "300")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
			if err := cmd.Start(); err != nil {
				return err
			}
			recordPID(cmd.Process.Pid)
		}
		if err := one("events", "0", map[string]int{"id": 0}); err != nil {
			return err
		}
		if cfg.Then == "exit" {
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	case "fail":
		msg := cfg.Message
		if cfg.SecretEnv != "" {
			leak := encode(cfg.Encode, os.Getenv(cfg.SecretEnv))
			msg = strings.ReplaceAll(msg, "$SECRET", leak)
			if err := one("events", "0", map[string]any{"id": 0, "leak": leak}); err != nil {
				return err
			}
		}
		return &wire.Failure{Code: cfg.Code, Message: msg, Retryable: cfg.Retryable}
	}
	return &wire.Failure{Code: wire.CodeConnectorFailed, Message: "unknown mode " + cfg.Mode}
}
