package weights

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrChecksum is wrapped by a download whose content does not match the server's ETag.
var ErrChecksum = errors.New("checksum mismatch")

// ErrOffline is wrapped when a file is needed that the cache lacks while offline.
var ErrOffline = errors.New("not in the local cache and offline mode is on")

// Hub resolves Hugging Face model ids to local files in the standard Hugging Face cache
// layout, so that files a Python user already downloaded are reused and files fetched here
// are visible to Python:
//
//	<cache>/models--<org>--<name>/refs/<revision>            commit hash
//	<cache>/models--<org>--<name>/blobs/<etag>               content (sha256 or git sha1)
//	<cache>/models--<org>--<name>/snapshots/<commit>/<file>  symlink to ../../blobs/<etag>
//	<cache>/models--<org>--<name>/.no_exist/<commit>/<file>  marker for a file the repo lacks
//
// The zero value is usable: every empty field is taken from the environment as
// huggingface_hub does.
type Hub struct {
	CacheDir string       // default $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
	Endpoint string       // default $HF_ENDPOINT, else https://huggingface.co
	Token    string       // default $HF_TOKEN; sent only to the endpoint's host
	Offline  bool         // also on when HF_HUB_OFFLINE is 1/true/yes/on
	Client   *http.Client // default http.DefaultClient
	// Retries is how many times an interrupted transfer is resumed within one call:
	// 0 means 3, negative means none.
	Retries int
}

var (
	commitRe = regexp.MustCompile(`^[0-9a-f]{40}$`)
	etagRe   = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)
	repoRe   = regexp.MustCompile(`^(?:[A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

func envTrue(name string) bool {
	switch strings.ToLower(os.Getenv(name)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

func (h *Hub) cacheDir() (string, error) {
	if h.CacheDir != "" {
		return h.CacheDir, nil
	}
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "hub"), nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "huggingface", "hub"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("weights: hub: no cache directory: %w", err)
	}
	return filepath.Join(home, ".cache", "huggingface", "hub"), nil
}

func (h *Hub) endpoint() string {
	e := h.Endpoint
	if e == "" {
		e = os.Getenv("HF_ENDPOINT")
	}
	if e == "" {
		e = "https://huggingface.co"
	}
	return strings.TrimRight(e, "/")
}

func (h *Hub) token() string {
	if h.Token != "" {
		return h.Token
	}
	return os.Getenv("HF_TOKEN")
}

func (h *Hub) offline() bool { return h.Offline || envTrue("HF_HUB_OFFLINE") }

func (h *Hub) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return http.DefaultClient
}

func (h *Hub) retries() int {
	switch {
	case h.Retries == 0:
		return 3
	case h.Retries < 0:
		return 0
	}
	return h.Retries
}

// validRelPath accepts a repository-relative path: no absolute paths, no backslashes, no
// "." or ".." components, so neither the caller nor the server can escape the snapshot.
func validRelPath(p string) bool {
	if p == "" || strings.ContainsAny(p, "\\\x00") || strings.HasPrefix(p, "/") || filepath.IsAbs(p) {
		return false
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

type repoCache struct {
	dir string // <cache>/models--org--name
}

func (h *Hub) repo(repoID string) (repoCache, error) {
	if len(repoID) > 96 || !repoRe.MatchString(repoID) || strings.Contains(repoID, "..") || strings.Contains(repoID, "--") {
		return repoCache{}, fmt.Errorf("weights: hub: %q is not a valid model id (org/name)", repoID)
	}
	cache, err := h.cacheDir()
	if err != nil {
		return repoCache{}, err
	}
	return repoCache{dir: filepath.Join(cache, "models--"+strings.ReplaceAll(repoID, "/", "--"))}, nil
}

// commitFor maps a revision to a cached commit hash: a commit hash is itself, a branch or
// tag goes through refs/.
func (r repoCache) commitFor(revision string) (string, bool) {
	if commitRe.MatchString(revision) {
		return revision, true
	}
	b, err := os.ReadFile(filepath.Join(r.dir, "refs", filepath.FromSlash(revision)))
	if err != nil {
		return "", false
	}
	c := strings.TrimSpace(string(b))
	return c, commitRe.MatchString(c)
}

func (r repoCache) snapshotFile(commit, file string) string {
	return filepath.Join(r.dir, "snapshots", commit, filepath.FromSlash(file))
}

func (r repoCache) noExistFile(commit, file string) string {
	return filepath.Join(r.dir, ".no_exist", commit, filepath.FromSlash(file))
}

func fileExists(p string) bool {
	fi, err := os.Stat(p) // follows the snapshot symlink: a dangling link is a miss
	return err == nil && fi.Mode().IsRegular()
}

// cached returns the snapshot path of file at revision when the cache has it; notFound
// reports a recorded .no_exist marker.
func (r repoCache) cached(revision, file string) (p string, notFound, ok bool) {
	commit, ok := r.commitFor(revision)
	if !ok {
		return "", false, false
	}
	p = r.snapshotFile(commit, file)
	if fileExists(p) {
		return p, false, true
	}
	if _, err := os.Stat(r.noExistFile(commit, file)); err == nil {
		return "", true, false
	}
	return "", false, false
}

func normalizeETag(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	return strings.Trim(s, `"`)
}

