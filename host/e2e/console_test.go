package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/connhost/connhost/host/server"
)

// Floors of the secret check: fewer pages or responses than this and the
// check would prove little.
const (
	minPagesChecked     = 14
	minBodiesChecked    = 20
	minDocumentsChecked = 14
	minEventsChecked    = 2
)

// The CSS widths of a small phone and of the browser's window.
const (
	phoneWidth  = 390
	laptopWidth = 1280
)

var connectionPathRE = regexp.MustCompile(`^/ui/connections/([^/?#]+)$`)
var runPathRE = regexp.MustCompile(`^/ui/runs/([^/?#]+)$`)

// TestConsoleInBrowser drives the web console in headless Chromium, as an
// owner would, against a real `connhost serve`: sign in through the
// one-time link of `connhost ui`, create a demo connection, capture its
// credential by typing a canary secret into the credential form, run it
// and watch the live page reach succeeded, read its records, revoke the
// credential, find the connection on the attention page and see the next
// run refused. The canary must then appear in no page the browser showed,
// no response it received, no event of the live stream, no byte of the
// host's log and no file of the data dir; nor may the operator token
// appear in any page or response. It writes a screenshot of every main
// page (and the connection page at a phone's width) to $CONNHOST_SCREENSHOTS,
// or a directory under the test's temp dir.
func TestConsoleInBrowser(t *testing.T) {
	chromium := requireChromium(t)
	h := newHarness(t)
	canary := newCanary(t)
	sum := sha256.Sum256([]byte(canary))
	// token_sha256 makes the demo refuse any DEMO_TOKEN but the canary,
	// so a succeeded run proves the form delivered exactly what was
	// typed. A delay per record keeps the run going while the live page
	// watches it.
	config := fmt.Sprintf(`{"records":6,"record_delay_ms":400,"token_sha256":%q}`, hex.EncodeToString(sum[:]))

	h.okLocal("keyset", "init", "--data-dir", h.dataDir, "--kek-file", h.kekFile)
	h.start()
	token, err := server.ReadToken(h.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	var link struct {
		URL       string `json:"url"`
		ExpiresAt string `json:"expires_at"`
	}
	h.okJSON(&link, "ui", "--addr", h.srv.addr, "--data-dir", h.dataDir)
	if !strings.HasPrefix(link.URL, h.srv.addr+"/ui/signin?code=") || strings.Contains(link.URL, token) {
		t.Fatalf("connhost ui -o json: url %q, want a one-time link under %s that does not hold the token", link.URL, h.srv.addr)
	}

	b := newBrowser(t, chromium, h.srv.addr)

	// Sign in: the link lands on the console with a session cookie, and
	// the code leaves the address bar.
	if path, status := b.load("open the sign-in link", chromedp.Navigate(link.URL)); path != "/ui/attention" || status != 200 {
		t.Fatalf("the sign-in link landed on %s (status %d), want /ui/attention\n%s", path, status, b.text("main"))
	}
	b.capture("attention (signed in)")
	checkSessionCookie(t, b)

	// Connectors: the demo, its auth requirement and pinned checksum.
	b.open("/ui/connectors")
	b.waitFor("the demo connector", `document.getElementById("connector-demo")`, browserStepTimeout)
	if row := b.text("#connector-demo"); !strings.Contains(row, "DEMO_TOKEN") || !strings.Contains(row, "static_secret") {
		t.Errorf("connectors page: demo row %q lacks its auth requirement", row)
	}
	b.screenshot("connectors")

	// Create a connection through the form.
	b.open("/ui/connections")
	b.screenshot("connections-empty")
	b.do("fill the create form",
		chromedp.WaitVisible(chromedp.ID("create-connection")),
		chromedp.SetValue(chromedp.ID("connector_key"), "demo"),
		chromedp.SendKeys(chromedp.ID("label"), "browser-demo"),
		chromedp.SetValue(chromedp.ID("config"), config),
		chromedp.SendKeys(chromedp.ID("schedule"), "@every 24h"),
	)
	connPath := b.submit("create-button", "/ui/connections/")
	m := connectionPathRE.FindStringSubmatch(connPath)
	if m == nil {
		t.Fatalf("create landed on %s, want /ui/connections/{id}", connPath)
	}
	id := m[1]
	if got := b.text("#connection-id"); got != id {
		t.Errorf("#connection-id = %q, want %q", got, id)
	}
	if got := b.text("h1"); !strings.Contains(got, "browser-demo") {
		t.Errorf("connection page <h1> = %q, want the label", got)
	}
	if got := b.text("#credential-state"); got == "active" {
		t.Errorf("#credential-state = %q before any capture", got)
	}
	b.screenshot("connection-new")

	// Capture the credential: type the canary into the password field.
	b.submit("credential-link", "/ui/connections/"+id+"/credential")
	checkPasswordField(t, b)
	b.screenshot("credential-form")
	b.do("type the secret", chromedp.SendKeys(chromedp.ID("value-DEMO_TOKEN"), canary))
	b.submit("credential-submit", "/ui/connections/"+id)
	if got := b.text("#credential-state"); got != "active" {
		t.Errorf("#credential-state after capture = %q, want active", got)
	}
	if got := b.text(".flash"); !strings.Contains(got, "Credential saved") {
		t.Errorf("flash after capture = %q, want Credential saved", got)
	}
	b.screenshot("connection")

	// The same page at a phone's width: nothing wider than the screen.
	b.do("phone width", chromedp.EmulateViewport(phoneWidth, 844, chromedp.EmulateMobile))
	b.waitFor("the phone's screen", fmt.Sprintf("screen.width === %d", phoneWidth), browserStepTimeout)
	// A page wider than the phone makes the browser widen the layout
	// viewport (or scroll sideways).
	if w := eval[[]int](b, `[window.innerWidth, document.documentElement.scrollWidth]`); w[0] != phoneWidth || w[1] > phoneWidth {
		t.Errorf("connection page on a %dpx phone: laid out %dpx wide, content %dpx wide (the page overflows sideways)", phoneWidth, w[0], w[1])
	}
	b.screenshot("connection-phone")
	b.do("laptop width", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
		return err
	}))
	b.waitFor("the laptop's screen", fmt.Sprintf("window.innerWidth === %d", laptopWidth), browserStepTimeout)

	// The credential page again: the field is empty, the value is not
	// rendered back.
	b.submit("credential-link", "/ui/connections/"+id+"/credential")
	checkPasswordField(t, b)
	b.capture("credential form after capture")

	// Run it and watch the live page.
	b.open("/ui/connections/" + id)
	runPath := b.submit("run-button", "/ui/runs/")
	rm := runPathRE.FindStringSubmatch(runPath)
	if rm == nil {
		t.Fatalf("run landed on %s, want /ui/runs/{id}", runPath)
	}
	runID := rm[1]
	// Watch #run-status change in this document from here on; the
	// watcher is read back after the screenshot. A run page reloads itself
	// once its run has ended (to render the final facts): the watcher
	// proves the status changed in place, from the event stream, before.
	eval[bool](b, fmt.Sprintf(`(window.e2eWatch = %s, true)`, statusWatcher(browserRunTimeout)))
	if ev := eval[string](b, `document.getElementById("run-live")?.dataset.events ?? ""`); ev != "/ui/runs/"+runID+"/events" {
		t.Errorf("#run-live data-events = %q", ev)
	}
	b.screenshot("run-live")
	w := watchedStatuses(t, b)
	statuses := w.Statuses
	if len(statuses) < 2 || terminal(statuses[0]) || statuses[len(statuses)-1] != "succeeded" {
		t.Fatalf("the live run page showed statuses %q, want a live change to succeeded", statuses)
	}
	// The stream's row counts its committed records live, from the
	// records events, up to the run's 6.
	if n := len(w.EventsCommitted); n < 2 || w.EventsCommitted[n-1] != "6" {
		t.Errorf("the live run page's events row counted %q, want a live count up to 6", w.EventsCommitted)
	}
	t.Logf("run %s: the live page showed %s; stream events committed %s", runID, strings.Join(statuses, " → "),
		strings.Join(w.EventsCommitted, " → "))
	// The page may reload itself for the final facts: let it.
	b.settle()
	b.waitFor("the run page to end", `document.getElementById("run-live")?.dataset.ended === "true"`, browserStepTimeout)
	b.screenshot("run-live-ended")
	b.open(runPath)
	if got := b.text("#run-status"); got != "succeeded" {
		t.Errorf("finished run page: #run-status = %q", got)
	}
	if got := b.text("#run-records"); !regexp.MustCompile(`\b6\b`).MatchString(got) {
		t.Errorf("finished run page: #run-records = %q, want 6", got)
	}
	if b.count("#stream-events") != 1 {
		t.Errorf("finished run page: no row for stream events")
	}
	if b.count("#failure-code") != 0 {
		t.Errorf("finished run page shows a failure code: %q", b.text("#failure-code"))
	}
	b.screenshot("run-finished")

	// Its records.
	b.open("/ui/connections/" + id)
	b.submit("records-link", "/ui/connections/"+id+"/records")
	if n := b.count("#records .record"); n != 6 {
		t.Errorf("records page: %d records, want 6", n)
	}
	b.screenshot("records")

	// The runs history.
	b.open("/ui/connections/" + id)
	b.submit("runs-link", "/ui/runs")
	if b.count("#run-"+runID) != 1 {
		t.Errorf("runs page: no row for run %s", runID)
	}
	b.screenshot("runs")

	// Revoke the credential through its confirmation page.
	b.open("/ui/connections/" + id + "/credential")
	b.submit("credential-revoke-link", "/ui/connections/"+id+"/credential/revoke")
	if b.count("#confirm-form") != 1 {
		t.Fatalf("the revoke page has no #confirm-form")
	}
	b.screenshot("credential-revoke-confirm")
	b.submit("confirm-button", "/ui/connections/"+id)
	if got := b.text("#credential-state"); got != "revoked" {
		t.Errorf("#credential-state after revoke = %q, want revoked", got)
	}
	b.screenshot("connection-revoked")

	// The attention page lists it.
	b.open("/ui/attention")
	row := "attention-" + id
	if b.count("#"+row) != 1 {
		t.Fatalf("attention page: no row %s\n%s", row, b.text("main"))
	}
	if got := b.text("#" + row); !strings.Contains(got, failureUnavailable) && !strings.Contains(got, "credential") {
		t.Errorf("attention row = %q, want the credential reason", got)
	}
	b.screenshot("attention")

	// Run again: refused.
	b.open("/ui/connections/" + id)
	refusedPath := b.submit("run-button", "/ui/runs/")
	if refusedPath == runPath {
		t.Fatalf("the second run landed on the first run's page")
	}
	flash := b.text(".flash")
	b.waitFor("the refusal", `document.getElementById("run-status")?.textContent.trim() === "refused"`, browserRunTimeout)
	b.settle()
	t.Logf("the second run was refused; the page said %q", flash)
	if b.count("#failure-code") == 0 {
		// The refusal came through the live stream after the page was
		// rendered: the reloaded page shows its code.
		b.open(refusedPath)
	}
	if got := b.text("#failure-code"); got != failureUnavailable {
		t.Errorf("refused run: #failure-code = %q, want %s", got, failureUnavailable)
	}
	b.screenshot("run-refused")

	// The rest of the main pages.
	b.open("/ui/audit")
	if b.count("#audit .audit-event") == 0 {
		t.Errorf("audit page: no events")
	}
	b.screenshot("audit")
	b.open("/ui/enrollment")
	if b.count("#enrollment") != 1 {
		t.Errorf("enrollment page: no #enrollment table")
	}
	b.screenshot("enrollment")
	b.open("/ui/connections")
	if b.count("#connection-"+id) != 1 {
		t.Errorf("connections page: no row for %s", id)
	}
	b.screenshot("connections")

	if p := b.problemsSeen(); len(p) > 0 {
		t.Errorf("the browser reported problems:\n%s", strings.Join(p, "\n"))
	}
	checkBrowserSaw(t, h, b, canary, token)
	h.stop()
	h.checkCanary(canary, "after the browser session")
}

