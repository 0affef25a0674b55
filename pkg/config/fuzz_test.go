package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
)

// FuzzLoad loads arbitrary YAML and checks what Load promises beyond
// validating (which Load does itself, so checking it again proves nothing):
//
//   - it never panics;
//   - every error that is not a YAML syntax error names the key at fault,
//     quoted, and that key is one the configuration has (or, for an unknown
//     key, the one refused), and a value of the wrong type is explained in
//     words ("true or false"), not as a Go type ("ptr");
//   - a configuration that loads round-trips: written back as YAML (what an
//     operator would get by copying the effective settings into a file) it
//     loads again to the same Config;
//   - an unknown key added anywhere in such a file, at the top level, in a
//     section or in a list item, is refused and quoted with its full path.
func FuzzLoad(f *testing.F) {
	// Small seeds: the coverage-guided engine slows to a crawl on the
	// whole shipped files (TestShippedConfigLoads covers those). The
	// second value names the section that gets an unknown key ("" is the
	// top level; one that does not exist picks a section by its length).
	f.Add([]byte("role: consumer\nembedded:\n  enabled: false\nkafka:\n  brokers: [k:9092]\ncameras:\n  - id: a\n"), "cameras[0]")
	f.Add([]byte("http:\n  listen: 127.0.0.1:0\n  max_viewers: 3\n  trusted_proxies: [10.0.0.0/8]\n"), "http")
	f.Add([]byte("auth:\n  users:\n    - name: bob\n      password_bcrypt: $2a$04$veWKOf/mZihrvKOZGDvcSO1wrA/jx/ODQ.SH.pRLFk6lqYbO2Ob3e\n"), "auth.users[0]")
	f.Add([]byte("auth:\n  tokens:\n    - name: t\n      token: 0123456789abcdef\n      cameras: [a]\n"), "auth.tokens[0]")
	f.Add([]byte("cameras:\n  - id: a\n    source: testpattern\n    fps: 1e400\n"), "")
	f.Add([]byte("cameras:\n  - id: a\n    source: testpattern\n    fps: nan\n"), "")
	f.Add([]byte("cameras:\n  - id: a\n    source: testpattern\n    fps: 29.97\n  - id: b\n    source: \"0\"\n    width: 640\n    height: 480\n"), "cameras[1]")
	f.Add([]byte("kafka: {brokers: [[a]], partitions: -1}\n"), "")
	f.Add([]byte("kafka:\n  retention: 90m\n  fetch_max_wait: 0s\n  sasl: {mechanism: PLAIN, username: u, password: p}\nhub:\n  max_delay: 1s\n"), "kafka.sasl")
	f.Add([]byte("hub:\n  max_delay: 99999h\n"), "")
	f.Add([]byte("http:\n  trusted_proxies: []\ncameras: []\n"), "")
	f.Add([]byte("log: {level: debug, format: json}\nkafka: {partitions: \"12\", client_id: 7}\n"), "")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, doc []byte, where string) {
		path := writeFuzz(t, dir, doc)
		cfg, err := Load(Sources{File: path})
		if err != nil {
			checkErrorQuotesKey(t, path, err)
			return
		}

		// Round trip.
		tree := toTree(reflect.ValueOf(*cfg)).(map[string]any)
		out, err := yaml.Parser().Marshal(tree)
		if err != nil {
			t.Fatalf("marshal %+v: %v", cfg, err)
		}
		again, err := Load(Sources{File: writeFuzz(t, dir, out)})
		if err != nil {
			t.Fatalf("a loaded config written back does not load:\n%s\nerror: %v", out, err)
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("a loaded config written back loads differently:\nfirst  %+v\nsecond %+v\nYAML:\n%s", cfg, again, out)
		}

		// An unknown key in one of the sections of that file.
		sections := sectionsOf(tree, "")
		sec := sections[len(where)%len(sections)]
		for _, s := range sections {
			if s.path == where {
				sec = s
			}
		}
		sec.m["not_a_key"] = 1
		out, err = yaml.Parser().Marshal(tree)
		if err != nil {
			t.Fatal(err)
		}
		want := `unknown key "` + joinKey(sec.path, "not_a_key") + `"`
		if _, err := Load(Sources{File: writeFuzz(t, dir, out)}); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("unknown key in %q: got %v, want an error with %s\nYAML:\n%s", sec.path, err, want, out)
		}
	})
}

