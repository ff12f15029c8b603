package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/google/uuid"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
)

// Realistic catalog data: product events as the commands record them (the same structs, the same
// JSON), about 200 bytes for a ProductCreated.

var (
	brands  = []string{"Aurora", "Kestrel", "Nimbus", "Vertex", "Quasar", "Helix", "Orion", "Zephyr"}
	kinds   = []string{"Laptop", "Monitor", "Keyboard", "Headset", "GPU", "SSD", "Router", "Webcam", "Dock", "Mouse"}
	models  = []string{"Pro", "Air", "Max", "Lite", "Ultra", "Mini", "X", "S"}
	phrases = []string{
		"Low-latency wireless with a 40-hour battery and USB-C charging.",
		"Factory-calibrated panel, 144 Hz refresh and a height-adjustable stand.",
		"Hot-swappable switches, PBT keycaps and per-key RGB lighting.",
		"PCIe 4.0 NVMe drive with 7,000 MB/s reads and a five-year warranty.",
		"Tri-band Wi-Fi 6E mesh with 2.5 GbE and WPA3 out of the box.",
	}
)

func productName(id int64, r *rand.Rand) string {
	return fmt.Sprintf("%s %s %s %d", brands[r.IntN(len(brands))], kinds[r.IntN(len(kinds))], models[r.IntN(len(models))], 100+id%900)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func newEvent(e domain.Event) eventstore.NewEvent {
	return eventstore.NewEvent{Type: e.EventType(), SchemaVersion: e.SchemaVersion(), Data: mustJSON(e)}
}

func categoryOf(id int64) *int64 {
	c := 1 + id%12
	return &c
}

func productCreated(id int64, r *rand.Rand) (catalog.ProductCreated, eventstore.NewEvent) {
	e := catalog.ProductCreated{ProductID: id, Name: productName(id, r), Description: phrases[r.IntN(len(phrases))],
		Price: domain.Money(1999 + r.Int64N(250000)), Currency: catalog.Currency, CategoryID: categoryOf(id), Stock: 10 + r.Int64N(90)}
	return e, newEvent(e)
}

func productUpdated(id int64, r *rand.Rand) eventstore.NewEvent {
	return newEvent(catalog.ProductUpdated{ProductID: id, Name: productName(id, r), Description: phrases[r.IntN(len(phrases))],
		Price: domain.Money(1999 + r.Int64N(250000)), CategoryID: categoryOf(id)})
}

func stockAdjusted(id, delta, stock int64) eventstore.NewEvent {
	return newEvent(catalog.ProductStockAdjusted{ProductID: id, Delta: delta, Stock: stock})
}

// nextStock moves stock by a small random delta that keeps it non-negative.
func nextStock(stock int64, r *rand.Rand) (delta, after int64) {
	delta = r.Int64N(9) - 4
	if delta == 0 {
		delta = 1
	}
	if stock+delta < 0 {
		delta = -delta
	}
	return delta, stock + delta
}

// requestMetadata is the metadata of a command made over HTTP: three ids and the actor.
func requestMetadata() eventstore.Metadata {
	rid := uuid.Must(uuid.NewV7()).String()
	return eventstore.Metadata{CorrelationID: uuid.Must(uuid.NewV7()).String(), CausationID: rid, ActorID: "admin", RequestID: rid}
}

func newRand() *rand.Rand {
	return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
}