type fileMeta struct {
	commit string
	etag   string
	size   int64 // -1 when unknown
	url    string
}

// httpStatusError is a non-success reply from the endpoint.
type httpStatusError struct {
	status int
	code   string // X-Error-Code
	commit string // X-Repo-Commit, when the server sent one
}

func (e *httpStatusError) Error() string {
	if e.code != "" {
		return fmt.Sprintf("HTTP %d (%s)", e.status, e.code)
	}
	return fmt.Sprintf("HTTP %d", e.status)
}

func (h *Hub) authorize(req *http.Request) {
	tok := h.token()
	if tok == "" {
		return
	}
	ep, err := url.Parse(h.endpoint())
	if err == nil && req.URL.Host == ep.Host {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
}

// head asks the resolve endpoint for a file's commit, ETag and size without following
// absolute redirects (LFS files redirect to a CDN; the metadata is on the redirect itself).
func (h *Hub) head(ctx context.Context, repoID, revision, file string) (*fileMeta, error) {
	u := h.endpoint() + "/" + repoID + "/resolve/" + url.PathEscape(revision) + "/" + escapePath(file)
	c := *h.client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for hops := 0; ; hops++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept-Encoding", "identity")
		h.authorize(req)
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
			target, err := resp.Request.URL.Parse(loc)
			if err != nil {
				return nil, fmt.Errorf("bad redirect %q: %v", loc, err)
			}
			// A relative redirect (renamed repository) is followed for the metadata; an
			// absolute one (a CDN) already carries it.
			if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || resp.Header.Get("X-Repo-Commit") != "" {
				return h.metaFrom(resp, target.String())
			}
			if hops >= 5 {
				return nil, fmt.Errorf("too many redirects")
			}
			u = target.String()
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return nil, &httpStatusError{resp.StatusCode, resp.Header.Get("X-Error-Code"), resp.Header.Get("X-Repo-Commit")}
		}
		return h.metaFrom(resp, u)
	}
}

