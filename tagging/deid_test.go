package tagging

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// ent makes an entity of type typ over the first occurrence (from byte from) of s in text.
func ent(t *testing.T, text, s, typ string, from int) Entity {
	t.Helper()
	i := strings.Index(text[from:], s)
	if i < 0 {
		t.Fatalf("%q not in text", s)
	}
	i += from
	return Entity{Label: typ, Type: typ, ByteStart: i, ByteEnd: i + len(s), Index: -1}
}

func TestRedactAndMask(t *testing.T) {
	text := "Seen by Jack Reacher on 03/14/2019.\nCall 617-555-0199."
	ents := []Entity{ent(t, text, "03/14/2019", "DATE", 0), ent(t, text, "Jack Reacher", "NAME", 0), ent(t, text, "617-555-0199", "CONTACT", 0)}
	got, err := Deidentify(text, ents, DeidOptions{Mode: Redact})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Seen by [NAME] on [DATE].\nCall [CONTACT]."; got != want {
		t.Errorf("redact: %q, want %q", got, want)
	}
	got, err = Deidentify(text, ents, DeidOptions{Mode: Mask})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Seen by **** ******* on **********.\nCall ************."; got != want {
		t.Errorf("mask: %q, want %q", got, want)
	}
	got, err = Deidentify("Zoë\tÅsa", []Entity{{Type: "NAME", ByteStart: 0, ByteEnd: len("Zoë\tÅsa")}}, DeidOptions{Mode: Mask, MaskRune: 'x'})
	if err != nil || got != "xxx\txxx" {
		t.Errorf("mask keeps white space and counts characters: %q %v", got, err)
	}
}

func TestSpansMergeTouchingAndOverlapping(t *testing.T) {
	text := "DOB 01/02/1950 Jack Doe"
	ents := []Entity{
		{Type: "DATE", ByteStart: 4, ByteEnd: 7},   // "01/"
		{Type: "DATE", ByteStart: 7, ByteEnd: 14},  // "02/1950"
		{Type: "NAME", ByteStart: 15, ByteEnd: 19}, // "Jack"
		{Type: "NAME", ByteStart: 17, ByteEnd: 23}, // overlaps
		{Type: "ID", ByteStart: 23, ByteEnd: 23},   // empty
	}
	spans, err := Spans(text, ents)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 || text[spans[0].ByteStart:spans[0].ByteEnd] != "01/02/1950" || text[spans[1].ByteStart:spans[1].ByteEnd] != "Jack Doe" {
		t.Fatalf("spans %+v", spans)
	}
	// Touching spans of different types stay apart.
	spans, err = Spans("ab", []Entity{{Type: "X", ByteStart: 0, ByteEnd: 1}, {Type: "Y", ByteStart: 1, ByteEnd: 2}})
	if err != nil || len(spans) != 2 {
		t.Fatalf("spans %+v %v", spans, err)
	}
}

