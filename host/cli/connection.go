package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
	"github.com/spf13/cobra"
)

func (a *app) connectionCommand() *cobra.Command {
	cmd := group(&cobra.Command{
		Use:     "connection",
		Aliases: []string{"connections"},
		Short:   "Create and manage connections",
		Long: `A connection is one configured instance of a connector, with its own
schedule, config, credential, records, checkpoint and run history.

A schedule is a cron spec with seconds (six fields, "*/30 * * * * *"),
a standard five-field cron spec ("0 * * * *"), or "@every <duration>"
("@every 30s"). A connection without a schedule runs only on demand.`,
		Example: `  connhost connection create --connector demo --label quickstart --schedule "@every 1m" --config '{"records":5}'
  connhost connection list
  connhost connection pause CONNECTION_ID`,
	})
	cmd.AddCommand(
		a.connectionCreateCommand(),
		a.connectionListCommand(),
		a.connectionShowCommand(),
		a.connectionUpdateCommand(),
		idCommand(a, "connection pause", "ID", "Pause a connection's schedule",
			`Pause stops the connection's scheduled runs; manual runs are still allowed. Resume undoes it.`,
			(*client.Client).PauseConnection, a.printConnection),
		idCommand(a, "connection resume", "ID", "Resume a paused connection",
			`Resume puts a paused connection back on its schedule.`,
			(*client.Client).ResumeConnection, a.printConnection),
		idCommand(a, "connection revoke", "ID", "Revoke a connection",
			`Revoke stops every future run of the connection, scheduled or manual, and keeps
its records and history. It cannot be undone; delete removes the connection.`,
			(*client.Client).RevokeConnection, a.printConnection),
		idCommand(a, "connection state", "ID", "Show a connection's last committed checkpoint",
			`State shows the checkpoint the connection's next run resumes from: the state
its connector last committed (JSON, or base64 when it is not JSON), the run
that committed it and when. "none" means the next run starts from scratch.`,
			(*client.Client).GetCheckpoint, a.printCheckpoint),
		idCommand(a, "connection reset-state", "ID", "Clear a connection's checkpoint",
			`Reset-state clears the connection's checkpoint, so its next run starts from
scratch, as after changing a config the checkpoint no longer fits (the
demo's records lowered below what it already collected). The records stay:
a run that emits a key again replaces its record. It is audited
(connection.reset_state), and refused (run_active, naming the run) while a
run holds the connection: cancel that run first, or wait for it to end.
Clearing a connection with no checkpoint succeeds and changes nothing.`,
			(*client.Client).ResetCheckpoint, a.printCheckpointReset),
		idCommand(a, "connection explain", "ID", "Explain what the connection's next launch would do",
			`Explain says what the connection's next launch would do, without starting
anything and without decrypting (presence only, like the enrollment gate):
the enrollment in force (what the scheduler acted on, as connhost enrollment
shows it) and, when the gate decides otherwise now, that decision ("at
re-evaluation"), its health and the action it asks, the next launch predicted
from the enrollment in force (scheduled and when, if enrolled: right after a
credential revoke, the scheduled run, refused), which credential source the
launch would use (the stored credential's
state and key id, or the host env), every variable NAME of the child's
environment with its layer, and what would be refused, with the typed code
and message (e.g. static_secret_credential_unavailable: stored credential
revoked at …). It never shows a value. -o json prints the API's Explain.`,
			(*client.Client).ExplainConnection, a.printExplain),
		a.connectionDeleteCommand(),
	)
	return cmd
}

// parseConfig parses a --config value: a JSON object, its numbers kept as
// written (json.Number), so an int64 beyond 2^53 reaches the host exactly.
func parseConfig(s string) (map[string]any, error) {
	var cfg map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&cfg); err != nil || cfg == nil || !json.Valid([]byte(s)) {
		return nil, usageErrorf("--config must be a JSON object, e.g. '{\"records\":5}'")
	}
	return cfg, nil
}

// parseJitter parses a --jitter value: a Go duration ("" clears it).
func parseJitter(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return "", usageErrorf("--jitter must be a non-negative duration such as 5s or 1m30s")
	}
	return d.String(), nil
}