func writeFuzz(t *testing.T, dir string, body []byte) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// quoted matches a double-quoted Go string (%q).
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// goKind matches a decode error that names a Go kind ("as ptr", "as slice")
// where the operator should read what to write ("true or false", "a list").
var goKind = regexp.MustCompile(`cannot use .* as (ptr|slice|array|map|struct|interface|func|chan|bool|complex\d*|float\d*|u?int\d*)(;|$)`)

// checkErrorQuotesKey fails unless err is a YAML syntax error, or each of
// its lines (Validate joins one line per problem) quotes a key of Config,
// or refuses an unknown key by name.
func checkErrorQuotesKey(t *testing.T, path string, err error) {
	t.Helper()
	msg := err.Error()
	if strings.HasPrefix(msg, "config: read "+path+": ") {
		return // not YAML, or not a mapping: there is no key to name
	}
	for line := range strings.SplitSeq(msg, "\n") {
		if !strings.HasPrefix(line, "config: ") && !strings.HasPrefix(line, "config "+path+": ") {
			t.Fatalf("error line %q does not start with \"config: \" or \"config %s: \"", line, path)
		}
		if m := goKind.FindStringSubmatch(line); m != nil {
			t.Fatalf("error line names the Go type %q instead of what to write: %q", m[1], line)
		}
		if strings.Contains(line, `unknown key "`) {
			continue
		}
		ok := false
		for _, q := range quoted.FindAllString(line, -1) {
			if key, err := strconv.Unquote(q); err == nil && isKey(reflect.TypeFor[Config](), key) {
				ok = true
				break
			}
		}
		if !ok {
			t.Fatalf("error line quotes no configuration key: %q", line)
		}
	}
}

// isKey reports whether key, dotted with [i] after list keys
// ("cameras[0].fps", "kafka.brokers[1]", "cameras[0].motion.masks[0][1]"),
// names a field of t.
func isKey(t reflect.Type, key string) bool {
	for part := range strings.SplitSeq(key, ".") {
		name, indexes, _ := strings.Cut(part, "[")
		if t.Kind() != reflect.Struct || t == reflect.TypeFor[time.Duration]() {
			return false
		}
		var field reflect.Type
		for i := range t.NumField() {
			if t.Field(i).Tag.Get("koanf") == name {
				field = t.Field(i).Type
			}
		}
		if field == nil {
			return false
		}
		t = field
		if indexes == "" {
			continue
		}
		// "0][1]" after the first "[": one list level per index.
		for idx := range strings.SplitSeq(strings.TrimSuffix(indexes, "]"), "][") {
			if _, err := strconv.Atoi(idx); err != nil || t.Kind() != reflect.Slice {
				return false
			}
			t = t.Elem()
		}
	}
	return true
}

// toTree turns a Config into the map of YAML values an operator would
// write: sections as mappings under their koanf names, durations as "1m30s".
// A nil list stays null and an empty one [], so both load back as they were.
func toTree(v reflect.Value) any {
	if v.Type() == reflect.TypeFor[time.Duration]() {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.Struct:
		m := map[string]any{}
		for i := range v.NumField() {
			if tag := v.Type().Field(i).Tag.Get("koanf"); tag != "" {
				m[tag] = toTree(v.Field(i))
			}
		}
		return m
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		items := make([]any, v.Len())
		for i := range items {
			items[i] = toTree(v.Index(i))
		}
		return items
	}
	return v.Interface()
}

type section struct {
	path string
	m    map[string]any
}

// sectionsOf lists every mapping in a tree made by toTree, with its key path,
// parents before children, in a stable order.
func sectionsOf(m map[string]any, path string) []section {
	out := []section{{path, m}}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch v := m[k].(type) {
		case map[string]any:
			out = append(out, sectionsOf(v, joinKey(path, k))...)
		case []any:
			for i, item := range v {
				if sub, ok := item.(map[string]any); ok {
					out = append(out, sectionsOf(sub, fmt.Sprintf("%s[%d]", joinKey(path, k), i))...)
				}
			}
		}
	}
	return out
}

func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}
