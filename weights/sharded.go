package weights

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// shardedStore joins the shards of a model.safetensors.index.json or
// pytorch_model.bin.index.json set into one Store.
type shardedStore struct {
	path   string
	names  []string
	owner  map[string]*tensorStore
	shards []*tensorStore
}

type shardIndex struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// validShardName accepts a plain file name in the index's folder: the index is input too,
// and must not be able to point the loader at other files.
func validShardName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\\\x00") && !filepath.IsAbs(n)
}

func openSharded(indexPath string) (Store, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("weights: %s: %s: %w", indexPath, fmt.Sprintf(format, args...), ErrFormat)
	}
	data, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	var idx shardIndex
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fail("index JSON: %v", err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fail("index has no weight_map")
	}
	var files []string
	seen := map[string]bool{}
	for name, f := range idx.WeightMap {
		if !validShardName(f) {
			return nil, fail("tensor %q: shard name %q is not a plain file name", name, f)
		}
		if !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	sort.Strings(files)
	s := &shardedStore{path: indexPath, owner: map[string]*tensorStore{}}
	dir := filepath.Dir(indexPath)
	for _, f := range files {
		st, err := Open(filepath.Join(dir, f))
		if err != nil {
			s.Close()
			return nil, err
		}
		ts, ok := st.(*tensorStore)
		if !ok {
			st.Close()
			s.Close()
			return nil, fail("shard %s is itself a sharded set", f)
		}
		s.shards = append(s.shards, ts)
		for _, n := range ts.names {
			if other, dup := s.owner[n]; dup {
				s.Close()
				return nil, fail("tensor %q is in both %s and %s", n, filepath.Base(other.path), f)
			}
			s.owner[n] = ts
		}
	}
	for name, f := range idx.WeightMap {
		ts, ok := s.owner[name]
		if !ok {
			s.Close()
			return nil, fmt.Errorf("weights: %s: tensor %q: listed in weight_map for %s but not in it: %w", indexPath, name, f, ErrMissingTensor)
		}
		if filepath.Base(ts.path) != f {
			s.Close()
			return nil, fail("tensor %q: weight_map says %s but it is in %s", name, f, filepath.Base(ts.path))
		}
	}
	for n := range s.owner {
		s.names = append(s.names, n)
	}
	sort.Strings(s.names)
	return s, nil
}

func (s *shardedStore) Names() []string { return append([]string(nil), s.names...) }

func (s *shardedStore) Info(name string) (TensorInfo, bool) {
	ts, ok := s.owner[name]
	if !ok {
		return TensorInfo{}, false
	}
	return ts.Info(name)
}

func (s *shardedStore) shard(name string) (*tensorStore, error) {
	ts, ok := s.owner[name]
	if !ok {
		return nil, fmt.Errorf("weights: %s: tensor %q: %w", s.path, name, ErrMissingTensor)
	}
	return ts, nil
}

func (s *shardedStore) Float32(name string) ([]float32, []int, error) {
	ts, err := s.shard(name)
	if err != nil {
		return nil, nil, err
	}
	return ts.Float32(name)
}

func (s *shardedStore) Int64(name string) ([]int64, []int, error) {
	ts, err := s.shard(name)
	if err != nil {
		return nil, nil, err
	}
	return ts.Int64(name)
}

func (s *shardedStore) Raw(name string) ([]byte, TensorInfo, error) {
	ts, err := s.shard(name)
	if err != nil {
		return nil, TensorInfo{}, err
	}
	return ts.Raw(name)
}

func (s *shardedStore) Close() error {
	var first error
	for _, ts := range s.shards {
		if err := ts.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
