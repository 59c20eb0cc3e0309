package tagging

import (
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Surrogator makes consistent fake PHI for one document. Entity types are recognized by
// name (NAME, PATIENT, DOCTOR, STAFF, PERSON; DATE; AGE; LOCATION, CITY, STREET, ZIP...;
// ORGANIZATION, HOSPITAL...; CONTACT, PHONE, EMAIL, URL...; ID, MRN, SSN...; PROFESSION);
// a span of another type becomes "[TYPE]".
//
//   - Names: each name word maps to one fake word for the whole document ("Jack Reacher"
//     and later "Reacher" or "REACHER" give the same surname); titles, credentials and
//     initials keep their shape.
//   - Dates: shifted by ShiftDays, keeping their format (03/14/2019, 2019-03-14,
//     March 14, 2019, 14 Mar 2019, March 2019, 3/14, a lone year). A span with no
//     recognizable date has its digits replaced, or becomes "[DATE]" when it has letters.
//   - Ages: 90 and over become "90+" (HIPAA Safe Harbor); younger ages are kept.
//   - Identifiers, phone numbers, zip codes: every digit and letter replaced, punctuation
//     kept, the same value always getting the same fake; e-mail addresses get a fake address.
//   - Locations, organizations: words mapped to fake words, generic words (Street,
//     Hospital, of) kept; professions replaced whole.
//
// A Surrogator is not safe for concurrent use: make one per document.
type Surrogator struct {
	ShiftDays int
	rng       *rand.Rand
	words     map[string]string // category + ":" + lower-case original -> fake
	used      map[string]bool   // category + ":" + lower-case fake
}

// NewSurrogator returns a surrogator whose choices (date offset included) depend only on seed.
func NewSurrogator(seed uint64) *Surrogator {
	s := &Surrogator{rng: rand.New(rand.NewPCG(seed, 0x5eed_c11f_e4de_1d00)), words: map[string]string{}, used: map[string]bool{}}
	// A nonzero offset within a year either way.
	if n := s.rng.IntN(730); n < 365 {
		s.ShiftDays = -(n + 1)
	} else {
		s.ShiftDays = n - 364
	}
	return s
}

type category int

const (
	catOther category = iota
	catName
	catDate
	catAge
	catLocation
	catOrg
	catContact
	catID
	catProfession
)

var categoryOf = map[string]category{
	"NAME": catName, "PATIENT": catName, "DOCTOR": catName, "STAFF": catName, "PERSON": catName, "PER": catName,
	"USERNAME": catName, "HCW": catName, "PROVIDER": catName,
	"DATE": catDate, "DATETIME": catDate,
	"AGE":      catAge,
	"LOCATION": catLocation, "LOC": catLocation, "CITY": catLocation, "STATE": catLocation, "STREET": catLocation,
	"ZIP": catLocation, "COUNTRY": catLocation, "ADDRESS": catLocation, "GPE": catLocation, "LOCATION-OTHER": catLocation,
	"ORGANIZATION": catOrg, "ORG": catOrg, "HOSPITAL": catOrg, "HOSP": catOrg, "PATORG": catOrg, "COMPANY": catOrg,
	"CONTACT": catContact, "PHONE": catContact, "FAX": catContact, "EMAIL": catContact, "URL": catContact, "IP": catContact,
	"ID": catID, "MRN": catID, "SSN": catID, "IDNUM": catID, "ACCOUNT": catID, "LICENSE": catID, "MEDICALRECORD": catID,
	"HEALTHPLAN": catID, "DEVICE": catID, "VEHICLE": catID, "BIOID": catID, "IDENTIFIER": catID,
	"PROFESSION": catProfession,
}

// Replace returns the surrogate of one span of entity type typ.
func (s *Surrogator) Replace(typ, orig string) string { return s.replace(typ, orig, false) }

// replace: beforeName says that another name span follows this one after nothing but
// spaces (a tagger often splits "Jack Reacher" into two entities), so its last word is
// a given name, not a surname.
func (s *Surrogator) replace(typ, orig string, beforeName bool) string {
	switch categoryOf[strings.ToUpper(typ)] {
	case catName:
		return s.mapWords(orig, "name", beforeName, keepNameWord, func(first bool) []string {
			if first {
				return firstNames
			}
			return lastNames
		})
	case catDate:
		if out, ok := s.shiftDates(orig); ok {
			return out
		}
		if digitsRE.MatchString(orig) && !wordRE.MatchString(orig) {
			// A fragment ("202", "/21/19") the tagger called a date: hide its digits.
			return s.scramble(orig)
		}
		return "[" + typ + "]"
	case catAge:
		return ageRE.ReplaceAllStringFunc(orig, func(d string) string {
			if n, err := strconv.Atoi(d); err == nil && n >= 90 {
				return "90+"
			}
			return d
		})
	case catLocation:
		return s.mapWords(orig, "loc", false, keepPlaceWord, func(bool) []string { return placeWords })
	case catOrg:
		return s.mapWords(orig, "org", false, keepPlaceWord, func(bool) []string { return orgWords })
	case catContact:
		if strings.Contains(orig, "@") {
			return s.email(orig)
		}
		return s.scramble(orig)
	case catID:
		return s.scramble(orig)
	case catProfession:
		return s.pick("prof", strings.ToLower(strings.TrimSpace(orig)), professions)
	}
	return "[" + typ + "]"
}

// pick maps key to one entry of list, consistently and avoiding reuse while it can.
func (s *Surrogator) pick(cat, key string, list []string) string {
	if v, ok := s.words[cat+":"+key]; ok {
		return v
	}
	var v string
	for try := 0; try < 4*len(list); try++ {
		v = list[s.rng.IntN(len(list))]
		lv := strings.ToLower(v)
		if !s.used[cat+":"+lv] && lv != key {
			break
		}
	}
	s.used[cat+":"+strings.ToLower(v)] = true
	s.words[cat+":"+key] = v
	return v
}

// mapWords replaces every word (a run of letters, with inner apostrophes and hyphens) of
// orig; digits are scrambled; everything else is kept.
func (s *Surrogator) mapWords(orig, cat string, beforeName bool, keep func(string) bool, list func(first bool) []string) string {
	words := wordRE.FindAllStringIndex(orig, -1)
	nameWords := 0
	for _, w := range words {
		if !keep(orig[w[0]:w[1]]) && utf8.RuneCountInString(orig[w[0]:w[1]]) > 1 {
			nameWords++
		}
	}
	var b strings.Builder
	pos, seen := 0, 0
	for _, w := range words {
		b.WriteString(s.scrambleDigits(orig[pos:w[0]]))
		word := orig[w[0]:w[1]]
		pos = w[1]
		switch {
		case keep(word):
			b.WriteString(word)
		case utf8.RuneCountInString(word) == 1:
			// An initial: a consistent other letter.
			b.WriteString(matchCase(s.pick(cat+"-initial", strings.ToLower(word), initials), word))
		default:
			seen++
			first := (seen == 1 && nameWords > 1) || (seen == nameWords && beforeName)
			b.WriteString(matchCase(s.pick(cat, strings.ToLower(word), list(first)), word))
		}
	}
	b.WriteString(s.scrambleDigits(orig[pos:]))
	return b.String()
}

// matchCase gives fake the letter case of orig: all upper, all lower, or capitalized.
func matchCase(fake, orig string) string {
	hasUpper, hasLower := false, false
	for _, r := range orig {
		hasUpper = hasUpper || unicode.IsUpper(r)
		hasLower = hasLower || unicode.IsLower(r)
	}
	switch {
	case hasUpper && !hasLower && utf8.RuneCountInString(orig) > 1:
		return strings.ToUpper(fake)
	case hasLower && !hasUpper:
		return strings.ToLower(fake)
	}
	return fake
}

// scramble replaces digits and ASCII letters, consistently for the whole value.
func (s *Surrogator) scramble(orig string) string {
	key := "scramble:" + orig
	if v, ok := s.words[key]; ok {
		return v
	}
	v := strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9':
			return '0' + rune(s.rng.IntN(10))
		case r >= 'A' && r <= 'Z':
			return 'A' + rune(s.rng.IntN(26))
		case r >= 'a' && r <= 'z':
			return 'a' + rune(s.rng.IntN(26))
		}
		return r
	}, orig)
	s.words[key] = v
	return v
}

