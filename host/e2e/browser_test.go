package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Bounds of the browser's waits: guards against a hang on a loaded
// machine, never timing assertions.
const (
	browserStepTimeout = 30 * time.Second
	browserRunTimeout  = 90 * time.Second
	bodySettleTimeout  = 15 * time.Second
)

// envChromium names the Chromium binary the browser tests use; without it
// they look for chromium, then chromium-browser, in PATH.
const envChromium = "CONNHOST_CHROMIUM"

// envScreenshots names a directory for the browser tests' screenshots,
// kept after the test; without it they go under the test's temp dir.
const envScreenshots = "CONNHOST_SCREENSHOTS"

// findChromium returns the Chromium binary, or "" when there is none.
func findChromium() (string, error) {
	if p := os.Getenv(envChromium); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", envChromium, p, err)
		}
		return path, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", nil
}

// requireChromium returns the Chromium binary. Without one the test is
// skipped, but under CI=true it fails: CI installs Debian's chromium
// (.ci/run), and a browser test that quietly skips there proves nothing.
func requireChromium(t *testing.T) string {
	t.Helper()
	path, err := findChromium()
	if err != nil {
		t.Fatal(err)
	}
	if path == "" {
		msg := "no Chromium: install Debian's chromium package, or set " + envChromium
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: a missing browser fails the test)")
		}
		t.Skip(msg)
	}
	return path
}

// browser is one headless Chromium with one tab, driven with chromedp.
// It records what the browser receives for the secret checks: the HTML
// of every page the test looks at, and the body of every network
// response.
type browser struct {
	t     *testing.T
	ctx   context.Context // the tab's context (no deadline)
	base  string          // the host's address, http://127.0.0.1:port
	shots string          // screenshot directory
	net   *netLog

	mu       sync.Mutex
	pages    []captured // outerHTML of each page visited
	problems []string   // JavaScript exceptions and CSP violations
	// navPending: the page asked for a navigation (Page.frameRequestedNavigation)
	// whose document has not loaded yet (Page.loadEventFired).
	navPending bool
	navCond    *sync.Cond
}

// newBrowser starts headless Chromium with a fresh profile in the test's
// temp dir, with --no-sandbox: CI runs the tests as root, and Chromium's
// sandbox refuses to start as root.
func newBrowser(t *testing.T, chromium, base string) *browser {
	t.Helper()
	profile := t.TempDir()
	shots := os.Getenv(envScreenshots)
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(laptopWidth, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	// Closing the tab and then the browser (which waits for the process
	// to end) runs before the temp dirs are removed: Cleanup is LIFO.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx, base: strings.TrimSuffix(base, "/"), shots: shots}
	b.navCond = sync.NewCond(&b.mu)
	b.net = newNetLog(ctx)
	// Listen starts the browser and the tab; it sees every event after it
	// returns, in the browser's order, so it is set before any page loads.
	if err := chromedp.Listen(ctx, b.onEvent); err != nil {
		t.Fatalf("start Chromium %s: %v", chromium, err)
	}
	// Keep response bodies for the secret check, up to 64 MiB in all, in
	// the browser process (durable), so that a body survives the page
	// that loaded it: a run page reloads itself as soon as its run ends.
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{
		MaxTotalBufferSize: new(int64(64 << 20)), MaxResourceBufferSize: new(int64(8 << 20)),
		EnableDurableMessages: new(true)}); err != nil {
		t.Fatalf("Network.enable: %v", err)
	}
	go b.net.fetchBodies()
	t.Cleanup(b.net.close)
	t.Logf("screenshots: %s", shots)
	return b
}

