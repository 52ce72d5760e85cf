// Package auth holds registry credentials on the client's side: the
// credential file that `silo login` writes and `silo pull`/`silo push`
// read (docker's config.json format, "auths" keyed by registry host, at
// ~/.config/silo/config.json or $SILO_CONFIG/config.json), and the check
// of a username and password against a registry before they are kept.
//
// The daemon never reads the file: the CLI sends the credentials of one
// registry with each request (docker's X-Registry-Auth header), as the
// docker CLI does, so one silod serves users with different logins.
//
// The check goes through go-containerregistry's transport: a ping of
// /v2/ learns the challenge (basic or bearer), then /v2/ is fetched with
// the credentials (for bearer, after a token was obtained with them). A
// 401 means wrong credentials.
package auth
