// Package testbin finds the stand-in programs tests run (mailpit, stripe-mock) that `make tools`
// installs into the module's bin/.
package testbin

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Find returns the path of program: the file named by the environment variable envVar, else
// <module root>/bin/<program>, else $(go env GOPATH)/bin/<program>, else PATH. It fails the test
// with how to install it when there is none.
func Find(t testing.TB, program, envVar string) string {
	t.Helper()
	if bin := os.Getenv(envVar); bin != "" {
		if !isExecutable(bin) {
			t.Fatalf("testbin: %s=%s is not an executable file", envVar, bin)
		}
		return bin
	}
	var candidates []string
	if root, err := moduleRoot(); err == nil {
		candidates = append(candidates, filepath.Join(root, "bin", program))
	}
	if gopath := goPath(); gopath != "" {
		candidates = append(candidates, filepath.Join(gopath, "bin", program))
	}
	for _, c := range candidates {
		if isExecutable(c) {
			return c
		}
	}
	if bin, err := exec.LookPath(program); err == nil {
		return bin
	}
	t.Fatalf("testbin: no %s binary (looked at %s, %s and PATH): run `make tools`", program, envVar,
		strings.Join(candidates, ", "))
	return ""
}

// moduleRoot is the nearest directory above the working directory (the test's package) that
// holds a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// goPath is the first entry of GOPATH, as `go env GOPATH` would say.
func goPath() string {
	if p := os.Getenv("GOPATH"); p != "" {
		return filepath.SplitList(p)[0]
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	return filepath.SplitList(strings.TrimSpace(string(out)))[0]
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