// onEvent runs on chromedp's read loop for every event of the tab: it
// must return at once and run no command (the body fetches happen on
// netLog's goroutine).
func (b *browser) onEvent(ev any) {
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.net.requested(ev)
	case *network.EventResponseReceived:
		b.net.received(ev)
	case *network.EventLoadingFinished:
		b.net.finished(ev)
	case *network.EventLoadingFailed:
		b.net.failed(ev)
	case *network.EventEventSourceMessageReceived:
		b.net.message(ev)
	case *page.EventFrameRequestedNavigation:
		b.mu.Lock()
		b.navPending = true
		b.mu.Unlock()
	case *page.EventLoadEventFired:
		b.mu.Lock()
		b.navPending = false
		b.navCond.Broadcast()
		b.mu.Unlock()
	case *runtime.EventExceptionThrown:
		b.problem("JavaScript exception: " + exceptionText(ev.ExceptionDetails))
	case *log.EventEntryAdded:
		// The browser reports a Content-Security-Policy violation on
		// the console: the pages must need no exception to the policy.
		if e := ev.Entry; e != nil && strings.Contains(e.Text, "Content Security Policy") {
			b.problem(fmt.Sprintf("console %s (%s): %s", e.Level, e.URL, e.Text))
		}
	}
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "?"
	}
	s := d.Text
	if d.Exception != nil && d.Exception.Description != "" {
		s += " " + d.Exception.Description
	}
	return fmt.Sprintf("%s (%s:%d)", s, d.URL, d.LineNumber+1)
}

func (b *browser) problem(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, s)
}

// step bounds one action of the test.
func (b *browser) step(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, timeout)
}

// do runs actions, failing the test with what on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step(browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v (at %s)", what, err, b.location())
	}
}

// load runs actions that load a page (a navigation, a click on a link or
// a submit button) and waits for it; it returns the page's path and the
// HTTP status of its document (after redirects).
func (b *browser) load(what string, actions ...chromedp.Action[chromedp.Void]) (path string, status int64) {
	b.t.Helper()
	// A navigation the page started itself would race this one.
	b.settle()
	ctx, cancel := b.step(browserStepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		b.t.Fatalf("%s: %v (at %s)", what, err, b.location())
	}
	if resp != nil {
		status = resp.Status
	}
	return b.path(), status
}

// open navigates to a console path and fails unless it answers 200.
func (b *browser) open(path string) {
	b.t.Helper()
	got, status := b.load("open "+path, chromedp.Navigate(b.base+path))
	if status != 200 {
		b.t.Fatalf("open %s: status %d at %s\n%s", path, status, got, b.text("main"))
	}
}

// submit clicks a button or link that loads a page and fails unless the
// page it lands on answers 200 at a path with the given prefix.
func (b *browser) submit(id, wantPrefix string) string {
	b.t.Helper()
	path, status := b.load("click #"+id, chromedp.Click(chromedp.ID(id)))
	if status != 200 || !strings.HasPrefix(path, wantPrefix) {
		b.t.Fatalf("click #%s: landed on %s (status %d), want 200 at %s…\n%s", id, path, status, wantPrefix, b.text("main"))
	}
	return path
}

// location is the tab's URL, for failure messages.
func (b *browser) location() string {
	ctx, cancel := b.step(5 * time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "?"
	}
	return loc
}

// path is the tab's URL path and query.
func (b *browser) path() string {
	u, err := url.Parse(b.location())
	if err != nil {
		return "?"
	}
	return u.RequestURI()
}

// eval evaluates a JavaScript expression in the page (through the
// DevTools protocol, which the page's CSP does not govern).
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := b.step(browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v (at %s)", expr, err, b.location())
	}
	return v
}

// text is the trimmed text of the first element matching a CSS selector,
// or "" when there is none.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%s)?.textContent ?? "").trim()`, strconv.Quote(sel)))
}

// count is the number of elements matching a CSS selector.
func (b *browser) count(sel string) int {
	b.t.Helper()
	return eval[int](b, fmt.Sprintf(`document.querySelectorAll(%s).length`, strconv.Quote(sel)))
}

