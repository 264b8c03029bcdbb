package lifecycle

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/sandboxd/envd/internal/errs"
)

// maxBundleFile bounds how much of the system bundle is read back when the
// previous certificate is removed from it.
const maxBundleFile = 16 << 20

// caInstaller installs /init's caBundle into the system trust store
// (BEHAVIOR.md 10.4): appended to the bundle on the critical path, then
// persisted and the previous certificate removed in the background under
// the same lock. A caller that cannot get the lock before it gives up gets
// Unavailable (503, retryable; 11.3 E19).
type caInstaller struct {
	bundle, persist string
	log             *slog.Logger
	// lock is held from an install until its background cleanup is done.
	lock   chan struct{}
	last   string // normalised PEM installed last; guarded by lock
	loaded bool   // last was seeded from the persisted file; guarded by lock
	jobs   chan caJob
}

type caJob struct{ prev, cur string }

func newCAInstaller(bundle, persist string, log *slog.Logger) *caInstaller {
	return &caInstaller{bundle: bundle, persist: persist, log: log,
		lock: make(chan struct{}, 1), jobs: make(chan caJob, 1)}
}

// normalisePEM trims trailing whitespace and ends the text with one newline,
// so that a resend of the same bundle compares equal.
func normalisePEM(s string) string { return strings.TrimRight(s, " \t\r\n") + "\n" }

func validatePEM(s string) error {
	rest, n := []byte(s), 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return errs.New(errs.Invalid, "invalid CA bundle: %v", err)
		}
		n++
	}
	if n == 0 {
		return errs.New(errs.Invalid, "invalid CA bundle: no PEM certificate found")
	}
	return nil
}

func (c *caInstaller) install(ctx context.Context, pemText string) error {
	norm := normalisePEM(pemText)
	if err := validatePEM(norm); err != nil {
		return err
	}
	select {
	case c.lock <- struct{}{}:
	case <-ctx.Done():
		return errs.New(errs.Unavailable, "CA bundle install in progress")
	}
	if !c.loaded {
		if b, err := readBounded(c.persist, maxBundleFile); err == nil && len(b) > 0 {
			c.last = normalisePEM(string(b))
		}
		c.loaded = true
	}
	if norm == c.last && bundleHas(c.bundle, norm) {
		<-c.lock
		return nil // the resume case: already installed
	}
	if err := appendPEM(c.bundle, norm); err != nil {
		<-c.lock
		return errs.New(errs.Invalid, "cannot install CA bundle: %v", err)
	}
	prev := c.last
	c.last = norm
	c.jobs <- caJob{prev: prev, cur: norm} // never blocks: the lock admits one job
	return nil
}

// run does the background half of each install, then releases the lock.
func (c *caInstaller) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-c.jobs:
			c.cleanup(j)
			<-c.lock
		}
	}
}

func (c *caInstaller) cleanup(j caJob) {
	if err := os.MkdirAll(filepath.Dir(c.persist), 0o755); err == nil {
		err = replaceFile(c.persist, []byte(j.cur), 0o644)
		if err != nil {
			c.log.Warn("cannot persist CA bundle", "path", c.persist, "err", err)
		}
	}
	if j.prev == "" || j.prev == j.cur {
		return
	}
	b, err := readBounded(c.bundle, maxBundleFile)
	if err != nil {
		c.log.Warn("cannot read CA bundle", "path", c.bundle, "err", err)
		return
	}
	s := string(b)
	i := strings.LastIndex(s, j.prev)
	if i < 0 {
		return
	}
	if err := replaceFile(c.bundle, []byte(s[:i]+s[i+len(j.prev):]), 0o644); err != nil {
		c.log.Warn("cannot remove previous CA certificate", "path", c.bundle, "err", err)
	}
}

// bundleHas reports whether the bundle file contains text.
func bundleHas(path, text string) bool {
	b, err := readBounded(path, maxBundleFile)
	return err == nil && strings.Contains(string(b), text)
}

// appendPEM appends text to the bundle, starting on a fresh line.
func appendPEM(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			text = "\n" + text
		}
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