// checkSessionCookie: the session cookie is HttpOnly and SameSite=Strict.
func checkSessionCookie(t *testing.T, b *browser) {
	t.Helper()
	ctx, cancel := b.step(browserStepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(res.Cookies, func(c *network.Cookie) bool { return strings.HasPrefix(c.Name, "connhost_session_") })
	if i < 0 {
		t.Fatalf("no session cookie after sign-in")
	}
	if c := res.Cookies[i]; !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/" {
		t.Errorf("session cookie: HttpOnly %v, SameSite %q, Path %q; want HttpOnly, Strict, /", c.HTTPOnly, c.SameSite, c.Path)
	}
}

// checkPasswordField: the credential form has one write-only password
// field for DEMO_TOKEN, empty.
func checkPasswordField(t *testing.T, b *browser) {
	t.Helper()
	attrs := eval[map[string]string](b, `(() => {
  const e = document.getElementById("value-DEMO_TOKEN");
  return e ? {type: e.type, name: e.name, autocomplete: e.autocomplete, value: e.value, attr: e.getAttribute("value") ?? ""} : {};
})()`)
	want := map[string]string{"type": "password", "name": "value.DEMO_TOKEN", "autocomplete": "new-password", "value": "", "attr": ""}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("credential field %s = %q, want %q (all: %v)", k, attrs[k], v, attrs)
		}
	}
	if n := b.count(`#credential-form input[type="password"]`); n != 1 {
		t.Errorf("credential form: %d password fields, want 1", n)
	}
}

