package main

import (
	"context"
	"os"

	dockersrc "github.com/occystrap/occystrap/sources/docker"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/uri"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

// dockerEngines holds one Docker engine client per socket for the process.
var dockerEngines dockerclient.Clients

// docker://IMAGE[:TAG][?socket=PATH]: an image in the local Docker dockerclient.
func init() {
	inputs["docker"] = func(ctx context.Context, a *app, u uri.URI) (stage.Input, error) {
		if err := knownOptions(u, "socket"); err != nil {
			return nil, err
		}
		c, err := dockerEngine(u)
		if err != nil {
			return nil, err
		}
		return dockersrc.Open(ctx, c, dockerImage(u), dockersrc.Options{TempDir: a.g.TempDir, Inflate: a.chosenInflater()})
	}
}

// dockerEngine is the client of the engine u names: ?socket=, else
// DOCKER_HOST=unix://PATH, else /var/run/docker.sock.
func dockerEngine(u uri.URI) (*dockerclient.Client, error) {
	opt, _ := u.String("socket")
	sock, err := dockerclient.ResolveSocket(opt, os.Getenv("DOCKER_HOST"))
	if err != nil {
		return nil, err
	}
	return dockerEngines.Get(sock), nil
}

// dockerImage is the IMAGE[:TAG] of a docker:// URI.
func dockerImage(u uri.URI) string {
	if u.Path == "" {
		return u.Host
	}
	return u.Host + "/" + u.Path
}
