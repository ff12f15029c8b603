package commands_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
)

// The reproduction of issue 11 item 1: in each round a category is deleted while four products
// are created in it and one is moved into it. Every product event naming the category must come
// before the category's deletion in delivery order, and every successful answer must be what the
// log says.
func TestCategoryDeletionRacesProductReferences(t *testing.T) {
	cat, store := newCatalog(t)
	ctx := context.Background()
	md := domain.Metadata{ActorID: "test"}

	type answer struct {
		res commands.ProductResult
		err error
	}
	const rounds = 25
	var (
		mu       sync.Mutex
		answers  []answer
		deleted  = map[int64]bool{}
		accepted int
	)
	for range rounds {
		x, err := cat.CreateCategory(ctx, md, commands.CreateCategory{Name: "Doomed"})
		if err != nil {
			t.Fatal(err)
		}
		moving, err := cat.CreateProduct(ctx, md, commands.CreateProduct{Name: "Mover", Price: 100})
		if err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			<-start
			if _, err := cat.DeleteCategory(ctx, md, x.ID); err != nil {
				t.Errorf("deleting category %d: %v", x.ID, err)
			}
		})
		run := func(f func() (commands.ProductResult, error)) {
			wg.Go(func() {
				<-start
				res, err := f()
				mu.Lock()
				answers = append(answers, answer{res, err})
				mu.Unlock()
			})
		}
		for range 4 {
			run(func() (commands.ProductResult, error) {
				return cat.CreateProduct(ctx, md, commands.CreateProduct{Name: "New", Price: 100, CategoryID: &x.ID})
			})
		}
		run(func() (commands.ProductResult, error) {
			return cat.UpdateProduct(ctx, md, commands.UpdateProduct{ID: moving.ID, CategoryID: &x.ID})
		})
		close(start)
		wg.Wait()
		deleted[x.ID] = true
	}

	log := deliveredLog(t, store)
	byPosition := map[int64]eventstore.Event{}
	gone := map[int64]bool{}
	for _, e := range log {
		byPosition[e.Position] = e
		d, err := catalog.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		var named *int64
		switch d := d.(type) {
		case catalog.CategoryDeleted:
			gone[d.CategoryID] = true
		case catalog.ProductCreated:
			named = d.CategoryID
		case catalog.ProductUpdated:
			named = d.CategoryID
		}
		if named != nil && gone[*named] {
			t.Errorf("%s at %d names category %d after its deletion", e.Type, e.Position, *named)
		}
	}

	for _, a := range answers {
		if a.err != nil {
			var de *domain.Error
			if !errors.As(a.err, &de) || !errors.Is(a.err, domain.ErrInvalid) || de.Field != "category_id" {
				t.Errorf("refusal = %v, want an invalid category_id", a.err)
			}
			continue
		}
		accepted++
		if a.res.CategoryID == nil || !deleted[*a.res.CategoryID] {
			t.Errorf("accepted answer names category %v, want the raced one", a.res.CategoryID)
			continue
		}
		// The answer's position holds a reference to its category, in the same transaction as
		// the product's event.
		e, ok := byPosition[a.res.Position]
		if !ok {
			t.Errorf("answer position %d is not in the log", a.res.Position)
			continue
		}
		var found bool
		for _, o := range log {
			if o.TxID != e.TxID || o.StreamType != catalog.ProductStreamType {
				continue
			}
			d, _ := catalog.Decode(o.Type, o.SchemaVersion, o.Data)
			switch d := d.(type) {
			case catalog.ProductCreated:
				found = found || (d.ProductID == a.res.ID && d.CategoryID != nil && *d.CategoryID == *a.res.CategoryID)
			case catalog.ProductUpdated:
				found = found || (d.ProductID == a.res.ID && d.CategoryID != nil && *d.CategoryID == *a.res.CategoryID)
			}
		}
		if !found {
			t.Errorf("answer %+v: its transaction holds no product event naming category %d", a.res, *a.res.CategoryID)
		}
	}
	t.Logf("%d of %d product commands accepted before the deletion, %d refused", accepted, len(answers), len(answers)-accepted)
	if len(answers) != rounds*5 {
		t.Fatalf("%d answers, want %d", len(answers), rounds*5)
	}
}

// deliveredLog reads the whole log in delivery order, once every event is visible to readers (a
// transaction open anywhere on the server holds delivery back).
func deliveredLog(t *testing.T, store *eventstore.Store) []eventstore.Event {
	t.Helper()
	ctx := context.Background()
	var total int
	if err := store.Pool().QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var log []eventstore.Event
		if _, err := eventstore.Scan(ctx, store.Pool(), eventstore.Cursor{}, func(e eventstore.Event) error {
			log = append(log, e)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(log) == total {
			return log
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d events became visible", len(log), total)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
