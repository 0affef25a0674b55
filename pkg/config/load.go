package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/structs"
	"github.com/knadh/koanf/v2"
)

// EnvPrefix starts every environment variable that sets a config key:
// STREAMD_KAFKA_BROKERS sets kafka.brokers. List values are comma-separated.
const EnvPrefix = "STREAMD_"

// Sources says where configuration comes from, in increasing precedence
// after the defaults in code.
type Sources struct {
	File      string            // YAML file; empty for none
	Env       []string          // KEY=value pairs, usually os.Environ()
	Overrides map[string]string // key -> value, from command-line flags
}

// Load builds the configuration from defaults, s.File, s.Env and
// s.Overrides, then validates it. Every error quotes the key at fault.
func Load(s Sources) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(structs.Provider(Default(), "koanf"), nil); err != nil {
		return nil, fmt.Errorf("config: load defaults: %w", err)
	}
	// The defaults have no cameras; an empty list would be merged with the
	// file's, so drop it.
	k.Delete("cameras")
	root := reflect.TypeFor[Config]()

	if s.File != "" {
		fk := koanf.New(".")
		if err := fk.Load(file.Provider(s.File), yaml.Parser()); err != nil {
			return nil, fmt.Errorf("config: read %s: %w", s.File, err)
		}
		if err := checkKeys(fk.Raw(), root, ""); err != nil {
			return nil, fmt.Errorf("config %s: %w", s.File, err)
		}
		if err := k.Merge(fk); err != nil {
			return nil, fmt.Errorf("config: merge %s: %w", s.File, err)
		}
	}

	leaves := leafKeys(root, "")
	envMap := map[string]any{}
	for _, kv := range s.Env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		key, known := leaves[strings.ToLower(strings.TrimPrefix(name, EnvPrefix))]
		if !known {
			return nil, fmt.Errorf("config: environment variable %s: no such key (keys: %s)", name, keyList(leaves))
		}
		envMap[key] = listOrValue(root, key, val)
	}
	if err := k.Load(confmap.Provider(envMap, "."), nil); err != nil {
		return nil, fmt.Errorf("config: environment: %w", err)
	}

	flagMap := map[string]any{}
	for key, val := range s.Overrides {
		if dotted, known := leaves[strings.ReplaceAll(key, ".", "_")]; !known || dotted != key {
			return nil, fmt.Errorf("config: unknown key %q on the command line", key)
		}
		flagMap[key] = listOrValue(root, key, val)
	}
	if err := k.Load(confmap.Provider(flagMap, "."), nil); err != nil {
		return nil, fmt.Errorf("config: command line: %w", err)
	}

	var cfg Config
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{
		Tag: "koanf",
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook: mapstructure.ComposeDecodeHookFunc(
				durationHook,
				mapstructure.StringToSliceHookFunc(","),
			),
			WeaklyTypedInput: true,
			Result:           &cfg,
		},
	}); err != nil {
		return nil, fmt.Errorf("config: %w", cleanDecodeError(err, k, root))
	}
	nilEmptyLists(reflect.ValueOf(&cfg).Elem())
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// nilEmptyLists sets every empty list in v, a struct, to nil, in nested
// sections and in the items of lists of sections: a list the file wrote as
// [] and one the defaults left out (which the loader makes empty) then load
// alike, and a configuration with nothing set is exactly Default().
func nilEmptyLists(v reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch {
		case f.Kind() == reflect.Slice && f.Len() == 0:
			f.SetZero()
		case f.Kind() == reflect.Slice && isSection(f.Type().Elem()):
			for j := 0; j < f.Len(); j++ {
				nilEmptyLists(f.Index(j))
			}
		case isSection(f.Type()):
			nilEmptyLists(f)
		}
	}
}

// checkKeys reports the first key in raw (sorted order) that names no field
// of t, recursing into nested sections and lists of sections.
func checkKeys(raw map[string]any, t reflect.Type, prefix string) error {
	keys := make([]string, 0, len(raw))
	for key := range raw {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		path := join(prefix, key)
		f, ok := fieldByTag(t, key)
		if !ok {
			return fmt.Errorf("unknown key %q", path)
		}
		v := raw[key]
		switch {
		case isSection(f.Type):
			m, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("%q: must be a mapping of keys, got %s", path, describe(v))
			}
			if err := checkKeys(m, f.Type, path); err != nil {
				return err
			}
		case f.Type.Kind() == reflect.Slice && isSection(f.Type.Elem()):
			if v == nil {
				continue
			}
			items, ok := v.([]any)
			if !ok {
				return fmt.Errorf("%q: must be a list, got %s", path, describe(v))
			}
			for i, item := range items {
				m, ok := item.(map[string]any)
				itemPath := fmt.Sprintf("%s[%d]", path, i)
				if !ok {
					return fmt.Errorf("%q: must be a mapping of keys, got %s", itemPath, describe(item))
				}
				if err := checkKeys(m, f.Type.Elem(), itemPath); err != nil {
					return err
				}
			}
		case v != nil && reflect.TypeOf(v).Kind() == reflect.Map:
			return fmt.Errorf("%q: must be a single value, got a mapping", path)
		}
	}
	return nil
}

