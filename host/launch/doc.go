// Package launch starts connector plugins: one child process per call, over
// hashicorp/go-plugin's gRPC transport, with an environment built
// explicitly, a pinned binary, a deadline, and nothing left behind.
//
// # Environment
//
// BuildEnv is a pure function that builds a child's whole environment from
// the host's environment and the run (DESIGN.md section 3): allowlist,
// env_passthrough, host credential values only when the broker resolved
// them from the host, run metadata, and the stored credential last, so a
// host variable set to "" or to a stale value can never shadow it.
// go-plugin is started with SkipHostEnv, so nothing else is added; only
// go-plugin's own handshake variables (the magic cookie, PLUGIN_*) follow,
// and BuildEnv never passes names with the CONNHOST_ or PLUGIN_ prefix from
// the host or a credential.
//
// # Launching
//
// Every call (Describe, Check, Run) goes through the same steps:
//
//  1. The launch gets the exact bytes it will exec. A Spec with an Image
//     (every catalog entry has one: see package pluginimage) execs that
//     image, the binary as the catalog read and hashed it once into a
//     sealed, read-only memfd (elsewhere, or where executable memfds are
//     forbidden, a 0500 file in a private 0700 directory). The launch
//     only stats the binary's path: if its identity (device, inode, size,
//     times) changed since it was pinned, it is hashed again, and a file
//     with other bytes, gone or unreadable refuses the launch with
//     plugin_checksum_mismatch before any child starts (the same bytes,
//     such as a touch, launch). Concurrent launches share the image; it is
//     passed to each child as its fd 3 and exec'd as /proc/self/fd/3, and
//     held until the call ends. A Spec without an Image (or whose image a
//     rescan closed meanwhile) gets a copy of its own, hashed with a fresh
//     SHA-256 while copied and compared with Spec.SHA256: the cost of
//     reading the whole binary on that launch. Either way the launcher
//     execs exactly the bytes it hashed: go-plugin's SecureConfig hashes a
//     path and then execs that path, leaving a window in which the binary
//     can be swapped; it is not used. See BenchmarkLaunch and BenchmarkPin.
//  2. go-plugin starts the child through a RunnerFunc: gRPC only, the
//     connhost handshake and VersionedPlugins, SkipHostEnv, mutual TLS
//     (below) unless Config.DisableAutoMTLS. The runner gives the child no stdin
//     (/dev/null), its own process group, Pdeathsig SIGKILL (Linux), and a
//     private working directory that also holds its socket. go-plugin's
//     Managed mode is not used: it keeps every client in a global list.
//  3. Each RPC gets the call's context, which carries the call's deadline
//     (Config.CallTimeout, Config.RunTimeout or Spec.Timeout).
//  4. The child is stopped: gracefully after a successful call (go-plugin's
//     shutdown RPC), at once after a cancel, a timeout or a broken call.
//     Each step is bounded by Config.KillTimeout and the whole process group
//     is SIGKILLed in any case. The child is reaped on its own goroutine as
//     soon as it exits; before reaping, the rest of its group is killed
//     while the zombie still reserves the group id. When a call returns, the
//     child and everything it spawned in its group are dead and reaped.
//     With Config.Contain each launch also runs in a contain.Scope (its
//     own cgroup v2 group where the host may make one): once the child has
//     exited, everything left in the scope — a grandchild that left the
//     group or called setsid included — is killed before the child is
//     reaped. If the host itself dies, Pdeathsig kills the plugin and the
//     next start's contain.Sweep kills what the plugin left.
//
// # Mutual TLS
//
// The child's socket is useless to anyone but this host, as with
// go-plugin's AutoMTLS, for less: AutoMTLS makes a P-521 key and
// certificate on both sides of every launch (≈10 ms of keys and an ≈8 ms
// handshake, see BenchmarkTLSIdentity); here a launch makes one P-256 key
// and certificate (≈0.3 ms) and shakes hands in ≈1 ms. Started by bare
// go-plugin until its first message (BenchmarkGoPluginTLS), the demo
// plugin took 5–6× as long with AutoMTLS as without TLS, and 1.3× with
// this.
//
// A Launcher makes its own key and self-signed certificate once, in New.
// Each launch makes a fresh key and certificate for the child, hands both
// to it in its environment (wire.EnvServerCert, wire.EnvServerKey) with
// the Launcher's certificate (go-plugin's PLUGIN_CLIENT_CERT), and dials
// with a TLS configuration whose only root is that one child certificate.
// wire.Serve, and so sdk.Serve, serves with what it was handed, TLS 1.3
// only, and requires every client to present the Launcher's certificate
// and prove it holds its key.
//
// Making the host's certificate once per Launcher keeps AutoMTLS's
// guarantee because the guarantee rests on the host's private key, not on
// the certificate's age: the key is made in memory, is never written,
// logged or passed to a child, and dies with the process; a child learns
// only the certificate, which is public, and a certificate without its key
// proves nothing in a handshake. Whoever dials a child's socket — another
// local user, another child, a grandchild holding the child's own identity
// — must prove possession of the host's key, so only this host process is
// served. What a fresh host key per launch would add (a compromised
// child's knowledge ending with its launch) the host key does not need:
// children never see it. The per-launch half is what stays per launch:
// each child's certificate is new, pinned alone for its launch, and no CA
// (neither certificate is), so the host talks to the child it started:
// another child's socket answers with a certificate this launch does not
// trust.
//
// The child's key travels in its environment, which only the child (and
// its uid) can read, exactly like the stored credential it already
// receives: it is added by the runner, never part of Spec.Env, so it
// reaches no argv, no run record and no provenance; every launch redacts
// it (and the lines of its PEM body) from logs and errors like a
// Spec.Secrets value; and wire.Serve removes it from the environment once
// read, so the connector and its children never see it.
//
// A plugin built on an older SDK, or any plain go-plugin plugin, ignores
// the handed-over identity and answers PLUGIN_CLIENT_CERT with go-plugin's
// AutoMTLS: it prints its own certificate in the handshake line, and
// go-plugin puts that in place of the pinned one, as AutoMTLS always
// trusts the certificate the child it started prints. The launch works,
// at AutoMTLS's cost on the child's side, and is logged at DEBUG. Either
// way the host's certificate is required by the child. gRPC connects
// lazily, so the launcher makes one health-check call right after the
// handshake: a refused certificate fails the start as
// plugin_handshake_failed, not the first call as a crash.
//
// # Results
//
// Launch failures are *failure.Error values:
//
//	plugin_checksum_mismatch  the binary does not hash to the pinned sum,
//	                          or is gone or unreadable; the message names
//	                          the path and the pinned and found sums
//	plugin_handshake_failed   the child is not a connhost plugin, printed
//	                          something else first, exited or hung before
//	                          the handshake (retryable when it timed out)
//	connector_failed, credentials_required, credential_rejected
//	                          the connector's own typed failure, with its
//	                          Retryable flag; the *wire.Failure is the cause
//	connector_crashed         the child died or the connection broke during
//	                          the call (retryable)
//	run_timeout               the call's deadline passed (retryable)
//	cancelled                 the caller cancelled; the cause given to
//	                          context.WithCancelCause is the error's cause,
//	                          so a caller may relabel it (host_shutdown)
//
// An error returned by Run's emit callback ends the run and is returned
// unchanged.
//
// # Redaction
//
// Spec.Secrets are the values injected into one call. The launcher removes
// them from everything of that call meant for people: every log line
// (go-plugin re-logs the child's stderr and hclog JSON lines through a
// redacting hclog.Logger; the child's redirected stdout and stderr arrive
// through the same logger), every returned error (go-plugin copies a
// malformed handshake line into its error), progress messages, and Check's
// identity and failure. The child's stderr is redacted as a stream before
// go-plugin splits it, and every line is bounded, cut where no secret spans
// the cut, so a long line cannot leak a secret in two halves. Besides each
// exact value, its JSON-escaped forms and the lines of a multi-line value
// are redacted, and so is the password of a proxy URL in the child's
// environment (the allowlist passes HTTP(S)_PROXY). Records and checkpoints are the connector's data and are
// passed through untouched.
//
// # Log lines
//
// A relayed hclog line keeps the plugin line's fields in its order (sorted
// by key, as hclog writes JSON) after the host's own (connector, run_id),
// without the timestamp field go-plugin adds: the host's line has its time.
// A Describe's lines name the file (file=PATH), which may be no connector
// at all. A plugin process the host killed (the call ended, was cancelled,
// the host stops) is logged at DEBUG, "plugin process stopped by the
// host"; one that died on its own stays go-plugin's ERROR, "plugin process
// exited".
package launch
