package orderproj_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/cart"
	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/promo"
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/pii"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// world appends domain events straight to the store (there are no order commands here), keeping
// each stream's version, and seals addresses with real per-user keys.
type world struct {
	t        *testing.T
	e        *projtest.Env
	vault    *pii.Vault
	versions map[string]int64
}

func newWorld(t *testing.T, e *projtest.Env) *world {
	t.Helper()
	vault, err := pii.New(e.Pool, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, e: e, vault: vault, versions: map[string]int64{}}
}

// append appends events to one stream and returns their positions.
func (w *world) append(streamID, streamType string, evs ...domain.Event) []int64 {
	w.t.Helper()
	news := make([]eventstore.NewEvent, 0, len(evs))
	for _, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			w.t.Fatal(err)
		}
		news = append(news, eventstore.NewEvent{Type: ev.EventType(), SchemaVersion: ev.SchemaVersion(), Data: b})
	}
	res, err := w.e.Store.Append(context.Background(), projtest.StoreMD, eventstore.StreamAppend{
		StreamID: streamID, StreamType: streamType, ExpectedVersion: w.versions[streamID], Events: news})
	if err != nil {
		w.t.Fatalf("appending to %s: %v", streamID, err)
	}
	w.versions[streamID] += int64(len(evs))
	return res.Positions
}

func (w *world) cart(userID int64, evs ...domain.Event) []int64 {
	w.t.Helper()
	return w.append(cart.StreamID(userID), cart.StreamType, evs...)
}

func (w *world) promo(id int64, evs ...domain.Event) []int64 {
	w.t.Helper()
	return w.append(promo.StreamID(id), promo.StreamType, evs...)
}

func (w *world) order(id int64, evs ...domain.Event) []int64 {
	w.t.Helper()
	return w.append(order.StreamID(id), order.StreamType, evs...)
}

// customer creates a user's key (the account itself is not needed by these read models).
func (w *world) customer(userID int64) {
	w.t.Helper()
	if _, err := w.vault.CreateKey(context.Background(), userID); err != nil {
		w.t.Fatal(err)
	}
}

// erase destroys a customer's key and records the erasure.
func (w *world) erase(userID int64) {
	w.t.Helper()
	if err := w.vault.Shred(context.Background(), userID); err != nil {
		w.t.Fatal(err)
	}
	w.append(user.StreamID(userID), user.StreamType, user.UserErased{UserID: userID})
}

// placed is an OrderPlaced event with the address sealed with the customer's key and totals
// computed from the lines.
func (w *world) placed(orderID, userID int64, discount domain.Money, promoID int64, code string, lines ...order.Line) order.Placed {
	w.t.Helper()
	box, err := w.vault.Box(context.Background(), userID)
	if err != nil {
		w.t.Fatal(err)
	}
	seal := func(s string) string {
		v, err := box.Seal(s)
		if err != nil {
			w.t.Fatal(err)
		}
		return v
	}
	var subtotal domain.Money
	for i := range lines {
		lines[i].Total = lines[i].UnitPrice * domain.Money(lines[i].Quantity)
		subtotal += lines[i].Total
	}
	return order.Placed{OrderID: orderID, UserID: userID, Lines: lines, Subtotal: subtotal, Discount: discount,
		Total: subtotal - discount, Currency: "USD", PromoID: promoID, PromoCode: code, AddressID: userID*10 + 1,
		Address: order.Address{City: seal("Lisbon"), PostCode: seal("1100-148"), Country: seal("PT")}}
}
