package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/edgeway/edgeway/bench"
)

// phoneStore keeps one device's tokens between runs of `edgeway phone`
// and `edgeway onboard`, in DIR/DEVICE.json (mode 0600), as a phone keeps
// what it was given: the one-time activation code is spent once, later
// starts use the stored refresh token. The refresh token rotates on every
// use and a replayed one revokes its whole family (RFC 9700 §4.14.2), so
// each new set replaces the file atomically (temporary file + rename), and
// one process at a time holds the device (lock on DIR/DEVICE.lock).
type phoneStore struct {
	device string
	path   string
	lock   *os.File
}

// storedTokens is the file's content.
type storedTokens struct {
	Device   string       `json:"device"`
	Tokens   bench.Tokens `json:"tokens"`
	Obtained time.Time    `json:"obtained"` // when the access token was issued
	Saved    time.Time    `json:"saved"`
}

var deviceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// errDeviceBusy says another process holds the device's token file.
var errDeviceBusy = errors.New("device busy")

// openPhoneStore locks the device's token file in dir, creating dir.
func openPhoneStore(dir, device string) (*phoneStore, error) {
	if !deviceNameRE.MatchString(device) {
		return nil, fmt.Errorf("%w: device name %q: letters, digits, '.', '_' and '-' only", errUsage, device)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lockPath := filepath.Join(dir, device+".lock")
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errDeviceBusy) {
			return nil, fmt.Errorf("%w: another `edgeway phone` or `edgeway onboard` runs %s (it holds %s); "+
				"run one process per device: two would use the same rotating refresh token, and a replay revokes the family (RFC 9700 §4.14.2)",
				errDeviceBusy, device, lockPath)
		}
		return nil, fmt.Errorf("locking %s: %w", lockPath, err)
	}
	return &phoneStore{device: device, path: filepath.Join(dir, device+".json"), lock: f}, nil
}

// Load returns the stored tokens, ok false when there are none.
func (s *phoneStore) Load() (bench.Tokens, bool, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return bench.Tokens{}, false, nil
	}
	if err != nil {
		return bench.Tokens{}, false, err
	}
	var st storedTokens
	if err := json.Unmarshal(b, &st); err != nil {
		return bench.Tokens{}, false, fmt.Errorf("%s: %w (delete it to onboard again with a code)", s.path, err)
	}
	st.Tokens.Obtained = st.Obtained
	return st.Tokens, st.Tokens.AccessToken != "" || st.Tokens.RefreshToken != "", nil
}

// Save replaces the stored tokens atomically: a crash leaves the old file
// or the new one, never a torn one.
func (s *phoneStore) Save(t bench.Tokens) error {
	b, err := json.MarshalIndent(storedTokens{Device: s.device, Tokens: t, Obtained: t.Obtained, Saved: time.Now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(s.path)+".tmp*") // mode 0600
	if err != nil {
		return err
	}
	_, werr := tmp.Write(append(b, '\n'))
	if err := errors.Join(werr, tmp.Sync(), tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Forget removes the stored tokens (their family was refused).
func (s *phoneStore) Forget() error {
	err := os.Remove(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Close releases the device.
func (s *phoneStore) Close() error {
	if s == nil {
		return nil
	}
	return s.lock.Close() // closing the descriptor drops the flock
}
