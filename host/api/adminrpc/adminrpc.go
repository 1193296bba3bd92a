// Package adminrpc implements the gRPC admin service (proto/admin/v1,
// connhost.admin.v1.AdminService): trigger, get, watch and cancel a run.
//
// It is served on the HTTP API's listener (the server routes HTTP/2
// requests with content-type application/grpc to it) and guarded by the
// same operator token, sent as "authorization: Bearer <token>" metadata
// and checked in constant time by an interceptor before any method runs;
// a missing or wrong token is codes.Unauthenticated with no detail.
//
// TriggerRun calls the same control.TriggerRun → runner.Launch as
// POST /v1/connections/{id}/runs: a gRPC trigger is one more caller of the
// single launch seam, never a second one. Failures are gRPC statuses whose
// message starts with the stable failure code ("run_active: …") and whose
// details carry a google.rpc.ErrorInfo with Reason the code, Domain
// "connhost", and for a refused trigger the refused run's id in
// Metadata["run_id"].
package adminrpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connhost/connhost/host/api/internal/bearer"
	"github.com/connhost/connhost/host/api/internal/runops"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/runevents"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/store"
	adminv1 "github.com/connhost/connhost/proto/admin/v1"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// Actor is the audit actor of gRPC operations.
const Actor = "operator"

// ErrorDomain is the Domain of every ErrorInfo detail.
const ErrorDomain = "connhost"

// Codes beyond host/failure that this service reports in ErrorInfo.
const (
	CodeUnauthorized   = "unauthorized"
	CodeInvalidRequest = "invalid_request"
	CodeRunNotFound    = "run_not_found"
	CodeConflict       = "conflict"
	CodeInternal       = "internal"
)

// Control triggers manual runs (host/control).
type Control interface {
	TriggerRun(ctx context.Context, actor, connectionID string) (store.Run, error)
}

// Store reads runs and cancels queued ones.
type Store interface {
	GetRun(ctx context.Context, id string) (store.Run, error)
	CancelQueuedRun(ctx context.Context, runID string, res store.RunResult) (store.Run, error)
}

// Runs is the runner's live side.
type Runs interface {
	Cancel(runID string) error
	CancelElsewhere(ctx context.Context, runID string) error
	Ended(run store.Run)
	Events() *runevents.Hub
}

// Observer receives one measurement per call (Prometheus metrics).
type Observer interface {
	// ObserveGRPC records a finished call: its full method name, its
	// status code name ("OK", "NotFound", …) and how long it took; stream
	// is true for server streams, whose open time is not a latency.
	ObserveGRPC(method, code string, d time.Duration, stream bool)
}

// Config configures a Service.
type Config struct {
	// Token is the operator bearer token. Required.
	Token   string
	Control Control
	Store   Store
	Runs    Runs
	Logger  hclog.Logger
	// Observer, if set, is told of every call.
	Observer Observer
	// Poll is how often WatchRun re-reads the run row while no event
	// arrives (default runops.DefaultEvery).
	Poll time.Duration
	// CancelWait bounds how long CancelRun waits for the run to end
	// (default 30s).
	CancelWait time.Duration
}

// Validate reports a wiring error.
func (c *Config) Validate() error {
	if c.Token == "" || c.Control == nil || c.Store == nil || c.Runs == nil {
		return ErrInvalidConfig
	}
	if c.Poll < 0 || c.CancelWait < 0 {
		return fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	}
	return nil
}

// Errors.
var (
	// ErrInvalidConfig is returned by New for an incomplete Config.
	ErrInvalidConfig = errors.New("adminrpc: Token, Control, Store and Runs are required")
)

// Service implements adminv1.AdminServiceServer.
type Service struct {
	adminv1.UnimplementedAdminServiceServer

	cfg  Config
	auth bearer.Checker
	// streams ends open WatchRun streams at shutdown.
	streams     context.Context
	stopStreams context.CancelFunc
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.CancelWait == 0 {
		cfg.CancelWait = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, auth: bearer.New(cfg.Token), streams: ctx, stopStreams: cancel}, nil
}

// Server returns a grpc.Server with the token interceptors, the admin
// service and server reflection registered. Reflection answers without a
// token (it describes the service's schema, which is public in proto/, and
// holds no data), so `grpcurl list` works without -proto; every admin
// method still requires the token.
func (s *Service) Server(opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamAuth),
	}, opts...)
	g := grpc.NewServer(opts...)
	adminv1.RegisterAdminServiceServer(g, s)
	reflection.Register(g)
	return g
}

