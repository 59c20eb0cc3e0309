package taggers_test

import (
	"context"
	"fmt"

	"github.com/clinfer/clinfer/tagging"
	"github.com/clinfer/clinfer/tagging/taggers"
)

// The README's de-identification snippet, run on the demo model.
func ExampleLoad() {
	ctx := context.Background()
	p, err := taggers.Load("../../testdata/models/deid-demo-en", tagging.Options{Aggregation: tagging.AggregateFirst})
	if err != nil {
		fmt.Println(err)
		return
	}
	note := "Admit date: 10/12/1982. Home Phone: 202-555-0199."
	ents, err := p.Tag(ctx, note)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range ents {
		fmt.Printf("%s %d-%d %q\n", e.Type, e.ByteStart, e.ByteEnd, note[e.ByteStart:e.ByteEnd])
	}
	out, err := tagging.Deidentify(note, ents, tagging.DeidOptions{Mode: tagging.Redact})
	fmt.Println(out, err)
	// The demo model is small and often wrong (the phone number is half "DATE"); the point
	// here is that offsets index the note exactly and redaction keeps every other byte.

	// Output:
	// DATE 12-15 "10/"
	// DATE 15-22 "12/1982"
	// ORGANIZATION 24-28 "Home"
	// DATE 36-40 "202-"
	// CONTACT 40-43 "555"
	// DATE 43-44 "-"
	// DATE 44-48 "0199"
	// CONTACT 48-49 "."
	// Admit date: [DATE]. [ORGANIZATION] Phone: [DATE][CONTACT][DATE][CONTACT] <nil>
}
