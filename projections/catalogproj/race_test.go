package catalogproj_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/projections/catalogproj"
)

// CreateProduct checks its category exists, but a DeleteCategory can commit between that check
// and the product's append, so the log may hold a product created (or moved) into a category
// deleted before it. The products projector shows such products uncategorised, live and rebuilt.
func TestProductIntoCategoryDeletedFirst(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := context.Background()
	projtest.StartEngine(t, e, 0)
	c, err := e.Cat.CreateCategory(ctx, projtest.MD, commands.CreateCategory{Name: "Scanners"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.Cat.CreateCategory(ctx, projtest.MD, commands.CreateCategory{Name: "Printers"})
	if err != nil {
		t.Fatal(err)
	}
	moved, err := e.Cat.CreateProduct(ctx, projtest.MD, commands.CreateProduct{Name: "Laser printer", Price: 19900, CategoryID: &other.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Cat.DeleteCategory(ctx, projtest.MD, c.ID); err != nil {
		t.Fatal(err)
	}

	// What the losing side of the race appends: events naming the category deleted above.
	appendRaw := func(streamID string, version int64, ev domain.Event) {
		t.Helper()
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Store.Append(ctx, projtest.StoreMD, eventstore.StreamAppend{StreamID: streamID, StreamType: catalog.ProductStreamType,
			ExpectedVersion: version, Events: []eventstore.NewEvent{{Type: ev.EventType(), SchemaVersion: ev.SchemaVersion(), Data: b}}}); err != nil {
			t.Fatal(err)
		}
	}
	newID, err := e.IDs.NextID(ctx, commands.ProductIDs)
	if err != nil {
		t.Fatal(err)
	}
	appendRaw(catalog.ProductStreamID(newID), 0, catalog.ProductCreated{ProductID: newID, Name: "Flatbed scanner",
		Price: 12900, Currency: "USD", CategoryID: &c.ID, Stock: 2})
	appendRaw(catalog.ProductStreamID(moved.ID), 1, catalog.ProductUpdated{ProductID: moved.ID, Name: "Laser printer",
		Price: 19900, CategoryID: &c.ID})

	check := func(when string) {
		t.Helper()
		projtest.WaitCaughtUp(t, e, catalogproj.ProductsProjector)
		for _, id := range []int64{newID, moved.ID} {
			p, err := e.Q.Product(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if p.CategoryID != nil {
				t.Errorf("%s: product %d is in deleted category %d", when, id, *p.CategoryID)
			}
		}
	}
	check("live")
	live := projtest.Snapshot(t, e, "products")
	projtest.Rebuild(t, e, catalogproj.Products{})
	check("rebuilt")
	projtest.RequireSameRows(t, "products: live vs rebuilt", live, projtest.Snapshot(t, e, "products"))
}

// The categories projector reads no CategoryReferenced (one per product put in a category): live
// and rebuilt, the table is the same, a rebuild reads the categories' own events only, and its
// cursor still ends at the log's last event (it does not scan the events it left out again).
func TestCategoriesSkipReferences(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := context.Background()
	projtest.StartEngine(t, e, 0)
	c, err := e.Cat.CreateCategory(ctx, projtest.MD, commands.CreateCategory{Name: "Docks"})
	if err != nil {
		t.Fatal(err)
	}
	name := "Docks and hubs"
	if _, err := e.Cat.UpdateCategory(ctx, projtest.MD, commands.UpdateCategory{ID: c.ID, Name: &name}); err != nil {
		t.Fatal(err)
	}
	for _, product := range []string{"USB-C dock", "Thunderbolt dock", "Travel hub"} {
		if _, err := e.Cat.CreateProduct(ctx, projtest.MD, commands.CreateProduct{Name: product, Price: 9900, CategoryID: &c.ID}); err != nil {
			t.Fatal(err)
		}
	}
	projtest.WaitCaughtUp(t, e, catalogproj.CategoriesProjector)
	cat, err := e.Q.Category(ctx, c.ID)
	if err != nil || cat.Name != name {
		t.Fatalf("category = %+v, %v", cat, err)
	}
	live := projtest.Snapshot(t, e, "categories")
	st := projtest.Rebuild(t, e, catalogproj.Categories{})
	if st.Events != 2 { // CategoryCreated, CategoryUpdated
		t.Errorf("the rebuild read %d events, want 2", st.Events)
	}
	var last eventstore.Cursor
	if err := e.Pool.QueryRow(ctx, `SELECT transaction_id::text::bigint, "offset" FROM events
		ORDER BY transaction_id DESC, "offset" DESC LIMIT 1`).Scan(&last.TxID, &last.Position); err != nil {
		t.Fatal(err)
	}
	if st.Cursor != last {
		t.Errorf("the rebuild ended at %+v, want the last event %+v", st.Cursor, last)
	}
	projtest.RequireSameRows(t, "categories: live vs rebuilt", live, projtest.Snapshot(t, e, "categories"))
}
