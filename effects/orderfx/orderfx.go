// Package orderfx holds the side effects of order events: the order confirmation mail, sent
// once when an order is paid.
package orderfx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/mail"
	"github.com/techvault/techvault/pii"
)

// MailReactor is the reactor's name: its consumer group and checkpoint key, fixed for ever.
const MailReactor = "order_mail"

// MaxAge is how old a payment may be and still be mailed about: a reactor started late, or a long
// outage, sends no stale mail.
const MaxAge = 48 * time.Hour

// Sender sends one mail (package mail).
type Sender interface {
	Send(ctx context.Context, m mail.Message) error
}

// Keys opens a customer's sealed values (package pii).
type Keys interface {
	Box(ctx context.Context, userID int64) (pii.Box, error)
}

// Log reads an order's stream (its placement holds the lines and the address to mail).
type Log interface {
	Load(ctx context.Context, streamID string) ([]eventstore.Event, error)
}

// Mail sends the order confirmation when an order is paid. The Message-Id is the payment
// event's id, so a retry sends the same mail.
type Mail struct {
	Sender Sender
	Keys   Keys
	Log    Log
	Logger *slog.Logger
}

func (*Mail) Name() string          { return MailReactor }
func (*Mail) StreamTypes() []string { return []string{order.StreamType} }

// React mails the confirmation of a paid order.
func (m *Mail) React(ctx context.Context, e eventstore.Event) error {
	if e.Type != (order.MarkedPaid{}).EventType() {
		return nil
	}
	if time.Since(e.RecordedAt) > MaxAge {
		m.logger().InfoContext(ctx, "order mail not sent: the payment is too old", "event_id", e.ID)
		return nil
	}
	history, err := m.Log.Load(ctx, e.StreamID)
	if err != nil {
		return err
	}
	var placed *order.Placed
	for _, h := range history {
		if h.Type == (order.Placed{}).EventType() {
			d, err := order.Decode(h.Type, h.SchemaVersion, h.Data)
			if err != nil {
				return err
			}
			p := d.(order.Placed)
			placed = &p
			break
		}
	}
	if placed == nil || placed.Email == "" {
		return nil
	}
	box, err := m.Keys.Box(ctx, placed.UserID)
	if errors.Is(err, pii.ErrErased) {
		return nil
	}
	if err != nil {
		return err
	}
	to, err := box.Open(placed.Email)
	if err != nil {
		return fmt.Errorf("opening the order's address: %w", err)
	}
	if err := m.Sender.Send(ctx, mail.Message{ID: e.ID.String(), To: to, Template: mail.OrderConfirmation, Data: orderData(*placed)}); err != nil {
		if mail.Permanent(err) {
			m.logger().ErrorContext(ctx, "order mail cannot be sent; skipped", "order_id", placed.OrderID, "err", err)
			return nil
		}
		return err
	}
	return nil
}

func (m *Mail) logger() *slog.Logger {
	if m.Logger == nil {
		return slog.Default()
	}
	return m.Logger
}

func amount(v domain.Money, currency string) string { return v.String() + " " + currency }

func orderData(p order.Placed) mail.OrderData {
	d := mail.OrderData{OrderID: p.OrderID, Subtotal: amount(p.Subtotal, p.Currency), Total: amount(p.Total, p.Currency),
		PromoCode: p.PromoCode}
	if p.Discount > 0 {
		d.Discount = amount(p.Discount, p.Currency)
	}
	for _, l := range p.Lines {
		d.Lines = append(d.Lines, mail.OrderLine{Name: l.Name, Quantity: l.Quantity, Total: amount(l.Total, p.Currency)})
	}
	return d
}
