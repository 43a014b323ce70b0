package main

import (
	"context"
	"fmt"

	"github.com/occystrap/occystrap/internal/redact"
	dockersink "github.com/occystrap/occystrap/sinks/docker"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/uri"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

// docker://IMAGE[:TAG][?socket=PATH]: load into the local Docker engine,
// tagged IMAGE:TAG (TAG defaults to latest).
func init() {
	outputs["docker"] = func(_ context.Context, a *app, u uri.URI) (stage.Output, error) {
		if err := knownOptions(u, "socket"); err != nil {
			return nil, err
		}
		img := dockerImage(u)
		if img == "" {
			return nil, fmt.Errorf("docker URI %q: expected docker://IMAGE[:TAG]", redact.URI(u.Raw))
		}
		c, err := dockerEngine(u)
		if err != nil {
			return nil, err
		}
		return dockersink.New(c, dockerclient.ParseImage(img), dockersink.Options{TempDir: a.g.TempDir}), nil
	}
}
