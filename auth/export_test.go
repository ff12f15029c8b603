package auth

import "crypto/ed25519"

// KeyID is the kid of the key seed derives, so tests can forge tokens signed with it.
func KeyID(seed []byte) string {
	return keyID(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
}

// Fill takes every hashing slot, as that many concurrent hashes would; release gives them back.
func (p *Passwords) Fill() (release func()) {
	for range cap(p.sem) {
		p.sem <- struct{}{}
	}
	return func() {
		for range cap(p.sem) {
			<-p.sem
		}
	}
}

// Dummy is the hash CheckUnknown verifies against.
func (p *Passwords) Dummy() string { return p.dummy }
