package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/auth/oidc"
	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/effects"
	"github.com/techvault/techvault/effects/accountfx"
	"github.com/techvault/techvault/effects/catalogfx"
	"github.com/techvault/techvault/effects/orderfx"
	"github.com/techvault/techvault/eventstore"
	api "github.com/techvault/techvault/http"
	"github.com/techvault/techvault/images"
	"github.com/techvault/techvault/mail"
	"github.com/techvault/techvault/payments"
	"github.com/techvault/techvault/pii"
	"github.com/techvault/techvault/queries"
	"github.com/techvault/techvault/ratelimit"
)

// The purposes of the keys derived from Config.Secret: each use has its own key, so none can
// stand in for another.
const (
	KeyTokens    = "techvault/tokens/v1"
	KeyLookup    = "techvault/pii-lookup/v1"
	KeyRateLimit = "techvault/rate-limit/v1"
	KeyOIDCState = "techvault/oidc-state/v1"
)

// DeriveKey derives the 32-byte key of one purpose from the server secret (HMAC-SHA256).
func DeriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// NewTokens returns the token issuer of a server secret (tvbench signs in with it too).
func NewTokens(secret []byte, accessTTL, refreshTTL time.Duration) (*auth.Tokens, error) {
	return auth.NewTokens(auth.TokenConfig{Seed: DeriveKey(secret, KeyTokens), AccessTTL: accessTTL, RefreshTTL: refreshTTL})
}

// accounts is what the customers' part adds to the wiring besides the commands.
type accounts struct {
	reactors []effects.Reactor
	limiter  *ratelimit.Limiter
	policy   ratelimit.Policy
	images   images.Store
	google   *oidc.Provider
}

// buildAccounts wires sign-in: the key vault, passwords, tokens, the account commands, the
// abuse limits, the picture store, Google and the account side effects.
func (a *App) buildAccounts(store *eventstore.Store) (accounts, error) {
	var acc accounts
	vault, err := pii.New(a.Pool, DeriveKey(a.cfg.Secret, KeyLookup))
	if err != nil {
		return acc, err
	}
	pw, err := auth.NewPasswords(a.cfg.Passwords)
	if err != nil {
		return acc, err
	}
	tokens, err := NewTokens(a.cfg.Secret, a.cfg.AccessTTL, a.cfg.RefreshTTL)
	if err != nil {
		return acc, err
	}
	ids := store.Sequences(map[string]string{commands.UserIDs: "user_ids", commands.EmailIDs: "email_ids",
		commands.PhoneIDs: "phone_ids", commands.AddressIDs: "address_ids"})
	a.Vault, a.Tokens = vault, tokens
	a.Users = commands.NewUsers(store, store, ids, vault, pw, commands.WithLogger(a.log), commands.WithAggregateCache(a.aggregates))
	if err := a.buildShop(store); err != nil {
		return acc, err
	}

	if !a.cfg.NoLimits {
		acc.policy = ratelimit.DefaultPolicy()
		if a.cfg.Limits != nil {
			acc.policy = *a.cfg.Limits
		}
		if err := acc.policy.Validate(); err != nil {
			return acc, err
		}
		if acc.limiter, err = ratelimit.New(ratelimit.Config{Redis: a.Redis, Prefix: a.redisPrefix(), Logger: a.log}); err != nil {
			return acc, err
		}
	}
	if a.cfg.Cloudinary.CloudName != "" {
		c, err := images.NewCloudinary(a.cfg.Cloudinary)
		if err != nil {
			return acc, err
		}
		acc.images = c
		acc.reactors = append(acc.reactors, accountfx.Images{Store: c}, catalogfx.Images{Store: c})
	}
	if a.cfg.Google.ClientID != "" {
		gc := a.cfg.Google
		gc.StateKey = DeriveKey(a.cfg.Secret, KeyOIDCState)
		if acc.google, err = oidc.New(gc); err != nil {
			return acc, err
		}
	}
	acc.reactors = append(acc.reactors, accountfx.KeyShredder{Keys: vault})
	if a.cfg.SMTP.Host != "" {
		sender, err := mail.New(a.cfg.SMTP)
		if err != nil {
			return acc, err
		}
		m, err := accountfx.NewMail(accountfx.MailConfig{Sender: sender, Keys: vault, Tokens: tokens,
			LinkBase: a.cfg.LinkBase, Logger: a.log})
		if err != nil {
			return acc, fmt.Errorf("account mail: %w", err)
		}
		acc.reactors = append(acc.reactors, m, &orderfx.Mail{Sender: sender, Keys: vault, Log: store, Logger: a.log})
	} else {
		a.log.Warn("SMTP_HOST is not set: account mail (verification, password reset) is not sent")
	}
	return acc, nil
}

// buildShop wires the cart, promo and order commands, with Stripe when it is configured.
func (a *App) buildShop(store *eventstore.Store) error {
	ids := store.Sequences(map[string]string{commands.OrderIDs: "order_ids", commands.PromoIDs: "promo_ids"})
	var pay commands.Payments
	if a.cfg.Stripe.SecretKey != "" {
		s, err := payments.New(a.cfg.Stripe)
		if err != nil {
			return err
		}
		a.stripe, pay = s, s
	} else {
		a.log.Warn("STRIPE_SECRET_KEY is not set: orders are placed without payment")
	}
	a.Shop = commands.NewShop(store, ids, pay, nil, commands.WithLogger(a.log), commands.WithAggregateCache(a.aggregates))
	return nil
}

// stripeWebhooks is the webhook verifier (nil without Stripe).
func (a *App) stripeWebhooks() api.StripeWebhooks {
	if a.stripe == nil {
		return nil
	}
	return a.stripe
}

// sweepUnpaidOrders cancels, every minute, the orders unpaid for longer than UnpaidOrderTTL.
func (a *App) sweepUnpaidOrders(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := a.CancelUnpaidOrders(ctx, a.cfg.UnpaidOrderTTL); err != nil && ctx.Err() == nil {
			a.log.Warn("cancelling unpaid orders", "err", err)
		}
	}
}

// CancelUnpaidOrders cancels the orders waiting for payment for longer than olderThan (at most
// 500 a call) and returns how many it cancelled. The work list comes from the orders read table
// (built from the log, so it survives restarts); each cancellation is decided on the order's own
// stream, where a paid or already cancelled order refuses it, so no order is cancelled twice,
// even with several processes sweeping.
func (a *App) CancelUnpaidOrders(ctx context.Context, olderThan time.Duration) (int, error) {
	ids, err := queries.NewUnpaidOrders(a.Pool).PlacedBefore(ctx, time.Now().Add(-olderThan), 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		_, err := a.Shop.CancelOrder(ctx, domain.Metadata{ActorID: "unpaid-order-sweeper", CorrelationID: "unpaid-" + strconv.FormatInt(id, 10)},
			commands.OrderRef{Admin: true, OrderID: id}, "unpaid")
		switch {
		case err == nil:
			n++
		case errors.Is(err, domain.ErrConflict):
		default:
			return n, err
		}
	}
	return n, nil
}
