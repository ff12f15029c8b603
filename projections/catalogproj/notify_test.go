package catalogproj_test

import (
	"testing"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/domain/review"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections/catalogproj"
)

// ProductMatchesChannel hears of a batch only when a product may match or sort differently:
// stock, image and rating changes alone change cards, not matches.
func TestProductMatchesNotifications(t *testing.T) {
	product := func(typ string) eventstore.Event {
		return eventstore.Event{StreamType: catalog.ProductStreamType, StreamID: catalog.ProductStreamID(7), Type: typ}
	}
	rating := eventstore.Event{StreamType: review.StreamType, StreamID: "review-1", Type: "ReviewWritten"}
	for _, tc := range []struct {
		name    string
		batch   []eventstore.Event
		changed bool
	}{
		{"stock only", []eventstore.Event{product(catalog.ProductStockAdjusted{}.EventType()),
			product(catalog.ProductStockReserved{}.EventType()), product(catalog.ProductStockReleased{}.EventType())}, false},
		{"images only", []eventstore.Event{product(catalog.ProductImageAdded{}.EventType()),
			product(catalog.ProductImagesArranged{}.EventType()), product(catalog.ProductImageRemoved{}.EventType())}, false},
		{"a review", []eventstore.Event{rating}, false},
		{"a product created", []eventstore.Event{product(catalog.ProductCreated{}.EventType())}, true},
		{"an edit among sales", []eventstore.Event{product(catalog.ProductStockReserved{}.EventType()),
			product(catalog.ProductUpdated{}.EventType())}, true},
		{"a product deleted", []eventstore.Event{product(catalog.ProductDeleted{}.EventType())}, true},
		{"an event type added later", []eventstore.Event{product("ProductSomethingNew")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := catalogproj.Products{}.ExtraNotifications(tc.batch)
			if changed := len(ns) == 1 && ns[0].Channel == catalogproj.ProductMatchesChannel && ns[0].Payload == "changed"; changed != tc.changed || (!tc.changed && len(ns) > 0) {
				t.Fatalf("notifications %+v; want changed = %v", ns, tc.changed)
			}
		})
	}
}
