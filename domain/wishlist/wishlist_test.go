package wishlist_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/wishlist"
)

func TestWishlist(t *testing.T) {
	w := wishlist.New(7)
	var history []domain.Event
	step := func(do func(*wishlist.Wishlist) error) error {
		t.Helper()
		err := do(w)
		history = append(history, w.Changes()...)
		w = wishlist.Rehydrate(7, history)
		return err
	}
	if err := step(func(w *wishlist.Wishlist) error { return w.Add(wishlist.Product{ID: 3, Exists: true}) }); err != nil {
		t.Fatal(err)
	}
	// Adding twice is harmless and records nothing.
	if err := step(func(w *wishlist.Wishlist) error { return w.Add(wishlist.Product{ID: 3, Exists: true}) }); err != nil || len(history) != 1 {
		t.Fatalf("second add: %v, %d events", err, len(history))
	}
	if err := step(func(w *wishlist.Wishlist) error { return w.Add(wishlist.Product{ID: 5, Exists: true}) }); err != nil {
		t.Fatal(err)
	}
	if err := step(func(w *wishlist.Wishlist) error { return w.Remove(3) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.Items(), []int64{5}) || w.Version() != 3 {
		t.Fatalf("items %v at version %d", w.Items(), w.Version())
	}

	for name, do := range map[string]func(*wishlist.Wishlist) error{
		"deleted product": func(w *wishlist.Wishlist) error { return w.Add(wishlist.Product{ID: 9, Exists: false}) },
		"bad id":          func(w *wishlist.Wishlist) error { return w.Add(wishlist.Product{ID: 0, Exists: true}) },
		"not on the list": func(w *wishlist.Wishlist) error { return w.Remove(3) },
	} {
		t.Run(name, func(t *testing.T) {
			fresh := wishlist.Rehydrate(7, history)
			if err := do(fresh); !errors.Is(err, domain.ErrNotFound) || len(fresh.Changes()) != 0 {
				t.Fatalf("err = %v with %d events, want not found and none", err, len(fresh.Changes()))
			}
		})
	}

	full := wishlist.New(8)
	for i := range wishlist.MaxItems {
		if err := full.Add(wishlist.Product{ID: int64(i + 1), Exists: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := full.Add(wishlist.Product{ID: wishlist.MaxItems + 1, Exists: true}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("one too many: %v", err)
	}
}

func TestWishlistSnapshotAndDecode(t *testing.T) {
	w := wishlist.New(7)
	for _, id := range []int64{4, 2, 9} {
		if err := w.Add(wishlist.Product{ID: id, Exists: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Remove(2); err != nil {
		t.Fatal(err)
	}
	var stored []domain.Event
	for _, e := range w.Changes() {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		d, err := wishlist.Decode(e.EventType(), e.SchemaVersion(), b)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, d)
	}
	loaded := wishlist.Rehydrate(7, stored)
	for at := 1; at <= len(stored); at++ {
		from, err := wishlist.RehydrateFrom(wishlist.Rehydrate(7, stored[:at]).Snapshot(), int64(at), stored[at:])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(from.Items(), loaded.Items()) || from.Version() != loaded.Version() {
			t.Fatalf("from the snapshot at %d: %v v%d; whole stream: %v v%d", at, from.Items(), from.Version(), loaded.Items(), loaded.Version())
		}
	}
	for _, bad := range []wishlist.State{{UserID: 0}, {UserID: 7, Items: []int64{3, 3}}, {UserID: 7, Items: []int64{-1}}} {
		if _, err := wishlist.RehydrateFrom(bad, 1, nil); err == nil {
			t.Errorf("impossible snapshot %+v accepted", bad)
		}
	}
	if _, err := wishlist.Decode("WishlistItemAdded", 2, []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("unknown version: %v", err)
	}
}
