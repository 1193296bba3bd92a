package adminrpc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/adminrpc"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/store"
	adminv1 "github.com/connhost/connhost/proto/admin/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

const token = "admin-rpc-test-token"

type env struct {
	h      *hosttest.Host
	conn   *grpc.ClientConn
	client adminv1.AdminServiceClient
}

func newEnv(t *testing.T) *env {
	t.Helper()
	h := hosttest.New(t, hosttest.Options{})
	svc, err := adminrpc.New(adminrpc.Config{Token: token, Control: h.Control, Store: h.Store, Runs: h.Runner,
		Logger: h.Logger.Named("grpc"), Poll: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g := svc.Server()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); svc.Close(); g.Stop() })
	return &env{h: h, conn: conn, client: adminv1.NewAdminServiceClient(conn)}
}

func authed(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// errorInfo returns the status code, the ErrorInfo reason and run_id.
func errorInfo(t *testing.T, err error) (codes.Code, string, string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("not a status: %v", err)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if info.Domain != adminrpc.ErrorDomain {
				t.Errorf("domain %q", info.Domain)
			}
			if !strings.HasPrefix(st.Message(), info.Reason) {
				t.Errorf("message %q does not start with the code %q", st.Message(), info.Reason)
			}
			return st.Code(), info.Reason, info.Metadata["run_id"]
		}
	}
	return st.Code(), "", ""
}

// TestTokenRequired: every method answers Unauthenticated, with no
// detail, to a missing or wrong token.
func TestTokenRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	cases := map[string]context.Context{
		"no token":     ctx,
		"wrong token":  metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer nope"),
		"basic scheme": metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+token),
		"two tokens":   metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer nope", "authorization", "Bearer "+token),
	}
	for name, ctx := range cases {
		t.Run(name, func(t *testing.T) {
			calls := map[string]func() error{
				"TriggerRun": func() error {
					_, err := e.client.TriggerRun(ctx, &adminv1.TriggerRunRequest{ConnectionId: "conn_x"})
					return err
				},
				"GetRun": func() error { _, err := e.client.GetRun(ctx, &adminv1.GetRunRequest{RunId: "run_x"}); return err },
				"CancelRun": func() error {
					_, err := e.client.CancelRun(ctx, &adminv1.CancelRunRequest{RunId: "run_x"})
					return err
				},
				"WatchRun": func() error {
					s, err := e.client.WatchRun(ctx, &adminv1.WatchRunRequest{RunId: "run_x"})
					if err != nil {
						return err
					}
					_, err = s.Recv()
					return err
				},
			}
			for method, call := range calls {
				err := call()
				if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated || st.Message() != "unauthorized" {
					t.Errorf("%s: %v", method, err)
				}
			}
		})
	}
	if n := len(e.h.Runs("conn_x")); n != 0 {
		t.Errorf("%d runs created without a token", n)
	}
}