func (h *Hub) metaFrom(resp *http.Response, downloadURL string) (*fileMeta, error) {
	m := &fileMeta{commit: resp.Header.Get("X-Repo-Commit"), size: -1, url: downloadURL}
	m.etag = normalizeETag(resp.Header.Get("X-Linked-Etag"))
	if m.etag == "" {
		m.etag = normalizeETag(resp.Header.Get("ETag"))
	}
	sz := resp.Header.Get("X-Linked-Size")
	if sz == "" && resp.StatusCode == http.StatusOK {
		sz = resp.Header.Get("Content-Length")
	}
	if sz != "" {
		n, err := strconv.ParseInt(sz, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("server sent a bad size %q", sz)
		}
		m.size = n
	}
	// Both values become path components in the cache: accept only their documented forms.
	if !commitRe.MatchString(m.commit) {
		return nil, fmt.Errorf("server sent no valid X-Repo-Commit (%q)", m.commit)
	}
	if !etagRe.MatchString(m.etag) {
		return nil, fmt.Errorf("server sent an ETag %q that is neither a sha256 nor a git sha1", m.etag)
	}
	return m, nil
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// Download makes one file of a repository available locally and returns its path inside
// the snapshot folder. A cached file is used without contacting the server when the
// revision is a commit hash or when offline; otherwise the server is asked for the current
// commit and ETag, and only a missing blob is downloaded (resuming a partial one).
func (h *Hub) Download(ctx context.Context, repoID, revision, filename string) (string, error) {
	if revision == "" {
		revision = "main"
	}
	fail := func(err error) error {
		return fmt.Errorf("weights: hub: %s@%s: %s: %w", repoID, revision, filename, err)
	}
	if !validRelPath(filename) {
		return "", fail(errors.New("not a valid file name in a repository"))
	}
	if !validRelPath(revision) {
		return "", fail(errors.New("not a valid revision"))
	}
	r, err := h.repo(repoID)
	if err != nil {
		return "", err
	}
	if commitRe.MatchString(revision) || h.offline() {
		p, notFound, ok := r.cached(revision, filename)
		if ok {
			return p, nil
		}
		if notFound {
			return "", fail(fs.ErrNotExist)
		}
		if h.offline() {
			return "", fail(ErrOffline)
		}
	}
	meta, err := h.head(ctx, repoID, revision, filename)
	if err != nil {
		var se *httpStatusError
		if errors.As(err, &se) {
			if se.status == http.StatusNotFound {
				if se.code == "EntryNotFound" && commitRe.MatchString(se.commit) {
					r.markMissing(se.commit, filename)
					if revision != se.commit && !commitRe.MatchString(revision) {
						writeFileAtomic(filepath.Join(r.dir, "refs", filepath.FromSlash(revision)), []byte(se.commit))
					}
				}
				return "", fail(fmt.Errorf("%v: %w", err, fs.ErrNotExist))
			}
			if se.status == http.StatusUnauthorized || se.status == http.StatusForbidden {
				return "", fail(fmt.Errorf("%v: private or gated repository? set a token (HF_TOKEN)", err))
			}
			return "", fail(err)
		}
		if ctx.Err() != nil {
			return "", fail(err)
		}
		// The server cannot be reached: use the cache as huggingface_hub does.
		if p, _, ok := r.cached(revision, filename); ok {
			return p, nil
		}
		return "", fail(err)
	}
	if !commitRe.MatchString(revision) && revision != meta.commit {
		if err := writeFileAtomic(filepath.Join(r.dir, "refs", filepath.FromSlash(revision)), []byte(meta.commit)); err != nil {
			return "", fail(err)
		}
	}
	snap := r.snapshotFile(meta.commit, filename)
	blob := filepath.Join(r.dir, "blobs", meta.etag)
	if !fileExists(blob) {
		if err := h.fetchBlob(ctx, meta, blob); err != nil {
			return "", fail(err)
		}
	}
	if err := linkSnapshot(blob, snap); err != nil {
		return "", fail(err)
	}
	return snap, nil
}

func (r repoCache) markMissing(commit, file string) {
	p := r.noExistFile(commit, file)
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
}

func writeFileAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), p)
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}

// linkSnapshot points the snapshot entry at the blob with a relative symlink, as
// huggingface_hub does, copying where symlinks are unavailable.
func linkSnapshot(blob, snap string) error {
	if err := os.MkdirAll(filepath.Dir(snap), 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(snap), blob)
	if err != nil {
		return err
	}
	if target, err := os.Readlink(snap); err == nil && target == rel {
		return nil
	}
	tmp := snap + ".tmp-link"
	os.Remove(tmp)
	if err := os.Symlink(rel, tmp); err == nil {
		return os.Rename(tmp, snap)
	}
	data, err := os.ReadFile(blob)
	if err != nil {
		return err
	}
	return writeFileAtomic(snap, data)
}

// blobLocks serialises downloads of one blob within the process; the .incomplete file is
// also locked against other processes where the system allows.
var blobLocks sync.Map

func (h *Hub) fetchBlob(ctx context.Context, meta *fileMeta, blob string) error {
	mu, _ := blobLocks.LoadOrStore(blob, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if fileExists(blob) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return err
	}
	part := blob + ".incomplete"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		return err
	}
	if fileExists(blob) { // another process finished while we waited for the lock
		os.Remove(part)
		return nil
	}
	var lastErr error
	for attempt := 0; attempt <= h.retries(); attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		var progressed bool
		progressed, lastErr = h.fetchInto(ctx, meta, f)
		if lastErr == nil {
			break
		}
		if errors.Is(lastErr, ErrChecksum) || ctx.Err() != nil || (!progressed && attempt > 0) {
			break
		}
	}
	if lastErr != nil {
		if errors.Is(lastErr, ErrChecksum) {
			os.Remove(part) // resuming a corrupt file would only repeat the mismatch
		}
		return lastErr
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return os.Rename(part, blob)
}