// checkBrowserSaw checks everything the browser received for the canary
// and the operator token, and hands it to the harness for its own check
// (raw, hex and base64 forms) with the host's log and the data dir.
func checkBrowserSaw(t *testing.T, h *harness, b *browser, canary, token string) {
	t.Helper()
	if err := b.net.settle(); err != nil {
		t.Fatal(err)
	}
	pages := b.capturedPages()
	seen := b.net.seen()
	docs := 0
	for _, body := range seen.bodies {
		if strings.Contains(body.what, "(Document)") {
			docs++
		}
	}
	var hits []string
	for _, group := range [][]captured{pages, seen.bodies, seen.headers, seen.messages} {
		for _, c := range group {
			if strings.Contains(c.text, canary) {
				hits = append(hits, c.what+" (canary)")
			}
			if strings.Contains(c.text, token) {
				hits = append(hits, c.what+" (operator token)")
			}
			h.record("browser: "+c.what, c.text)
		}
	}
	if len(hits) > 0 {
		t.Errorf("the browser received a secret: %v", hits)
	}
	if len(seen.errs) > 0 {
		t.Errorf("responses the check could not read:\n%s", strings.Join(seen.errs, "\n"))
	}
	if len(pages) < minPagesChecked || len(seen.bodies) < minBodiesChecked || docs < minDocumentsChecked || len(seen.messages) < minEventsChecked {
		t.Errorf("checked only %d pages, %d response bodies (%d documents) and %d live events; want at least %d, %d (%d) and %d",
			len(pages), len(seen.bodies), docs, len(seen.messages), minPagesChecked, minBodiesChecked, minDocumentsChecked, minEventsChecked)
	}
	t.Logf("checked what the browser received: %d pages, %d response bodies (%d documents), %d live events, %d responses' headers (%d redirects)",
		len(pages), len(seen.bodies), docs, len(seen.messages), len(seen.headers), seen.redirects)
}

