package launchbench

import (
	"crypto/sha256"
	"fmt"
	"os"

	"github.com/connhost/connhost/host/launch"
)

// demoSpec is the launch.Spec of the demo binary at path, pinned to its
// checksum now, as the catalog pins a plugin when it scans it.
func demoSpec(path string, env, secrets []string) (launch.Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return launch.Spec{}, fmt.Errorf("launchbench: %w", err)
	}
	sum := sha256.Sum256(b)
	return launch.Spec{Name: "demo", Path: path, SHA256: sum[:], Env: env, Secrets: secrets}, nil
}