// TestTriggerWatchGet: a gRPC trigger goes through the same launch seam
// (a manual run row, the child launched once), WatchRun streams it to its
// end, and GetRun agrees with the end.
func TestTriggerWatchGet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := authed(context.Background())
	c := e.h.CreateDemo(map[string]any{"records": 8, "record_delay_ms": 30}, "")
	e.h.SetToken(c.ID, "tok-grpc")
	before := e.h.Launcher.Launches()

	tr, err := e.client.TriggerRun(ctx, &adminv1.TriggerRunRequest{ConnectionId: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	run := tr.GetRun()
	if run.GetId() == "" || run.GetConnectionId() != c.ID || run.GetTrigger() != "manual" || run.GetAttempt() != 1 {
		t.Fatalf("triggered %v", run)
	}
	stream, err := e.client.WatchRun(ctx, &adminv1.WatchRunRequest{RunId: run.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*adminv1.WatchRunResponse
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if len(msgs) < 2 || msgs[0].GetKind() != "status" || msgs[0].GetRun().GetId() != run.GetId() {
		t.Fatalf("first of %d messages: %v", len(msgs), msgs[0])
	}
	end := msgs[len(msgs)-1]
	if end.GetKind() != "end" || end.GetRun().GetStatus() != "succeeded" || end.GetRun().GetRecords() != 8 || end.GetRun().GetEndedAt() == "" {
		t.Fatalf("end %v", end)
	}
	got, err := e.client.GetRun(ctx, &adminv1.GetRunRequest{RunId: run.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetRun().GetStatus() != "succeeded" || got.GetRun().GetRecords() != 8 || got.GetRun().GetEndedAt() != end.GetRun().GetEndedAt() {
		t.Errorf("get %v, end %v", got.GetRun(), end.GetRun())
	}
	// Where it ran; a manual run was due at no instant.
	if got.GetRun().GetHostId() != "host_test" || got.GetRun().GetScheduledFor() != "" {
		t.Errorf("manual run: host_id %q, scheduled_for %q", got.GetRun().GetHostId(), got.GetRun().GetScheduledFor())
	}
	// Its launch provenance: the stored credential, names and layers.
	if p := got.GetRun().GetProvenance(); p.GetCredentialSource() != "stored" || p.GetCredential().GetState() != "active" ||
		!slices.ContainsFunc(p.GetEnv(), func(v *adminv1.EnvVar) bool {
			return v.GetName() == "DEMO_TOKEN" && v.GetLayer() == "stored_credential"
		}) {
		t.Errorf("manual run provenance = %v", p)
	}
	if n := e.h.Launcher.Launches() - before; n != 1 {
		t.Errorf("%d child launches, want 1", n)
	}
	// Watching a finished run yields its end only.
	stream, err = e.client.WatchRun(ctx, &adminv1.WatchRunRequest{RunId: run.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil || m.GetKind() != "end" || m.GetRun().GetStatus() != "succeeded" {
		t.Fatalf("watch finished run: %v %v", m, err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after the end: %v", err)
	}

	// A scheduled run carries the instant it was due.
	sc := e.h.CreateDemo(map[string]any{"records": 1}, "@every 1m")
	e.h.SetToken(sc.ID, "tok-grpc")
	var sched store.Run
	e.h.AdvanceUntil(time.Minute, time.Minute, func() bool {
		for _, r := range e.h.Finished(sc.ID) {
			if r.Trigger == store.TriggerScheduled {
				sched = r
				return true
			}
		}
		return false
	})
	got, err = e.client.GetRun(ctx, &adminv1.GetRunRequest{RunId: sched.ID})
	if err != nil {
		t.Fatal(err)
	}
	if want := sched.ScheduledFor.UTC().Format(time.RFC3339Nano); sched.ScheduledFor.IsZero() || got.GetRun().GetScheduledFor() != want {
		t.Errorf("scheduled run: scheduled_for %q, want %q", got.GetRun().GetScheduledFor(), want)
	}
}

// TestTypedFailures: refusals and lookups come back as statuses whose
// message starts with the stable code and whose ErrorInfo names it; a
// refused trigger names its refused run row.
func TestTypedFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := authed(context.Background())
	revoked := e.h.CreateDemo(map[string]any{}, "")
	if _, err := e.h.Control.SetState(context.Background(), "operator", revoked.ID, store.ConnectionRevoked); err != nil {
		t.Fatal(err)
	}
	noCred := e.h.CreateDemo(map[string]any{}, "")

	_, err := e.client.TriggerRun(ctx, &adminv1.TriggerRunRequest{ConnectionId: revoked.ID})
	code, reason, runID := errorInfo(t, err)
	if code != codes.FailedPrecondition || reason != "connection_revoked" || runID == "" {
		t.Fatalf("revoked: %v %q %q", code, reason, runID)
	}
	got, err := e.client.GetRun(ctx, &adminv1.GetRunRequest{RunId: runID})
	if err != nil || got.GetRun().GetStatus() != "refused" || got.GetRun().GetFailureCode() != "connection_revoked" {
		t.Fatalf("refused run %v %v", got, err)
	}
	// A connection without a credential is queued; the launch seam
	// refuses the run before any child starts.
	tr, err := e.client.TriggerRun(ctx, &adminv1.TriggerRunRequest{ConnectionId: noCred.ID})
	if err != nil || tr.GetRun().GetStatus() != "queued" {
		t.Fatalf("no credential: %v %v", tr, err)
	}
	if _, err := e.h.Wait(tr.GetRun().GetId()); failure.CodeOf(err) != failure.CredentialsRequired {
		t.Errorf("no credential: the run ended %v", err)
	}

	cases := map[string]struct {
		call   func() error
		code   codes.Code
		reason string
	}{
		"unknown connection": {func() error {
			_, err := e.client.TriggerRun(ctx, &adminv1.TriggerRunRequest{ConnectionId: "conn_nope"})
			return err
		}, codes.NotFound, "connection_not_found"},
		"unknown run": {func() error {
			_, err := e.client.GetRun(ctx, &adminv1.GetRunRequest{RunId: "run_nope"})
			return err
		}, codes.NotFound, adminrpc.CodeRunNotFound},
		"cancel unknown run": {func() error {
			_, err := e.client.CancelRun(ctx, &adminv1.CancelRunRequest{RunId: "run_nope"})
			return err
		}, codes.NotFound, adminrpc.CodeRunNotFound},
		"cancel ended run": {func() error {
			_, err := e.client.CancelRun(ctx, &adminv1.CancelRunRequest{RunId: runID})
			return err
		}, codes.FailedPrecondition, adminrpc.CodeConflict},
		"empty connection id": {func() error {
			_, err := e.client.TriggerRun(ctx, &adminv1.TriggerRunRequest{})
			return err
		}, codes.InvalidArgument, adminrpc.CodeInvalidRequest},
		"watch unknown run": {func() error {
			s, err := e.client.WatchRun(ctx, &adminv1.WatchRunRequest{RunId: "run_nope"})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, codes.NotFound, adminrpc.CodeRunNotFound},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := c.call()
			code, reason, _ := errorInfo(t, err)
			if code != c.code || reason != c.reason {
				t.Errorf("got %v %q, want %v %q", code, reason, c.code, c.reason)
			}
			// A not-found names what was asked for.
			if c.code == codes.NotFound && !strings.Contains(status.Convert(err).Message(), "_nope") {
				t.Errorf("message %q does not name the id", status.Convert(err).Message())
			}
		})
	}
}

// TestRunActiveNamesTheHolder: a second trigger is refused run_active
// naming the run that holds the connection, then the refused run; the
// named run cancels.
func TestRunActiveNamesTheHolder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := authed(context.Background())
	c := e.h.CreateDemo(map[string]any{"records": 100000, "record_delay_ms": 20}, "")
	e.h.SetToken(c.ID, "tok-grpc-active")
	first, err := e.client.TriggerRun(ctx, &adminv1.TriggerRunRequest{ConnectionId: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.client.TriggerRun(ctx, &adminv1.TriggerRunRequest{ConnectionId: c.ID})
	code, reason, refused := errorInfo(t, err)
	if code != codes.FailedPrecondition || reason != "run_active" || refused == "" || refused == first.GetRun().GetId() {
		t.Fatalf("second trigger: %v %q %q", code, reason, refused)
	}
	msg := status.Convert(err).Message()
	want := "active run (run " + first.GetRun().GetId() + "); refused as run " + refused
	if !strings.Contains(msg, want) {
		t.Errorf("message %q does not contain %q", msg, want)
	}
	res, err := e.client.CancelRun(ctx, &adminv1.CancelRunRequest{RunId: first.GetRun().GetId()})
	if err != nil || res.GetRun().GetStatus() != "cancelled" {
		t.Fatalf("cancel the named run: %v %v", res, err)
	}
}

// TestCancelRun: CancelRun returns the final row, cancelled; a watcher
// sees the same end.
func TestCancelRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := authed(context.Background())
	c := e.h.CreateDemo(map[string]any{"records": 100000, "record_delay_ms": 20}, "")
	e.h.SetToken(c.ID, "tok-grpc-cancel")
	tr, err := e.client.TriggerRun(ctx, &adminv1.TriggerRunRequest{ConnectionId: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := e.client.WatchRun(ctx, &adminv1.WatchRunRequest{RunId: tr.GetRun().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := stream.Recv(); err != nil || m.GetKind() != "status" {
		t.Fatalf("first watch message %v %v", m, err)
	}
	res, err := e.client.CancelRun(ctx, &adminv1.CancelRunRequest{RunId: tr.GetRun().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetRun().GetStatus() != "cancelled" || res.GetRun().GetFailureCode() != "cancelled" {
		t.Errorf("cancelled %v", res.GetRun())
	}
	var last *adminv1.WatchRunResponse
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = m
	}
	if last.GetKind() != "end" || last.GetRun().GetStatus() != "cancelled" {
		t.Errorf("watch end %v", last)
	}
}

// TestReflection: server reflection answers without a token, so grpcurl
// needs no -proto: it lists the admin service and serves its file
// descriptor (the methods stay behind the token: TestTokenRequired).
func TestReflection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	stream, err := reflectionpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	ask := func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("reflection without a token: %v", err)
		}
		return resp
	}
	resp := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !slices.Contains(names, "connhost.admin.v1.AdminService") {
		t.Fatalf("services %v lack connhost.admin.v1.AdminService", names)
	}
	resp = ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: "connhost.admin.v1.AdminService"}})
	fds := resp.GetFileDescriptorResponse().GetFileDescriptorProto()
	if len(fds) == 0 {
		t.Fatalf("no file descriptor for the admin service: %v", resp)
	}
	var fd descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(fds[0], &fd); err != nil {
		t.Fatal(err)
	}
	var methods []string
	for _, s := range fd.GetService() {
		for _, m := range s.GetMethod() {
			methods = append(methods, m.GetName())
		}
	}
	for _, want := range []string{"TriggerRun", "GetRun", "WatchRun", "CancelRun"} {
		if !slices.Contains(methods, want) {
			t.Errorf("descriptor methods %v lack %s", methods, want)
		}
	}
}
