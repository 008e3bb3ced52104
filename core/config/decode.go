package config

import (
	"fmt"
	"math"
	"math/big"
	"os"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// value evaluates attr and converts it to ty. It reports false, with a
// diagnostic, when that fails, and false without one when attr is nil or
// null: the attribute then keeps its default.
func (p *parser) value(attr *hcl.Attribute, ty cty.Type) (cty.Value, bool) {
	if attr == nil {
		return cty.NilVal, false
	}
	val, diags := attr.Expr.Value(p.ctx)
	p.diags = append(p.diags, diags...)
	if diags.HasErrors() || val.IsNull() || !val.IsWhollyKnown() {
		return cty.NilVal, false
	}
	conv, err := convert.Convert(val, ty)
	if err != nil {
		p.diags = append(p.diags, typeError(attr, err))
		return cty.NilVal, false
	}
	return conv, true
}

func typeError(attr *hcl.Attribute, err error) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Incorrect attribute value type",
		Detail:   fmt.Sprintf("Inappropriate value for attribute %q: %s.", attr.Name, err),
		Subject:  attr.Expr.Range().Ptr(),
		Context:  attr.Range.Ptr(),
	}
}

func (p *parser) str(attr *hcl.Attribute) (string, bool) {
	v, ok := p.value(attr, cty.String)
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

// requiredStr is str for a required attribute: null is an error too.
func (p *parser) requiredStr(attr *hcl.Attribute) (string, bool) {
	n := len(p.diags)
	s, ok := p.str(attr)
	if !ok && attr != nil && len(p.diags) == n {
		p.errorf(attr.Expr.Range(), "Missing required argument",
			"The argument %q is required and must not be null.", attr.Name)
	}
	return s, ok
}

func (p *parser) nonEmptyString(attr *hcl.Attribute) (string, bool) {
	s, ok := p.str(attr)
	if ok && s == "" {
		p.errorf(attr.Expr.Range(), "Invalid "+attr.Name, "%s must not be empty; leave it out for the default.", attr.Name)
		return "", false
	}
	return s, ok
}

func (p *parser) oneOf(attr *hcl.Attribute, allowed []string) (string, bool) {
	s, ok := p.str(attr)
	if !ok {
		return "", false
	}
	for _, a := range allowed {
		if s == a {
			return s, true
		}
	}
	p.errorf(attr.Expr.Range(), "Invalid "+attr.Name,
		"%s must be one of %s, not %q.", attr.Name, strings.Join(allowed, ", "), s)
	return "", false
}

// integer decodes a whole number from lo to hi.
func (p *parser) integer(attr *hcl.Attribute, lo, hi int64) (int64, bool) {
	v, ok := p.value(attr, cty.Number)
	if !ok {
		return 0, false
	}
	bf := v.AsBigFloat()
	n, acc := bf.Int64()
	if !bf.IsInt() || acc != big.Exact || n < lo || n > hi {
		bound := fmt.Sprintf("from %d to %d", lo, hi)
		if hi == math.MaxInt64 {
			bound = fmt.Sprintf("of at least %d", lo)
		}
		text := bf.Text('g', -1)
		if acc == big.Exact {
			text = strconv.FormatInt(n, 10)
		}
		p.errorf(attr.Expr.Range(), "Invalid "+attr.Name,
			"%s must be a whole number %s, not %s.", attr.Name, bound, text)
		return 0, false
	}
	return n, true
}

// stringList decodes a list of strings, with the range of each element when
// the list is written out, or the attribute's range for every element when
// it is computed. When some elements are bad it reports false and returns
// the good ones.
func (p *parser) stringList(attr *hcl.Attribute) ([]string, []hcl.Range, bool) {
	if attr == nil {
		return nil, nil, false
	}
	exprs, listDiags := hcl.ExprList(attr.Expr)
	if listDiags.HasErrors() {
		v, ok := p.value(attr, cty.List(cty.String))
		if !ok {
			return nil, nil, false
		}
		var out []string
		var ranges []hcl.Range
		for i, e := range v.AsValueSlice() {
			if e.IsNull() {
				p.errorf(attr.Expr.Range(), "Incorrect attribute value type",
					"Inappropriate value for attribute %q: element %d must not be null.", attr.Name, i)
				return nil, nil, false
			}
			out = append(out, e.AsString())
			ranges = append(ranges, attr.Expr.Range())
		}
		return out, ranges, true
	}
	out := make([]string, 0, len(exprs))
	ranges := make([]hcl.Range, 0, len(exprs))
	ok := true
	for i, e := range exprs {
		val, diags := e.Value(p.ctx)
		p.diags = append(p.diags, diags...)
		if diags.HasErrors() || !val.IsWhollyKnown() {
			ok = false
			continue
		}
		var s string
		if val.IsNull() {
			ok = false
			p.errorf(e.Range(), "Incorrect attribute value type",
				"Inappropriate value for attribute %q: element %d must not be null.", attr.Name, i)
			continue
		}
		conv, err := convert.Convert(val, cty.String)
		if err != nil {
			ok = false
			p.errorf(e.Range(), "Incorrect attribute value type",
				"Inappropriate value for attribute %q: element %d: %s.", attr.Name, i, err)
			continue
		}
		s = conv.AsString()
		out = append(out, s)
		ranges = append(ranges, e.Range())
	}
	return out, ranges, ok
}

func fileMode(mode uint64) os.FileMode { return os.FileMode(mode) }

// emptyBodyAt returns a body without content whose missing items are
// reported at rng, for a detector or sink without a config block.
func emptyBodyAt(rng hcl.Range) hcl.Body {
	return &hclsyntax.Body{
		SrcRange: rng,
		EndRange: hcl.Range{Filename: rng.Filename, Start: rng.End, End: rng.End},
	}
}
