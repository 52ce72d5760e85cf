package api

import (
	"context"
	"net/http"

	mobynet "github.com/moby/moby/api/types/network"

	"github.com/silo-containers/silo/internal/engine"
)

// maxNetworkBody bounds network create/connect requests.
const maxNetworkBody = 1 << 20

// answerFiltered reads the filters parameter, calls fn with it and answers
// fn's result as JSON: the shape of every list and prune endpoint.
func answerFiltered[T any](w http.ResponseWriter, r *http.Request, fn func(context.Context, engine.Filters) (T, error)) {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		writeError(w, err)
		return
	}
	v, err := fn(r.Context(), f)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) networkList(w http.ResponseWriter, r *http.Request) {
	answerFiltered(w, r, s.b.NetworkList)
}

func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request) {
	n, err := s.b.NetworkInspect(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request) {
	var req mobynet.CreateRequest
	if err := decodeBody(r, &req, maxNetworkBody); err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.b.NetworkCreate(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request) {
	if err := s.b.NetworkRemove(r.Context(), r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request) {
	var req mobynet.ConnectRequest
	if err := decodeBody(r, &req, maxNetworkBody); err != nil {
		writeError(w, err)
		return
	}
	if err := s.b.NetworkConnect(r.Context(), r.PathValue("id"), req.Container, req.EndpointConfig); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) networkDisconnect(w http.ResponseWriter, r *http.Request) {
	var req mobynet.DisconnectRequest
	if err := decodeBody(r, &req, maxNetworkBody); err != nil {
		writeError(w, err)
		return
	}
	if err := s.b.NetworkDisconnect(r.Context(), r.PathValue("id"), req.Container); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request) {
	answerFiltered(w, r, func(ctx context.Context, f engine.Filters) (mobynet.PruneReport, error) {
		deleted, err := s.b.NetworkPrune(ctx, f)
		return mobynet.PruneReport{NetworksDeleted: deleted}, err
	})
}

// maxPolicyBody bounds an endpoint policy request.
const maxPolicyBody = 1 << 20

// endpointPolicies is silo's own: replace a container's ACLs, outbound
// NAT and QoS on one network, live.
func (s *Server) endpointPolicies(w http.ResponseWriter, r *http.Request) {
	var p engine.EndpointPolicies
	if err := decodeBody(r, &p, maxPolicyBody); err != nil {
		writeError(w, err)
		return
	}
	if err := s.b.SetEndpointPolicies(r.Context(), r.PathValue("id"), r.PathValue("net"), p); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
