package shops

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Watcher keeps the registry of a shops file current: Run re-reads the file
// on a reload signal and when it changed, Current is the last good registry
// and Changes hands each new one to whoever applies it.
//
// "Changed" is by content, not by modification time or inode: the file's
// bytes and those of every secret file it references are hashed, so an edit
// in place, a rename over it, a Kubernetes ConfigMap's symlink swap and a
// rotated Secret are all seen. Environment variables are read again at each
// parse too, but a process's environment does not change under it.
type Watcher struct {
	path    string
	getenv  func(string) string
	log     zerolog.Logger
	current atomic.Pointer[Registry]
	changes chan *Registry

	mu      sync.Mutex // one check at a time; guards what follows
	seen    [32]byte   // fingerprint of what the last parse read
	inputs  []input    // the variables and secret files the last parse read
	lastErr string     // the refusal last logged; "" after a good read

	checked func(reparsed bool, err error) // test hook: after each check, before Run goes on
}

// NewWatcher reads the shops file at path once and fails, with Load's error,
// on a bad file. getenv nil is the process's environment; log receives the
// reloads and refusals.
func NewWatcher(path string, getenv func(string) string, log zerolog.Logger) (*Watcher, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	w := &Watcher{path: path, getenv: getenv, log: log, changes: make(chan *Registry, 1)}
	reg, _, err := w.read(true)
	if err != nil {
		return nil, err
	}
	w.current.Store(reg)
	return w, nil
}

// Current is the last good registry. It is safe to call from any goroutine.
func (w *Watcher) Current() *Registry { return w.current.Load() }

// Changes receives each new good registry, after Current already returns it.
// The channel holds one: a registry not yet received is replaced by a newer
// one (latest wins), so a slow receiver skips intermediate registries but
// always ends with the current one. A re-read that yields a registry equal to
// the current one (only comments changed, or a reload signal with nothing
// changed) sends nothing.
func (w *Watcher) Changes() <-chan *Registry { return w.changes }

// Run re-reads the file until ctx ends: at once on each reload signal (the
// caller wires SIGHUP to reload; nil for none) and every interval when the
// file or a secret file it references changed (interval <= 0: no polling).
// A file that is refused keeps the last good registry; the refusal is logged
// with its line and field once per distinct error while polling, and again
// for each reload signal, which always logs its outcome.
func (w *Watcher) Run(ctx context.Context, reload <-chan struct{}, interval time.Duration) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-reload:
			if !ok {
				reload = nil // closed: no more signals, keep polling
				continue
			}
			w.check(true)
		case <-tick:
			w.check(false)
		}
	}
}

// check re-reads the file (when it changed, or always when forced), and
// applies or refuses it.
func (w *Watcher) check(forced bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	reg, reparsed, err := w.read(forced)
	switch {
	case err != nil:
		w.refuse(err, forced)
	case reparsed:
		w.accept(reg, forced)
	}
	if w.checked != nil {
		w.checked(reparsed, err)
	}
}

// read reads the file and parses it, unless force is false and neither it
// nor anything the last parse read changed (then reparsed is false).
func (w *Watcher) read(force bool) (reg *Registry, reparsed bool, err error) {
	data, err := readRegular(w.path, MaxFileSize)
	if err != nil {
		w.seen, w.inputs = [32]byte{}, nil
		return nil, true, &Error{file: true, Msg: "cannot read " + describeReadErr(w.path, err)}
	}
	secrets := secretReader(filepath.Dir(w.path))
	if !force && w.seen == w.fingerprint(data, secrets) {
		return nil, false, nil
	}
	rec := &recorder{getenv: w.getenv, readFile: secrets}
	reg, err = Parse(data, rec.env, rec.file)
	w.inputs = rec.inputs
	w.seen = digest(data, rec.inputs)
	return reg, true, err
}

func (w *Watcher) refuse(err error, forced bool) {
	msg := err.Error()
	if msg == w.lastErr && !forced {
		return
	}
	w.lastErr = msg
	w.log.Error().Str("file", w.path).Err(err).Int("shops", w.current.Load().Len()).
		Msg("shops file refused; the last good registry stays in use")
}

func (w *Watcher) accept(reg *Registry, forced bool) {
	recovered := w.lastErr != ""
	w.lastErr = ""
	old := w.current.Load()
	if reg.Equal(old) {
		if forced || recovered {
			w.log.Info().Str("file", w.path).Int("shops", old.Len()).Msg("shops file read; the registry is unchanged")
		}
		return
	}
	w.current.Store(reg)
	added, removed, changed := Diff(old, reg)
	defer w.publish(reg) // after the log line, which a receiver may look for
	w.log.Info().Str("file", w.path).Int("shops", reg.Len()).
		Int("added", len(added)).Int("removed", len(removed)).Int("changed", len(changed)).
		Strs("added_ids", atMost(added, 50)).Strs("removed_ids", atMost(removed, 50)).Strs("changed_ids", atMost(changed, 50)).
		Msg("shops file reloaded")
}

// publish puts reg on the one-slot channel, replacing one not yet received.
// Only check sends (under mu), so the loop ends: after a drain the slot is
// free unless the receiver's own take freed it first.
func (w *Watcher) publish(reg *Registry) {
	for {
		select {
		case w.changes <- reg:
			return
		default:
		}
		select {
		case <-w.changes:
		default:
		}
	}
}

func atMost(ids []string, n int) []string {
	if len(ids) > n {
		return ids[:n]
	}
	return ids
}

// input is one thing a parse read besides the file: a variable or a secret
// file, by name, with a hash of what was read (value or error). Only hashes
// are kept, so the watcher holds no secret beyond the registry itself.
type input struct {
	file bool
	name string
	sum  [32]byte
}

// recorder resolves secret references and notes what it read.
type recorder struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	inputs   []input
}

func (r *recorder) env(name string) string {
	v := r.getenv(name)
	r.inputs = append(r.inputs, input{name: name, sum: sumRead([]byte(v), nil)})
	return v
}

func (r *recorder) file(path string) ([]byte, error) {
	b, err := r.readFile(path)
	r.inputs = append(r.inputs, input{file: true, name: path, sum: sumRead(b, err)})
	return b, err
}

func sumRead(b []byte, err error) [32]byte {
	if err != nil {
		return sha256.Sum256(append([]byte{0}, err.Error()...))
	}
	return sha256.Sum256(append([]byte{1}, b...))
}

// digest is the fingerprint of a shops file and what its parse read.
func digest(data []byte, inputs []input) [32]byte {
	h := sha256.New()
	sum := sha256.Sum256(data)
	h.Write(sum[:])
	for _, in := range inputs {
		kind := byte(0)
		if in.file {
			kind = 1
		}
		h.Write([]byte{kind})
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(in.name))))
		h.Write([]byte(in.name))
		h.Write(in.sum[:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// fingerprint reads again what the last parse read, for digest.
func (w *Watcher) fingerprint(data []byte, readFile func(string) ([]byte, error)) [32]byte {
	now := make([]input, len(w.inputs))
	for i, in := range w.inputs {
		now[i] = in
		if in.file {
			now[i].sum = sumRead(readFile(in.name))
		} else {
			now[i].sum = sumRead([]byte(w.getenv(in.name)), nil)
		}
	}
	return digest(data, now)
}