// scrambleDigits replaces each run of digits, consistently per run value.
func (s *Surrogator) scrambleDigits(orig string) string {
	return digitsRE.ReplaceAllStringFunc(orig, s.scramble)
}

func (s *Surrogator) email(orig string) string {
	key := "email:" + strings.ToLower(orig)
	if v, ok := s.words[key]; ok {
		return v
	}
	v := strings.ToLower(firstNames[s.rng.IntN(len(firstNames))]+"."+lastNames[s.rng.IntN(len(lastNames))]) + "@example.org"
	s.words[key] = v
	return v
}

var (
	wordRE   = regexp.MustCompile(`\p{L}+(?:['’\-]\p{L}+)*`)
	digitsRE = regexp.MustCompile(`[0-9]+`)
	ageRE    = regexp.MustCompile(`[0-9]+`)
	timeRE   = regexp.MustCompile(`\b\d{1,2}:\d{2}(?::\d{2})?\b`)
)

func keepNameWord(w string) bool { return nameKeep[strings.ToLower(strings.TrimSuffix(w, "."))] }

func keepPlaceWord(w string) bool { return placeKeep[strings.ToLower(w)] }

var nameKeep = setOf("dr", "mr", "mrs", "ms", "miss", "mx", "prof", "md", "do", "phd", "rn", "np", "pa", "jr", "sr",
	"ii", "iii", "iv", "dds", "lpn", "msw", "lcsw", "pharmd", "facp", "facs", "frcp", "of", "van", "von", "de", "la", "del", "der", "st")

