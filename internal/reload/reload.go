// Package reload is what a configuration reload (SIGHUP, issue 12 §2)
// shares between the tiers: the list of fields a reload changed or could
// not change, and Diff, which names the fields of two configs that differ
// by their YAML keys.
package reload

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
)

// Changes says what a reload did with the fields that differ from the
// running configuration, each named by its YAML key ("tls.cert",
// "drain_timeout"): Applied took effect on the live node; Restart differ
// but keep their old value until the process restarts.
type Changes struct {
	Applied []string
	Restart []string
}

// Merge appends o's fields, prefixed with prefix ("core.", "edge.").
func (c *Changes) Merge(prefix string, o Changes) {
	for _, f := range o.Applied {
		c.Applied = append(c.Applied, prefix+f)
	}
	for _, f := range o.Restart {
		c.Restart = append(c.Restart, prefix+f)
	}
}

// Split sorts the fields that differ between old and new (same struct
// type) into those in live, which the caller applies, and the others.
func Split(old, new any, live ...string) Changes {
	var c Changes
	for _, f := range Diff(old, new) {
		if slices.Contains(live, f) {
			c.Applied = append(c.Applied, f)
		} else {
			c.Restart = append(c.Restart, f)
		}
	}
	return c
}

// Diff names, by their dotted YAML keys in declaration order, the leaf
// fields of a and b (values of one struct type) that differ. Nested
// structs are walked; pointers are compared by what they point to;
// slices, maps and other values are compared whole. Fields without a YAML
// key (or with "-") are skipped.
func Diff(a, b any) []string {
	var out []string
	diff(reflect.ValueOf(a), reflect.ValueOf(b), "", &out)
	return out
}

func diff(a, b reflect.Value, prefix string, out *[]string) {
	for a.Kind() == reflect.Pointer {
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				*out = append(*out, strings.TrimSuffix(prefix, "."))
			}
			return
		}
		a, b = a.Elem(), b.Elem()
	}
	if a.Kind() != reflect.Struct {
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, strings.TrimSuffix(prefix, "."))
		}
		return
	}
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		diff(a.Field(i), b.Field(i), prefix+key+".", out)
	}
}

// ValidateLogLevel checks a log_level value: empty (the default, info) or
// a level slog knows (debug, info, warn, error).
func ValidateLogLevel(v string) error {
	_, err := ParseLogLevel(v)
	return err
}

// ParseLogLevel is the level a log_level value names; empty is info.
func ParseLogLevel(v string) (slog.Level, error) {
	var l slog.Level
	if v == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return 0, fmt.Errorf("log_level %q: want debug, info, warn or error", v)
	}
	return l, nil
}
