// Package engine is a small client of the Docker Engine API over its unix
// socket: image inspect, save (GET /images/{ref}/get), load
// (POST /images/load), tag, untag and push, on unversioned paths as the original occystrap uses
// them. It needs no Docker client module: plain net/http with a transport
// that dials the socket.
//
// A Client is safe for concurrent use; make one per socket per process
// (Clients keeps them) so that connections are reused.
package dockerclient
