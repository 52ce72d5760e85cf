// Package apiversion holds the Engine API versions silod serves, shared
// by the server (internal/api) and the client (internal/api/client)
// without either importing the other.
package apiversion

const (
	// Max is the newest API version served: the moby api module's.
	Max = "1.57"
	// Min is the oldest version accepted.
	Min = "1.24"
)
