package tagging_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/clinfer/clinfer/tagging"
)

func TestZZCompare(t *testing.T) {
	m, tok := demo(t)
	f, _ := os.Open(filepath.Join(demoDir, "pipeline_reference.jsonl"))
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var rec refRecord
		json.Unmarshal(sc.Bytes(), &rec)
		if rec.Stride == nil || rec.NumWindows < 2 {
			continue
		}
		agg, _ := tagging.ParseAggregation(rec.Strategy)
		p, _ := tagging.New(m, tok, tagging.Options{Aggregation: agg, Stride: *rec.Stride})
		got, _ := p.Tag(context.Background(), rec.Text)
		same := 0
		for _, g := range got {
			for _, w := range rec.Entities {
				if g.ByteStart == w.ByteStart && g.ByteEnd == w.ByteEnd && g.Label == w.EntityGroup {
					same++
					break
				}
			}
		}
		t.Logf("%s %s windows %d: HF %d entities, most-context %d, identical spans %d", rec.ID, rec.Strategy, rec.NumWindows, len(rec.Entities), len(got), same)
	}
}