var placeKeep = setOf("street", "st", "road", "rd", "avenue", "ave", "drive", "dr", "lane", "ln", "boulevard", "blvd",
	"court", "ct", "way", "place", "pl", "suite", "ste", "apt", "unit", "floor", "fl", "building", "bldg", "room",
	"north", "south", "east", "west", "n", "s", "e", "w", "ne", "nw", "se", "sw", "po", "box",
	"hospital", "medical", "center", "centre", "clinic", "general", "university", "memorial", "health", "healthcare",
	"regional", "community", "children's", "childrens", "county", "city", "state", "of", "the", "and", "at", "for",
	"inc", "llc", "group", "associates", "practice", "department", "dept", "services", "care", "institute", "foundation",
	"saint", "family", "medicine", "pharmacy", "lab", "laboratory", "laboratories", "rehabilitation", "nursing", "home", "va")

func setOf(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

var initials = strings.Split("A B C D E F G H J K L M N P R S T V W", " ")

var firstNames = strings.Fields(`Alice Brian Carmen Daniel Elena Felix Grace Hector Irene Jonah Keira Liam Maya Nolan
	Olivia Pedro Quinn Rosa Samuel Tessa Umar Vera Wesley Ximena Yusuf Zara Anton Bianca Caleb Dalia Emil Fiona Gideon
	Hana Ivan Julia Kofi Lena Marco Nadia Oscar Priya Rafael Sofia Tobias Uma Victor Wendy`)

var lastNames = strings.Fields(`Abbott Barlow Castillo Dunmore Ellery Fairbank Galloway Hartley Ingram Jessup Kendrick
	Lindqvist Marlowe Norcross Okonkwo Pembroke Quimby Ramires Sandoval Thorne Underhill Vasquez Whitcombe Yarrow Zeller
	Ashby Brennan Calloway Delacroix Everly Fenwick Grayson Holloway Iverson Jardine Kowalski Lockwood Mercer Nakamura
	Oakley Prescott Redfield Sterling Talbot Upton Voss Winslow`)

var placeWords = strings.Fields(`Ashford Briarwood Cedarbrook Dunmore Elmhurst Fairhaven Glenwood Hollisfield Ivydale
	Juniper Kingsbridge Lakemont Maplewood Northgate Oakridge Pinecrest Quarry Riverside Stonebridge Thornbury Upland
	Valleyview Westbrook Willowmere Yorkfield Alder Birch Chestnut Linden Magnolia Sycamore Hawthorn`)

var orgWords = strings.Fields(`Ashford Briarwood Cedarbrook Evergreen Fairhaven Glenwood Harborview Ironwood Lakeside
	Meadowbrook Northfield Oakridge Pinecrest Riverbend Silverlake Summit Valleycrest Westfield Wildwood Bayside`)

var professions = strings.Fields(`accountant architect carpenter chef electrician engineer farmer firefighter
	journalist librarian machinist mechanic musician painter pharmacist photographer plumber teacher translator welder`)

// Dates.

var monthNames = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September",
	"October", "November", "December"}