// waitFor waits until the JavaScript condition holds in the page,
// checking it again on every change of the DOM (a MutationObserver), not
// on a timer. A page that navigates meanwhile (a page may reload itself)
// is watched again once the next document is there. It fails the test
// after timeout.
func (b *browser) waitFor(what, cond string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			b.t.Fatalf("wait for %s: not after %v (at %s)\n%s", what, timeout, b.location(), b.text("main"))
		}
		js := fmt.Sprintf(`new Promise((resolve) => {
  if (!document.documentElement) { resolve("again"); return; }
  const ok = () => { try { return !!(%s); } catch (e) { return false; } };
  if (ok()) { resolve("ok"); return; }
  let timer;
  const obs = new MutationObserver(() => {
    if (ok()) { obs.disconnect(); clearTimeout(timer); resolve("ok"); }
  });
  obs.observe(document.documentElement, {subtree: true, childList: true, characterData: true, attributes: true});
  timer = setTimeout(() => { obs.disconnect(); resolve(ok() ? "ok" : "timeout"); }, %d);
})`, cond, left.Milliseconds())
		ctx, cancel := b.step(left + browserStepTimeout)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		cancel()
		switch {
		case err != nil && !navigatedAway(err):
			b.t.Fatalf("wait for %s: %v (at %s)", what, err, b.location())
		case got == "ok":
			return
		case got == "timeout":
			b.t.Fatalf("wait for %s: not after %v (at %s)\n%s", what, timeout, b.location(), b.text("main"))
		}
		// The document went away under the wait: wait for the next one.
		b.settle()
	}
}

// navigatedAway reports whether an evaluation failed because its document
// was replaced.
func navigatedAway(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Execution context was destroyed") || strings.Contains(s, "Cannot find context") ||
		strings.Contains(s, "Inspected target navigated or closed")
}

// settle waits until every navigation the page itself asked for (a
// reload, a link, a form) has loaded its document.
func (b *browser) settle() {
	b.t.Helper()
	deadline := time.Now().Add(browserStepTimeout)
	timer := time.AfterFunc(browserStepTimeout, func() {
		b.mu.Lock()
		b.navCond.Broadcast()
		b.mu.Unlock()
	})
	defer timer.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.navPending {
		if time.Now().After(deadline) {
			b.t.Fatalf("a navigation the page asked for has not loaded after %v", browserStepTimeout)
		}
		b.navCond.Wait()
	}
}

// capture records the page's HTML for the secret checks, under a name.
func (b *browser) capture(name string) {
	b.t.Helper()
	html := eval[string](b, `document.documentElement.outerHTML`)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pages = append(b.pages, captured{what: "page " + name + " (" + b.path() + ")", text: html})
}

// screenshot captures the page's HTML and writes a full-page PNG
// name.png into the screenshot directory.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	b.capture(name)
	ctx, cancel := b.step(browserStepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// capturedPages returns the HTML of every page captured so far.
func (b *browser) capturedPages() []captured {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]captured(nil), b.pages...)
}

// problemsSeen returns the JavaScript exceptions and CSP violations.
func (b *browser) problemsSeen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// netLog keeps what the tab received over the network: every response's
// URL, status and type, and every response body, fetched with
// Network.getResponseBody as soon as it has finished loading (a body can
// be evicted once the page is gone).
//
// Two kinds of response have no body to fetch. A redirect's body is never
// handed to the page (Chromium follows the redirect; its response arrives
// as requestWillBeSent's redirectResponse, whose headers are kept). An
// EventSource stream's body cannot be fetched either
// (Network.getResponseBody answers "No data found for resource with given
// identifier"); its events arrive one by one as
// Network.eventSourceMessageReceived, and their data is kept instead.
type netLog struct {
	ctx context.Context

	mu       sync.Mutex
	cond     *sync.Cond
	kinds    map[network.RequestID]network.ResourceType
	urls     map[network.RequestID]string
	queue    []network.RequestID
	inFlight int
	closed   bool

	bodies    []captured // one per fetched body
	headers   []captured // URLs and response headers, redirects included
	messages  []captured // EventSource messages
	redirects int
	errs      []string
}

func newNetLog(ctx context.Context) *netLog {
	n := &netLog{ctx: ctx, kinds: map[network.RequestID]network.ResourceType{}, urls: map[network.RequestID]string{}}
	n.cond = sync.NewCond(&n.mu)
	return n
}

func (n *netLog) requested(ev *network.EventRequestWillBeSent) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ev.Request != nil {
		n.headers = append(n.headers, captured{"request URL " + ev.Request.URL, ev.Request.URL})
	}
	if r := ev.RedirectResponse; r != nil {
		n.redirects++
		n.headers = append(n.headers, captured{fmt.Sprintf("redirect %d %s (headers)", r.Status, r.URL), headerText(r)})
	}
}

