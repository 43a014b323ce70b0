package main

import (
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/alecthomas/kong"

	registrysink "github.com/occystrap/occystrap/sinks/registry"
	"github.com/occystrap/occystrap/stage/uri"
	"github.com/occystrap/occystrap/transport"
)

// netState holds the process's one transport, made on first use so that
// runs that never touch the network build none.
type netState struct {
	mu sync.Mutex
	t  *transport.Transport
	// pushed is the run's record of blobs pushed to registry:// outputs, so
	// that the images of a multi-image run, each with its own output, push a
	// shared blob once and mount it elsewhere.
	pushed *registrysink.Pushed
}

// pushedSet returns the run's record of pushed blobs.
func (a *app) pushedSet() *registrysink.Pushed {
	a.net.mu.Lock()
	defer a.net.mu.Unlock()
	if a.net.pushed == nil {
		a.net.pushed = registrysink.NewPushed()
	}
	return a.net.pushed
}

// transport returns the process's transport, making it the first time.
func (a *app) transport() (*transport.Transport, error) {
	a.net.mu.Lock()
	defer a.net.mu.Unlock()
	if a.net.t != nil {
		return a.net.t, nil
	}
	t, err := transport.New(transport.Options{
		Parallel:      a.g.Parallel,
		ImageParallel: a.g.ImageParallel,
		Retries:       a.g.Retries,
		NoRetries:     a.g.Retries <= 0,
		RateLimit:     a.g.RateLimit.perSecond,
		RateLimitAuto: a.g.RateLimit.auto,
		StallTimeout:  a.g.StallTimeout,
		MaxRetryAfter: a.g.MaxRetryAfter,
		Secret:        func(s string) { a.secrets.Add(s) },
		Username:      a.g.Username,
		Password:      a.g.Password,
		CAFile:        a.g.CAFile,
		SkipVerify:    !a.g.TLSVerify,
	})
	if err != nil {
		return nil, err
	}
	a.net.t = t
	return t, nil
}

// transportStats returns the transport's counters, if one was made.
func (a *app) transportStats() (transport.Stats, bool) {
	a.net.mu.Lock()
	defer a.net.mu.Unlock()
	if a.net.t == nil {
		return transport.Stats{}, false
	}
	return a.net.t.Stats(), true
}

// registryAccess is how a registry:// URI reaches its registry: the global
// credentials, --insecure, --tls-verify and -j, overridden by the URI's
// username, password, insecure, tls_verify and max_workers options.
func registryAccess(a *app, u uri.URI) (ro transport.RegistryOptions, workers int, err error) {
	ro = transport.RegistryOptions{Insecure: a.g.Insecure, Username: a.g.Username, Password: a.g.Password}
	if v, ok := u.String("username"); ok {
		ro.Username = v
	}
	if v, ok := u.String("password"); ok {
		ro.Password = v
	}
	if _, uok := u.String("username"); uok || ro.Password != a.g.Password {
		a.noteCredentials(u.Host)
	}
	if ro.Insecure, err = u.Bool("insecure", ro.Insecure); err != nil {
		return ro, 0, err
	}
	if _, given := u.Options["tls_verify"]; given {
		verify, err := u.Bool("tls_verify", true)
		if err != nil {
			return ro, 0, err
		}
		ro.SkipVerify, ro.ForceVerify = !verify, verify
	}
	if workers, err = u.Int("max_workers", a.g.Parallel); err != nil {
		return ro, 0, err
	}
	return ro, workers, nil
}

// rateLimit is --rate-limit: a number of requests per second, or "auto".
type rateLimit struct {
	auto      bool
	perSecond float64
}

// Decode reads the flag's value (kong.MapperValue).
func (r *rateLimit) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("rate-limit", &s); err != nil {
		return err
	}
	if s == "auto" {
		*r = rateLimit{auto: true}
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("%q: want a number of requests per second (0: unlimited) or auto", s)
	}
	*r = rateLimit{perSecond: f}
	return nil
}