const monthRE = `(?i:(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?))`

// dateForms are tried in order; a later form only matches text no earlier form took.
var dateForms = []struct {
	re     *regexp.Regexp
	handle func(s *Surrogator, m []string) (string, bool)
}{
	// 2019-03-14, 2019/3/14
	{regexp.MustCompile(`\b(\d{4})([-/.])(\d{1,2})([-/.])(\d{1,2})\b`), func(s *Surrogator, m []string) (string, bool) {
		if m[2] != m[4] {
			return "", false
		}
		t, ok := s.shift(atoi(m[1]), atoi(m[3]), atoi(m[5]))
		if !ok {
			return "", false
		}
		w := numericWidth(m[3], m[5])
		return strconv.Itoa(t.Year()) + m[2] + pad(int(t.Month()), w) + m[4] + pad(t.Day(), w), true
	}},
	// 03/14/2019, 3-14-19, 14.03.2019 (day first when the first number cannot be a month)
	{regexp.MustCompile(`\b(\d{1,2})([-/.])(\d{1,2})([-/.])(\d{4}|\d{2})\b`), func(s *Surrogator, m []string) (string, bool) {
		if m[2] != m[4] {
			return "", false
		}
		a, b, y := atoi(m[1]), atoi(m[3]), fullYear(m[5])
		month, day, dayFirst := a, b, false
		if a > 12 && b <= 12 {
			month, day, dayFirst = b, a, true
		}
		t, ok := s.shift(y, month, day)
		if !ok {
			return "", false
		}
		w := numericWidth(m[1], m[3])
		first, second := pad(int(t.Month()), w), pad(t.Day(), w)
		if dayFirst {
			first, second = pad(t.Day(), w), pad(int(t.Month()), w)
		}
		return first + m[2] + second + m[4] + yearText(t.Year(), len(m[5])), true
	}},
	// March 14, 2019 / Mar. 14th 2019
	{regexp.MustCompile(`\b` + monthRE + `(\.?\s+)(\d{1,2})(st|nd|rd|th)?(,?\s+)(\d{4})\b`), func(s *Surrogator, m []string) (string, bool) {
		t, ok := s.shift(atoi(m[6]), monthIndex(m[1]), atoi(m[3]))
		if !ok {
			return "", false
		}
		return monthText(t.Month(), m[1]) + m[2] + pad(t.Day(), zeroWidth(m[3])) + ordinal(t.Day(), m[4]) + m[5] + strconv.Itoa(t.Year()), true
	}},
	// 14 March 2019 / 14th of March, 2019
	{regexp.MustCompile(`\b(\d{1,2})(st|nd|rd|th)?(\s+(?:of\s+)?)` + monthRE + `(\.?,?\s+)(\d{4})\b`), func(s *Surrogator, m []string) (string, bool) {
		t, ok := s.shift(atoi(m[6]), monthIndex(m[4]), atoi(m[1]))
		if !ok {
			return "", false
		}
		return pad(t.Day(), zeroWidth(m[1])) + ordinal(t.Day(), m[2]) + m[3] + monthText(t.Month(), m[4]) + m[5] + strconv.Itoa(t.Year()), true
	}},
	// March 2019
	{regexp.MustCompile(`\b` + monthRE + `(\.?,?\s+)(\d{4})\b`), func(s *Surrogator, m []string) (string, bool) {
		t, ok := s.shift(atoi(m[3]), monthIndex(m[1]), 15)
		if !ok {
			return "", false
		}
		return monthText(t.Month(), m[1]) + m[2] + strconv.Itoa(t.Year()), true
	}},
	// March 14 / Mar 14th (no year: shifted within a leap year)
	{regexp.MustCompile(`\b` + monthRE + `(\.?\s+)(\d{1,2})(st|nd|rd|th)?\b`), func(s *Surrogator, m []string) (string, bool) {
		t, ok := s.shift(2000, monthIndex(m[1]), atoi(m[3]))
		if !ok {
			return "", false
		}
		return monthText(t.Month(), m[1]) + m[2] + pad(t.Day(), zeroWidth(m[3])) + ordinal(t.Day(), m[4]), true
	}},
	// 14 March
	{regexp.MustCompile(`\b(\d{1,2})(st|nd|rd|th)?(\s+(?:of\s+)?)` + monthRE + `\b`), func(s *Surrogator, m []string) (string, bool) {
		t, ok := s.shift(2000, monthIndex(m[4]), atoi(m[1]))
		if !ok {
			return "", false
		}
		return pad(t.Day(), zeroWidth(m[1])) + ordinal(t.Day(), m[2]) + m[3] + monthText(t.Month(), m[4]), true
	}},
	// 03/2019
	{regexp.MustCompile(`\b(\d{1,2})([-/])(\d{4})\b`), func(s *Surrogator, m []string) (string, bool) {
		t, ok := s.shift(atoi(m[3]), atoi(m[1]), 15)
		if !ok {
			return "", false
		}
		return pad(int(t.Month()), numericWidth(m[1], m[1])) + m[2] + strconv.Itoa(t.Year()), true
	}},
	// 3/14 (no year)
	{regexp.MustCompile(`\b(\d{1,2})/(\d{1,2})\b`), func(s *Surrogator, m []string) (string, bool) {
		t, ok := s.shift(2000, atoi(m[1]), atoi(m[2]))
		if !ok {
			return "", false
		}
		w := numericWidth(m[1], m[2])
		return pad(int(t.Month()), w) + "/" + pad(t.Day(), w), true
	}},
	// a lone year 1900-2099, moved with its middle day
	{regexp.MustCompile(`\b(19|20)(\d{2})\b`), func(s *Surrogator, m []string) (string, bool) {
		t, ok := s.shift(atoi(m[1]+m[2]), 7, 2)
		if !ok {
			return "", false
		}
		return strconv.Itoa(t.Year()), true
	}},
}

