package web

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseTime reads a time parameter as users write it: RFC 3339
// ("2026-11-26T14:03:12Z"), unix seconds with an optional fraction
// ("1795700000.5"), or a negative duration relative to now ("-90s",
// "-5m"). name is the parameter, quoted in errors.
func parseTime(name, v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return time.Time{}, fmt.Errorf("parameter %q is empty", name)
	case v == "now":
		return now, nil
	case strings.HasPrefix(v, "-"):
		d, err := time.ParseDuration(v)
		if err != nil {
			return time.Time{}, fmt.Errorf("parameter %q: %q is not a negative duration such as -90s or -5m", name, v)
		}
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f < 1e11 {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("parameter %q: %q is not a time: use RFC 3339 (2026-11-26T14:03:12Z), unix seconds (1795700000.5) or a negative duration (-90s)", name, v)
}
