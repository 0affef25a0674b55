package config

import (
	"errors"
	"fmt"
	"reflect"
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
				mapstructure.StringToTimeDurationHookFunc(),
				mapstructure.StringToSliceHookFunc(","),
			),
			WeaklyTypedInput: true,
			Result:           &cfg,
		},
	}); err != nil {
		return nil, fmt.Errorf("config: %w", cleanDecodeError(err, k, root))
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
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
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if tag == "" {
			continue
		}
		path := join(prefix, tag)
		switch {
		case isSection(f.Type):
			for k, v := range leafKeys(f.Type, path) {
				out[k] = v
			}
		case f.Type.Kind() == reflect.Slice && isSection(f.Type.Elem()):
		default:
			out[strings.ReplaceAll(path, ".", "_")] = path
		}
	}
	return out
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

// cleanDecodeError turns mapstructure's multi-line report into one clause per
// key: `"kafka.partitions": cannot use "x" as a whole number`.
func cleanDecodeError(err error, k *koanf.Koanf, root reflect.Type) error {
	var errs []string
	var merr interface{ Unwrap() []error }
	if errors.As(err, &merr) {
		for _, e := range merr.Unwrap() {
			errs = append(errs, cleanOne(e.Error(), k, root))
		}
	}
	if len(errs) == 0 {
		return err
	}
	slices.Sort(errs)
	return errors.New(strings.Join(errs, "; "))
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
	key := s[1 : 1+end]
	t, ok := typeAt(root, key)
	if !ok {
		return s
	}
	want := t.Kind().String()
	switch {
	case t == durationType:
		want = "a duration (such as 500ms, 10s, 1h)"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		want = "a whole number"
	case t.Kind() == reflect.Float64:
		want = "a number"
	case t.Kind() == reflect.Bool:
		want = "true or false"
	case t.Kind() == reflect.Slice:
		want = "a list"
	}
	return fmt.Sprintf("%q: cannot use %s as %s", key, describe(valueAt(k.Raw(), key)), want)
}

// typeAt returns the type of the field at a dotted key (list items as key[i]).
func typeAt(root reflect.Type, key string) (reflect.Type, bool) {
	t := root
	for _, part := range strings.Split(key, ".") {
		name, _, indexed := strings.Cut(part, "[")
		f, ok := fieldByTag(t, name)
		if !ok {
			return nil, false
		}
		t = f.Type
		if indexed && t.Kind() == reflect.Slice {
			t = t.Elem()
		}
	}
	return t, true
}

// valueAt returns the raw value at a dotted key (list items as key[i]).
func valueAt(raw map[string]any, key string) any {
	var cur any = raw
	for _, part := range strings.Split(key, ".") {
		name, idx, indexed := strings.Cut(part, "[")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[name]
		if indexed {
			list, ok := cur.([]any)
			i, err := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			if !ok || err != nil || i < 0 || i >= len(list) {
				return nil
			}
			cur = list[i]
		}
	}
	return cur
}
