package nn

import (
	"strings"
	"testing"
)

func TestTokensChecks(t *testing.T) {
	in, err := FlattenRows([][]int{{1, 2}, {3, 4}}, [][]int{{1, 1}, {1, 0}}, [][]int{{0, 0}, {0, 7}})
	if err != nil {
		t.Fatal(err)
	}
	if in.Batch != 2 || in.Length != 2 || len(in.IDs) != 4 || in.Mask[3] != 0 || in.TypeIDs[3] != 7 {
		t.Fatalf("FlattenRows: %+v", in)
	}
	for _, c := range []struct {
		vocab, types int
		want         string // "" when valid
	}{
		{5, -1, ""},
		{5, 8, ""},
		{5, 2, "token_type_ids[1][1] = 7 outside [0, 2)"},
		{4, -1, "input_ids[1][1] = 4 outside the vocabulary [0, 4)"},
	} {
		err := in.CheckValues(c.vocab, c.types)
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckValues(%d, %d) = %v, want %q", c.vocab, c.types, err, c.want)
		}
	}
	if _, err := FlattenRows(nil, nil, nil); err == nil {
		t.Error("FlattenRows of no rows: no error")
	}
	if err := (Tokens{Batch: 1}).CheckShape(); err == nil {
		t.Error("CheckShape of empty sequences: no error")
	}
}

func TestSplit(t *testing.T) {
	v := []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	tok := SplitTokens(v, 2, 3, 2)
	if len(tok) != 2 || len(tok[1]) != 3 || tok[1][2][1] != 11 || tok[0][1][0] != 2 || cap(tok[0][0]) != 2 {
		t.Errorf("SplitTokens: %v", tok)
	}
	rows := SplitRows(v, 3, 4)
	if len(rows) != 3 || rows[2][0] != 8 || cap(rows[0]) != 4 {
		t.Errorf("SplitRows: %v", rows)
	}
}