// leafKeys maps every settable scalar or list key, written with underscores
// for dots (the environment form, lower case), to its dotted form. Lists of
// sections (cameras) can only be set in the file.
func leafKeys(t reflect.Type, prefix string) map[string]string {
	out := map[string]string{}
	eachKey(t, prefix, func(path string) {
		if !strings.Contains(path, "[]") {
			out[strings.ReplaceAll(path, ".", "_")] = path
		}
	})
	return out
}

// eachKey calls fn with the dotted path of every scalar or list key of t's
// koanf tags, sections walked into; the keys of a list of sections
// (cameras) are written with "[]" after the list: cameras[].motion.masks.
func eachKey(t reflect.Type, prefix string, fn func(path string)) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if tag == "" {
			continue
		}
		path := join(prefix, tag)
		switch {
		case isSection(f.Type):
			eachKey(f.Type, path, fn)
		case f.Type.Kind() == reflect.Slice && isSection(f.Type.Elem()):
			eachKey(f.Type.Elem(), path+"[]", fn)
		default:
			fn(path)
		}
	}
}

func keyList(leaves map[string]string) string {
	names := make([]string, 0, len(leaves))
	for env := range leaves {
		names = append(names, EnvPrefix+strings.ToUpper(env))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// listOrValue splits comma-separated values for list keys.
func listOrValue(root reflect.Type, key, val string) any {
	t := root
	for _, part := range strings.Split(key, ".") {
		f, ok := fieldByTag(t, part)
		if !ok {
			return val
		}
		t = f.Type
	}
	if t.Kind() == reflect.Slice {
		var out []string
		for _, item := range strings.Split(val, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
		return out
	}
	return val
}

var durationType = reflect.TypeFor[time.Duration]()

func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != durationType
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.Tag.Get("koanf") == tag {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%q", fmt.Sprint(v))
}

// durationHook decodes a time.Duration key. A bare number is refused,
// since YAML's 5 or an environment variable's "5" would otherwise be 5ns
// (and 1.5 one nanosecond): only 0, which means "off" or "the default"
// where documented, needs no unit.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	v := reflect.ValueOf(data)
	var n float64
	switch {
	case from.Kind() == reflect.String:
		s := v.String()
		if d, ok := parseDays(s); ok {
			return d, nil
		}
		if d, err := time.ParseDuration(s); err == nil {
			return d, nil
		} else if !bareNumber.MatchString(s) {
			return nil, err
		}
		n, _ = strconv.ParseFloat(s, 64)
	case from.Kind() >= reflect.Int && from.Kind() <= reflect.Int64:
		n = float64(v.Int())
	case from.Kind() >= reflect.Uint && from.Kind() <= reflect.Uintptr:
		n = float64(v.Uint())
	case from.Kind() == reflect.Float32 || from.Kind() == reflect.Float64:
		n = v.Float()
	case from.Kind() == reflect.Bool:
		return nil, fmt.Errorf("cannot parse %v as a duration", data)
	default:
		return data, nil // a list or mapping: mapstructure refuses it
	}
	if n == 0 {
		return time.Duration(0), nil
	}
	return nil, noUnitError{fmt.Sprint(data)}
}

// daysForm matches durations that start with days, as retention is said:
// "7d", "1.5d", "2d12h".
var daysForm = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)d(.*)$`)

// parseDays reads a duration written with a leading number of days (24 h
// each); ok is false for anything else.
func parseDays(s string) (time.Duration, bool) {
	m := daysForm.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	days, err := strconv.ParseFloat(m[1], 64)
	if err != nil || days > 365*100 {
		return 0, false
	}
	d := time.Duration(days * float64(24*time.Hour))
	if m[2] != "" {
		rest, err := time.ParseDuration(m[2])
		if err != nil {
			return 0, false
		}
		d += rest
	}
	return d, true
}

// bareNumber matches a decimal number written without a unit.
var bareNumber = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// noUnitError is a duration written as a bare number.
type noUnitError struct{ value string }

func (e noUnitError) Error() string {
	return e.value + " has no unit; write a duration such as 500ms, 10s, 1h"
}

// cleanDecodeError turns mapstructure's report, errors joined in errors
// joined per section and list, into one clause per key:
// `"kafka.partitions": cannot use "x" as a whole number`.
func cleanDecodeError(err error, k *koanf.Koanf, root reflect.Type) error {
	all := []error{err}
	var merr interface{ Unwrap() []error }
	if errors.As(err, &merr) {
		all = flatten(merr.(error))
	}
	var errs []string
	for _, e := range all {
		var de *mapstructure.DecodeError
		var nu noUnitError
		if errors.As(e, &de) && errors.As(e, &nu) {
			errs = append(errs, fmt.Sprintf("%q: %v", de.Name(), nu))
			continue
		}
		errs = append(errs, cleanOne(e.Error(), k, root))
	}
	if len(errs) == 0 {
		return err
	}
	slices.Sort(errs)
	return errors.New(strings.Join(errs, "; "))
}

// flatten lists the errors joined in err, recursively.
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

func cleanOne(s string, k *koanf.Koanf, root reflect.Type) string {
	// mapstructure starts with the quoted key: 'kafka.partitions' cannot parse ...
	if !strings.HasPrefix(s, "'") {
		return s
	}
	end := strings.Index(s[1:], "'")
	if end < 0 {
		return s
	}
	v, key := valueAt(k.Raw(), s[1:1+end])
	t, ok := typeAt(root, key)
	if !ok {
		return s
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem() // an optional value (*bool): say what it points to
	}
	want := t.Kind().String()
	switch {
	case t == durationType:
		want = "a duration (such as 500ms, 10s, 1h)"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		want = "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		want = "a number"
	case t.Kind() == reflect.Bool:
		want = "true or false"
	case t.Kind() == reflect.String:
		want = "text"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		want = "a list"
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		want = "a mapping of keys"
	}
	return fmt.Sprintf("%q: cannot use %s as %s", key, describe(v), want)
}

// splitKey splits one segment of a dotted key into its name and list
// indexes: "masks[0][1]" is "masks", [0 1].
func splitKey(part string) (name string, indexes []int, ok bool) {
	name, rest, indexed := strings.Cut(part, "[")
	if !indexed {
		return name, nil, true
	}
	if !strings.HasSuffix(rest, "]") {
		return "", nil, false
	}
	for idx := range strings.SplitSeq(strings.TrimSuffix(rest, "]"), "][") {
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 {
			return "", nil, false
		}
		indexes = append(indexes, i)
	}
	return name, indexes, true
}

// typeAt returns the type of the field at a dotted key, list items written
// key[i] and items of nested lists key[i][j].
func typeAt(root reflect.Type, key string) (reflect.Type, bool) {
	t := root
	for part := range strings.SplitSeq(key, ".") {
		name, indexes, ok := splitKey(part)
		if !ok || !isSection(t) {
			return nil, false
		}
		f, ok := fieldByTag(t, name)
		if !ok {
			return nil, false
		}
		t = f.Type
		for range indexes {
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				return nil, false
			}
			t = t.Elem()
		}
	}
	return t, true
}

// valueAt returns the raw value at a dotted key written as for typeAt, and
// the key it was found at. That is key itself, or a shorter one where
// mapstructure (weakly typed) took a single value as a list of it and
// reported the error at its item [0]: a mapping given for a mask point is
// at masks[0][1], not at the masks[0][1][0] reported. A key with no value
// gives nil.
func valueAt(raw map[string]any, key string) (any, string) {
	var cur any = raw
	parts := strings.Split(key, ".")
	for p, part := range parts {
		name, indexes, ok := splitKey(part)
		m, isMap := cur.(map[string]any)
		if !ok || !isMap {
			return nil, key
		}
		cur = m[name]
		at := strings.Join(append(parts[:p:p], name), ".")
		for _, i := range indexes {
			list, ok := cur.([]any)
			switch {
			case ok && i < len(list):
				cur = list[i]
				at += fmt.Sprintf("[%d]", i)
			case !ok && cur != nil && i == 0:
				return cur, at
			default:
				return nil, key
			}
		}
	}
	return cur, key
}
