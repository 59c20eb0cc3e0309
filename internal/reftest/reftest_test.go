package reftest

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// recorder keeps Errorf messages instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestClose(t *testing.T) {
	want := []float32{1, 2, 3, 4, 5, 6}
	nan := float32(math.NaN())
	cases := []struct {
		name    string
		got     []float32
		mask    []int
		fail    string // substring of the failure message; "" when it must pass
		inRange bool   // worst ratio <= 1
	}{
		{"equal", []float32{1, 2, 3, 4, 5, 6}, nil, "", true},
		{"within rtol", []float32{1, 2, 3, 4, 5, 6.00001}, nil, "", true},
		{"off", []float32{1, 2, 3, 4.5, 5, 6}, nil, "flat index 3: got 4.5, want 4", false},
		{"NaN", []float32{1, nan, 3, 4, 5, 6}, nil, "flat index 1", false},
		{"masked off", []float32{1, 2, 3, 9, 9, 9}, []int{1, 0}, "", true},
		{"unmasked off", []float32{1, 2, 3, 9, 9, 9}, []int{0, 1}, "3 value(s)", false},
		{"length", []float32{1, 2}, nil, "got 2 values, want 6", false},
		{"mask does not split", []float32{1, 2, 3, 4, 5, 6}, []int{1, 1, 1, 1}, "do not split", false},
	}
	for _, c := range cases {
		r := &recorder{TB: t}
		worst := Close(r, "x", c.got, want, 1e-4, 1e-4, c.mask)
		if (worst <= 1) != c.inRange {
			t.Errorf("%s: worst ratio %g", c.name, worst)
		}
		switch {
		case c.fail == "" && len(r.errs) > 0:
			t.Errorf("%s: unexpected failure %q", c.name, r.errs)
		case c.fail != "" && (len(r.errs) != 1 || !strings.Contains(r.errs[0], c.fail)):
			t.Errorf("%s: failures %q, want one containing %q", c.name, r.errs, c.fail)
		}
	}
}