func (a *app) connectionCreateCommand() *cobra.Command {
	var (
		req    apitypes.ConnectionCreateRequest
		config string
		jitter string
	)
	cmd := &cobra.Command{
		Use:   "create --connector KEY --label LABEL",
		Short: "Create a connection",
		Long: `Create a connection of a connector. Without --schedule the connection uses
the connector's default schedule if the connector auto-enrolls, and otherwise
runs only on demand; --jitter then spreads the default schedule. "connection
show" says which schedule is in force and where it comes from. Capture its
credential next with "connhost credential set".`,
		Example: `  connhost connection create --connector demo --label quickstart --schedule "@every 30s" --config '{"records":5}'
  connhost connection create --connector demo --label nightly --schedule "0 2 * * *" --jitter 5m -o json`,
		Args: args(),
		RunE: a.wrap(func(ctx context.Context, _ []string) error {
			if config != "" {
				cfg, err := parseConfig(config)
				if err != nil {
					return err
				}
				req.Config = cfg
			}
			j, err := parseJitter(jitter)
			if err != nil {
				return err
			}
			req.Jitter = j
			c, err := a.api()
			if err != nil {
				return err
			}
			conn, err := c.CreateConnection(ctx, req)
			if err != nil {
				return err
			}
			return a.printConnection(conn)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.ConnectorKey, "connector", "", "connector key (required)")
	f.StringVar(&req.Label, "label", "", "a label for people (required)")
	f.StringVar(&req.Schedule, "schedule", "", `cron spec (6 fields with seconds, or 5) or "@every DURATION"`)
	f.StringVar(&jitter, "jitter", "", "spread scheduled runs: each runs a fixed offset within [0, JITTER) after its due instant, e.g. 30s (at most the period of the schedule in force, own or the connector's default, and 24h)")
	f.StringVar(&config, "config", "", "connector config, a JSON object")
	_ = cmd.MarkFlagRequired("connector")
	_ = cmd.MarkFlagRequired("label")
	return cmd
}

func (a *app) connectionListCommand() *cobra.Command {
	var filter client.ConnectionFilter
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List connections",
		Long: `List connections, oldest first, with their state, health verdict
(see connhost attention), schedule, enrollment outcome and next run, one page at a time (--limit, --cursor). When more
connections exist, the cursor of the next page is printed on stderr.

--health keeps the connections with one health verdict. Health is derived
as connections are read: the host reads on until the page is full or the
list ends, but reads at most 5000 connections a request, so among many
connections a filtered page may be shorter than --limit, or empty, while
a cursor for the next page is still printed: follow it to the end.`,
		Example: `  connhost connection list
  connhost connection list --connector demo --state active -o json
  connhost connection list --health needs_credential`,
		Args: args(),
		RunE: a.wrap(func(ctx context.Context, _ []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			page, err := c.ListConnections(ctx, filter)
			if err != nil {
				return err
			}
			return printPage(a, page, []string{"ID", "CONNECTOR", "LABEL", "STATE", "HEALTH", "SCHEDULE", "ENROLLMENT", "NEXT RUN"},
				func(k apitypes.Connection) []string {
					return []string{k.ID, k.ConnectorKey, k.Label, k.State, healthVerdict(k.Health), scheduleInForce(k),
						enrollmentOutcome(k.Enrollment), ts(k.NextRun)}
				})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&filter.Connector, "connector", "", "only connections of this connector")
	f.StringVar(&filter.State, "state", "", "only connections in this state: active, paused or revoked")
	f.StringVar(&filter.Health, "health", "", "only connections with this health verdict: healthy, never_run, failing, invalid_config, needs_credential, credential_rejected, credential_unavailable, connector_missing, paused or revoked (a filtered page may be short; follow the cursor)")
	f.IntVar(&filter.Limit, "limit", 0, "page size (default: the server's)")
	f.StringVar(&filter.Cursor, "cursor", "", "the cursor of the page to read, from a previous list")
	_ = cmd.RegisterFlagCompletionFunc("health", cobra.FixedCompletions(healthVerdicts, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// healthVerdicts are the values of connection list --health.
var healthVerdicts = []cobra.Completion{"healthy", "never_run", "failing", "invalid_config", "needs_credential",
	"credential_rejected", "credential_unavailable", "connector_missing", "paused", "revoked"}

func (a *app) connectionShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a connection",
		Long: `Show a connection: connector, label, state, the schedule in force and where
it comes from ("(own)" or "(connector default)"), config, enrollment outcome and next run,
and its health: the verdict, why, the action it needs of an operator and
since when, a held schedule (the failure that held it) and a backoff. With -o json,
schedule is the connection's own spec, schedule_in_force the one it runs by
and schedule_source own, connector_default or none.`,
		Example: `  connhost connection show CONNECTION_ID -o json`,
		Args:    args("ID"),
		RunE: a.wrap(func(ctx context.Context, args []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			conn, err := c.GetConnection(ctx, args[0])
			if err != nil {
				return err
			}
			return a.printConnection(conn)
		}),
	}
}

func (a *app) connectionUpdateCommand() *cobra.Command {
	var label, schedule, config, jitter string
	cmd := &cobra.Command{
		Use:   "update ID [--label L] [--schedule SPEC] [--config JSON] [--jitter D]",
		Short: "Change a connection's label, schedule, config or jitter",
		Long: `Update only the given fields. --schedule "" removes the connection's own
schedule (the connector's default applies again) and its jitter unless
--jitter is given too; --jitter "" removes the jitter. Jitter spreads the
schedule in force, own or default. The new schedule applies at once, to
this connection only.`,
		Example: `  connhost connection update CONNECTION_ID --schedule "*/10 * * * * *"
  connhost connection update CONNECTION_ID --config '{"records":50}' --label renamed`,
		Args: args("ID"),
	}
	cmd.RunE = a.wrap(func(ctx context.Context, args []string) error {
		var req apitypes.ConnectionUpdateRequest
		changed := cmd.Flags().Changed
		if changed("label") {
			req.Label = &label
		}
		if changed("schedule") {
			req.Schedule = &schedule
		}
		if changed("config") {
			cfg, err := parseConfig(config)
			if err != nil {
				return err
			}
			req.Config = &cfg
		}
		if changed("jitter") {
			j, err := parseJitter(jitter)
			if err != nil {
				return err
			}
			req.Jitter = &j
		}
		if req == (apitypes.ConnectionUpdateRequest{}) {
			return usageErrorf("nothing to update: give at least one of --label, --schedule, --config, --jitter")
		}
		c, err := a.api()
		if err != nil {
			return err
		}
		conn, err := c.UpdateConnection(ctx, args[0], req)
		if err != nil {
			return err
		}
		return a.printConnection(conn)
	})
	f := cmd.Flags()
	f.StringVar(&label, "label", "", "new label")
	f.StringVar(&schedule, "schedule", "", `new schedule ("" removes it)`)
	f.StringVar(&config, "config", "", "new config, a JSON object (replaces the old one)")
	f.StringVar(&jitter, "jitter", "", `new jitter ("" removes it)`)
	return cmd
}

func (a *app) connectionDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a connection with its records, checkpoint and credential",
		Long: `Delete a connection: its schedule stops, and its records, checkpoint and
stored credential are deleted. Run history and audit are kept.`,
		Example: `  connhost connection delete CONNECTION_ID`,
		Args:    args("ID"),
		RunE: a.wrap(func(ctx context.Context, args []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			d, err := c.DeleteConnection(ctx, args[0])
			if err != nil {
				return err
			}
			if a.json() {
				return printJSON(a.rt.Stdout, d)
			}
			return fields(a.rt.Stdout, [][2]string{
				{"deleted", d.ID},
				{"records deleted", itoa(d.Records)},
				{"checkpoint deleted", yesNo(d.Checkpoint)},
				{"credential deleted", yesNo(d.Credential)},
			})
		}),
	}
}

func (a *app) printConnection(k apitypes.Connection) error {
	if a.json() {
		return printJSON(a.rt.Stdout, k)
	}
	return writeConnection(a.rt.Stdout, k)
}

func writeConnection(w io.Writer, k apitypes.Connection) error {
	enrollment := enrollmentOutcome(k.Enrollment)
	if k.Enrollment != nil && k.Enrollment.Reason != "" {
		enrollment += " (" + k.Enrollment.Reason + ")"
	}
	return fields(w, [][2]string{
		{"id", k.ID},
		{"connector", k.ConnectorKey},
		{"label", k.Label},
		{"state", k.State},
		{"schedule", scheduleInForce(k)},
		{"jitter", k.Jitter},
		{"config", compactJSON(k.Config, 0)},
		{"enrollment", enrollment},
		{"next run", ts(k.NextRun)},
		{"coalesced ticks", coalesced(k)},
		{"health", healthVerdict(k.Health)},
		{"reason", healthField(k.Health, func(h *apitypes.Health) string { return h.Reason })},
		{"action", healthField(k.Health, func(h *apitypes.Health) string { return h.Action })},
		{"since", healthField(k.Health, func(h *apitypes.Health) string { return ts(h.Since) })},
		{"hold", hold(k.Hold)},
		{"backoff until", ts(k.BackoffUntil)},
		{"created at", ts(k.CreatedAt)},
		{"updated at", ts(k.UpdatedAt)},
	})
}

// healthVerdict is a connection's verdict, "" (shown "-") from a host
// that derives none.
func healthVerdict(h *apitypes.Health) string {
	if h == nil {
		return ""
	}
	return h.Verdict
}

func healthField(h *apitypes.Health, f func(*apitypes.Health) string) string {
	if h == nil {
		return ""
	}
	return f(h)
}

// hold describes a held schedule: "credential_rejected at T by run R:
// message"; "" when not held.
func hold(h *apitypes.Hold) string {
	if h == nil {
		return ""
	}
	out := h.Code
	if h.At != "" {
		out += " at " + ts(h.At)
	}
	if h.RunID != "" {
		out += " by run " + h.RunID
	}
	if h.Message != "" {
		out += ": " + h.Message
	}
	return out
}

// scheduleInForce is the schedule a connection runs by and where it comes
// from: "@every 1m (connector default)", "@every 30s (own)"; "" (shown
// "-") when none.
func scheduleInForce(k apitypes.Connection) string {
	switch k.ScheduleSource {
	case "":
		return k.Schedule // a host that does not say: its own, if any
	case "connector_default":
		return k.ScheduleInForce + " (connector default)"
	case "own":
		return k.ScheduleInForce + " (own)"
	}
	return k.ScheduleInForce
}

// coalesced says how many schedule ticks found the previous occurrence
// still queued or running.
func coalesced(k apitypes.Connection) string {
	if k.CoalescedTicks == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (latest for %s)", k.CoalescedTicks, ts(k.LastCoalescedAt))
}

func enrollmentOutcome(e *apitypes.EnrollmentEntry) string {
	if e == nil {
		return ""
	}
	return e.Outcome
}

func (a *app) printCheckpoint(k apitypes.Checkpoint) error {
	if a.json() {
		return printJSON(a.rt.Stdout, k)
	}
	if !k.Present {
		return fields(a.rt.Stdout, [][2]string{
			{"connection", k.ConnectionID},
			{"checkpoint", "none (the next run starts from scratch)"},
		})
	}
	return fields(a.rt.Stdout, [][2]string{
		{"connection", k.ConnectionID},
		{"checkpoint", checkpointState(k)},
		{"bytes", fmt.Sprint(k.Bytes)},
		{"committed by", k.RunID},
		{"committed at", ts(k.UpdatedAt)},
	})
}

func (a *app) printCheckpointReset(k apitypes.CheckpointReset) error {
	if a.json() {
		return printJSON(a.rt.Stdout, k)
	}
	if !k.Removed || k.Previous == nil {
		return fields(a.rt.Stdout, [][2]string{
			{"connection", k.ConnectionID},
			{"reset", "nothing to clear: the connection had no checkpoint"},
		})
	}
	return fields(a.rt.Stdout, [][2]string{
		{"connection", k.ConnectionID},
		{"reset", "cleared: the next run starts from scratch"},
		{"was", checkpointState(*k.Previous)},
		{"committed by", k.Previous.RunID},
		{"committed at", ts(k.Previous.UpdatedAt)},
	})
}

// checkpointState is a checkpoint's state for a terminal: its JSON on one
// line (at most 200 bytes), or its bytes in base64.
func checkpointState(k apitypes.Checkpoint) string {
	switch {
	case len(k.State) > 0:
		return compactJSON(k.State, 200)
	case k.StateBase64 != "":
		return "base64:" + k.StateBase64
	}
	return "(empty)"
}
