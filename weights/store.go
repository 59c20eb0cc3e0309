package weights

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"
)

// ErrMissingTensor is wrapped by errors for a tensor name a Store does not hold.
var ErrMissingTensor = errors.New("missing tensor")

// ErrShape is wrapped by errors for a tensor whose shape is not the one expected.
var ErrShape = errors.New("unexpected tensor shape")

// ErrFormat is wrapped by errors for a checkpoint file that is malformed or hostile.
var ErrFormat = errors.New("invalid checkpoint file")

// ErrClosed is returned by a Store used after Close.
var ErrClosed = errors.New("store is closed")

var errNoMmap = errors.New("mmap not available")

// TensorInfo describes one stored tensor.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
}

// Store is a read-only set of named tensors (one safetensors file, a sharded set, or a
// PyTorch checkpoint). Safe for concurrent use. Views returned stay valid until Close.
//
// Slices returned by Float32 (for F32 data) and Raw may point into a read-only memory map:
// callers must never write to them (a write faults).
type Store interface {
	Names() []string // sorted
	Info(name string) (TensorInfo, bool)
	// Float32 returns the tensor as float32 (zero-copy view for F32 files when aligned,
	// converted for F16/BF16/F64). Error wraps ErrMissingTensor when absent.
	Float32(name string) ([]float32, []int, error)
	Int64(name string) ([]int64, []int, error)   // I64/I32/U8/... widened
	Raw(name string) ([]byte, TensorInfo, error) // the stored bytes, little-endian
	Close() error
}

// NamedTensor is one tensor to write: Data holds the little-endian bytes of
// numel(Shape) elements of DType, row-major.
type NamedTensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Expect fetches a float32 tensor and checks its shape: errors name the tensor
// (ErrMissingTensor / ErrShape).
func Expect(s Store, name string, shape ...int) ([]float32, error) {
	data, got, err := s.Float32(name)
	if err != nil {
		return nil, err
	}
	if !equalShape(got, shape) {
		return nil, fmt.Errorf("weights: tensor %q has shape %v, want %v: %w", name, got, shape, ErrShape)
	}
	return data, nil
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// entry is one tensor: its description and contiguous little-endian bytes.
type entry struct {
	info TensorInfo
	n    int    // number of elements
	data []byte // len == n * dtype size
	file string // where it came from, for error messages
	// storage identifies the stored view (PyTorch storage key, offset, size, stride) so
	// that tied weights can be recognised; empty for formats without sharing.
	storage string
}

// tensorStore is the Store behind every format: the readers only differ in how they find
// the bytes, and hand over entries whose data have been validated.
type tensorStore struct {
	path     string
	names    []string
	entries  map[string]*entry
	metadata map[string]string
	closers  []func() error
	closed   atomic.Bool
	once     sync.Once
	closeErr error
}

func newTensorStore(path string) *tensorStore {
	return &tensorStore{path: path, entries: map[string]*entry{}}
}

func (s *tensorStore) add(e *entry) {
	s.entries[e.info.Name] = e
}

func (s *tensorStore) finish() {
	s.names = make([]string, 0, len(s.entries))
	for n := range s.entries {
		s.names = append(s.names, n)
	}
	sort.Strings(s.names)
}

func (s *tensorStore) Names() []string {
	return append([]string(nil), s.names...)
}

func (s *tensorStore) Info(name string) (TensorInfo, bool) {
	e, ok := s.entries[name]
	if !ok {
		return TensorInfo{}, false
	}
	return copyInfo(e.info), true
}

func copyInfo(i TensorInfo) TensorInfo {
	i.Shape = append([]int(nil), i.Shape...)
	return i
}

func (s *tensorStore) get(name string) (*entry, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("weights: %s: %w", s.path, ErrClosed)
	}
	e, ok := s.entries[name]
	if !ok {
		return nil, fmt.Errorf("weights: %s: tensor %q: %w", s.path, name, ErrMissingTensor)
	}
	return e, nil
}

func (s *tensorStore) Float32(name string) ([]float32, []int, error) {
	e, err := s.get(name)
	if err != nil {
		return nil, nil, err
	}
	v, err := toFloat32(e.info.DType, e.data, e.n)
	if err != nil {
		return nil, nil, fmt.Errorf("weights: %s: tensor %q: %w", e.file, name, err)
	}
	return v, append([]int(nil), e.info.Shape...), nil
}

func (s *tensorStore) Int64(name string) ([]int64, []int, error) {
	e, err := s.get(name)
	if err != nil {
		return nil, nil, err
	}
	v, err := toInt64(e.info.DType, e.data, e.n)
	if err != nil {
		return nil, nil, fmt.Errorf("weights: %s: tensor %q: %w", e.file, name, err)
	}
	return v, append([]int(nil), e.info.Shape...), nil
}

func (s *tensorStore) Raw(name string) ([]byte, TensorInfo, error) {
	e, err := s.get(name)
	if err != nil {
		return nil, TensorInfo{}, err
	}
	return e.data, copyInfo(e.info), nil
}

// Metadata returns the safetensors __metadata__ of a single-file store (empty for other
// formats and for sharded sets).
func Metadata(s Store) map[string]string {
	if ts, ok := s.(*tensorStore); ok {
		return ts.Metadata()
	}
	return map[string]string{}
}

// Metadata returns a copy of the file's safetensors __metadata__.
func (s *tensorStore) Metadata() map[string]string {
	out := make(map[string]string, len(s.metadata))
	for k, v := range s.metadata {
		out[k] = v
	}
	return out
}

func (s *tensorStore) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		for _, c := range s.closers {
			if err := c(); err != nil && s.closeErr == nil {
				s.closeErr = err
			}
		}
	})
	return s.closeErr
}

// loadFile maps a whole file read-only, falling back to reading it into memory where
// mmap is unavailable (other systems, special files, empty files).
func loadFile(path string) ([]byte, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.Mode().IsRegular() {
		if b, unmap, err := mapFile(f, fi.Size()); err == nil {
			return b, unmap, nil
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	return b, func() error { return nil }, nil
}
