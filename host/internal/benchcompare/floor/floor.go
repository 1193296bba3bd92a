// Package floor is the bare go-plugin floor of make bench-compare: a
// minimal host and a plugin with one unary gRPC method, on the go-plugin
// version connhost itself uses, with nothing of connhost in between. Its
// start → first RPC answered is what any go-plugin host pays per launch.
//
// The service is a hand-written grpc.ServiceDesc over well-known protobuf
// messages (Empty in, StringValue out), so the floor needs no generated
// code and rides the same default proto codec as connhost's own service.
package floor

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Handshake is shared by the floor host and plugin.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "CONNHOST_BENCH_FLOOR",
	MagicCookieValue: "b1d3c0f4e2a9",
}

// Answer is what the plugin's one method returns.
const Answer = "pong"

const (
	pluginName  = "floor"
	serviceName = "connhost.benchfloor.Floor"
	pingMethod  = "/" + serviceName + "/Ping"
)

// ErrWrongAnswer is returned when the plugin answers something else than
// Answer.
var ErrWrongAnswer = errors.New("floor: wrong answer from the plugin")

// Pinger is the plugin's one method.
type Pinger interface {
	Ping(ctx context.Context) (string, error)
}

// Plugin is the go-plugin gRPC plugin: Impl serves on the plugin side;
// the host side needs no Impl.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Pinger
}

// GRPCServer registers Impl.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&serviceDesc, p.Impl)
	return nil
}

// GRPCClient returns a Pinger over cc.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return client{cc}, nil
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*Pinger)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Ping",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(emptypb.Empty)); err != nil {
				return nil, err
			}
			s, err := srv.(Pinger).Ping(ctx)
			if err != nil {
				return nil, err
			}
			return wrapperspb.String(s), nil
		},
	}},
	Metadata: "floor",
}

type client struct{ cc *grpc.ClientConn }

func (c client) Ping(ctx context.Context) (string, error) {
	out := new(wrapperspb.StringValue)
	if err := c.cc.Invoke(ctx, pingMethod, new(emptypb.Empty), out); err != nil {
		return "", err
	}
	return out.GetValue(), nil
}

type pong struct{}

func (pong) Ping(context.Context) (string, error) { return Answer, nil }

// Serve is the plugin's main: it serves the one method until the host
// stops it. Started by anything but a go-plugin host, it exits at once
// (go-plugin's own check of the magic cookie).
func Serve() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{pluginName: &Plugin{Impl: pong{}}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          hclog.NewNullLogger(),
	})
}

// Launch starts the plugin at path, calls its method once and returns
// the time from the start to the answer; the plugin is then killed
// (outside the measured time). autoMTLS is go-plugin's AutoMTLS: a fresh
// key and certificate on each side per launch.
func Launch(ctx context.Context, path string, autoMTLS bool) (time.Duration, error) {
	start := time.Now()
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          plugin.PluginSet{pluginName: &Plugin{}},
		Cmd:              exec.Command(path),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         autoMTLS,
		Logger:           hclog.NewNullLogger(),
	})
	defer c.Kill()
	rpc, err := c.Client()
	if err != nil {
		return 0, fmt.Errorf("floor: start %s: %w", path, err)
	}
	raw, err := rpc.Dispense(pluginName)
	if err != nil {
		return 0, fmt.Errorf("floor: dispense: %w", err)
	}
	got, err := raw.(Pinger).Ping(ctx)
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("floor: ping: %w", err)
	}
	if got != Answer {
		return 0, fmt.Errorf("%w: %q", ErrWrongAnswer, got)
	}
	return d, nil
}
