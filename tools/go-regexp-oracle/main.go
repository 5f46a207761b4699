// Command go-regexp-oracle writes Go's own verdicts on regular expressions: for each pattern,
// whether regexp.Compile takes it and, if so, which of a fixed set of texts it matches. The
// output is tests/fixtures/go-regexp.jsonl, which src/rules/goregex.rs is compared with.
//
//	cd tools/go-regexp-oracle && go run . > ../../tests/fixtures/go-regexp.jsonl
//
// The patterns are hand-picked cases followed by random ones from a fixed seed, so the output
// is the same on every run of the same Go version.
package main

import (
	"bufio"
	"encoding/json"
	"math/rand"
	"os"
	"regexp"
	"runtime"
	"strings"
)

// Texts every valid pattern is matched against.
var texts = []string{
	"", "error-rate", "success_rate", "ERROR", "café", "a.b", "a+b", "<x>", "[a]", "a{2}",
	"a{,5}", "a{01}", "\u0663", "x\ny", "A-Z", "k", "\u212a", "aaa", "-", "é!", "a&b", "\\",
	"error-rate.p99", "\t", "Ab", "_", "a]b", "~", "\u0378",
}

// Hand-picked: the places where Go's syntax and Rust's differ, and plain metric patterns.
var picked = []string{
	".*", "error-rate", "^(success|error)-rate$", "(?i)ERROR", "(?s:a.b)", "(?U)a+", "(?i-s)a",
	"a{1000}", "a{2,1000}", "a{1001}", "a{1,1001}", "e{0,1001}rror", "a{2,1}", "a{01}", "a{,5}",
	"a{", "{x}", "a}", "{2}", "a{2}{3}", "a**", "a+*", "a{2}*", "a*?", "a*??", "(a*)*",
	`\141`, `\12`, `\0`, `\1`, `\7a`, `\8`, `x\\1`, `error-rate|(x)\1`, `\777`, `\0777`,
	`\Qerror.rate\E`, `\Qno end`, `^\Qa+\E.$`, `[\Qa\E]`, `\Q\E*`, `\E`,
	`[[:alpha:]-]+`, `[]a]`, `[^]a]`, `[[]`, `[]`, `[a`, `[[:foo:]]`, `[[:^digit:]]`,
	`[[:word:]]`, `[[:alpha:]`, `[[:]`, `[[:a]b:]`, `[a&&b]`, `[a--b]`, `[~~]`, `[z-a]`,
	`[a-\d]`, `[\d-z]`, `[\w-.]+`, `^[\w-.]+$`, `[a-]`, `[-a]`, `[--/]`, `[\b]`, `[\A]`,
	`[\x{D800}-\x{DFFF}a]`, `\x{D800}`, `\x{10FFFF}`, `\x{110000}`, `\xZ1`, `\x4`, `\x{}`,
	`\pL+`, `\p{Greek}`, `\p{greek}`, `\p{Letter}`, `\p{^Greek}`, `\P{^L}`, `\p{Any}`, `\p`,
	`\pZ`, `[\p{Lu}a]`, `\d+`, `\D`, `\w`, `\W`, `\s`, `\S`, `^\w+$`, `^\d$`, `é\b`, `\bé`,
	`\bk\b`, `\B`, `\A`, `\z`, `\Z`, `\C`, `\<`, `\>`, `\-`, `\ `, `\`, `\e`, `\v`,
	`(?)a`, `(?i-i)a`, `(?ii)a`, `(?i-i:a)`, `(?-)a`, `(?i-)a`, `(?--i)a`, `(?=a)`, `(?!a)`,
	`(?x)error-rate`, `(?u)a`, `(?R)a`, `(?i:(?x)a)`, `(?m)^a$`, `(?-m)^a`, `(?U)a+?`, `(?i`,
	`(?P<rate_1>x)`, `(?P<rate.error>x)`, `(?P<>x)`, `(?P<x>a)(?P<x>b)`, `(?P<é>x)`,
	`(?P=x)`, `(a{100}){11}`, `(a{10}){100}`, `(?:a{2}){500}`, `(?:a{2}){501}`,
	`(a{1000}){0}`, `*`, `(`, `)`, `(*)`, `|*`, `^*`, `$+`, `\b*`, `a|`, `|`, `()`,
	`(?i)k`, `(?i)\W`, `(?i)[^k]`, `a{0}`, `a{0,0}`, `.{1000}`, `[\s\S]`, `[^\x00-\x{10FFFF}]`,
	`\x{41}`, `\x41`, `[\x41-\x5A]`, `[\141-\172]+`, `#`, `a#b`, `&`, `[\&]`, `[\~]`,
	// A repeat after flags or an empty \Q\E repeats the atom before them.
	`a(?i)*`, `a(?s)?`, `a(?-i)+`, `a(?i){2}`, `a(?i){2}?`, `a*\Q\E*`, `a*(?)*`,
	`a{2}\Q\E{3}`, `a+\Q\E?`, `^a+\Q\E?$`, `a+(?)?`, `w{2,}\Q\E?`, `(ab)(?i)+`, `(?i)*`,
	`((?i)*)`, `a|(?i)*`, `a(?i)**`, `a\Qbc\E*`,
	// Counts under {0} and {0,}.
	`((a{100}){11}){0}`, `((a{100}){11}){0,}`, `(?:(?:a{100}){11}){0,0}`, `((a{100}){10}){0}`,
	`(a{1000}){0,}`,
	// Go's C and Cs.
	`\p{Cs}`, `(?i)\P{Cs}`, `[^\p{Cs}]`, `\pC`, `\p{C}`, `\PC`, `[^\p{C}]`, `^\pC$`,
	// Over Rust's limits: judged by Go only.
	`\pL{1000}`, strings.Repeat("(", 251) + "a" + strings.Repeat(")", 251),
}

// The characters random patterns are drawn from: syntax first, a few letters after.
var alphabet = []string{
	`\`, `\`, `\`, "Q", "E", "p", "P", "x", "d", "w", "b", "D", "s", "[", "[", "]", "]", ":",
	"^", "a", "b", "c", ".", "*", "+", "?", "{", "}", "(", "(", ")", ")", "|", ",", "0", "1",
	"2", "7", "8", "-", "-", "&", "~", "é", "<", ">", "i", "m", "U", "{1}", "{2,}", "(?",
	"[:alpha:]", "[:foo:]", "\\x{", "P<n>",
}

type verdict struct {
	Pattern string `json:"pattern"`
	// Error is Go's message for a refused pattern, empty for a valid one.
	Error string `json:"error"`
	// Matches has a 1 or 0 for each text, in order; empty for a refused pattern.
	Matches string `json:"matches"`
}

func main() {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	header := map[string]interface{}{"go": runtime.Version(), "texts": texts}
	if err := enc.Encode(header); err != nil {
		panic(err)
	}
	patterns := append([]string{}, picked...)
	random := rand.New(rand.NewSource(20261127))
	for i := 0; i < 4000; i++ {
		var b strings.Builder
		for n := random.Intn(12); n >= 0; n-- {
			b.WriteString(alphabet[random.Intn(len(alphabet))])
		}
		patterns = append(patterns, b.String())
	}
	seen := map[string]bool{}
	for _, p := range patterns {
		if seen[p] {
			continue
		}
		seen[p] = true
		v := verdict{Pattern: p}
		re, err := regexp.Compile(p)
		if err != nil {
			v.Error = err.Error()
		} else {
			var m strings.Builder
			for _, t := range texts {
				if re.MatchString(t) {
					m.WriteByte('1')
				} else {
					m.WriteByte('0')
				}
			}
			v.Matches = m.String()
		}
		if err := enc.Encode(v); err != nil {
			panic(err)
		}
	}
}
