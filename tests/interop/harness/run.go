package harness

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	secretsstore "sigs.k8s.io/secrets-store-csi-driver/pkg/secrets-store"
	"sigs.k8s.io/secrets-store-csi-driver/pkg/util/fileutil"
)

// The driver's defaults: --max-call-recv-msg-size (cmd/secrets-store-csi-driver/main.go) and
// kubelet's csiTimeout for NodePublishVolume.
const (
	driverRecvLimit = 4 * 1024 * 1024
	kubeletTimeout  = 2 * time.Minute
)

// Driver is the driver's side: one PluginClientBuilder for the life of the run, as the driver
// process keeps one.
type Driver struct {
	e   *Env
	pcb *secretsstore.PluginClientBuilder
}

// NewDriver builds the client exactly as the driver's main does (its only dial option is the
// receive limit), searching e.SocketDir.
func NewDriver(e *Env, recvLimit int) *Driver {
	pcb := secretsstore.NewPluginClientBuilder([]string{e.SocketDir},
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(recvLimit)))
	e.t.Cleanup(pcb.Cleanup)
	return &Driver{e: e, pcb: pcb}
}

func (d *Driver) client(t *testing.T, ctx context.Context) v1alpha1.CSIDriverProviderClient {
	t.Helper()
	c, err := d.pcb.Get(ctx, "azure")
	if err != nil {
		t.Fatalf("PluginClientBuilder.Get(azure): %v", err)
	}
	return c
}

// Mounted is what one MountContent call left.
type Mounted struct {
	Target   string
	Versions map[string]string
	Code     string
	Err      error
}

// Mount encodes the request as NodePublishVolume does (attributes = SPC parameters overlaid by
// kubelet's volume context, json.Marshal'd; secrets = the nodePublishSecretRef map, `null`
// without one; permission = json.Marshal(os.FileMode(0644))) and calls MountContent into a
// fresh target directory, which the driver's writer fills.
func (d *Driver) Mount(t *testing.T, attrs map[string]string, secrets map[string]string) Mounted {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kubeletTimeout)
	defer cancel()
	a, err := json.Marshal(attrs)
	if err != nil {
		t.Fatal(err)
	}
	s, err := json.Marshal(secrets)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(os.FileMode(0644))
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "mount")
	if err := os.Mkdir(target, 0o750); err != nil {
		t.Fatal(err)
	}
	versions, code, err := secretsstore.MountContent(ctx, d.client(t, ctx), string(a), string(s), target, string(p), nil)
	return Mounted{Target: target, Versions: versions, Code: code, Err: err}
}

// Kubelet's volume context for pod namespace/pod of the fakes' service account, with the
// SecretProviderClass parameters params (objects as YAML items).
func (e *Env) attrs(pod string, params map[string]string, objects ...string) map[string]string {
	m := map[string]string{
		"secretProviderClass":                    "azure-kv",
		"csi.storage.k8s.io/pod.name":            pod,
		"csi.storage.k8s.io/pod.namespace":       e.Hello.Namespace,
		"csi.storage.k8s.io/pod.uid":             "6f1c3c5e-2f55-4b8e-9a39-5c8a0f6f2b1d",
		"csi.storage.k8s.io/serviceAccount.name": e.Hello.ServiceAccount,
		"csi.storage.k8s.io/ephemeral":           "true",
		"keyvaultName":                           e.Hello.Vault,
		"tenantID":                               e.Hello.Tenant,
		"objects":                                objectsYAML(objects...),
	}
	for k, v := range params {
		m[k] = v
	}
	return m
}

func objectsYAML(items ...string) string {
	var b strings.Builder
	b.WriteString("array:\n")
	for _, item := range items {
		b.WriteString("  - |\n")
		for _, line := range strings.Split(item, "\n") {
			b.WriteString("    " + line + "\n")
		}
	}
	return b.String()
}

