// Package harness runs the Secrets Store CSI Driver's own provider client and file writer
// (sigs.k8s.io/secrets-store-csi-driver, at whatever version the calling module pins) against
// the provider's release binary and the test kit's fakes, each in a process of its own.
//
// The modules ../driver-v1.6 and ../driver-v1.5 call Run from their tests; scripts/interop.sh
// builds the binaries and runs those tests in a network namespace where the fakes hold the
// real services' addresses. Nothing here stands in for the driver: the requests are built,
// sent, checked and written to disk by the driver's exported code (NewPluginClientBuilder, Get,
// Version, MountContent and the atomic writer behind it), with the dial options and encodings
// the driver's NodePublishVolume uses.
package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hello is what the fakes process (examples/fakes.rs) writes once it serves.
type Hello struct {
	ProviderEnv    map[string]string `json:"provider_env"`
	ProviderArgs   []string          `json:"provider_args"`
	Plain          string            `json:"plain"`
	Tenant         string            `json:"tenant"`
	Vault          string            `json:"vault"`
	Namespace      string            `json:"namespace"`
	ServiceAccount string            `json:"service_account"`
	WorkloadID     struct {
		ClientID string `json:"client_id"`
		Token    string `json:"token"`
	} `json:"workload_identity"`
	IdentityBinding struct {
		ClientID string `json:"client_id"`
		Token    string `json:"token"`
	} `json:"identity_binding"`
	ServicePrincipal struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	} `json:"service_principal"`
	VMIdentity struct {
		ClientID string `json:"client_id"`
	} `json:"vm_identity"`
	PodIdentity struct {
		Pod      string `json:"pod"`
		ClientID string `json:"client_id"`
	} `json:"pod_identity"`
	// What each object must become on disk (base64 in the JSON).
	Expected map[string][]byte   `json:"expected"`
	Versions map[string][]string `json:"versions"`
	// Secrets of about 1.9 MB each: two fit the driver's 4 MiB limit, three do not.
	Big []struct {
		Name  string `json:"name"`
		Value []byte `json:"value"`
	} `json:"big"`
}

// Env is one fakes process and the provider serving against it.
type Env struct {
	t           *testing.T
	providerBin string
	dir         string
	// SocketDir is the directory the driver searches (its --provider-volume).
	SocketDir string
	Hello     Hello
	fakes     *exec.Cmd
	provider  *exec.Cmd
	logs      *bytes.Buffer
	starts    int
}

func mustEnv(t *testing.T, name string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run this suite through scripts/interop.sh", name)
	}
	return v
}

// Start launches the fakes ($AKV_FAKES_BIN) and the provider ($AKV_PROVIDER_BIN); both are
// stopped when the test ends.
func Start(t *testing.T) *Env {
	e := &Env{
		t:           t,
		providerBin: mustEnv(t, "AKV_PROVIDER_BIN"),
		dir:         t.TempDir(),
		logs:        &bytes.Buffer{},
	}
	e.SocketDir = filepath.Join(e.dir, "secrets-store-csi-providers")
	hello := filepath.Join(e.dir, "fakes.json")
	e.fakes = exec.Command(mustEnv(t, "AKV_FAKES_BIN"), "--out", hello)
	e.fakes.Stdout, e.fakes.Stderr = os.Stderr, os.Stderr
	if err := e.fakes.Start(); err != nil {
		t.Fatalf("start fakes: %v", err)
	}
	t.Cleanup(func() { stop(e.fakes) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(hello)
		if err == nil {
			if err := json.Unmarshal(b, &e.Hello); err != nil {
				t.Fatalf("fakes wrote bad JSON: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fakes did not write %s within 60 s", hello)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.StartProvider(t)
	t.Cleanup(func() {
		e.StopProvider(t, syscall.SIGTERM)
		if t.Failed() {
			t.Logf("provider stderr:\n%s", e.logs.String())
		}
	})
	return e
}

// Socket is the provider's socket path: <SocketDir>/azure.sock, as the driver looks it up.
func (e *Env) Socket() string { return filepath.Join(e.SocketDir, "azure.sock") }

// StartProvider starts the release binary on Socket and waits until it accepts connections.
func (e *Env) StartProvider(t *testing.T) {
	t.Helper()
	if err := e.startProvider(); err != nil {
		t.Fatal(err)
	}
}

func (e *Env) startProvider() error {
	e.starts++
	args := append([]string{
		"--endpoint=unix://" + e.Socket(),
		"--healthz-port=0",
		"--prometheus-port=0",
	}, e.Hello.ProviderArgs...)
	cmd := exec.Command(e.providerBin, args...)
	cmd.Env = os.Environ()
	for k, v := range e.Hello.ProviderEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	fmt.Fprintf(e.logs, "--- provider start %d\n", e.starts)
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start provider: %w", err)
	}
	e.provider = cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("unix", e.Socket()); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("provider did not listen on %s within 20 s:\n%s", e.Socket(), e.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StopProvider sends sig to the provider and waits for it to exit; for SIGTERM it must exit 0
// and remove its socket.
func (e *Env) StopProvider(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if e.provider == nil {
		return
	}
	cmd := e.provider
	e.provider = nil
	_ = cmd.Process.Signal(sig)
	err := cmd.Wait()
	if sig == syscall.SIGTERM {
		if err != nil {
			t.Errorf("provider exited badly after SIGTERM: %v", err)
		}
		if _, err := os.Stat(e.Socket()); !os.IsNotExist(err) {
			t.Errorf("provider left its socket behind after SIGTERM (%v)", err)
		}
	}
}

func stop(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// ProviderVersion is what `--version` prints after the binary's name.
func (e *Env) ProviderVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(e.providerBin, "--version").Output()
	if err != nil {
		t.Fatalf("--version: %v", err)
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "akv-csi-provider ")
}
