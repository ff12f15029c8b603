package payments_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/techvault/techvault/payments"
)

func TestConfigValidate(t *testing.T) {
	ok := payments.Config{SecretKey: "sk_test_abc", WebhookSecret: "whsec_abc"}
	tests := []struct {
		name    string
		mutate  func(*payments.Config)
		wantErr string
	}{
		{"defaults", func(*payments.Config) {}, ""},
		{"live key and a mock base", func(c *payments.Config) { c.SecretKey = "sk_live_x"; c.APIBase = "http://127.0.0.1:12111/" }, ""},
		{"restricted key", func(c *payments.Config) { c.SecretKey = "rk_test_x" }, ""},
		{"no key", func(c *payments.Config) { c.SecretKey = "" }, "secret key is required"},
		{"publishable key", func(c *payments.Config) { c.SecretKey = "pk_test_abc" }, "must start with sk_test_"},
		{"no webhook secret", func(c *payments.Config) { c.WebhookSecret = "" }, "webhook secret is required"},
		{"webhook secret swapped", func(c *payments.Config) { c.WebhookSecret = "sk_test_abc" }, "must start with whsec_"},
		{"negative timeout", func(c *payments.Config) { c.Timeout = -time.Second }, "timeout"},
		{"base without scheme", func(c *payments.Config) { c.APIBase = "api.stripe.com" }, "API base"},
		{"base with a path", func(c *payments.Config) { c.APIBase = "https://api.stripe.com/v1" }, "API base"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			err := cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error about %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "abc"):
				t.Errorf("Validate's message %q holds a secret", err)
			}
			if _, nerr := payments.New(cfg); (nerr == nil) != (err == nil) {
				t.Errorf("New = %v, Validate = %v: they disagree", nerr, err)
			}
		})
	}
}

func TestConfigMasksSecrets(t *testing.T) {
	cfg := payments.Config{SecretKey: "sk_live_TOPSECRET1", WebhookSecret: "whsec_TOPSECRET2"}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "stripe", cfg)
	for _, out := range []string{
		logged.String(), fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), cfg.String(),
	} {
		if strings.Contains(out, "TOPSECRET") {
			t.Errorf("output holds a secret: %s", out)
		}
		if !strings.Contains(out, "sk_live_") {
			t.Errorf("output hides the key's mode: %s", out)
		}
	}
}

func TestIntentLogValueHidesClientSecret(t *testing.T) {
	var logged bytes.Buffer
	in := payments.Intent{ID: "pi_1", ClientSecret: "pi_1_secret_TOPSECRET", Status: "succeeded", AmountCents: 100, Currency: "eur"}
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("intent", "intent", in)
	if strings.Contains(logged.String(), "TOPSECRET") || !strings.Contains(logged.String(), "pi_1") {
		t.Errorf("logged %s: want the id and no client secret", logged.String())
	}
}
