// Package cli is connhost's command line: `connhost serve` runs the host,
// and every other command is a thin client of the host's HTTP API
// (package client), printing aligned text or, with -o json, the API's JSON
// (lists as JSON arrays). main calls Main and exits with its status.
//
// Command tree:
//
//	connhost serve                      run the host (server.Run)
//	connhost keyset init                local: create the encrypted keyset
//	connhost keyset info|rotate|rewrap
//	connhost connector list|show KEY
//	connhost connection create|list|show|update|pause|resume|revoke|delete
//	connhost credential set|show|revoke|delete ID
//	connhost run ID [--wait|--follow]
//	connhost runs list|show|cancel
//	connhost records list ID
//	connhost enrollment
//	connhost attention                  connections that need a person
//	connhost audit list
//	connhost version                    client and server build
//	connhost ui                         a one-time sign-in link for the web console
//	connhost completion bash|zsh|fish|powershell
//
// Settings: --addr / CONNHOST_ADDR (default http://127.0.0.1:7480),
// --token / CONNHOST_TOKEN (default: the operator.token file in the data
// dir), --data-dir / CONNHOST_DATA_DIR (default ./var), -o text|json. A
// flag wins over its variable.
//
// Errors print "error: <code>: <message>" on stderr, with the host's code
// for API errors; with -o json every failure is also one JSON object on
// stdout, {"error":{"code","message",…}} (app.report, the one place errors
// are shown), except a run that did not succeed, whose stdout is the run.
// A refused token names where it came from, an unreachable host the
// address tried (app.classify). Exit status: 0 success; 1 API error,
// unreachable host or local failure; 2 usage error (flags, arguments, a
// required flag given empty, a secret in argv, malformed credential
// input); 3 a run waited for with --wait or --follow ended (or was
// refused) without succeeding — decided by its end event even when the
// host is gone afterwards.
//
// Secrets: `credential set` reads NAME=VALUE lines from stdin or
// --from-file (on a terminal, without echo). A credential value on the
// command line is refused before parsing — any argument beyond the
// connection id, any NAME=VALUE-looking argument or unknown flag — and the
// refusal never repeats it; no output prints a value. The operator token
// may be given with --token for scripts, but CONNHOST_TOKEN or the data
// dir's token file keep it out of process listings.
//
// Timestamps print as RFC 3339 in UTC. Text output replaces control
// characters in server data, so a label or a record cannot drive the
// terminal.
package cli