// tokens is kubelet's csi.storage.k8s.io/serviceAccount.tokens value.
func tokens(byAudience map[string]string) string {
	m := map[string]map[string]string{}
	for aud, tok := range byAudience {
		m[aud] = map[string]string{"token": tok, "expirationTimestamp": "2099-01-01T00:00:00Z"}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// workloadIdentity are the parameters and tokens of a workload-identity class.
func (e *Env) workloadIdentity() map[string]string {
	return map[string]string{
		"clientID": e.Hello.WorkloadID.ClientID,
		"csi.storage.k8s.io/serviceAccount.tokens": tokens(map[string]string{
			"api://AzureADTokenExchange": e.Hello.WorkloadID.Token,
		}),
	}
}

// Run is the whole suite, for the driver version the calling module pins.
func Run(t *testing.T) {
	e := Start(t)
	d := NewDriver(e, driverRecvLimit)

	t.Run("Version", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		v, err := secretsstore.Version(ctx, d.client(t, ctx))
		if err != nil {
			t.Fatalf("Version: %v", err)
		}
		if want := e.ProviderVersion(t); v != want {
			t.Fatalf("Version = %q, want %q", v, want)
		}
	})

	t.Run("EveryObjectKind", func(t *testing.T) { everyObjectKind(t, e, d) })
	t.Run("IdentityModes", func(t *testing.T) { identityModes(t, e, d) })
	t.Run("Errors", func(t *testing.T) { errorsArriveIntact(t, e, d) })
	t.Run("ResponseSize", func(t *testing.T) { responseSize(t, e, d) })
	t.Run("ProviderRestart", func(t *testing.T) { providerRestart(t, e, d) })
}

func everyObjectKind(t *testing.T, e *Env, d *Driver) {
	params := e.workloadIdentity()
	m := d.Mount(t, e.attrs("app-0", params,
		"objectName: db-password\nobjectType: secret",
		"objectName: signing-key\nobjectType: key\nfilePermission: \"0400\"",
		"objectName: tls-cert\nobjectType: cert\nobjectAlias: tls.crt",
		"objectName: tls-cert\nobjectType: secret\nobjectAlias: tls.pem",
		"objectName: tls-cert\nobjectType: secret\nobjectFormat: pfx\nobjectEncoding: base64\nobjectAlias: tls.pfx",
		"objectName: tls-pem\nobjectType: secret\nobjectAlias: chain.pem",
		"objectName: api-token\nobjectType: secret\nobjectVersionHistory: 2",
	), nil)
	if m.Err != nil {
		t.Fatalf("MountContent: code %q: %v", m.Code, m.Err)
	}
	x := e.Hello.Expected
	want := map[string][]byte{
		"db-password": x["db-password"],
		"signing-key": x["signing-key-pem"],
		"tls.pem":     x["tls-cert-pem"],
		"tls.pfx":     x["tls-cert-pfx"],
		"chain.pem":   x["tls-cert-pem"],
		"api-token/0": x["api-token/0"],
		"api-token/1": x["api-token/1"],
	}
	got := checkDisk(t, m.Target, []string{"api-token", "chain.pem", "db-password", "signing-key", "tls.crt", "tls.pem", "tls.pfx"})
	for path, bytes := range want {
		if string(got[path]) != string(bytes) {
			t.Errorf("%s: got %d bytes %q..., want %d bytes", path, len(got[path]), head(got[path]), len(bytes))
		}
	}
	block, rest := pem.Decode(got["tls.crt"])
	if block == nil || block.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 ||
		string(block.Bytes) != string(x["tls-cert-leaf-der"]) {
		t.Errorf("tls.crt is not the leaf certificate as one CERTIFICATE block: %q", head(got["tls.crt"]))
	}
	modeIs(t, m.Target, "signing-key", 0o400)
	modeIs(t, m.Target, "db-password", 0o644)
	modeIs(t, m.Target, "api-token/0", 0o644)

	versions := e.Hello.Versions["api-token"]
	for _, id := range []string{"secret/db-password", "key/signing-key", "cert/tls-cert", "secret/tls-cert", "secret/tls-pem"} {
		if m.Versions[id] == "" {
			t.Errorf("no object version for %s in %v", id, m.Versions)
		}
	}
	if m.Versions["secret/api-token/0"] != versions[0] || m.Versions["secret/api-token/1"] != versions[1] {
		t.Errorf("history versions %v, want %v", m.Versions, versions)
	}

	// The driver's own listing of what it mounted (the rotation path reads it).
	listed, err := fileutil.GetMountedFiles(m.Target)
	if err != nil {
		t.Fatalf("GetMountedFiles: %v", err)
	}
	if len(listed) == 0 {
		t.Errorf("GetMountedFiles found nothing in %s", m.Target)
	}
}

// checkDisk checks the layout the driver's atomic writer makes: every top-level name is a
// symlink into ..data, ..data a symlink to a ..<timestamp> directory holding the files; it
// returns every file's bytes read through the symlinks, by path.
func checkDisk(t *testing.T, target string, top []string) map[string][]byte {
	t.Helper()
	data, err := os.Readlink(filepath.Join(target, "..data"))
	if err != nil || !strings.HasPrefix(data, "..") || strings.Contains(data, "/") {
		t.Fatalf("..data is not a link to a timestamped directory: %q, %v", data, err)
	}
	entries, err := os.ReadDir(target)
	if err != nil {
		t.Fatal(err)
	}
	var visible []string
	for _, entry := range entries {
		name := entry.Name()
		if strings.HasPrefix(name, "..") {
			continue
		}
		visible = append(visible, name)
		link, err := os.Readlink(filepath.Join(target, name))
		if err != nil || link != filepath.Join("..data", name) {
			t.Errorf("%s is not a symlink to ..data/%s: %q, %v", name, name, link, err)
		}
	}
	sort.Strings(visible)
	if strings.Join(visible, " ") != strings.Join(top, " ") {
		t.Errorf("visible names %v, want %v", visible, top)
	}
	files := map[string][]byte{}
	err = filepath.Walk(filepath.Join(target, data), func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(target, data), path)
		// Read through the user-visible link, as the pod does.
		b, err := os.ReadFile(filepath.Join(target, rel))
		if err != nil {
			return err
		}
		files[rel] = b
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", data, err)
	}
	return files
}

