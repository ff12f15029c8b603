package commands

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/testdb"
)

// BenchmarkLoadProduct loads a product with a 10-event stream and one with a 10,000-event stream
// (from its snapshot, with a 25-event tail: the middle of what a load may replay), and, for
// reference, both in full as before snapshots. Each reports its ratio to the short load
// measured in the same run (x_short); nothing is asserted.
func BenchmarkLoadProduct(b *testing.B) {
	ctx := context.Background()
	db := testdb.New(b)
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		b.Fatal(err)
	}
	appendStock(b, store, 1, 10)
	appendStock(b, store, 2, 10_000)
	withSnaps := newLoader(store, store, []Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if _, err := loadAggregate(ctx, withSnaps, productKind, 2); err != nil { // writes the snapshot
		b.Fatal(err)
	}
	appendStock(b, store, 2, 25)
	full := newLoader(struct{ EventStore }{store}, nil, nil)

	var shortNs float64
	for _, bc := range []struct {
		name string
		l    loader
		id   int64
	}{
		{"events=10", withSnaps, 1},
		{"events=10/full-load", full, 1},
		{"events=10000", withSnaps, 2},
		{"events=10000/full-load", full, 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := loadAggregate(ctx, bc.l, productKind, bc.id); err != nil {
					b.Fatal(err)
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if bc.name == "events=10" {
				shortNs = ns
			}
			if shortNs > 0 {
				b.ReportMetric(ns/shortNs, "x_short")
			}
		})
	}
}

// appendStock appends n stock events to product id's stream (creating it first when new).
func appendStock(b *testing.B, store *eventstore.Store, id int64, n int) {
	b.Helper()
	ctx := context.Background()
	stream := catalog.ProductStreamID(id)
	evs, err := store.Load(ctx, stream)
	if err != nil {
		b.Fatal(err)
	}
	version := int64(len(evs))
	encode := func(e any, typ string) eventstore.NewEvent {
		data, err := json.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		return eventstore.NewEvent{Type: typ, SchemaVersion: 1, Data: data}
	}
	var batch []eventstore.NewEvent
	if version == 0 {
		batch = append(batch, encode(catalog.ProductCreated{ProductID: id, Name: "Bench product", Price: 100, Currency: catalog.Currency}, "ProductCreated"))
		n--
	}
	stock := version
	for i := range n {
		stock++
		batch = append(batch, encode(catalog.ProductStockAdjusted{ProductID: id, Delta: 1, Stock: stock}, "ProductStockAdjusted"))
		if len(batch) == 1000 || i == n-1 {
			if _, err := store.Append(ctx, eventstore.Metadata{}, eventstore.StreamAppend{StreamID: stream,
				StreamType: catalog.ProductStreamType, ExpectedVersion: version, Events: batch}); err != nil {
				b.Fatal(err)
			}
			version += int64(len(batch))
			batch = nil
		}
	}
}
