package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
)

// PostgresConfig configures a Postgres bus.
type PostgresConfig struct {
	// Origin is this host's id: messages it sent are not delivered back.
	Origin string
	// DB publishes (SELECT pg_notify(…)) on the store's pool.
	DB *sql.DB
	// Conn opens the dedicated LISTEN connection.
	Conn *pgx.ConnConfig
	// Namespace separates clusters that share a database (their
	// schemas): NOTIFY channels are database-wide, so each topic's
	// channel carries a hash of it.
	Namespace string
	// Logger receives connection losses; nil discards them.
	Logger hclog.Logger
}

// Postgres is the bus of hosts sharing a PostgreSQL store: NOTIFY on the
// store's pool, LISTEN on a connection of its own that reconnects with
// backoff.
type Postgres struct {
	cfg PostgresConfig

	suffix string // of every channel: the namespace's hash

	mu        sync.Mutex
	subs      map[Topic][]func(string)
	reconnect []func()
	connected bool

	stop context.CancelFunc
	done chan struct{}
}

// NewPostgres returns a bus; Start begins listening.
func NewPostgres(cfg PostgresConfig) (*Postgres, error) {
	if cfg.Origin == "" || cfg.DB == nil || cfg.Conn == nil {
		return nil, errors.New("notify: Origin, DB and Conn are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	// Named in pg_stat_activity, so an operator sees which host listens.
	cfg.Conn = cfg.Conn.Copy()
	if cfg.Conn.RuntimeParams == nil {
		cfg.Conn.RuntimeParams = map[string]string{}
	}
	cfg.Conn.RuntimeParams["application_name"] = ApplicationName(cfg.Origin)
	h := fnv.New32a()
	_, _ = h.Write([]byte(cfg.Namespace))
	return &Postgres{cfg: cfg, subs: map[Topic][]func(string){}, suffix: fmt.Sprintf("_%08x", h.Sum32())}, nil
}

// channel is the NOTIFY channel of topic.
func (p *Postgres) channel(t Topic) string { return string(t) + p.suffix }

// ApplicationName is the application_name of a host's LISTEN session.
func ApplicationName(origin string) string { return "connhost notify " + origin }

// Publish implements Bus.
func (p *Postgres) Publish(ctx context.Context, topic Topic, payload string) error {
	msg, err := encode(p.cfg.Origin, payload)
	if err != nil {
		return err
	}
	if _, err := p.cfg.DB.ExecContext(ctx, `SELECT pg_notify($1, $2)`, p.channel(topic), msg); err != nil {
		return fmt.Errorf("notify: publish %s: %w", topic, err)
	}
	return nil
}

// Subscribe implements Bus. Subscribe before Start.
func (p *Postgres) Subscribe(topic Topic, fn func(string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subs[topic] = append(p.subs[topic], fn)
}

// OnReconnect implements Bus. Register before Start.
func (p *Postgres) OnReconnect(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reconnect = append(p.reconnect, fn)
}

// Start listens on every topic until Close. It returns once the first
// connection listens, or with its error (the host should not start deaf).
func (p *Postgres) Start(ctx context.Context) error {
	conn, err := p.connect(ctx)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.stop, p.done = cancel, make(chan struct{})
	go p.loop(lctx, conn)
	return nil
}

// Connected reports whether the LISTEN connection is up.
func (p *Postgres) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connected
}

// Close stops listening.
func (p *Postgres) Close() error {
	if p.stop != nil {
		p.stop()
		<-p.done
	}
	return nil
}

func (p *Postgres) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, p.cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("notify: connect: %w", err)
	}
	for _, t := range Topics {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{p.channel(t)}.Sanitize()); err != nil {
			_ = conn.Close(context.Background())
			return nil, fmt.Errorf("notify: listen %s: %w", t, err)
		}
	}
	p.mu.Lock()
	p.connected = true
	p.mu.Unlock()
	return conn, nil
}

func (p *Postgres) loop(ctx context.Context, conn *pgx.Conn) {
	defer close(p.done)
	backoff := 100 * time.Millisecond
	for {
		err := p.receive(ctx, conn)
		_ = conn.Close(context.Background())
		p.mu.Lock()
		p.connected = false
		p.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		p.cfg.Logger.Warn("notification connection lost; reconnecting", "error", err)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			conn, err = p.connect(ctx)
			if err == nil {
				backoff = 100 * time.Millisecond
				break
			}
			backoff = min(2*backoff, 5*time.Second)
			p.cfg.Logger.Warn("notification reconnect failed", "error", err, "retry_in", backoff)
		}
		p.cfg.Logger.Info("notification connection restored")
		p.mu.Lock()
		fns := append([]func(){}, p.reconnect...)
		p.mu.Unlock()
		for _, fn := range fns {
			fn()
		}
	}
}

func (p *Postgres) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		e, err := decode(n.Payload)
		if err != nil || e.Origin == p.cfg.Origin {
			continue
		}
		p.mu.Lock()
		fns := p.subs[Topic(strings.TrimSuffix(n.Channel, p.suffix))]
		p.mu.Unlock()
		for _, fn := range fns {
			fn(e.Payload)
		}
	}
}

var _ Bus = (*Postgres)(nil)
