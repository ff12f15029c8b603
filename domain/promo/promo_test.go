package promo_test

import (
	"errors"
	"testing"
	"time"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/promo"
)

func TestPromoCodesAndTerms(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{{" save-10 ", "SAVE-10"}, {"a_b", "A_B"}, {"ab", ""}, {"dotless\u0131", ""}, {"kelvin\u212a", ""}, {"sp ace", ""}} {
		got, err := promo.NormaliseCode(tc.in)
		if got != tc.want || (tc.want == "") != errors.Is(err, domain.ErrInvalid) {
			t.Errorf("NormaliseCode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	expiry := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	terms := promo.Terms{Kind: promo.Amount, Value: 500, ExpiresAt: &expiry, UsageLimit: 3, Active: true}
	p, err := promo.New(1, "SAME", terms)
	if err != nil {
		t.Fatal(err)
	}
	p = promo.Rehydrate(p.Changes())
	sameInstant := expiry.In(time.FixedZone("CET", 3600))
	again := terms
	again.ExpiresAt = &sameInstant
	if err := p.Update(again); err != nil || len(p.Changes()) != 0 {
		t.Fatalf("updating to the terms it has: %v, %d events", err, len(p.Changes()))
	}
	again.Value = 600
	if err := p.Update(again); err != nil || len(p.Changes()) != 1 {
		t.Fatalf("a real update: %v, %d events", err, len(p.Changes()))
	}
}
