package auth_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/alexedwards/argon2id"

	"github.com/techvault/techvault/auth"
)

// BenchmarkHash hashes with DefaultParams from 16 goroutines, bare (the library alone) and
// through Passwords (with its concurrency bound): compare their hashes/s to see what the bound
// costs.
func BenchmarkHash(b *testing.B) {
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	d := auth.DefaultParams
	bare := &argon2id.Params{Memory: d.Memory, Iterations: d.Iterations, Parallelism: d.Parallelism, SaltLength: d.SaltLength, KeyLength: d.KeyLength}
	b.Run("bare", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := argon2id.CreateHash("correct horse battery staple", bare); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
	})
	b.Run("bounded", func(b *testing.B) {
		p, err := auth.NewPasswords(auth.DefaultParams)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := p.Hash(context.Background(), "correct horse battery staple"); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
	})
}