// isReflection reports whether a method is server reflection's (v1 or
// v1alpha).
func isReflection(method string) bool {
	return strings.HasPrefix(method, "/grpc.reflection.v1.ServerReflection/") ||
		strings.HasPrefix(method, "/grpc.reflection.v1alpha.ServerReflection/")
}

// Close ends open WatchRun streams (at shutdown, after the runner has
// ended every run, so watchers got their run's end first).
func (s *Service) Close() { s.stopStreams() }

var errUnauthenticated = status.Error(codes.Unauthenticated, CodeUnauthorized)

func (s *Service) authorized(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	var header string
	if v := md.Get("authorization"); len(v) == 1 {
		header = v[0]
	}
	return s.auth.Authorized(header)
}

func (s *Service) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	if !s.authorized(ctx) {
		s.logCall(info.FullMethod, errUnauthenticated, start, false)
		return nil, errUnauthenticated
	}
	resp, err := h(ctx, req)
	s.logCall(info.FullMethod, err, start, false)
	return resp, err
}

func (s *Service) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	if isReflection(info.FullMethod) {
		return h(srv, ss)
	}
	if !s.authorized(ss.Context()) {
		s.logCall(info.FullMethod, errUnauthenticated, start, true)
		return errUnauthenticated
	}
	err := h(srv, ss)
	s.logCall(info.FullMethod, err, start, true)
	return err
}

// logCall logs and observes one call like the HTTP API does a request:
// method, code and duration, never a request message.
func (s *Service) logCall(method string, err error, start time.Time, stream bool) {
	code, d := status.Code(err), time.Since(start)
	if s.cfg.Observer != nil {
		s.cfg.Observer.ObserveGRPC(method, code.String(), d, stream)
	}
	args := []any{"method", method, "code", code.String(), "duration", d}
	switch code {
	case codes.OK:
		s.cfg.Logger.Debug("grpc call", args...)
	case codes.Internal, codes.Unknown:
		s.cfg.Logger.Error("grpc call", args...)
	default:
		s.cfg.Logger.Info("grpc call", args...)
	}
}

// TriggerRun starts a manual run through the single launch seam.
func (s *Service) TriggerRun(ctx context.Context, req *adminv1.TriggerRunRequest) (*adminv1.TriggerRunResponse, error) {
	if req.GetConnectionId() == "" {
		return nil, invalid("connection_id is required")
	}
	run, err := s.cfg.Control.TriggerRun(ctx, Actor, req.GetConnectionId())
	if err != nil {
		return nil, s.toStatus(err, run.ID)
	}
	return &adminv1.TriggerRunResponse{Run: toProto(run)}, nil
}

// GetRun returns a run.
func (s *Service) GetRun(ctx context.Context, req *adminv1.GetRunRequest) (*adminv1.GetRunResponse, error) {
	if req.GetRunId() == "" {
		return nil, invalid("run_id is required")
	}
	run, err := s.cfg.Store.GetRun(ctx, req.GetRunId())
	if err != nil {
		return nil, s.toStatus(err, "")
	}
	return &adminv1.GetRunResponse{Run: toProto(run)}, nil
}

