package auth

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
