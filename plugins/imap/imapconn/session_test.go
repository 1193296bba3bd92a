package imapconn

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// The idle limit runs from the last byte received: a Read after a
// timeout fails at once instead of waiting the whole limit again (a
// reader that retries would otherwise hold a silent server's run for a
// multiple of the limit), and a byte received moves the limit on.
func TestIdleConnDeadlineRunsFromTheLastByte(t *testing.T) {
	t.Parallel()
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	ic := newIdleConn(client, 50*time.Millisecond)
	ic.arm()
	armed := ic.deadline()
	buf := make([]byte, 1)
	for i := range 3 {
		if _, err := ic.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read %d: %v, want a timeout", i, err)
		}
		if got := ic.deadline(); !got.Equal(armed) {
			t.Fatalf("read %d moved the deadline from %s to %s with no byte received", i, armed.Format(time.RFC3339Nano), got.Format(time.RFC3339Nano))
		}
	}
	if err := ic.explain(errors.New("in response: cannot read tag")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("explain = %v, want the transport's timeout in the chain", err)
	}

	// A new command starts the clock again; a byte received moves it on.
	ic.arm()
	rearmed := ic.deadline()
	if !rearmed.After(armed) {
		t.Fatalf("arm did not move the deadline")
	}
	go func() { _, _ = server.Write([]byte("x")) }()
	if _, err := ic.Read(buf); err != nil {
		t.Fatalf("read with a byte waiting: %v", err)
	}
	if !ic.deadline().After(rearmed) && !ic.deadline().Equal(rearmed) {
		t.Errorf("a byte received moved the deadline back")
	}
	ic.disarm()
}