// WatchRun streams the run's events: a status snapshot, live events, and
// a final "end" carrying the run's final row. A run already ended gets
// only the end.
func (s *Service) WatchRun(req *adminv1.WatchRunRequest, stream grpc.ServerStreamingServer[adminv1.WatchRunResponse]) error {
	if req.GetRunId() == "" {
		return invalid("run_id is required")
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()
	err := runops.Follow(ctx, s.cfg.Store, s.cfg.Runs.Events(), req.GetRunId(), s.cfg.Poll, func(u runops.Update) error {
		if u.Heartbeat {
			return nil
		}
		resp := &adminv1.WatchRunResponse{Kind: string(u.Event.Kind), Stream: u.Event.Stream,
			Done: u.Event.Done, Total: u.Event.Total, Message: u.Event.Message}
		if u.Run != nil {
			resp.Run = toProto(*u.Run)
			if u.End() {
				resp.Message = u.Run.FailureMessage
			}
		} else {
			resp.Run = &adminv1.Run{Id: u.Event.RunID, ConnectionId: u.Event.ConnectionID, Status: u.Event.Status,
				FailureCode: u.Event.FailureCode, Records: u.Event.Records}
		}
		return stream.Send(resp)
	})
	if err != nil {
		if s.streams.Err() != nil && stream.Context().Err() == nil {
			return status.Error(codes.Unavailable, string(failure.HostShutdown)+": host is shutting down")
		}
		return s.toStatus(err, "")
	}
	return nil
}

// CancelRun cancels a run — queued, or running on this host or another —
// and returns its final row.
func (s *Service) CancelRun(ctx context.Context, req *adminv1.CancelRunRequest) (*adminv1.CancelRunResponse, error) {
	if req.GetRunId() == "" {
		return nil, invalid("run_id is required")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CancelWait)
	defer cancel()
	run, err := runops.Cancel(ctx, s.cfg.Store, s.cfg.Store, s.cfg.Runs, req.GetRunId())
	if err != nil {
		return nil, s.toStatus(err, "")
	}
	return &adminv1.CancelRunResponse{Run: toProto(run)}, nil
}

func invalid(msg string) error {
	return withInfo(codes.InvalidArgument, CodeInvalidRequest, msg, "")
}

// withInfo builds a status whose message starts with the stable code and
// whose details carry it as an ErrorInfo.
func withInfo(c codes.Code, code, msg, runID string) error {
	text := code
	if msg != "" {
		text += ": " + msg
	}
	st := status.New(c, text)
	info := &errdetails.ErrorInfo{Reason: code, Domain: ErrorDomain}
	if runID != "" {
		info.Metadata = map[string]string{"run_id": runID}
	}
	if d, err := st.WithDetails(info); err == nil {
		st = d
	}
	return st.Err()
}

// grpcCode is the status code of each failure code.
var grpcCode = map[failure.Code]codes.Code{
	failure.ConnectionNotFound: codes.NotFound,
	failure.ConnectorNotFound:  codes.NotFound,
	failure.HostShutdown:       codes.Unavailable,
}

// toStatus maps an error to a gRPC status with its stable code.
func (s *Service) toStatus(err error, runID string) error {
	var (
		fe *failure.Error
		ee *runops.EndedError
	)
	switch {
	case errors.As(err, &fe) && fe.Code != failure.Internal:
		c, ok := grpcCode[fe.Code]
		if !ok {
			// Launch refusals: the connection's state forbids the run.
			c = codes.FailedPrecondition
		}
		msg := fe.Message
		if runID != "" {
			// As over HTTP: the message may already name a run (the one
			// holding the connection); the refused run comes last, marked.
			msg = fmt.Sprintf("%s; refused as run %s", msg, runID)
		}
		return withInfo(c, string(fe.Code), msg, runID)
	case errors.Is(err, store.ErrRunNotFound):
		return withInfo(codes.NotFound, CodeRunNotFound, store.RunNotFoundMessage(err), "")
	case errors.Is(err, store.ErrConnectionNotFound):
		return withInfo(codes.NotFound, string(failure.ConnectionNotFound), "connection not found", "")
	case errors.As(err, &ee):
		return withInfo(codes.FailedPrecondition, CodeConflict, ee.Error(), "")
	case errors.Is(err, runops.ErrNotOnThisHost), errors.Is(err, runner.ErrNotActive):
		return withInfo(codes.FailedPrecondition, CodeConflict, "the run is not running on this host", "")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	s.cfg.Logger.Error("admin rpc failed", "error", err)
	return withInfo(codes.Internal, CodeInternal, "internal error", runID)
}

// stamp formats a timestamp as RFC 3339 UTC, "" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func toProto(r store.Run) *adminv1.Run {
	return &adminv1.Run{
		Id:             r.ID,
		ConnectionId:   r.ConnectionID,
		Trigger:        string(r.Trigger),
		Status:         string(r.Status),
		FailureCode:    string(r.FailureCode),
		FailureMessage: r.FailureMessage,
		CreatedAt:      stamp(r.CreatedAt),
		StartedAt:      stamp(r.StartedAt),
		EndedAt:        stamp(r.EndedAt),
		Records:        r.Records,
		Attempt:        int32(r.Attempt),
		HostId:         r.HostID,
		ScheduledFor:   stampNano(r.ScheduledFor),
		Provenance:     provenanceToProto(r.Provenance),
	}
}

// stampNano is stamp keeping the fraction of a second.
func stampNano(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

var _ adminv1.AdminServiceServer = (*Service)(nil)