// statusWatcher is a JavaScript promise that records each text of
// #run-status, from now on, until it is terminal or timeout passes.
func statusWatcher(timeout time.Duration) string {
	return fmt.Sprintf(`new Promise((resolve) => {
  const status = () => (document.getElementById("run-status")?.textContent ?? "").trim();
  const held = () => (document.querySelector("#stream-events .stream-held")?.textContent ?? "").trim();
  const done = (s) => ["succeeded", "failed", "refused", "cancelled"].includes(s);
  const seen = [status()], counts = [held()];
  const result = () => ({statuses: seen, events_committed: counts});
  if (done(seen[0])) { resolve(result()); return; }
  let timer;
  const obs = new MutationObserver(() => {
    const s = status(), h = held();
    if (s !== seen[seen.length - 1]) seen.push(s);
    if (h !== counts[counts.length - 1]) counts.push(h);
    if (done(s)) { obs.disconnect(); clearTimeout(timer); resolve(result()); }
  });
  obs.observe(document.documentElement, {subtree: true, childList: true, characterData: true, attributes: true});
  timer = setTimeout(() => { obs.disconnect(); resolve(result()); }, %d);
})`, timeout.Milliseconds())
}

// watched is what statusWatcher saw change in place: #run-status's
// texts, and the committed count of the events stream's row.
type watched struct {
	Statuses        []string `json:"statuses"`
	EventsCommitted []string `json:"events_committed"`
}

// watchedStatuses awaits the page's statusWatcher. A page that has
// reloaded since has none: the run ended before the test could watch it.
func watchedStatuses(t *testing.T, b *browser) watched {
	t.Helper()
	ctx, cancel := b.step(browserRunTimeout + browserStepTimeout)
	defer cancel()
	seen, err := chromedp.Run(ctx, chromedp.Evaluate[*watched](`window.e2eWatch ?? null`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("watch the run's status: %v", err)
	}
	if seen == nil {
		t.Fatalf("the run page reloaded before the test could watch it (the run ended too soon)")
	}
	return *seen
}