func modeIs(t *testing.T, target, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(filepath.Join(target, path))
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s: mode %o, want %o", path, got, want)
	}
}

func head(b []byte) string {
	if len(b) > 40 {
		return string(b[:40])
	}
	return string(b)
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("a failed Mount left %d entries in the target", len(entries))
	}
}

func identityModes(t *testing.T, e *Env, d *Driver) {
	secret := "objectName: db-password\nobjectType: secret"
	h := e.Hello
	cases := []struct {
		name    string
		pod     string
		params  map[string]string
		secrets map[string]string
	}{
		{"WorkloadIdentity", "app-0", e.workloadIdentity(), nil},
		{"ServicePrincipal", "app-0", nil, map[string]string{
			"clientid": h.ServicePrincipal.ClientID, "clientsecret": h.ServicePrincipal.ClientSecret,
		}},
		{"UserAssignedManagedIdentity", "app-0", map[string]string{
			"useVMManagedIdentity": "true", "userAssignedIdentityID": h.VMIdentity.ClientID,
		}, nil},
		{"PodIdentity", h.PodIdentity.Pod, map[string]string{"usePodIdentity": "true"}, nil},
		{"IdentityBinding", "app-0", map[string]string{
			"useAzureTokenProxy": "true",
			"clientID":           h.IdentityBinding.ClientID,
			"csi.storage.k8s.io/serviceAccount.tokens": tokens(map[string]string{
				"api://AKSIdentityBinding":   h.IdentityBinding.Token,
				"api://AzureADTokenExchange": h.WorkloadID.Token,
			}),
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := d.Mount(t, e.attrs(c.pod, c.params, secret), c.secrets)
			if m.Err != nil {
				t.Fatalf("MountContent: code %q: %v", m.Code, m.Err)
			}
			got := checkDisk(t, m.Target, []string{"db-password"})
			if string(got["db-password"]) != string(h.Expected["db-password"]) {
				t.Errorf("db-password = %q", got["db-password"])
			}
			if len(m.Versions) != 1 || m.Versions["secret/db-password"] == "" {
				t.Errorf("object versions %v", m.Versions)
			}
		})
	}
}

// failsWith checks that MountContent failed with the provider's gRPC status, code and whole
// message as the provider sent them, and that nothing was written.
func failsWith(t *testing.T, m Mounted, code codes.Code, parts ...string) string {
	t.Helper()
	if m.Err == nil {
		t.Fatalf("MountContent succeeded, want %v", code)
	}
	if m.Code != "GRPCProviderError" {
		t.Errorf("driver error code %q, want GRPCProviderError", m.Code)
	}
	st, ok := status.FromError(m.Err)
	if !ok {
		t.Fatalf("not a gRPC status: %v", m.Err)
	}
	if st.Code() != code {
		t.Errorf("code %v, want %v: %s", st.Code(), code, st.Message())
	}
	for _, p := range parts {
		if !strings.Contains(st.Message(), p) {
			t.Errorf("message lacks %q: %s", p, st.Message())
		}
	}
	emptyDir(t, m.Target)
	return st.Message()
}

