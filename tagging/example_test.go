package tagging_test

import (
	"fmt"
	"strings"

	"github.com/clinfer/clinfer/tagging"
)

// Spans usually come from Pipeline.Tag; here they are written by hand.
func ExampleDeidentify() {
	text := "Seen by Jack Reacher on 03/14/2019; Reacher called back on 2019-03-20."
	span := func(s, typ string, from int) tagging.Entity {
		i := from + strings.Index(text[from:], s)
		return tagging.Entity{Label: typ, Type: typ, ByteStart: i, ByteEnd: i + len(s)}
	}
	ents := []tagging.Entity{
		span("Jack Reacher", "NAME", 0), span("03/14/2019", "DATE", 0),
		span("Reacher", "NAME", 30), span("2019-03-20", "DATE", 0),
	}
	for _, mode := range []tagging.DeidMode{tagging.Redact, tagging.Mask} {
		out, _ := tagging.Deidentify(text, ents, tagging.DeidOptions{Mode: mode})
		fmt.Println(out)
	}
	// Surrogates: every date moves by the same offset; the surname maps to one fake.
	out, _ := tagging.Deidentify(text, ents, tagging.DeidOptions{Mode: tagging.Surrogate, Seed: 1, ShiftDays: -40})
	fmt.Println(strings.Contains(out, " on 02/02/2019;"), strings.HasSuffix(out, " on 2019-02-08."))
	fmt.Println(strings.Count(out, strings.Fields(out[len("Seen by "):])[1]))
	// Output:
	// Seen by [NAME] on [DATE]; [NAME] called back on [DATE].
	// Seen by **** ******* on **********; ******* called back on **********.
	// true true
	// 2
}