// fetchInto continues the partial download in f (HTTP Range from its current length) and
// checks the whole content against the ETag: sha256 for LFS files, git's blob sha1 for
// small ones.
func (h *Hub) fetchInto(ctx context.Context, meta *fileMeta, f *os.File) (progressed bool, err error) {
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, err
	}
	if meta.size >= 0 && have > meta.size {
		if err := f.Truncate(0); err != nil {
			return false, err
		}
		have = 0
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, meta.url, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	h.authorize(req)
	resp, err := h.client().Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
			return false, fmt.Errorf("server resumed at %q, want byte %d", resp.Header.Get("Content-Range"), have)
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0 && have == meta.size:
		// Everything was already there.
	case resp.StatusCode == http.StatusOK:
		// No resume support (or nothing to resume): start over.
		if err := f.Truncate(0); err != nil {
			return false, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return false, err
		}
		have = 0
	default:
		return false, &httpStatusError{status: resp.StatusCode, code: resp.Header.Get("X-Error-Code")}
	}
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		var body io.Reader = resp.Body
		if meta.size >= 0 {
			body = io.LimitReader(resp.Body, meta.size-have+1)
		}
		n, err := io.Copy(f, body)
		progressed = n > 0
		if err != nil {
			return progressed, err
		}
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return progressed, err
	}
	if meta.size >= 0 && size != meta.size {
		if size > meta.size {
			f.Truncate(0)
			return progressed, fmt.Errorf("server sent %d bytes, more than the announced %d: %w", size, meta.size, ErrChecksum)
		}
		return progressed, fmt.Errorf("transfer ended at %d of %d bytes: %w", size, meta.size, io.ErrUnexpectedEOF)
	}
	sum, err := contentHash(f, meta.etag, size)
	if err != nil {
		return progressed, err
	}
	if sum != meta.etag {
		return progressed, fmt.Errorf("content hashes to %s but the server's ETag is %s: %w", sum, meta.etag, ErrChecksum)
	}
	return progressed, nil
}

func rangeStart(cr string) (int64, bool) {
	// "bytes START-END/TOTAL"
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}

func contentHash(f *os.File, etag string, size int64) (string, error) {
	var hh hash.Hash
	if len(etag) == 64 {
		hh = sha256.New()
	} else {
		hh = sha1.New()
		fmt.Fprintf(hh, "blob %d\x00", size)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if _, err := io.Copy(hh, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(hh.Sum(nil)), nil
}

// checkpointFiles are tried in transformers' order of preference.
var checkpointFiles = []string{"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"}

// optionalModelFiles are fetched when the repository has them.
var optionalModelFiles = []string{
	"generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
	"added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model",
	"spiece.model", "preprocessor_config.json",
}

// Resolve makes files of a repository available and returns the snapshot folder holding
// them. Without files it fetches what a model needs: config.json, the checkpoint
// (safetensors preferred, shards included) and the tokenizer and processor files present.
func (h *Hub) Resolve(ctx context.Context, repoID, revision string, files ...string) (string, error) {
	var dir string
	get := func(f string) (string, error) {
		p, err := h.Download(ctx, repoID, revision, f)
		if err != nil {
			return "", err
		}
		if dir == "" {
			dir = strings.TrimSuffix(p, string(filepath.Separator)+filepath.FromSlash(f))
		}
		return p, nil
	}
	if len(files) > 0 {
		for _, f := range files {
			if _, err := get(f); err != nil {
				return "", err
			}
		}
		return dir, nil
	}
	if _, err := get("config.json"); err != nil {
		return "", err
	}
	// Offline, a file the cache lacks is as good as absent: take what is there.
	absent := func(err error) bool { return errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrOffline) }
	found := false
	for _, f := range checkpointFiles {
		p, err := get(f)
		if absent(err) {
			continue
		}
		if err != nil {
			return "", err
		}
		found = true
		if strings.HasSuffix(f, ".index.json") {
			if err := h.fetchShards(get, p); err != nil {
				return "", err
			}
		}
		break
	}
	if !found {
		why := fs.ErrNotExist
		if h.offline() {
			why = ErrOffline
		}
		return "", fmt.Errorf("weights: hub: %s: no checkpoint (%s): %w", repoID, strings.Join(checkpointFiles, ", "), why)
	}
	for _, f := range optionalModelFiles {
		if _, err := get(f); err != nil && !absent(err) {
			return "", err
		}
	}
	return dir, nil
}

func (h *Hub) fetchShards(get func(string) (string, error), index string) error {
	data, err := os.ReadFile(index)
	if err != nil {
		return err
	}
	var idx shardIndex
	if err := json.Unmarshal(data, &idx); err != nil {
		return fmt.Errorf("weights: hub: %s: %v: %w", index, err, ErrFormat)
	}
	seen := map[string]bool{}
	for name, f := range idx.WeightMap {
		if !validShardName(f) {
			return fmt.Errorf("weights: hub: %s: tensor %q: shard name %q is not a plain file name: %w", index, name, f, ErrFormat)
		}
		if seen[f] {
			continue
		}
		seen[f] = true
		if _, err := get(path.Clean(f)); err != nil {
			return err
		}
	}
	return nil
}