// shiftDates replaces every date found in orig; false when none is found.
func (s *Surrogator) shiftDates(orig string) (string, bool) {
	taken := make([]bool, len(orig))
	type hit struct {
		start, end int
		with       string
	}
	var hits []hit
	for _, f := range dateForms {
		for _, loc := range f.re.FindAllStringSubmatchIndex(orig, -1) {
			free := true
			for i := loc[0]; i < loc[1]; i++ {
				free = free && !taken[i]
			}
			if !free {
				continue
			}
			m := make([]string, len(loc)/2)
			for i := range m {
				if loc[2*i] >= 0 {
					m[i] = orig[loc[2*i]:loc[2*i+1]]
				}
			}
			with, ok := f.handle(s, m)
			if !ok {
				continue
			}
			for i := loc[0]; i < loc[1]; i++ {
				taken[i] = true
			}
			hits = append(hits, hit{loc[0], loc[1], with})
		}
	}
	if len(hits) == 0 {
		return "", false
	}
	// Digits no date form explained (02/31/2019, 4th quarter) would leak; times of day stay.
	for _, t := range timeRE.FindAllStringIndex(orig, -1) {
		for i := t[0]; i < t[1]; i++ {
			taken[i] = true
		}
	}
	for i := 0; i < len(orig); i++ {
		if orig[i] >= '0' && orig[i] <= '9' && !taken[i] {
			return "", false
		}
	}
	// Hits from different forms come in form order; write them in text order.
	for i := 1; i < len(hits); i++ {
		for j := i; j > 0 && hits[j].start < hits[j-1].start; j-- {
			hits[j], hits[j-1] = hits[j-1], hits[j]
		}
	}
	var b strings.Builder
	pos := 0
	for _, h := range hits {
		b.WriteString(orig[pos:h.start])
		b.WriteString(h.with)
		pos = h.end
	}
	b.WriteString(orig[pos:])
	return b.String(), true
}

