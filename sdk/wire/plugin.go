package wire

import (
	"context"
	"errors"

	connectorv1 "github.com/connhost/connhost/sdk/internal/connectorv1"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Plugin is the go-plugin GRPCPlugin for connectors. On the plugin side set
// Impl; on the host side leave it nil and Dispense returns a Connector.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Connector
}

// GRPCServer registers the connector service.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("wire: plugin has no connector implementation")
	}
	connectorv1.RegisterConnectorServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a Connector backed by the connection. The context
// go-plugin passes here lives as long as the process, so every call takes
// its own context instead.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &grpcClient{c: connectorv1.NewConnectorClient(c)}, nil
}

// PluginSet is the plugin set a connector serves.
func PluginSet(impl Connector) plugin.PluginSet {
	return plugin.PluginSet{PluginKey: &Plugin{Impl: impl}}
}

// VersionedPlugins is the host's view of every protocol version it speaks.
func VersionedPlugins() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{ProtocolVersion: {PluginKey: &Plugin{}}}
}

// Serve serves impl as a connector plugin over go-plugin's gRPC transport.
// It blocks until the host ends the plugin. Package sdk wraps it; tests use
// it directly to build misbehaving plugins.
//
// The TLS identity the host hands out in the environment is served with
// (see ServerTLSConfig); without one, go-plugin's AutoMTLS applies. A
// malformed identity ends Serve (go-plugin logs why) rather than serve
// with less than the host asked for.
func Serve(impl Connector) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         PluginSet(impl),
		GRPCServer:      plugin.DefaultGRPCServer,
		TLSProvider:     serverTLS,
	})
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)
