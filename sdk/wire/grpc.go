package wire

import (
	"context"
	"errors"
	"io"
	"strings"

	connectorv1 "github.com/connhost/connhost/sdk/internal/connectorv1"
	"github.com/connhost/connhost/sdk/manifest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// grpcServer adapts a Connector to the generated gRPC server interface.
type grpcServer struct {
	connectorv1.UnimplementedConnectorServer
	impl Connector
}

func (s *grpcServer) Describe(ctx context.Context, _ *connectorv1.DescribeRequest) (*connectorv1.DescribeResponse, error) {
	m, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	return &connectorv1.DescribeResponse{Manifest: toProtoManifest(m)}, nil
}

func (s *grpcServer) Check(ctx context.Context, req *connectorv1.CheckRequest) (*connectorv1.CheckResponse, error) {
	res, err := s.impl.Check(ctx, fromProtoCheckRequest(req))
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	return toProtoCheckResult(res), nil
}

func (s *grpcServer) Run(req *connectorv1.RunRequest, stream connectorv1.Connector_RunServer) error {
	ctx := stream.Context()
	err := s.impl.Run(ctx, fromProtoRunRequest(req), func(m Message) error {
		pm, err := toProtoMessage(m)
		if err != nil {
			return err
		}
		return stream.Send(pm)
	})
	if err != nil {
		return toStatus(ctx, err)
	}
	return nil
}

// toStatus turns an error into a gRPC status carrying a Failure detail.
func toStatus(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return status.FromContextError(err).Err()
	}
	var f *Failure
	if !errors.As(err, &f) {
		f = &Failure{Code: CodeConnectorFailed, Message: err.Error()}
	}
	st := status.New(codes.Aborted, strings.ToValidUTF8(f.Error(), "\uFFFD"))
	if d, derr := st.WithDetails(toProtoFailure(f)); derr == nil {
		st = d
	}
	return st.Err()
}

// fromStatus recovers a *Failure from a status error; other errors are
// returned unchanged for the caller to classify (crash, cancel, deadline).
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		if pf, ok := d.(*connectorv1.Failure); ok {
			return fromProtoFailure(pf)
		}
	}
	return err
}

// grpcClient is the host-side Connector.
type grpcClient struct {
	c connectorv1.ConnectorClient
}

func (c *grpcClient) Describe(ctx context.Context) (manifest.Manifest, error) {
	resp, err := c.c.Describe(ctx, &connectorv1.DescribeRequest{})
	if err != nil {
		return manifest.Manifest{}, fromStatus(err)
	}
	return fromProtoManifest(resp.GetManifest()), nil
}

func (c *grpcClient) Check(ctx context.Context, req CheckRequest) (CheckResult, error) {
	resp, err := c.c.Check(ctx, toProtoCheckRequest(req))
	if err != nil {
		return CheckResult{}, fromStatus(err)
	}
	return fromProtoCheckResult(resp), nil
}

func (c *grpcClient) Run(ctx context.Context, req RunRequest, emit func(Message) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.c.Run(ctx, toProtoRunRequest(req))
	if err != nil {
		return fromStatus(err)
	}
	for {
		pm, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fromStatus(err)
		}
		m, err := fromProtoMessage(pm)
		if err != nil {
			return err
		}
		if err := emit(m); err != nil {
			return err
		}
	}
}

var (
	_ Connector                   = (*grpcClient)(nil)
	_ connectorv1.ConnectorServer = (*grpcServer)(nil)
)