// shift moves a calendar date by ShiftDays; false for an impossible date (02/31).
func (s *Surrogator) shift(y, m, d int) (time.Time, bool) {
	if m < 1 || m > 12 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), d, 12, 0, 0, 0, time.UTC)
	if t.Day() != d {
		return time.Time{}, false
	}
	return t.AddDate(0, 0, s.ShiftDays), true
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// fullYear reads a two-digit year as 1950-2049.
func fullYear(s string) int {
	y := atoi(s)
	if len(s) == 2 {
		if y < 50 {
			return 2000 + y
		}
		return 1900 + y
	}
	return y
}

func yearText(y, width int) string {
	if width == 2 {
		return pad(y%100, 2)
	}
	return strconv.Itoa(y)
}

// numericWidth is the digit width of month and day in a numeric date: 2 (zero-padded,
// 03/04) when both are written with two digits, else 1 (3/4, 3/14).
func numericWidth(a, b string) int {
	if len(a) == 2 && len(b) == 2 {
		return 2
	}
	return 1
}

// zeroWidth is 2 for a day written with a leading zero ("March 03"), else 1.
func zeroWidth(d string) int {
	if len(d) == 2 && d[0] == '0' {
		return 2
	}
	return 1
}

// pad writes n with at least width digits (width 2 keeps a leading zero: 03).
func pad(n, width int) string {
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

func monthIndex(name string) int {
	l := strings.ToLower(name)
	for i, m := range monthNames {
		if strings.HasPrefix(strings.ToLower(m), l[:3]) {
			return i + 1
		}
	}
	return 0
}

// monthText writes month in the style of orig: full or abbreviated ("Sept" counts as
// abbreviated), upper, lower or capitalized.
func monthText(month time.Month, orig string) string {
	name := monthNames[month-1]
	if len(orig) < len(monthNames[monthIndex(orig)-1]) {
		name = name[:3]
	}
	return matchCase(name, orig)
}

// ordinal gives day the suffix it needs when orig had one.
func ordinal(day int, orig string) string {
	if orig == "" {
		return ""
	}
	suf := "th"
	switch {
	case day%10 == 1 && day != 11:
		suf = "st"
	case day%10 == 2 && day != 12:
		suf = "nd"
	case day%10 == 3 && day != 13:
		suf = "rd"
	}
	if strings.ToUpper(orig) == orig {
		return strings.ToUpper(suf)
	}
	return suf
}
