package config

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// update rewrites the generated part of docs/configuration.md from
// config/reference.yaml: go test ./pkg/config -run TestConfigurationPage -update
// (what go generate ./pkg/config runs).
var update = flag.Bool("update", false, "rewrite the generated part of docs/configuration.md")

const (
	referenceFile = "../../config/reference.yaml"
	pageFile      = "../../docs/configuration.md"
	pageBegin     = "<!-- BEGIN generated from config/reference.yaml by go generate ./pkg/config: edit that file, not this section -->\n"
	pageEnd       = "<!-- END generated from config/reference.yaml -->\n"
)

// The reference sets every key to its default: loading it must give
// exactly what streamd uses with no file.
func TestReferenceIsDefault(t *testing.T) {
	cfg, err := Load(Sources{File: referenceFile})
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(*cfg, want) {
		t.Fatalf("config/reference.yaml is not Default():\n got  %+v\n want %+v", *cfg, want)
	}
	none, err := Load(Sources{})
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(*none, want) {
		t.Fatalf("no file is not Default():\n got  %+v\n want %+v", *none, want)
	}
}

// The demo (config/streamd.yaml, what make run starts) is the defaults
// plus what its header says it turns on; its cameras are checked by
// TestShippedConfigLoads.
func TestDemoChangesOnlyWhatItSays(t *testing.T) {
	cfg, err := Load(Sources{File: "../../config/streamd.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Embedded.DataDir = "./data/kafka"
	want.Analyzer.Enabled = true
	want.Analyzer.Motion = MotionConfig{Threshold: 25, MinArea: 0.001, GlobalFraction: 0.6}
	want.Analyzer.Faces.FPS = 2
	want.Record.Enabled = true
	want.Record.MaxBytes = 16 << 30
	if len(cfg.Cameras) != 3 {
		t.Fatalf("demo cameras: %+v", cfg.Cameras)
	}
	want.Cameras = cfg.Cameras
	if !reflect.DeepEqual(*cfg, want) {
		t.Fatalf("config/streamd.yaml changes more than its header says:\n got  %+v\n want %+v", *cfg, want)
	}
}

// Its examples (the keys with no default, written #key:) are real
// configuration too: uncommented, they load.
func TestReferenceExamplesLoad(t *testing.T) {
	ref := expandedReference(t)
	cfg, err := Load(Sources{File: writeFile(t, ref)})
	if err != nil {
		t.Fatalf("config/reference.yaml with its examples uncommented: %v", err)
	}
	if len(cfg.Cameras) != 1 || len(cfg.Auth.Tokens) != 1 || len(cfg.Auth.Users) != 1 || len(cfg.Cameras[0].Motion.Masks) != 1 {
		t.Fatalf("examples: cameras %+v, auth %+v", cfg.Cameras, cfg.Auth)
	}
}

// Every key koanf knows, in sections, nested sections and the items of
// lists of sections, has its line in the reference, and the reference has
// no other keys.
func TestReferenceListsEveryKey(t *testing.T) {
	rows := referenceRows(t)
	var inRef []string
	for _, r := range rows {
		if r.key != "" {
			inRef = append(inRef, r.key)
		}
	}
	known := structKeys(reflect.TypeFor[Config](), "")
	if len(known) < 100 {
		t.Fatalf("only %d keys found in Config: the walk is broken", len(known))
	}
	for _, key := range known {
		if !slices.Contains(inRef, key) {
			t.Errorf("config/reference.yaml has no line for %q", key)
		}
	}
	for _, key := range inRef {
		if !slices.Contains(known, key) {
			t.Errorf("config/reference.yaml has %q, which Config does not", key)
		}
	}
	if dup := duplicates(inRef); len(dup) > 0 {
		t.Errorf("config/reference.yaml lists keys more than once: %v", dup)
	}
}

// The configuration page's reference section is the reference file,
// rendered; every key, value and comment of the file is in it.
func TestConfigurationPage(t *testing.T) {
	rows := referenceRows(t)
	want := renderReference(rows)
	for _, r := range rows {
		if r.key == "" {
			continue
		}
		for _, s := range []string{"`" + r.key + "`", "`" + r.value + "`", mdText(r.comment)} {
			if !strings.Contains(want, s) {
				t.Fatalf("rendering lost %q of %q", s, r.key)
			}
		}
	}
	page, err := os.ReadFile(pageFile)
	if err != nil {
		t.Fatal(err)
	}
	head, rest, ok := bytes.Cut(page, []byte(pageBegin))
	got, tail, ok2 := bytes.Cut(rest, []byte(pageEnd))
	if !ok || !ok2 {
		t.Fatalf("%s lacks the lines %q and %q around its reference", pageFile, pageBegin, pageEnd)
	}
	if string(got) == want {
		return
	}
	if *update {
		out := slices.Concat(head, []byte(pageBegin), []byte(want), []byte(pageEnd), tail)
		if err := os.WriteFile(pageFile, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s does not say what config/reference.yaml says; run go generate ./pkg/config (go test ./pkg/config -run TestConfigurationPage -update)", pageFile)
}

// The walk and the example reader are tested on their own, so that a
// broken one cannot pass the tests above by finding nothing.
func TestStructKeysAndExamples(t *testing.T) {
	keys := structKeys(reflect.TypeFor[Config](), "")
	for _, key := range []string{"role", "kafka.tls.ca_file", "auth.tokens[].name", "auth.users[].password_bcrypt", "cameras[].substream.fps", "cameras[].motion.masks", "cameras[].analyze"} {
		if !slices.Contains(keys, key) {
			t.Errorf("structKeys lacks %q: %v", key, keys)
		}
	}
	for _, key := range []string{"kafka", "kafka.tls", "cameras", "cameras[].motion"} {
		if slices.Contains(keys, key) {
			t.Errorf("structKeys lists the section %q as a key", key)
		}
	}
	in := "a: 1  # one\n# prose\n#b:\n#  - c: 2  # two\n#    d: [3]\n# more prose\ne:\n  #f:\n  #  g: 4\n  h: 5\n"
	want := "a: 1  # one\n# prose\nb:\n  - c: 2  # two\n    d: [3]\n# more prose\ne:\n  f:\n    g: 4\n  h: 5\n"
	if got := expandExamples(in); got != want {
		t.Errorf("expandExamples:\n%s\nwant\n%s", got, want)
	}
}

// exampleStart is the first line of an example in the reference, "#key:",
// and exampleLine the lines after it, still indented under the "#".
var (
	exampleStart = regexp.MustCompile(`^(\s*)#([a-z_]+:.*)$`)
	exampleLine  = regexp.MustCompile(`^(\s*)#(  .*)$`)
)

// expandExamples uncomments the examples of the reference: a line "#key:"
// and the lines after it that start with "#" and two spaces, at the same
// indentation, lose their "#".
func expandExamples(ref string) string {
	lines := strings.Split(ref, "\n")
	indent := -1
	for i, line := range lines {
		if m := exampleStart.FindStringSubmatch(line); m != nil {
			indent = len(m[1])
			lines[i] = m[1] + m[2]
			continue
		}
		if m := exampleLine.FindStringSubmatch(line); m != nil && len(m[1]) == indent {
			lines[i] = m[1] + m[2]
			continue
		}
		indent = -1
	}
	return strings.Join(lines, "\n")
}

func expandedReference(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatal(err)
	}
	return expandExamples(string(b))
}

// structKeys lists the keys of t's koanf tags (eachKey), leaves only, with
// "[]" after a list of sections: cameras[].motion.masks.
func structKeys(t reflect.Type, prefix string) []string {
	var out []string
	eachKey(t, prefix, func(path string) { out = append(out, path) })
	return out
}

func duplicates(keys []string) []string {
	seen := map[string]bool{}
	var dup []string
	for _, k := range keys {
		if seen[k] {
			dup = append(dup, k)
		}
		seen[k] = true
	}
	return dup
}

// refRow is one key of the reference: its value as written and its comment.
type refRow struct {
	section string // top-level key
	intro   string // the section's head comment, on its first row
	example bool   // the section is an example (no default)
	key     string
	value   string
	comment string
}

// referenceRows reads the reference, examples uncommented, into one row per
// key in file order. Each key must have its value on its line and a
// comment after it.
func referenceRows(t *testing.T) []refRow {
	t.Helper()
	raw, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatal(err)
	}
	examples := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if m := exampleStart.FindStringSubmatch(line); m != nil && m[1] == "" {
			examples[strings.TrimSuffix(m[2], ":")] = true
		}
	}
	ref := expandExamples(string(raw))
	lines := strings.Split(ref, "\n")
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(ref), &doc); err != nil {
		t.Fatalf("config/reference.yaml: %v", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatal("config/reference.yaml is not a mapping")
	}
	var rows []refRow
	var walk func(n *yaml.Node, typ reflect.Type, prefix, section string)
	walk = func(n *yaml.Node, typ reflect.Type, prefix, section string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := join(prefix, k.Value)
			f, ok := fieldByTag(typ, k.Value)
			if !ok {
				t.Errorf("config/reference.yaml line %d: no key %q", k.Line, path)
				continue
			}
			sec, intro := section, ""
			if prefix == "" {
				sec, intro = k.Value, commentText(k.HeadComment)
				if intro == "" {
					t.Errorf("config/reference.yaml line %d: section %q has no comment above it", k.Line, path)
				}
			} else if k.HeadComment != "" {
				t.Errorf("config/reference.yaml line %d: %q: only sections have a comment above them (the page drops it); put it after the value", k.Line, path)
			}
			switch {
			case isSection(f.Type):
				if v.Kind != yaml.MappingNode || v.Style == yaml.FlowStyle {
					t.Errorf("config/reference.yaml line %d: %q must be a block mapping", v.Line, path)
					continue
				}
				if intro != "" {
					rows = append(rows, refRow{section: sec, intro: intro, example: examples[sec]})
				}
				walk(v, f.Type, path, sec)
			case f.Type.Kind() == reflect.Slice && isSection(f.Type.Elem()):
				if v.Kind != yaml.SequenceNode || len(v.Content) != 1 || v.Content[0].Kind != yaml.MappingNode {
					t.Errorf("config/reference.yaml line %d: %q must be a list of one example", v.Line, path)
					continue
				}
				if intro != "" {
					rows = append(rows, refRow{section: sec, intro: intro, example: examples[sec]})
				}
				walk(v.Content[0], f.Type.Elem(), path+"[]", sec)
			default:
				if v.Kind != yaml.ScalarNode && (v.Kind != yaml.SequenceNode || v.Style != yaml.FlowStyle) {
					t.Errorf("config/reference.yaml line %d: %q: write the value on the key's line", v.Line, path)
					continue
				}
				comment := commentText(v.LineComment)
				if comment == "" || strings.Contains(comment, "\n") {
					t.Errorf("config/reference.yaml line %d: %q needs a one-line comment after its value", v.Line, path)
				}
				value := lines[v.Line-1][v.Column-1:]
				if v.LineComment != "" {
					value = value[:strings.LastIndex(value, v.LineComment)]
				}
				rows = append(rows, refRow{section: sec, intro: intro, example: examples[sec], key: path, value: strings.TrimSpace(value), comment: comment})
			}
		}
	}
	walk(doc.Content[0], reflect.TypeFor[Config](), "", "")
	return rows
}

// commentText is a YAML comment without its "# " markers, lines joined.
func commentText(c string) string {
	var out []string
	for line := range strings.SplitSeq(c, "\n") {
		if line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#")); line != "" {
			out = append(out, line)
		}
	}
	return strings.Join(out, " ")
}

// mdText escapes what Markdown would take for a table border or HTML.
func mdText(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

// renderReference is the page's reference section: per top-level key its
// comment and a table of its keys.
func renderReference(rows []refRow) string {
	var b strings.Builder
	for i, r := range rows {
		if i == 0 || r.section != rows[i-1].section {
			col := "default"
			if r.example {
				col = "example (no default)"
			}
			fmt.Fprintf(&b, "\n### `%s`\n\n", r.section)
			if r.intro != "" {
				fmt.Fprintf(&b, "%s\n\n", mdText(r.intro))
			}
			fmt.Fprintf(&b, "| key | %s | meaning |\n|---|---|---|\n", col)
		}
		if r.key != "" {
			fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", r.key, r.value, mdText(r.comment))
		}
	}
	b.WriteString("\n")
	return b.String()
}