func (n *netLog) received(ev *network.EventResponseReceived) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.kinds[ev.RequestID] = ev.Type
	if r := ev.Response; r != nil {
		n.urls[ev.RequestID] = r.URL
		n.headers = append(n.headers, captured{fmt.Sprintf("response %d %s (headers)", r.Status, r.URL), headerText(r)})
	}
}

func headerText(r *network.Response) string {
	var sb strings.Builder
	sb.WriteString(r.URL + "\n")
	for k, v := range r.Headers {
		fmt.Fprintf(&sb, "%s: %v\n", k, v)
	}
	return sb.String()
}

func (n *netLog) finished(ev *network.EventLoadingFinished) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	switch n.kinds[ev.RequestID] {
	case network.ResourceTypeEventSource:
		// Its body cannot be fetched: see netLog.
		return
	case "":
		// No response (a request the browser answered itself).
		return
	}
	n.queue = append(n.queue, ev.RequestID)
	n.cond.Broadcast()
}

func (n *netLog) failed(ev *network.EventLoadingFailed) {
	// An EventSource the page closes, or a page left before it loaded,
	// ends as a failed load; nothing reached the page after it.
	if ev.Type == network.ResourceTypeEventSource || ev.Canceled {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.errs = append(n.errs, fmt.Sprintf("load of %s failed: %s", n.urls[ev.RequestID], ev.ErrorText))
}

func (n *netLog) message(ev *network.EventEventSourceMessageReceived) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.messages = append(n.messages, captured{"event " + ev.EventName + " of " + n.urls[ev.RequestID], ev.Data})
}

// fetchBodies fetches each finished response's body until close.
func (n *netLog) fetchBodies() {
	for {
		n.mu.Lock()
		for len(n.queue) == 0 && !n.closed {
			n.cond.Wait()
		}
		if n.closed {
			n.mu.Unlock()
			return
		}
		id := n.queue[0]
		n.queue = n.queue[1:]
		n.inFlight++
		what := fmt.Sprintf("body of %s (%s)", n.urls[id], n.kinds[id])
		n.mu.Unlock()

		ctx, cancel := context.WithTimeout(n.ctx, bodySettleTimeout)
		res, err := chromedp.Call(ctx, network.GetResponseBody, network.GetResponseBodyParams{RequestID: id})
		cancel()

		n.mu.Lock()
		n.inFlight--
		if err != nil {
			n.errs = append(n.errs, fmt.Sprintf("%s: %v", what, err))
		} else {
			n.bodies = append(n.bodies, captured{what, string(res.Body)})
		}
		n.cond.Broadcast()
		n.mu.Unlock()
	}
}

// settle waits until every finished response's body has been fetched.
func (n *netLog) settle() error {
	deadline := time.Now().Add(bodySettleTimeout)
	stop := context.AfterFunc(n.ctx, func() {
		n.mu.Lock()
		n.cond.Broadcast()
		n.mu.Unlock()
	})
	defer stop()
	timer := time.AfterFunc(bodySettleTimeout, func() {
		n.mu.Lock()
		n.cond.Broadcast()
		n.mu.Unlock()
	})
	defer timer.Stop()
	n.mu.Lock()
	defer n.mu.Unlock()
	for len(n.queue) > 0 || n.inFlight > 0 {
		if time.Now().After(deadline) || n.ctx.Err() != nil {
			return errors.New("response bodies not fetched in time")
		}
		n.cond.Wait()
	}
	return nil
}

func (n *netLog) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	n.cond.Broadcast()
}

// received is what the tab received: bodies, headers and URLs, and
// EventSource messages, with the fetch errors and the redirect count.
type netSeen struct {
	bodies, headers, messages []captured
	redirects                 int
	errs                      []string
}

func (n *netLog) seen() netSeen {
	n.mu.Lock()
	defer n.mu.Unlock()
	return netSeen{
		bodies:    append([]captured(nil), n.bodies...),
		headers:   append([]captured(nil), n.headers...),
		messages:  append([]captured(nil), n.messages...),
		redirects: n.redirects,
		errs:      append([]string(nil), n.errs...),
	}
}