func TestBadSpans(t *testing.T) {
	for _, e := range []Entity{{ByteStart: -1, ByteEnd: 2}, {ByteStart: 2, ByteEnd: 1}, {ByteStart: 0, ByteEnd: 99}, {ByteStart: 1, ByteEnd: 2}} {
		if _, err := Deidentify("é abc", []Entity{e}, DeidOptions{}); !errors.Is(err, ErrBadSpan) {
			t.Errorf("%+v: %v", e, err)
		}
	}
	if _, err := Deidentify("a\xffb", nil, DeidOptions{}); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

// Every byte outside the PHI spans must come out unchanged, whatever the mode and spans.
func TestNonPHIBytesPreserved(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	alphabet := []rune("abc XYZ 0123456789/-.,:\n\té漢🙂")
	types := []string{"NAME", "DATE", "AGE", "ID", "CONTACT", "LOCATION", "ORGANIZATION", "PROFESSION", "OTHERPHI"}
	for trial := range 300 {
		rs := make([]rune, 20+r.IntN(200))
		for i := range rs {
			rs[i] = alphabet[r.IntN(len(alphabet))]
		}
		text := string(rs)
		var bounds []int // rune boundaries in bytes
		for i := range text {
			bounds = append(bounds, i)
		}
		bounds = append(bounds, len(text))
		var ents []Entity
		inPHI := make([]bool, len(text))
		for range r.IntN(8) {
			a, b := bounds[r.IntN(len(bounds))], bounds[r.IntN(len(bounds))]
			if a > b {
				a, b = b, a
			}
			ents = append(ents, Entity{Type: types[r.IntN(len(types))], ByteStart: a, ByteEnd: b})
			for i := a; i < b; i++ {
				inPHI[i] = true
			}
		}
		for _, mode := range []DeidMode{Redact, Mask, Surrogate} {
			reps, err := Plan(text, ents, DeidOptions{Mode: mode, Seed: uint64(trial)})
			if err != nil {
				t.Fatal(err)
			}
			out := Apply(text, reps)
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 out")
			}
			// Walk the output: gaps must equal the text, replaced spans must be exactly PHI.
			pos, opos := 0, 0
			for _, rep := range reps {
				for i := rep.ByteStart; i < rep.ByteEnd; i++ {
					if !inPHI[i] {
						t.Fatalf("trial %d %v: byte %d replaced but not PHI", trial, mode, i)
					}
				}
				gap := text[pos:rep.ByteStart]
				for i := pos; i < rep.ByteStart; i++ {
					if inPHI[i] {
						t.Fatalf("trial %d %v: PHI byte %d kept", trial, mode, i)
					}
				}
				if out[opos:opos+len(gap)] != gap {
					t.Fatalf("trial %d %v: non-PHI bytes changed", trial, mode)
				}
				opos += len(gap)
				if out[opos:opos+len(rep.With)] != rep.With {
					t.Fatalf("trial %d %v: replacement misplaced", trial, mode)
				}
				opos += len(rep.With)
				pos = rep.ByteEnd
			}
			if out[opos:] != text[pos:] {
				t.Fatalf("trial %d %v: tail changed", trial, mode)
			}
			for i := pos; i < len(text); i++ {
				if inPHI[i] {
					t.Fatalf("trial %d %v: PHI byte %d kept in tail", trial, mode, i)
				}
			}
		}
	}
}

func TestSurrogateDates(t *testing.T) {
	cases := []struct {
		shift    int
		in, want string
	}{
		{10, "03/14/2019", "03/24/2019"},
		{10, "3/14/2019", "3/24/2019"},
		{10, "3-14-19", "3-24-19"},
		{-200, "03/14/2019", "08/26/2018"},
		{10, "2019-03-14", "2019-03-24"},
		{30, "2019-03-14", "2019-04-13"},
		{10, "March 14, 2019", "March 24, 2019"},
		{20, "Mar. 14th 2019", "Apr. 3rd 2019"},
		{10, "14 March 2019", "24 March 2019"},
		{10, "14 MAR 2019", "24 MAR 2019"},
		{20, "March 2019", "April 2019"},
		{10, "March 14", "March 24"},
		{10, "3/14", "3/24"},
		{10, "25/12/2019", "04/01/2020"},
		{-1, "01/01/2000", "12/31/1999"},
		{200, "2019", "2020"},
		{10, "on 03/14/2019 at 10:30", "on 03/24/2019 at 10:30"},
		{10, "1/21/1928 - 2/3/1929", "1/31/1928 - 2/13/1929"},
		{10, "Patient", "[DATE]"},
		{10, "March", "[DATE]"},
		{10, "02/31/2019", `\d\d/\d\d/\d{4}`}, // no valid date: digits replaced
		{10, "202", `\d{3}`},
	}
	for _, c := range cases {
		s := NewSurrogator(1)
		s.ShiftDays = c.shift
		got := s.Replace("DATE", c.in)
		if strings.HasPrefix(c.want, `\d`) {
			if got == c.in || !regexp.MustCompile("^"+c.want+"$").MatchString(got) {
				t.Errorf("%q: %q, want digits replaced", c.in, got)
			}
			continue
		}
		if got != c.want {
			t.Errorf("shift %d %q: %q, want %q", c.shift, c.in, got, c.want)
		}
	}
}

