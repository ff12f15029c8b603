package domain_test

import (
	"encoding/json"
	"testing"

	"github.com/techvault/techvault/domain"
)

func TestParseMoney(t *testing.T) {
	tests := []struct {
		in      string
		want    domain.Money
		wantErr bool
	}{
		{"0", 0, false},
		{"12", 1200, false},
		{"12.5", 1250, false},
		{"1999.00", 199900, false},
		{"0.01", 1, false},
		{"-3.10", -310, false},
		{"999999999.99", domain.MaxMoney, false},
		{"", 0, true},
		{"abc", 0, true},
		{"1.234", 0, true},
		{"1.", 0, true},
		{".5", 0, true},
		{"1e3", 0, true},
		{"1,000.00", 0, true},
		{"12345678901234", 0, true},
		{"NaN", 0, true},
		{" 1.00 ", 0, true},
		{"1.00 ", 0, true},
		{"\t1", 0, true},
		{"+5", 0, true},
		{"+5.00", 0, true},
		{"-0", 0, true},
		{"-0.00", 0, true},
		{"-0.0", 0, true},
		{"--1", 0, true},
		{"-", 0, true},
		{"1.2.3", 0, true},
		{"١٢", 0, true}, // Arabic-Indic digits
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := domain.ParseMoney(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestMoneyJSON(t *testing.T) {
	var m domain.Money
	for in, want := range map[string]domain.Money{`"19.99"`: 1999, `19.9`: 1990, `20`: 2000} {
		if err := json.Unmarshal([]byte(in), &m); err != nil || m != want {
			t.Errorf("%s: got %d, %v", in, m, err)
		}
	}
	for _, bad := range []string{`19.999`, `"x"`, `true`, `1e2`, `-0`, `-0.00`, `" 1.00 "`, `"+5"`, `"-0.00"`} {
		if err := json.Unmarshal([]byte(bad), &m); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	b, _ := json.Marshal(domain.Money(5))
	if string(b) != `"0.05"` {
		t.Errorf("marshal = %s", b)
	}
}
