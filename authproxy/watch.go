package authproxy

import (
	"context"
	"maps"
	"os"
	"time"
)

// watchEvery is how often WatchConfig reads the configuration's files
// again. Reading a few small files a second costs nothing measurable, and
// the kubelet takes up to a minute or two to update a mounted ConfigMap.
const watchEvery = time.Second

// WatchConfig reloads the configuration (see Reload) at once when a signal
// arrives on hup (SIGHUP), and when a file that is part of it changes: every
// NAME_FILE in use and the files the configuration names, such as
// AUTHPROXY_POLICY_FILE. It reads them again every second and compares
// their content, by hash, with what it saw last, so that an edit in place, a
// new file renamed over the old one, and Kubernetes' update of a ConfigMap
// or Secret volume (the `..data` symlink renamed to point to a new
// directory) are all seen alike, and a write that leaves the content as it
// was reloads nothing. It returns when ctx ends. Run it in its own
// goroutine, at most one per Server.
func (s *Server) WatchConfig(ctx context.Context, lookup Lookup, hup <-chan os.Signal) {
	s.reload.mu.Lock()
	w := &configWatch{lookup: lookup, seen: s.reload.applied.sums}
	s.reload.mu.Unlock()
	if files := watchedFiles(lookup); len(files) > 0 {
		s.log.Info("watching configuration files for changes", "files", files, "every", watchEvery.String())
	}
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.log.Info("SIGHUP: reloading the configuration", "event", "config_reload")
			w.poll()
			_ = s.Reload(lookup) // logged and counted by Reload
		case <-tick.C:
			if w.poll() {
				_ = s.Reload(lookup)
			}
		}
	}
}

// configWatch tells when the configuration's files have changed.
type configWatch struct {
	lookup Lookup
	seen   fingerprints
}

// poll reads the configuration again and reports whether any variable,
// or the content of any of its files, differs from the last poll (or, the
// first time, from seen). A file that cannot be read is a change too, once.
func (w *configWatch) poll() bool {
	now := currentFingerprints(w.lookup)
	changed := !maps.Equal(now, w.seen)
	w.seen = now
	return changed
}

// watchedFiles lists the files that are part of the configuration lookup
// gives: each NAME_FILE in use and each watched variable's file.
func watchedFiles(lookup Lookup) []string {
	var files []string
	for _, iv := range instances(lookupIdPNames(lookup)) {
		if iv.v.secret || iv.v.file {
			if f, ok := lookup(iv.name + "_FILE"); ok && f != "" {
				files = append(files, f)
			}
		}
		if iv.v.watch {
			if f, ok := lookup(iv.name); ok && f != "" {
				files = append(files, f)
			}
		}
	}
	return files
}