func TestSurrogateConsistency(t *testing.T) {
	text := "Jack Reacher, 95 y.o., seen 03/14/2019. Mr. REACHER (MRN HCS843) called Jack from 202-555-0199; " +
		"HCS843 noted. Dr. Roger C Kelly, MD at Mercy General Hospital, 123 Park Drive, San Diego. Email jr@mail.com."
	var ents []Entity
	add := func(s, typ string, from int) { ents = append(ents, ent(t, text, s, typ, from)) }
	add("Jack", "NAME", 0)
	add("Reacher", "NAME", 0)
	add("95", "AGE", 0)
	add("03/14/2019", "DATE", 0)
	add("REACHER", "NAME", 0)
	add("HCS843", "ID", 0)
	add("Jack", "NAME", 20)
	add("202-555-0199", "CONTACT", 0)
	add("HCS843", "ID", 80)
	add("Roger C Kelly", "NAME", 0)
	add("Mercy General Hospital", "ORGANIZATION", 0)
	add("123 Park Drive, San Diego", "LOCATION", 0)
	add("jr@mail.com", "CONTACT", 0)
	opts := DeidOptions{Mode: Surrogate, Seed: 42, ShiftDays: 10}
	out, err := Deidentify(text, ents, opts)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Deidentify(text, ents, opts)
	if out != again {
		t.Fatal("same seed gave different surrogates")
	}
	other, _ := Deidentify(text, ents, DeidOptions{Mode: Surrogate, Seed: 43, ShiftDays: 10})
	if other == out {
		t.Error("different seeds gave identical surrogates")
	}
	for _, leak := range []string{"Jack", "Reacher", "REACHER", "Roger", "Kelly", "Mercy", "Park", "San Diego", "HCS843", "0199", "jr@", "03/14"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q survives in %q", leak, out)
		}
	}
	for _, keep := range []string{", 90+ y.o., seen 03/24/2019. Mr. ", "General Hospital", "Drive", "Dr. ", ", MD at "} {
		if !strings.Contains(out, keep) {
			t.Errorf("%q missing in %q", keep, out)
		}
	}
	reps, _ := Plan(text, ents, opts)
	with := map[string]string{}
	for _, r := range reps {
		with[text[r.ByteStart:r.ByteEnd]+"@"+strconv.Itoa(r.ByteStart)] = r.With
	}
	byText := func(s string, from int) string {
		e := ent(t, text, s, "", from)
		return with[s+"@"+strconv.Itoa(e.ByteStart)]
	}
	// The tagger split "Jack Reacher" in two spans; the given name still gets a given name.
	full := []string{byText("Jack", 0), byText("Reacher", 0)}
	if !slices.Contains(firstNames, full[0]) || !slices.Contains(lastNames, full[1]) {
		t.Fatalf("name surrogate %q", full)
	}
	if got := byText("REACHER", 0); got != strings.ToUpper(full[1]) {
		t.Errorf("REACHER -> %q, Jack Reacher -> %v", got, full)
	}
	if got := byText("Jack", 20); got != full[0] {
		t.Errorf("Jack -> %q, Jack Reacher -> %v", got, full)
	}
	if a, b := byText("HCS843", 0), byText("HCS843", 80); a != b || !regexp.MustCompile(`^[A-Z]{3}[0-9]{3}$`).MatchString(a) {
		t.Errorf("ID surrogates %q %q", a, b)
	}
	if got := byText("202-555-0199", 0); !regexp.MustCompile(`^\d{3}-\d{3}-\d{4}$`).MatchString(got) {
		t.Errorf("phone surrogate %q", got)
	}
	if got := byText("Roger C Kelly", 0); !regexp.MustCompile(`^[A-Z][a-z]+ [A-Z] [A-Z][a-z]+$`).MatchString(got) {
		t.Errorf("name with initial %q", got)
	}
	// A seed alone draws a nonzero shift within a year.
	for seed := range uint64(50) {
		if d := NewSurrogator(seed).ShiftDays; d == 0 || d < -365 || d > 365 {
			t.Fatalf("seed %d: shift %d", seed, d)
		}
	}
}
