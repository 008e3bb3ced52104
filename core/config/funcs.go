package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// MaxFileBytes is the most file() reads: a secret, a token or a
// certificate fits, and it is what a Kubernetes Secret holds at most.
const MaxFileBytes = 1 << 20

// evalContext is what expressions in the file may use: no variables, the
// env function, and the file function reading paths relative to dir, the
// directory of the config file.
func evalContext(dir string) *hcl.EvalContext {
	return &hcl.EvalContext{
		Functions: map[string]function.Function{"env": envFunc, "file": fileFunc(dir)},
	}
}

// bodyDir is the directory of the file body was parsed from, which file()
// resolves relative paths against: the directory Load resolves the file's
// other paths against.
func bodyDir(body hcl.Body) string {
	return filepath.Dir(body.MissingItemRange().Filename)
}

// envFunc is env("NAME") or env("NAME", "default"): the value of an
// environment variable. An unset variable without a default is an error, so
// a forgotten secret is never silently empty; a variable set to "" is "".
var envFunc = function.New(&function.Spec{
	Description: "Returns the value of an environment variable, or the default when it is unset.",
	Params: []function.Parameter{
		{Name: "name", Type: cty.String},
	},
	VarParam: &function.Parameter{Name: "default", Type: cty.String},
	Type:     function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if len(args) > 2 {
			return cty.NilVal, function.NewArgErrorf(2, "env takes a name and at most one default")
		}
		name := args[0].AsString()
		if name == "" {
			return cty.NilVal, function.NewArgErrorf(0, "the variable name must not be empty")
		}
		if v, ok := os.LookupEnv(name); ok {
			return cty.StringVal(v), nil
		}
		if len(args) == 2 {
			return args[1], nil
		}
		whose, set := envOwner()
		return cty.NilVal, function.NewArgErrorf(0,
			"environment variable %q is not set in the environment of %s; %s, give a default as in env(%q, \"value\"), "+
				"or read a secret from a file with file(\"path\"), which every load reads again",
			name, whose, set, name)
	},
})

// envOwner says whose environment env() reads, this process's, and how to
// set a variable there. For the agent, that is the environment it was
// started with: a shell's variables never reach it, a reload's neither. For
// driftd validate, the shell's that runs it, which need not be the agent's.
func envOwner() (whose, set string) {
	cmd := ""
	if len(os.Args) > 1 && filepath.Base(os.Args[0]) == "driftd" {
		cmd = os.Args[1]
	}
	switch cmd {
	case "agent":
		return "the driftd agent process, which env() reads: the one it was started with, which a reload does not change",
			"set it where the agent is started and restart it"
	case "validate":
		return "driftd validate, which env() reads: the shell's that ran it, not the running agent's",
			"set it (for the agent: where it is started)"
	}
	return fmt.Sprintf("this process (%s), which env() reads", filepath.Base(os.Args[0])), "set it"
}

// fileFunc is file("path"): the contents of a file, read each time the
// config is loaded, so a reload picks up a rotated secret (a Kubernetes
// Secret or a Vault agent's file). One trailing newline ("\n" or "\r\n")
// is dropped, as most tools that write a secret add one. A relative path is
// resolved against dir. Errors name the path, never the contents.
func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the contents of a file, less one trailing newline; a relative path is relative to the config file's directory.",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			s, err := readFile(dir, args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			return cty.StringVal(s), nil
		},
	})
}

// readFile reads the file at name for file(), relative to dir.
func readFile(dir, name string) (string, error) {
	if name == "" {
		return "", errors.New("the path must not be empty")
	}
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	shown := fmt.Sprintf("%q", name)
	if path != name {
		shown += fmt.Sprintf(" (%s)", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the file %s: %w", shown, pathErr(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("cannot read the file %s: %w", shown, pathErr(err))
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", shown)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("cannot read the file %s: %w", shown, pathErr(err))
	case len(b) > MaxFileBytes:
		return "", fmt.Errorf("the file %s is larger than %d bytes, the most file() reads", shown, MaxFileBytes)
	case !utf8.Valid(b):
		return "", fmt.Errorf("the file %s is not UTF-8 text", shown)
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	if cty.StringVal(s).AsString() != s {
		// HCL strings are NFC: a secret would change on its way.
		return "", fmt.Errorf("the file %s is not in Unicode normal form C, as HCL strings are", shown)
	}
	return s, nil
}

// pathErr drops the path an *fs.PathError repeats.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readFilesDigest evaluates every file() call in body and returns the
// sha256 of what they read, in file order (zero when there is none): a
// reload of an unchanged file whose files changed is then a change. A call
// that fails adds a mark instead; its diagnostic comes when the expression
// is decoded.
func readFilesDigest(body hcl.Body, ctx *hcl.EvalContext) [32]byte {
	var sum [32]byte
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return sum
	}
	h, calls := sha256.New(), 0
	hclsyntax.VisitAll(sb, func(n hclsyntax.Node) hcl.Diagnostics {
		call, ok := n.(*hclsyntax.FunctionCallExpr)
		if !ok || call.Name != "file" {
			return nil
		}
		calls++
		v, diags := call.Value(ctx)
		if diags.HasErrors() || v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
			h.Write([]byte{0})
			return nil
		}
		s := v.AsString()
		fmt.Fprintf(h, "\x01%d:", len(s))
		io.WriteString(h, s)
		return nil
	})
	if calls > 0 {
		h.Sum(sum[:0])
	}
	return sum
}
