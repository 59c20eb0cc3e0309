package weights

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHub imitates the Hub's resolve endpoint: small files answer HEAD with their git sha1
// ETag, LFS files redirect to a separate CDN server and carry X-Linked-Etag (sha256) and
// X-Linked-Size on the redirect, every reply names the commit, downloads honour Range.
type fakeHub struct {
	t      *testing.T
	commit string
	files  map[string][]byte
	lfs    map[string]bool
	// misbehaviour switches
	badETag    map[string]bool // announce a checksum the content does not have
	interrupts map[string]int  // cut this many full downloads off halfway
	token      string

	mu      sync.Mutex
	log     []string // "HEAD path", "GET path range"
	hub     *httptest.Server
	cdn     *httptest.Server
	cdnAuth []string
}

func gitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func newFakeHub(t *testing.T) *fakeHub {
	f := &fakeHub{t: t, commit: strings.Repeat("ab12", 10), files: map[string][]byte{}, lfs: map[string]bool{},
		badETag: map[string]bool{}, interrupts: map[string]int{}}
	f.cdn = httptest.NewServer(http.HandlerFunc(f.serveCDN))
	f.hub = httptest.NewServer(http.HandlerFunc(f.serveHub))
	t.Cleanup(func() { f.hub.Close(); f.cdn.Close() })
	return f
}

func (f *fakeHub) record(s string) {
	f.mu.Lock()
	f.log = append(f.log, s)
	f.mu.Unlock()
}

