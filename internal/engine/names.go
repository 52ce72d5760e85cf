package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"regexp"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Words for generated names ("adjective_noun", as docker names them).
var (
	nameAdjectives = []string{
		"agile", "amber", "bold", "brave", "bright", "calm", "clever", "cosmic",
		"crisp", "curious", "daring", "eager", "early", "fearless", "fluent", "frosty",
		"gentle", "golden", "happy", "humble", "jolly", "keen", "kind", "lucid",
		"lunar", "merry", "mighty", "modest", "nimble", "noble", "patient", "polar",
		"proud", "quick", "quiet", "rapid", "serene", "sharp", "shiny", "silent",
		"solar", "steady", "stoic", "sunny", "swift", "tender", "tidy", "vivid",
		"warm", "wise", "witty", "zealous",
	}
	nameNouns = []string{
		"ada", "archimedes", "babbage", "bohr", "boole", "cantor", "curie", "darwin",
		"dijkstra", "einstein", "euclid", "euler", "faraday", "fermat", "feynman", "fibonacci",
		"galileo", "gauss", "germain", "godel", "hamilton", "hawking", "hertz", "hilbert",
		"hopper", "hypatia", "kepler", "knuth", "lamarr", "laplace", "leibniz", "lovelace",
		"maxwell", "meitner", "mendel", "newton", "noether", "pascal", "pasteur", "planck",
		"ramanujan", "riemann", "ritchie", "shannon", "tesla", "thompson", "turing", "volta",
		"wozniak", "yalow",
	}
)

// validName is docker's rule for container names.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func randIndex(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return int(v.Int64())
}

// generateName returns a docker-style name; retry adds a digit, as docker
// does after a collision.
func generateName(retry int) string {
	n := nameAdjectives[randIndex(len(nameAdjectives))] + "_" + nameNouns[randIndex(len(nameNouns))]
	if retry > 0 {
		n += fmt.Sprint(randIndex(10))
	}
	return n
}

// checkName validates a user-given name and strips its leading "/".
func checkName(name string) (string, error) {
	if !validName.MatchString(name) {
		return "", fmt.Errorf("invalid container name %q, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	if name[0] == '/' {
		name = name[1:]
	}
	return name, nil
}

// newID returns a 64-digit hex container id.
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