func errorsArriveIntact(t *testing.T, e *Env, d *Driver) {
	wi := e.workloadIdentity()
	t.Run("NonASCIIValueQuoted", func(t *testing.T) {
		// grpc-message is percent-encoded on the wire; a value with '%', non-ASCII and a quote
		// must come back exactly as written.
		m := d.Mount(t, e.attrs("app-0", wi, "objectName: db-password\nobjectType: sécret%20✓"), nil)
		failsWith(t, m, codes.InvalidArgument, `"sécret%20✓"`, "objectType")
	})
	t.Run("AliasTheWriterRefuses", func(t *testing.T) {
		m := d.Mount(t, e.attrs("app-0", wi, "objectName: db-password\nobjectType: secret\nobjectAlias: ..data"), nil)
		failsWith(t, m, codes.InvalidArgument, "..data")
	})
	t.Run("MissingObject", func(t *testing.T) {
		m := d.Mount(t, e.attrs("app-0", wi,
			"objectName: db-password\nobjectType: secret",
			"objectName: no-such-secret\nobjectType: secret"), nil)
		failsWith(t, m, codes.NotFound, "no-such-secret", e.Hello.Vault)
	})
	t.Run("WrongClientSecret", func(t *testing.T) {
		m := d.Mount(t, e.attrs("app-0", nil, "objectName: db-password\nobjectType: secret"),
			map[string]string{"clientid": e.Hello.ServicePrincipal.ClientID, "clientsecret": "not-the-secret"})
		msg := failsWith(t, m, codes.Unauthenticated, e.Hello.ServicePrincipal.ClientID)
		if strings.Contains(msg, "not-the-secret") {
			t.Errorf("the client secret leaked into the message: %s", msg)
		}
	})
	t.Run("UnknownProviderName", func(t *testing.T) {
		// The driver's own checks, before any call: a name its pattern refuses, and no socket.
		ctx := context.Background()
		if _, err := d.pcb.Get(ctx, "../azure"); err == nil || !strings.Contains(err.Error(), "invalid provider") {
			t.Errorf("Get(../azure) = %v, want invalid provider", err)
		}
		if _, err := d.pcb.Get(ctx, "gcp"); err == nil || !strings.Contains(err.Error(), "provider not found") {
			t.Errorf("Get(gcp) = %v, want provider not found", err)
		}
	})
}

func responseSize(t *testing.T, e *Env, d *Driver) {
	wi := e.workloadIdentity()
	big := e.Hello.Big
	item := func(i int) string { return "objectName: " + big[i].Name + "\nobjectType: secret" }
	t.Run("UnderTheLimit", func(t *testing.T) {
		// Two big secrets: close to, but under, the driver's 4 MiB receive limit.
		m := d.Mount(t, e.attrs("app-0", wi, item(0), item(1)), nil)
		if m.Err != nil {
			t.Fatalf("MountContent: code %q: %v", m.Code, m.Err)
		}
		got := checkDisk(t, m.Target, []string{big[0].Name, big[1].Name})
		total := 0
		for i := 0; i < 2; i++ {
			total += len(got[big[i].Name])
			if string(got[big[i].Name]) != string(big[i].Value) {
				t.Errorf("%s: %d bytes, not the stored value", big[i].Name, len(got[big[i].Name]))
			}
		}
		if total < 3*1024*1024 {
			t.Errorf("only %d bytes: the case does not test the limit", total)
		}
	})
	t.Run("OverTheLimit", func(t *testing.T) {
		// Three: more than the driver accepts. The provider refuses with its own explanation
		// instead of sending a message grpc-go would reject unread.
		m := d.Mount(t, e.attrs("app-0", wi, item(0), item(1), item(2)), nil)
		failsWith(t, m, codes.ResourceExhausted, "--max-call-recv-msg-size")
	})
	t.Run("DriverWithASmallerLimit", func(t *testing.T) {
		// What the driver itself does with a response above its limit: grpc-go refuses it.
		small := NewDriver(e, 1024*1024)
		m := small.Mount(t, e.attrs("app-0", wi, item(0)), nil)
		failsWith(t, m, codes.ResourceExhausted, "grpc: received message larger than max")
	})
}

func providerRestart(t *testing.T, e *Env, d *Driver) {
	attrs := e.attrs("app-0", e.workloadIdentity(), "objectName: db-password\nobjectType: secret")
	mountOK := func(t *testing.T, when string) {
		t.Helper()
		m := d.Mount(t, attrs, nil)
		if m.Err != nil {
			t.Fatalf("%s: MountContent: code %q: %v", when, m.Code, m.Err)
		}
		got := checkDisk(t, m.Target, []string{"db-password"})
		if string(got["db-password"]) != string(e.Hello.Expected["db-password"]) {
			t.Errorf("%s: db-password = %q", when, got["db-password"])
		}
	}
	ctx := context.Background()
	before := d.client(t, ctx)
	mountOK(t, "before the restart")

	// A rolling update: SIGTERM (the provider removes its socket), a new process on the path.
	e.StopProvider(t, syscall.SIGTERM)
	e.StartProvider(t)
	mountOK(t, "after a graceful restart")

	// Killed without cleanup (the stale socket file stays; the new process replaces it).
	e.StopProvider(t, syscall.SIGKILL)
	e.StartProvider(t)
	mountOK(t, "after a SIGKILL and restart")

	// A Mount sent while no provider listens waits (waitForReady) and completes once the
	// new process is up.
	e.StopProvider(t, syscall.SIGTERM)
	var wg sync.WaitGroup
	var startErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(500 * time.Millisecond)
		startErr = e.startProvider()
	}()
	mountOK(t, "sent while the provider was down")
	wg.Wait()
	if startErr != nil {
		t.Fatal(startErr)
	}

	if after := d.client(t, ctx); after != before {
		t.Errorf("PluginClientBuilder made a new client; the driver keeps one for life")
	}
}