func (f *fakeHub) requests(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, l := range f.log {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func (f *fakeHub) etag(name string) string {
	if f.badETag[name] && f.lfs[name] {
		return strings.Repeat("0", 64)
	}
	if f.badETag[name] {
		return strings.Repeat("0", 40)
	}
	if f.lfs[name] {
		return sha256Hex(f.files[name])
	}
	return gitSHA1(f.files[name])
}

func (f *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	f.record(r.Method + " " + r.URL.EscapedPath() + " " + r.Header.Get("Range"))
	repo, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/resolve/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if repo == "old/name" { // a renamed repository answers with a relative redirect
		http.Redirect(w, r, "/org/name/resolve/"+rest, http.StatusTemporaryRedirect)
		return
	}
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if repo != "org/name" {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	revEsc, fileEsc, _ := strings.Cut(rest, "/")
	rev, _ := url.PathUnescape(revEsc)
	name, _ := url.PathUnescape(fileEsc)
	if rev != "main" && rev != f.commit {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", f.commit)
	content, ok := f.files[name]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if f.lfs[name] {
		w.Header().Set("ETag", `"`+gitSHA1([]byte("pointer"))+`"`)
		w.Header().Set("X-Linked-Etag", `"`+f.etag(name)+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(content)))
		w.Header().Set("Location", f.cdn.URL+"/cdn/"+url.PathEscape(name))
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+f.etag(name)+`"`)
	f.serveContent(w, r, name, content)
}

func (f *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	f.record("CDN " + r.Method + " " + r.URL.Path + " " + r.Header.Get("Range"))
	f.mu.Lock()
	f.cdnAuth = append(f.cdnAuth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	name := strings.TrimPrefix(r.URL.Path, "/cdn/")
	content, ok := f.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	f.serveContent(w, r, name, content)
}

func (f *fakeHub) serveContent(w http.ResponseWriter, r *http.Request, name string, content []byte) {
	f.mu.Lock()
	cut := r.Method == http.MethodGet && r.Header.Get("Range") == "" && f.interrupts[name] > 0
	if cut {
		f.interrupts[name]--
	}
	f.mu.Unlock()
	if cut {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.WriteHeader(http.StatusOK)
		w.Write(content[:len(content)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection drops mid-body
	}
	http.ServeContent(w, r, name, time.Time{}, strings.NewReader(string(content)))
}

func fixtureBytes(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixturesDir(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fakeHub) addModel(t *testing.T) {
	f.files["config.json"] = fixtureBytes(t, "bert_seq_cls/config.json")
	f.files["model.safetensors"] = fixtureBytes(t, "bert_seq_cls/model.safetensors")
	f.lfs["model.safetensors"] = true
	f.files["tokenizer_config.json"] = []byte(`{"do_lower_case": true}`)
}

func TestHubResolveAndCache(t *testing.T) {
	f := newFakeHub(t)
	f.addModel(t)
	f.token = "hf_secret"
	cache := t.TempDir()
	h := &Hub{CacheDir: cache, Endpoint: f.hub.URL, Token: "hf_secret"}
	ctx := context.Background()
	dir, err := h.Resolve(ctx, "org/name", "")
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(cache, "models--org--name")
	if want := filepath.Join(repo, "snapshots", f.commit); dir != want {
		t.Fatalf("dir %s, want %s", dir, want)
	}
	if b, _ := os.ReadFile(filepath.Join(repo, "refs", "main")); string(b) != f.commit {
		t.Errorf("refs/main = %q", b)
	}
	for name := range f.files {
		target, err := os.Readlink(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := filepath.Join("..", "..", "blobs", f.etag(name)); target != want {
			t.Errorf("%s -> %s, want %s", name, target, want)
		}
	}
	if _, err := os.Stat(filepath.Join(repo, ".no_exist", f.commit, "vocab.txt")); err != nil {
		t.Errorf("no .no_exist marker for a missing optional file: %v", err)
	}
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkStore(t, s)
	s.Close()
	for _, a := range f.cdnAuth {
		if a != "" {
			t.Errorf("token sent to the CDN host: %q", a)
		}
	}

	// A second resolve only asks for metadata.
	gets := len(f.requests("GET")) + len(f.requests("CDN GET"))
	if _, err := h.Resolve(ctx, "org/name", "main"); err != nil {
		t.Fatal(err)
	}
	if now := len(f.requests("GET")) + len(f.requests("CDN GET")); now != gets {
		t.Errorf("cached files downloaded again (%d -> %d GETs)", gets, now)
	}
	// By commit hash, and offline, the server is not asked at all.
	before := len(f.requests(""))
	if d, err := h.Resolve(ctx, "org/name", f.commit, "config.json", "model.safetensors"); err != nil || d != dir {
		t.Fatalf("by commit: %s %v", d, err)
	}
	off := &Hub{CacheDir: cache, Endpoint: f.hub.URL, Offline: true}
	if d, err := off.Resolve(ctx, "org/name", ""); err != nil || d != dir {
		t.Fatalf("offline: %s %v", d, err)
	}
	if n := len(f.requests("")); n != before {
		t.Errorf("%d requests while resolving from the cache", n-before)
	}
	// The server going away falls back to the cache.
	f.hub.Close()
	if _, err := (&Hub{CacheDir: cache, Endpoint: f.hub.URL, Retries: -1}).Download(ctx, "org/name", "main", "config.json"); err != nil {
		t.Errorf("unreachable server with a cached file: %v", err)
	}
}

func TestHubRelativeRedirectAndEnv(t *testing.T) {
	f := newFakeHub(t)
	f.addModel(t)
	t.Setenv("HF_ENDPOINT", f.hub.URL)
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	p, err := (&Hub{}).Download(context.Background(), "old/name", "main", "config.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p, filepath.Join(os.Getenv("HF_HOME"), "hub", "models--old--name", "snapshots")) {
		t.Errorf("path %s is not under $HF_HOME/hub", p)
	}
	if b, _ := os.ReadFile(p); string(b) != string(f.files["config.json"]) {
		t.Error("content differs")
	}
}

func TestHubInterruptedDownloadResumes(t *testing.T) {
	f := newFakeHub(t)
	f.addModel(t)
	size := len(f.files["model.safetensors"])
	ctx := context.Background()

	// Within one call: the transfer breaks halfway and is resumed with a Range request.
	f.interrupts["model.safetensors"] = 1
	h := &Hub{CacheDir: t.TempDir(), Endpoint: f.hub.URL}
	p, err := h.Download(ctx, "org/name", "main", "model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); sha256Hex(b) != f.etag("model.safetensors") {
		t.Fatal("resumed file is wrong")
	}
	want := fmt.Sprintf("CDN GET /cdn/model.safetensors bytes=%d-", size/2)
	if r := f.requests("CDN GET"); len(r) != 2 || r[1] != want {
		t.Errorf("requests %q, want a resume %q", r, want)
	}

	// Across calls: with retries off the first call fails and leaves the partial file,
	// the next call continues it.
	f.interrupts["model.safetensors"] = 1
	h = &Hub{CacheDir: t.TempDir(), Endpoint: f.hub.URL, Retries: -1}
	if _, err := h.Download(ctx, "org/name", "main", "model.safetensors"); err == nil {
		t.Fatal("interrupted download reported success")
	}
	part := filepath.Join(h.CacheDir, "models--org--name", "blobs", f.etag("model.safetensors")+".incomplete")
	if fi, err := os.Stat(part); err != nil || fi.Size() != int64(size/2) {
		t.Fatalf("partial file: %v %v", fi, err)
	}
	if _, err := h.Download(ctx, "org/name", "main", "model.safetensors"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(part); !errors.Is(err, fs.ErrNotExist) {
		t.Error(".incomplete left behind")
	}
	if r := f.requests("CDN GET"); r[len(r)-1] != want {
		t.Errorf("last request %q, want %q", r[len(r)-1], want)
	}
	// The same for a small (non-LFS) file served by the hub itself.
	f.interrupts["config.json"] = 1
	if _, err := (&Hub{CacheDir: t.TempDir(), Endpoint: f.hub.URL}).Download(ctx, "org/name", "main", "config.json"); err != nil {
		t.Fatal(err)
	}
}

func TestHubChecksumMismatch(t *testing.T) {
	f := newFakeHub(t)
	f.addModel(t)
	ctx := context.Background()
	for _, name := range []string{"model.safetensors", "config.json"} {
		f.badETag[name] = true
		h := &Hub{CacheDir: t.TempDir(), Endpoint: f.hub.URL}
		_, err := h.Download(ctx, "org/name", "main", name)
		if !errors.Is(err, ErrChecksum) {
			t.Fatalf("%s: %v, want ErrChecksum", name, err)
		}
		repo := filepath.Join(h.CacheDir, "models--org--name")
		left, _ := filepath.Glob(filepath.Join(repo, "blobs", "*"))
		if len(left) != 0 {
			t.Errorf("%s: blobs left behind: %v", name, left)
		}
		if _, err := os.Stat(filepath.Join(repo, "snapshots", f.commit, name)); err == nil {
			t.Errorf("%s: snapshot entry created for a corrupt file", name)
		}
	}
}

func TestHubOffline(t *testing.T) {
	f := newFakeHub(t)
	f.addModel(t)
	ctx := context.Background()
	cache := t.TempDir()
	t.Setenv("HF_HUB_OFFLINE", "1")
	h := &Hub{CacheDir: cache, Endpoint: f.hub.URL}
	if _, err := h.Resolve(ctx, "org/name", ""); !errors.Is(err, ErrOffline) {
		t.Fatalf("offline without cache: %v, want ErrOffline", err)
	}
	if _, err := h.Download(ctx, "org/name", "main", "config.json"); !errors.Is(err, ErrOffline) {
		t.Fatalf("offline without cache: %v, want ErrOffline", err)
	}
	if n := len(f.requests("")); n != 0 {
		t.Errorf("%d requests in offline mode", n)
	}
	// A cache as huggingface_hub leaves it (written here by hand) is used as is.
	repo := filepath.Join(cache, "models--org--name")
	os.MkdirAll(filepath.Join(repo, "refs"), 0o755)
	os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(f.commit), 0o644)
	os.MkdirAll(filepath.Join(repo, "blobs"), 0o755)
	os.MkdirAll(filepath.Join(repo, "snapshots", f.commit), 0o755)
	for _, name := range []string{"config.json", "model.safetensors"} {
		os.WriteFile(filepath.Join(repo, "blobs", f.etag(name)), f.files[name], 0o644)
		os.Symlink(filepath.Join("..", "..", "blobs", f.etag(name)), filepath.Join(repo, "snapshots", f.commit, name))
	}
	dir, err := h.Resolve(ctx, "org/name", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := h.Download(ctx, "org/name", "main", "tokenizer_config.json"); !errors.Is(err, ErrOffline) {
		t.Errorf("uncached file offline: %v", err)
	}
	// Online again, the same cache is reused without downloading.
	t.Setenv("HF_HUB_OFFLINE", "0")
	if _, err := h.Resolve(ctx, "org/name", "main", "config.json", "model.safetensors"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests("GET")) + len(f.requests("CDN GET")); n != 0 {
		t.Errorf("%d downloads of files the cache had", n)
	}
}

func TestHubRejectsTraversal(t *testing.T) {
	f := newFakeHub(t)
	f.addModel(t)
	ctx := context.Background()
	h := &Hub{CacheDir: t.TempDir(), Endpoint: f.hub.URL}
	for _, name := range []string{"../x", "a/../../x", "/etc/passwd", `..\x`, "a//b", ""} {
		if _, err := h.Download(ctx, "org/name", "main", name); err == nil {
			t.Errorf("file %q accepted", name)
		}
	}
	for _, repo := range []string{"../org/name", "org/../name", "org/name/x", "/org", "org--x/name", ""} {
		if _, err := h.Download(ctx, repo, "main", "config.json"); err == nil {
			t.Errorf("repo %q accepted", repo)
		}
	}
	if _, err := h.Download(ctx, "org/name", "../../x", "config.json"); err == nil {
		t.Error("revision ../../x accepted")
	}
	// A server naming a commit or blob outside the cache is refused.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "commit") {
			w.Header().Set("X-Repo-Commit", "../../../../tmp/evil")
			w.Header().Set("ETag", `"`+strings.Repeat("a", 40)+`"`)
		} else {
			w.Header().Set("X-Repo-Commit", f.commit)
			w.Header().Set("ETag", `"../../../tmp/evil"`)
		}
		w.Write([]byte("x"))
	}))
	defer evil.Close()
	h.Endpoint = evil.URL
	for _, name := range []string{"commit.json", "etag.json"} {
		if _, err := h.Download(ctx, "org/name", "main", name); err == nil {
			t.Errorf("%s: hostile server header accepted", name)
		}
	}
	// An index naming shards outside the snapshot is refused.
	f.files["model.safetensors.index.json"] = []byte(`{"weight_map":{"w":"../../../escape.safetensors"}}`)
	delete(f.files, "model.safetensors")
	h.Endpoint = f.hub.URL
	if _, err := h.Resolve(ctx, "org/name", ""); err == nil || !strings.Contains(err.Error(), "plain file name") {
		t.Errorf("hostile index: %v", err)
	}
}

func TestHubShardedAndMissing(t *testing.T) {
	f := newFakeHub(t)
	f.addModel(t)
	delete(f.files, "model.safetensors")
	dir, _ := splitFixture(t, "bert_seq_cls", 2)
	for _, n := range []string{"model.safetensors.index.json", shardName(0, 2), shardName(1, 2)} {
		b, _ := os.ReadFile(filepath.Join(dir, n))
		f.files[n] = b
		f.lfs[n] = strings.HasSuffix(n, ".safetensors")
	}
	h := &Hub{CacheDir: t.TempDir(), Endpoint: f.hub.URL}
	ctx := context.Background()
	snap, err := h.Resolve(ctx, "org/name", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenDir(snap)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := h.Download(ctx, "org/name", "main", "nope.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
	if _, err := h.Download(ctx, "other/name", "main", "config.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing repo: %v, want ErrNotExist", err)
	}
	f.token = "hf_x"
	if _, err := h.Download(ctx, "org/name", "main", "config.json"); err == nil || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Errorf("unauthorized: %v", err)
	}
}
