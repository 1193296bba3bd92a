package launchbench

import (
	"fmt"

	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/host/pluginimage"
)

// demoSpec is the launch.Spec of the demo binary at path, pinned into a
// sealed image now, as the catalog pins a plugin when it scans it: every
// launch execs that image. The image lives as long as the benchmark
// process.
func demoSpec(path string, env, secrets []string) (launch.Spec, error) {
	im, err := pluginimage.Pin(path, pluginimage.Options{Name: "demo"})
	if err != nil {
		return launch.Spec{}, fmt.Errorf("launchbench: %w", err)
	}
	return launch.Spec{Name: "demo", Path: path, SHA256: im.SHA256(), Image: im, Env: env, Secrets: secrets}, nil
}
