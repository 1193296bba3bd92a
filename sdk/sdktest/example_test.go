package sdktest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/connhost/connhost/sdk"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/sdktest"
)

// greeter emits one greeting per name in its config.
type greeter struct{}

func (greeter) Manifest() manifest.Manifest {
	return manifest.Manifest{
		ConnectorKey: "greeter",
		Version:      "1.0.0",
		Auth:         manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"GREETER_TOKEN"}},
		Streams:      []manifest.Stream{{Name: "greetings", KeyFields: []string{"name"}}},
	}
}

func (greeter) Run(_ context.Context, r *sdk.Run) error {
	var cfg struct {
		Names []string `json:"names"`
	}
	if err := r.Config(&cfg); err != nil {
		return err
	}
	for _, n := range cfg.Names {
		if err := r.Emit("greetings", n, map[string]string{"name": n, "text": "hello, " + n}); err != nil {
			return err
		}
	}
	return r.Checkpoint(map[string]int{"greeted": len(cfg.Names)})
}

// ExampleRun is the shape of a connector's test: run it in-process with a
// config and an environment, then inspect what it sent.
func ExampleRun() {
	testGreeter := func(t *testing.T) {
		res := sdktest.Run(t, greeter{}, sdktest.Options{
			Config: map[string]any{"names": []string{"ada", "grace"}},
			Env:    map[string]string{"GREETER_TOKEN": "test-token"},
		})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if got := len(res.RecordsOf("greetings")); got != 2 {
			t.Errorf("%d greetings, want 2", got)
		}
	}
	_ = testGreeter // func TestGreeter(t *testing.T) { … }
}

// ExampleRunContext runs a connector outside a test, here to print what
// it sends.
func ExampleRunContext() {
	res, err := sdktest.RunContext(context.Background(), greeter{}, sdktest.Options{
		Config: map[string]any{"names": []string{"ada", "grace"}},
		Env:    map[string]string{"GREETER_TOKEN": "test-token"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range res.RecordsOf("greetings") {
		fmt.Println(r.Key, string(r.Data))
	}
	fmt.Println("checkpoint", string(res.LastCheckpoint()))

	// A typo in the config is an error, not a silently empty run.
	res, _ = sdktest.RunContext(context.Background(), greeter{}, sdktest.Options{
		Config: map[string]any{"nmaes": []string{"ada"}},
		Env:    map[string]string{"GREETER_TOKEN": "test-token"},
	})
	fmt.Println(res.Err)
	// Output:
	// ada {"name":"ada","text":"hello, ada"}
	// grace {"name":"grace","text":"hello, grace"}
	// checkpoint {"greeted":2}
	// invalid_config: sdk: invalid config: json: unknown field "nmaes"
}

// ExampleAcceptance is the shape of a connector's subprocess test: build
// the main package and run the acceptance checks against the binary.
func ExampleAcceptance() {
	testAcceptance := func(t *testing.T) {
		bin := sdktest.Build(t, ".") // the directory holding func main
		sdktest.Acceptance(t, bin, sdktest.Options{
			Config: map[string]any{"names": []string{"ada"}},
			Env:    map[string]string{"GREETER_TOKEN": "test-token"},
		})
	}
	_ = testAcceptance // func TestAcceptance(t *testing.T) { … }
}
