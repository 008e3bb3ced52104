package webhook

import "testing"

// TestSignGitHubVector checks Sign against the test vector GitHub publishes
// for X-Hub-Signature-256 ("Validating webhook deliveries").
func TestSignGitHubVector(t *testing.T) {
	const want = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	got := Sign([]byte("It's a Secret to Everybody"), []byte("Hello, World!"))
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if !Verify([]byte("It's a Secret to Everybody"), []byte("Hello, World!"), "sha256="+want) {
		t.Fatal("Verify refuses GitHub's test vector")
	}
}

func TestVerify(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"id":"j1"}`)
	good := "sha256=" + Sign(secret, body)
	for _, tc := range []struct {
		name   string
		secret []byte
		body   []byte
		header string
		want   bool
	}{
		{"good", secret, body, good, true},
		{"wrong secret", []byte("other"), body, good, false},
		{"body changed", secret, []byte(`{"id":"j2"}`), good, false},
		{"no prefix", secret, body, Sign(secret, body), false},
		{"other algorithm", secret, body, "sha1=" + Sign(secret, body), false},
		{"not hex", secret, body, "sha256=zz", false},
		{"truncated", secret, body, good[:len(good)-2], false},
		{"empty", secret, body, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Verify(tc.secret, tc.body, tc.header); got != tc.want {
				t.Fatalf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}
