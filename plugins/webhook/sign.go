package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SignatureHeader carries the body's signature when a secret is configured.
const SignatureHeader = "X-Driftd-Signature"

// signaturePrefix names the algorithm in SignatureHeader, as GitHub's
// X-Hub-Signature-256 does.
const signaturePrefix = "sha256="

// Sign returns the hex-encoded HMAC-SHA256 of body keyed with secret: the
// value of SignatureHeader without its "sha256=" prefix. It is GitHub's
// webhook signature scheme, so receivers can reuse their GitHub code.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether header, the value of a request's SignatureHeader
// ("sha256=<hex>"), is the signature of body under secret. body must be the
// raw request body, before any JSON decoding. The comparison takes constant
// time.
func Verify(secret, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}
