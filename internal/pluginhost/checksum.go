package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrChecksum means a plugin binary does not have the sha256 the config
// gives for it.
var ErrChecksum = errors.New("plugin binary checksum mismatch")

// ChecksumError is a plugin binary whose sha256 is not the expected one.
type ChecksumError struct {
	Path     string
	Expected string
	Actual   string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s has sha256 %s, expected %s", e.Path, e.Actual, e.Expected)
}

// Is makes errors.Is(err, ErrChecksum) true.
func (e *ChecksumError) Is(target error) bool { return target == ErrChecksum }

// FileSHA256 returns the hex sha256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkSHA256 checks the binary at path against want, a hex sha256.
func checkSHA256(path, want string) error {
	got, err := FileSHA256(path)
	if err != nil {
		return err
	}
	if !strings.EqualFold(got, want) {
		return &ChecksumError{Path: path, Expected: strings.ToLower(want), Actual: got}
	}
	return nil
}
