package authproxy

import (
	"context"
	"time"

	"github.com/authproxy/authproxy/providers"
)

// idpProbeEvery is how often, with several IdPs, each IdP is asked for its
// discovery document: an IdP that stops answering after its discovery is
// then shown as unavailable on the chooser and in /readyz within this long,
// and offered again once it answers.
const idpProbeEvery = 10 * time.Second

// watchIdPs probes every IdP each idpProbeEvery until ctx ends. It runs only
// with several IdPs: with one, /readyz keeps its meaning (discovery loaded,
// the store answers), so that an IdP outage does not take out the replicas
// that still serve signed-in users.
func (s *Server) watchIdPs(ctx context.Context) {
	tick := time.NewTicker(idpProbeEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.probeIdPs(ctx)
		}
	}
}

// probeIdPs probes each IdP once (one at a time, each within the IdP
// timeout) and records whether it answered, logging each change.
func (s *Server) probeIdPs(ctx context.Context) {
	for _, p := range s.idps.list {
		pr, ok := p.provider.(providers.Prober)
		if !ok || p.provider.Ready() != nil {
			continue // not yet discovered: DiscoverWithRetry is on it
		}
		pctx, cancel := context.WithTimeout(ctx, s.cfg.IdPTimeout)
		err := pr.Probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch was := p.down.Swap(err != nil); {
		case err != nil && !was:
			s.log.Warn("identity provider not answering; its sign-ins are shown unavailable", "event", "idp_health", "idp", p.name(), "err", err)
		case err == nil && was:
			s.log.Info("identity provider answering again", "event", "idp_health", "idp", p.name())
		}
	}
}
