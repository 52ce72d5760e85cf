// Package api serves the Docker Engine API over HTTP so that silo's own
// CLI and the stock docker CLI both drive silod. It only translates: it
// decodes requests into the moby API types, calls the engine (the Backend
// interface), and encodes the answer; errors are mapped to HTTP statuses
// once, in writeError, from the classes in internal/errdefs.
//
// Paths are accepted with and without a version prefix (/v1.51/containers/json
// and /containers/json). Endpoints of the Docker API that silo does not
// serve yet answer 501 with a message naming the endpoint.
package api
