package config

import (
	"fmt"
	"math"

	"github.com/driftd/driftd/sdk"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

// DecodePluginConfig decodes a detector's or sink's config body against the
// schema its plugin declares. Numbers become float64, strings string and bools
// bool. A required attribute that is missing, an attribute of the wrong type,
// an attribute the schema does not declare and any nested block are errors
// at their place in the file. Expressions may call env(), and file(), which
// reads a path relative to the directory of the file body comes from, at
// each call. Defaults are not applied: attributes left out are absent from
// the result, and the plugin side completes them (sdk.Schema.Apply). The
// Config is nil when diags holds an error.
func DecodePluginConfig(body hcl.Body, schema sdk.Schema) (sdk.Config, hcl.Diagnostics) {
	if body == nil {
		body = hcl.EmptyBody()
	}
	if err := schema.Validate(); err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid plugin schema",
			Detail:   fmt.Sprintf("The plugin declares an invalid config schema: %s.", err),
			Subject:  body.MissingItemRange().Ptr(),
		}}
	}
	spec := hcldec.ObjectSpec{}
	for _, a := range schema.Attributes {
		spec[a.Name] = &hcldec.AttrSpec{Name: a.Name, Type: ctyType(a.Type), Required: a.Required}
	}
	val, diags := hcldec.Decode(body, spec, evalContext(bodyDir(body)))
	// hcldec walks maps: put the diagnostics in file order.
	diags = sortDiagnostics(diags)
	if diags.HasErrors() {
		return nil, diags
	}
	cfg := sdk.Config{}
	for _, a := range schema.Attributes {
		v := val.GetAttr(a.Name)
		if v.IsNull() || !v.IsKnown() {
			if a.Required {
				diags = append(diags, attrDiagnostic(body, a.Name, "Missing required argument",
					fmt.Sprintf("The argument %q is required and must not be null.", a.Name)))
			}
			continue
		}
		switch a.Type {
		case sdk.TypeNumber:
			f, _ := v.AsBigFloat().Float64()
			if math.IsInf(f, 0) {
				diags = append(diags, attrDiagnostic(body, a.Name, "Invalid value for "+quote(a.Name),
					"The number is too large."))
				continue
			}
			cfg[a.Name] = f
		case sdk.TypeString:
			cfg[a.Name] = v.AsString()
		case sdk.TypeBool:
			cfg[a.Name] = v.True()
		case sdk.TypeStringMap:
			m := map[string]string{}
			for k, e := range v.AsValueMap() {
				if e.IsNull() {
					diags = append(diags, attrDiagnostic(body, a.Name, "Invalid value for "+quote(a.Name),
						fmt.Sprintf("The value of %q must not be null.", k)))
					continue
				}
				m[k] = e.AsString()
			}
			cfg[a.Name] = m
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

func ctyType(t sdk.Type) cty.Type {
	switch t {
	case sdk.TypeNumber:
		return cty.Number
	case sdk.TypeBool:
		return cty.Bool
	case sdk.TypeStringMap:
		return cty.Map(cty.String)
	}
	return cty.String
}

// ConfigErrorDiagnostics turns the error a plugin's Configure returned into
// diagnostics: one for each sdk.ConfigError in it, placed at the value of the
// attribute it names in body, or at defRange when it names none or one the
// body does not hold. Other errors become a single diagnostic at defRange.
// When defRange is empty, body's own place is used.
func ConfigErrorDiagnostics(body hcl.Body, defRange hcl.Range, err error) hcl.Diagnostics {
	if err == nil {
		return nil
	}
	if body == nil {
		body = hcl.EmptyBody()
	}
	if defRange == (hcl.Range{}) {
		defRange = body.MissingItemRange()
	}
	var diags hcl.Diagnostics
	for _, ce := range sdk.ConfigErrors(err) {
		if ce.Attribute != "" {
			if attr := findAttribute(body, ce.Attribute); attr != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid value for " + quote(ce.Attribute),
					Detail:   sentence(ce.Message),
					Subject:  attr.Expr.Range().Ptr(),
					Context:  attr.Range.Ptr(),
				})
				continue
			}
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid plugin configuration",
			Detail:   sentence(ce.Error()),
			Subject:  defRange.Ptr(),
		})
	}
	return diags
}

// attrDiagnostic is an error at the named attribute's value in body, or at
// the body's missing-item place when it is not there.
func attrDiagnostic(body hcl.Body, name, summary, detail string) *hcl.Diagnostic {
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
	if attr := findAttribute(body, name); attr != nil {
		d.Subject = attr.Expr.Range().Ptr()
		d.Context = attr.Range.Ptr()
	} else {
		d.Subject = body.MissingItemRange().Ptr()
	}
	return d
}

// findAttribute returns the attribute called name in body, or nil.
func findAttribute(body hcl.Body, name string) *hcl.Attribute {
	content, _, _ := body.PartialContent(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: name}},
	})
	if content == nil {
		return nil
	}
	return content.Attributes[name]
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// sentence ends msg with a period, as HCL's own details do.
func sentence(msg string) string {
	if msg == "" || msg[len(msg)-1] == '.' {
		return msg
	}
	return msg + "."
}
