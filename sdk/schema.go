package sdk

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Type is the type of a config attribute.
type Type string

// The attribute types a schema can declare.
const (
	TypeNumber Type = "number"
	TypeString Type = "string"
	TypeBool   Type = "bool"
	// TypeStringMap is a map of strings, such as HTTP headers:
	// headers = { Authorization = "Bearer ${env("TOKEN")}" }.
	TypeStringMap Type = "map(string)"
)

// Attribute declares one attribute of a plugin's config block.
type Attribute struct {
	Name        string
	Type        Type
	Required    bool
	Default     any // float64, string, bool or map[string]string, matching Type; nil for none
	Description string
}

// Schema declares the attributes a plugin's config block may hold.
type Schema struct {
	Attributes []Attribute
}

// Attribute returns the attribute called name.
func (s Schema) Attribute(name string) (Attribute, bool) {
	for _, a := range s.Attributes {
		if a.Name == name {
			return a, true
		}
	}
	return Attribute{}, false
}

// Validate checks the schema itself: names unique and non-empty, known types,
// defaults of the declared type.
func (s Schema) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for _, a := range s.Attributes {
		if a.Name == "" {
			errs = append(errs, errors.New("attribute with an empty name"))
			continue
		}
		if seen[a.Name] {
			errs = append(errs, fmt.Errorf("attribute %q declared twice", a.Name))
		}
		seen[a.Name] = true
		switch a.Type {
		case TypeNumber, TypeString, TypeBool, TypeStringMap:
		default:
			errs = append(errs, fmt.Errorf("attribute %q: unknown type %q", a.Name, a.Type))
			continue
		}
		if a.Default != nil {
			if err := checkType(a.Type, a.Default); err != nil {
				errs = append(errs, fmt.Errorf("attribute %q default: %w", a.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Apply checks cfg against the schema and returns a copy completed with the
// defaults. Every problem is reported, as ConfigErrors joined together; an
// attribute refused for its type is replaced by its default in the copy, so
// the copy stays usable for checking the other attributes.
func (s Schema) Apply(cfg Config) (Config, error) {
	out := make(Config, len(s.Attributes))
	var errs []error
	names := make([]string, 0, len(cfg))
	for name := range cfg {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		a, ok := s.Attribute(name)
		if !ok {
			errs = append(errs, &ConfigError{Attribute: name, Message: "unsupported attribute"})
			continue
		}
		v := cfg[name]
		if n, isInt := v.(int); isInt {
			v = float64(n)
		}
		if err := checkType(a.Type, v); err != nil {
			errs = append(errs, &ConfigError{Attribute: name, Message: err.Error()})
			continue
		}
		out[name] = v
	}
	for _, a := range s.Attributes {
		if _, ok := out[a.Name]; ok {
			continue
		}
		_, given := cfg[a.Name]
		switch {
		case given && a.Default != nil:
			out[a.Name] = a.Default // refused above; the default keeps out complete
		case given:
		case a.Default != nil:
			out[a.Name] = a.Default
		case a.Required:
			errs = append(errs, &ConfigError{Attribute: a.Name, Message: "required attribute is missing"})
		}
	}
	return out, errors.Join(errs...)
}

func checkType(t Type, v any) error {
	switch t {
	case TypeNumber:
		f, ok := v.(float64)
		if !ok {
			return fmt.Errorf("must be a number, not %s", typeName(v))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return errors.New("must be a finite number")
		}
	case TypeString:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("must be a string, not %s", typeName(v))
		}
	case TypeBool:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("must be a bool, not %s", typeName(v))
		}
	case TypeStringMap:
		if _, ok := v.(map[string]string); !ok {
			return fmt.Errorf("must be a map of strings, not %s", typeName(v))
		}
	}
	return nil
}

func typeName(v any) string {
	switch v.(type) {
	case float64, int:
		return "a number"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case map[string]string:
		return "a map of strings"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// Config is a plugin's configuration: attribute name to float64, string,
// bool or map[string]string, as its Schema declares.
type Config map[string]any

// Number returns a number attribute, 0 when it is absent.
func (c Config) Number(name string) float64 { f, _ := c[name].(float64); return f }

// Int returns a number attribute truncated to an int.
func (c Config) Int(name string) int { return int(c.Number(name)) }

// String returns a string attribute, "" when it is absent.
func (c Config) String(name string) string { s, _ := c[name].(string); return s }

// Bool returns a bool attribute, false when it is absent.
func (c Config) Bool(name string) bool { b, _ := c[name].(bool); return b }

// StringMap returns a map attribute, nil when it is absent.
func (c Config) StringMap(name string) map[string]string {
	m, _ := c[name].(map[string]string)
	return m
}

// Has reports whether the attribute is set.
func (c Config) Has(name string) bool { _, ok := c[name]; return ok }

// ConfigError is a problem with one attribute of a config block. The daemon
// reports it at that attribute's place in the HCL file.
type ConfigError struct {
	Attribute string // empty when the problem concerns the whole block
	Message   string
}

func (e *ConfigError) Error() string {
	if e.Attribute == "" {
		return e.Message
	}
	return fmt.Sprintf("%s: %s", e.Attribute, e.Message)
}

// Is makes errors.Is(err, ErrInvalidConfig) true for every ConfigError.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// ErrInvalidConfig marks configuration a plugin refused.
var ErrInvalidConfig = errors.New("invalid plugin config")

// ConfigErrors lists the ConfigErrors in err, which may be joined.
func ConfigErrors(err error) []*ConfigError {
	var out []*ConfigError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if ce, ok := e.(*ConfigError); ok {
			out = append(out, ce)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var ce *ConfigError
		if errors.As(e, &ce) {
			out = append(out, ce)
			return
		}
		out = append(out, &ConfigError{Message: e.Error()})
	}
	walk(err)
	return out
}

// OneOf returns a ConfigError unless value is one of allowed.
func OneOf(attr, value string, allowed ...string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return &ConfigError{Attribute: attr, Message: fmt.Sprintf("must be one of %s, not %q", strings.Join(allowed, ", "), value)}
}
