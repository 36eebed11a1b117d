package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a configuration: where it is and what.
type Problem struct {
	File string // the config file, empty when there is none
	Line int    // 1-based line in File, 0 when unknown
	Path string // dotted key path, e.g. "checks.field_mismatch.fields"
	Msg  string
}

func (p Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// referenceRE is a value that is only an environment reference, with at
// most an empty default: nothing of a secret written out.
var referenceRE = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*(:-)?\}$`)

// scalarDecoder is implemented by types that parse themselves from one YAML
// scalar, such as Duration.
type scalarDecoder interface {
	decodeScalar(s string) error
}

// decoder walks a yaml.Node tree into a Go value by reflection, strictly:
// unknown keys and wrong types become Problems, all of them, each with its
// key path and line. It never panics on any input.
type decoder struct {
	file     string
	getenv   func(string) (string, bool)
	problems []Problem
	syntax   bool           // the YAML itself is broken: nothing was decoded
	lines    map[string]int // key path -> line, for later validation messages
	// literal holds the key paths of Secrets written out in the file
	// rather than as ${VAR} references.
	literal map[string]bool
}

func (d *decoder) addf(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}

var scalarDecoderType = reflect.TypeFor[scalarDecoder]()

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.addf(n, path, "dangling alias")
			return
		}
		n = n.Alias
	}
	if path != "" {
		if _, seen := d.lines[path]; !seen {
			d.lines[path] = n.Line
		}
	}
	// A null keeps the default.
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(scalarDecoderType) {
		if n.Kind != yaml.ScalarNode {
			d.addf(n, path, "expected a single value, got %s", kindName(n))
			return
		}
		s, ok := d.interpolate(n, path)
		if !ok {
			return
		}
		if err := v.Addr().Interface().(scalarDecoder).decodeScalar(s); err != nil {
			d.addf(n, path, "%v", err)
		}
		if v.Type() == reflect.TypeFor[Secret]() && n.Value != "" && !referenceRE.MatchString(n.Value) && d.literal != nil {
			d.literal[path] = true
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.addf(n, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		if n.Kind != yaml.ScalarNode {
			d.addf(n, path, "expected a single value, got %s", kindName(n))
			return
		}
		s, ok := d.interpolate(n, path)
		if !ok {
			return
		}
		d.decodeScalar(n, s, v, path)
	default:
		d.addf(n, path, "cannot decode into %s", v.Type())
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, s string, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch strings.ToLower(s) {
		case "true", "yes", "on":
			v.SetBool(true)
		case "false", "no", "off":
			v.SetBool(false)
		default:
			d.addf(n, path, "expected true or false, got %q", s)
		}
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			d.addf(n, path, "expected a whole number, got %q", s)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			d.addf(n, path, "expected a number, got %q", s)
			return
		}
		v.SetFloat(f)
	}
}

type fieldInfo struct {
	index []int
	typ   reflect.Type
}

// structFields maps yaml keys to fields, following ",inline" embeddings.
func structFields(t reflect.Type) map[string]fieldInfo {
	out := map[string]fieldInfo{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == "-" || !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int{}, prefix...), i)
			if opts == "inline" {
				walk(f.Type, idx)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			out[name] = fieldInfo{index: idx, typ: f.Type}
		}
	}
	walk(t, nil)
	return out
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.addf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		p := join(path, key)
		if key == "<<" {
			d.addf(k, path, "merge keys (<<) are not supported")
			continue
		}
		f, ok := fields[key]
		if !ok {
			d.addf(k, p, "unknown key%s", suggest(key, fields))
			continue
		}
		if seen[key] {
			d.addf(k, p, "key given twice")
			continue
		}
		seen[key] = true
		d.decode(val, v.FieldByIndex(f.index), p)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.addf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		elem := reflect.New(v.Type().Elem()).Elem()
		if old := v.MapIndex(reflect.ValueOf(k.Value)); old.IsValid() {
			elem.Set(old)
		}
		d.decode(val, elem, p)
		v.SetMapIndex(reflect.ValueOf(k.Value), elem)
	}
}

// interpolate expands ${VAR} and ${VAR:-default} in a scalar; "$$" is a
// literal "$". The expanded text is never parsed as YAML again.
func (d *decoder) interpolate(n *yaml.Node, path string) (string, bool) {
	s := n.Value
	if !strings.Contains(s, "$") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			d.addf(n, path, "unterminated ${ in value")
			return "", false
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			d.addf(n, path, "invalid environment variable reference ${%s}", expr)
			return "", false
		}
		val, ok := d.getenv(name)
		switch {
		case ok && val != "":
			b.WriteString(val)
		case hasDef:
			b.WriteString(def)
		case ok:
		default:
			d.addf(n, path, "environment variable %s is not set", name)
			return "", false
		}
		i += end
	}
	return b.String(), true
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// suggest returns ` (did you mean "x"?)` for a near miss among known keys.
func suggest(key string, fields map[string]fieldInfo) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestD := "", 3
	for _, k := range names {
		if len(key) >= 4 && (strings.HasPrefix(k, key) || strings.HasPrefix(key, k)) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	for _, k := range names {
		if dist := levenshtein(key, k); dist < bestD {
			best, bestD = k, dist
		}
	}
	if best == "" {
		return " (known keys: " + strings.Join(names, ", ") + ")"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Duration is a time.Duration written as "30s", "15m", "4h" in YAML.
type Duration time.Duration

func (d *Duration) decodeScalar(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use a number with a unit, such as 30s, 15m or 4h)", s)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// Secret holds a credential. It never prints itself: String, GoString and
// text marshalling all give "<redacted>", so a Secret that reaches a log, an
// error or a rendered config does not leak.
type Secret string

func (s *Secret) decodeScalar(v string) error {
	*s = Secret(v)
	return nil
}

// Reveal returns the secret's value, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<redacted>"
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// MarshalText renders the secret redacted, for YAML and JSON alike.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
