// Command manifested is a connector plugin for the catalog's tests. It
// serves whatever manifest is appended to its own binary, so the tests build
// it once and make many plugins by copying it and appending a trailer:
//
//	\n#connhost-test-manifest:<base64 of the manifest JSON>\n
//
// (an ELF binary runs unchanged with bytes appended). It reads its binary
// through /proc/self/exe, which also works for the launcher's memfd copy.
// A manifest whose display_name is "hang in describe" makes Describe block
// for ever, ignoring its context: a plugin that hangs.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"

	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
)

const marker = "\n#connhost-test-manifest:"

func main() { wire.Serve(conn{}) }

type conn struct{}

func (conn) Describe(context.Context) (manifest.Manifest, error) {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return manifest.Manifest{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return manifest.Manifest{}, err
	}
	const tail = 256 << 10
	off := max(st.Size()-tail, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return manifest.Manifest{}, err
	}
	i := bytes.LastIndex(b, []byte(marker))
	if i < 0 {
		return manifest.Manifest{}, errors.New("manifested: no manifest trailer")
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b[i+len(marker):])))
	if err != nil {
		return manifest.Manifest{}, err
	}
	var m manifest.Manifest
	err = json.Unmarshal(raw, &m)
	if m.DisplayName == "hang in describe" {
		select {}
	}
	return m, err
}

func (conn) Check(context.Context, wire.CheckRequest) (wire.CheckResult, error) {
	return wire.CheckResult{Valid: true}, nil
}

func (conn) Run(context.Context, wire.RunRequest, func(wire.Message) error) error { return nil }
