package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tokenBytes is the operator token's entropy.
const tokenBytes = 32

// maxTokenFile bounds what ReadToken reads.
const maxTokenFile = 4 << 10

// ReadToken returns the operator token stored in dataDir (the CLI's
// default token). It returns ErrNoToken when the file does not exist and
// ErrInsecureFile when group or others can access it.
func ReadToken(dataDir string) (string, error) {
	return ReadTokenFile(filepath.Join(dataDir, TokenFile))
}

// ReadTokenFile is ReadToken for a token file anywhere.
func ReadTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %s", ErrNoToken, path)
	}
	if err != nil {
		return "", fmt.Errorf("server: read operator token: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("server: read operator token: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%w: %s has mode %04o, want 0600", ErrInsecureFile, path, fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFile))
	if err != nil {
		return "", fmt.Errorf("server: read operator token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrNoToken, path)
	}
	return tok, nil
}

// ensureToken returns the operator token in path, generating it (32
// random bytes, hex) on first start. created reports a new token. The
// token itself is never logged.
func ensureToken(path string) (tok string, created bool, err error) {
	tok, err = ReadTokenFile(path)
	if err == nil || !errors.Is(err, ErrNoToken) {
		return tok, false, err
	}
	if _, statErr := os.Stat(path); statErr == nil {
		// Present but empty: refuse rather than overwrite what an
		// operator put there.
		return "", false, err
	}
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	tok = hex.EncodeToString(b)
	clear(b)
	if err := writeNew(path, []byte(tok+"\n")); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another host sharing the token file wrote it first.
			tok, err = ReadTokenFile(path)
			return tok, false, err
		}
		return "", false, fmt.Errorf("server: write operator token: %w", err)
	}
	return tok, true, nil
}

// writeNew creates path 0600 with data, refusing to overwrite, and syncs
// it.
func writeNew(path string, data []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}

// checkTokenFile refuses, before the store is opened, an operator token
// file that exists but cannot be used, saying how to fix it; a missing
// one is made once the store is open.
func checkTokenFile(path string) error {
	_, err := ReadTokenFile(path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrInsecureFile):
		return fmt.Errorf("%w: run `chmod 600 %s` (if anyone may have read it, delete it instead: the next start makes a new token)", err, path)
	case errors.Is(err, ErrNoToken):
		if _, statErr := os.Stat(path); statErr != nil {
			return nil
		}
		return fmt.Errorf("%w: write the token back (one line), or delete the file to have the next start make a new one", err)
	}
	return err
}
