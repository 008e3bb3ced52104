package metric

// MaxNameLen is the length, in bytes, of the longest model, version or
// metric name.
const MaxNameLen = 128

// nameChar holds the bytes allowed in model, version and metric names.
var nameChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	t['.'], t['_'], t['-'] = true, true, true
	return t
}()

// ValidName tells whether s is a valid model, version or metric name: 1 to
// MaxNameLen characters of A-Z a-z 0-9 . _ - (README, "Pushing metrics").
// The metrics pushed, the config's metric and model names and the windows'
// snapshot all follow this one rule.
func ValidName[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameChar[s[i]] {
			return false
		}
	}
	return true
}
