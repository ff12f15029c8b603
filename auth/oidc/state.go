package oidc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// stateCookie is the name of the cookie carrying a sign-in's flowState.
const stateCookie = "tv_oidc_state"

// stateContext separates this cookie's MACs from anything else StateKey might sign.
const stateContext = "techvault oidc state v1\x00"

// maxCookieLen bounds the cookie value read; a sealed state is about 250 bytes.
const maxCookieLen = 1024

// flowState is what one sign-in carries from Start to Finish.
type flowState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"` // PKCE code verifier
	Expires  int64  `json:"e"` // Unix seconds
}

// sealState encodes st as base64url(JSON) "." base64url(HMAC-SHA256).
func sealState(key []byte, st flowState) (string, error) {
	payload, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("encoding the sign-in state: %w", err)
	}
	body := base64.RawURLEncoding.EncodeToString(payload)
	return body + "." + base64.RawURLEncoding.EncodeToString(stateMAC(key, body)), nil
}

// errBadState: the cookie is malformed or its signature does not match.
var errBadState = errors.New("bad sign-in state")

// openState checks value's signature and decodes it. Expiry is the caller's to check.
func openState(key []byte, value string) (flowState, error) {
	if len(value) > maxCookieLen {
		return flowState{}, errBadState
	}
	body, sig, ok := strings.Cut(value, ".")
	if !ok {
		return flowState{}, errBadState
	}
	mac, err := strictB64.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, stateMAC(key, body)) {
		return flowState{}, errBadState
	}
	payload, err := strictB64.DecodeString(body)
	if err != nil {
		return flowState{}, errBadState
	}
	var st flowState
	if err := json.Unmarshal(payload, &st); err != nil {
		return flowState{}, errBadState
	}
	if st.State == "" || st.Nonce == "" || st.Verifier == "" || st.Expires == 0 {
		return flowState{}, errBadState
	}
	return st, nil
}

func stateMAC(key []byte, body string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(stateContext))
	m.Write([]byte(body))
	return m.Sum(nil)
}

// strictB64 refuses non-canonical encodings, so one state has one cookie value.
var strictB64 = base64.RawURLEncoding.Strict()
