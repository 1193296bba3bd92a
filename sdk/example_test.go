package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/connhost/connhost/sdk"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/sdktest"
)

// fruit is a complete connector: it emits one record per fruit after the
// last one a previous run checkpointed.
type fruit struct{}

var fruits = []string{"apple", "banana", "cherry"}

func (fruit) Manifest() manifest.Manifest {
	return manifest.Manifest{
		ConnectorKey: "fruit",
		Version:      "1.0.0",
		Auth:         manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"FRUIT_TOKEN"}},
		Streams:      []manifest.Stream{{Name: "fruit", KeyFields: []string{"name"}}},
		DefaultSchedule: manifest.Schedule{
			Spec:       "@every 1h",
			AutoEnroll: true,
		},
	}
}

type fruitState struct {
	Next int `json:"next"`
}

func (fruit) Run(ctx context.Context, r *sdk.Run) error {
	var st fruitState
	if _, err := r.DecodeState(&st); err != nil {
		return err
	}
	_ = r.Credential("FRUIT_TOKEN") // a real connector would call its API with it
	for i := st.Next; i < len(fruits); i++ {
		if err := r.Emit("fruit", fruits[i], map[string]any{"name": fruits[i], "rank": i}); err != nil {
			return err
		}
	}
	return r.Checkpoint(fruitState{Next: len(fruits)})
}

// Example runs a connector in-process with sdktest, as its tests would.
func Example() {
	res, err := sdktest.RunContext(context.Background(), fruit{}, sdktest.Options{
		Env: map[string]string{"FRUIT_TOKEN": "s3cret"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, rec := range res.Records {
		fmt.Printf("%s %s %s\n", rec.Stream, rec.Key, rec.Data)
	}
	fmt.Printf("checkpoint %s, err %v\n", res.LastCheckpoint(), res.Err)

	// The next run resumes from the checkpoint and finds nothing new.
	res, _ = sdktest.RunContext(context.Background(), fruit{}, sdktest.Options{
		Env:        map[string]string{"FRUIT_TOKEN": "s3cret"},
		Checkpoint: res.LastCheckpoint(),
	})
	fmt.Printf("second run: %d records\n", len(res.Records))
	// Output:
	// fruit apple {"name":"apple","rank":0}
	// fruit banana {"name":"banana","rank":1}
	// fruit cherry {"name":"cherry","rank":2}
	// checkpoint {"next":3}, err <nil>
	// second run: 0 records
}

// ExampleServe shows a connector's main. Serve validates the manifest the
// same way as here before serving it.
func ExampleServe() {
	// func main() { sdk.Serve(fruit{}) }
	m := fruit{}.Manifest()
	fmt.Println(m.Validate(manifest.CheckSchedule))

	m.ConnectorKey = "https://example.com/fruit"
	fmt.Println(m.Validate(manifest.CheckSchedule))
	// Output:
	// <nil>
	// manifest: invalid connector_key: "https://example.com/fruit" looks like a URL or path; use a short key such as "github"
}

// Example_credentialsRequired shows what the host sees when a declared
// credential is empty: an interaction naming it, then a typed failure. The
// connector's Run is never called.
func Example_credentialsRequired() {
	res, _ := sdktest.RunContext(context.Background(), fruit{}, sdktest.Options{
		Env: map[string]string{"FRUIT_TOKEN": ""},
	})
	fmt.Printf("%+v\n", res.Interactions)
	fmt.Println(res.Err)
	// Output:
	// [{Kind:credentials_required Missing:[FRUIT_TOKEN]}]
	// credentials_required: missing or empty credentials: FRUIT_TOKEN
}

// ExampleRetryable marks a transient error retryable: the host retries the
// run with backoff.
func ExampleRetryable() {
	err := sdk.Retryable(errors.New("upstream returned 503"))
	var e *sdk.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code, e.Retryable, e.Message)
	}
	// Output: connector_failed true upstream returned 503
}

// ExampleCredentialRejected reports a credential the provider refused.
func ExampleCredentialRejected() {
	status := 401
	err := sdk.CredentialRejected("the API answered " + strconv.Itoa(status))
	fmt.Println(err)
	// Output: credential_rejected: the API answered 401
}

// ExampleFail fails a run with a chosen code.
func ExampleFail() {
	fmt.Println(sdk.Fail("", "the export is not ready"))
	// Output: connector_failed: the export is not ready
}
