package core

import (
	"fmt"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// fileWatcher tells the reload loop when the config file may have changed.
// It watches the file's directory, not the file: editors save by writing a
// new file and renaming it over the old one, and Kubernetes swaps a
// symlink (driftd.hcl -> ..data/driftd.hcl, ..data -> ..<timestamp>) by
// renaming a new one over it; a watch on the file itself would follow the
// old inode and miss both. When the file is a symlink, the directory of its
// target is watched as well, so an edit of the target is seen too.
type fileWatcher struct {
	w    *fsnotify.Watcher
	path string          // the config file, absolute
	real string          // what path resolved to last; "" when it did not
	dirs map[string]bool // watched
}

func watchFile(path string) (*fileWatcher, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	fw := &fileWatcher{w: w, path: abs, real: realPath(abs), dirs: make(map[string]bool)}
	if err := fw.update(); err != nil {
		w.Close()
		return nil, err
	}
	return fw, nil
}

func realPath(p string) string {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return ""
	}
	return r
}

// update watches the file's directory and its target's, and stops watching
// a target directory the file no longer resolves to.
func (fw *fileWatcher) update() error {
	dir := filepath.Dir(fw.path)
	want := map[string]bool{dir: true}
	if fw.real != "" {
		want[filepath.Dir(fw.real)] = true
	}
	for d := range want {
		if fw.dirs[d] {
			continue
		}
		if err := fw.w.Add(d); err != nil {
			if d == dir {
				return fmt.Errorf("watch %s: %w", d, err)
			}
			continue // the target's directory may be gone already
		}
		fw.dirs[d] = true
	}
	for d := range fw.dirs {
		if !want[d] {
			_ = fw.w.Remove(d) // fails when the directory was removed: the watch went with it
			delete(fw.dirs, d)
		}
	}
	return nil
}

// relevant reports whether ev may have changed what the config file reads:
// it concerns the file or its target, or the file resolves somewhere else
// since the last event (a symlink on the way was swapped). Whether the
// content really changed is the reload's to find out, by its hash.
func (fw *fileWatcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	hit := name == fw.path || (fw.real != "" && name == fw.real)
	if real := realPath(fw.path); real != fw.real {
		fw.real = real
		_ = fw.update()
		hit = true
	}
	return hit
}

func (fw *fileWatcher) close() { _ = fw.w.Close() }
