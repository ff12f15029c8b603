package searches

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The index of answers by product stays bounded however many distinct answers are kept: the Put
// that would pass maxIndexed drops every answer and the index first. A card change drops the
// answers showing the product, and the volatile ones, and keeps the others.
func TestIndexStaysBoundedAndCardChangesDropWhatTheyChange(t *testing.T) {
	c, err := New(new(pgxpool.Pool), nil) // the pool is used by Run only
	if err != nil {
		t.Fatal(err)
	}
	c.drop(true)
	ids := make([]int64, 1000)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	for i := range maxIndexed/len(ids) + 1 {
		c.Put(fmt.Sprint("q", i), []byte("{}"), c.Begin(), ids, false)
		if c.indexed > maxIndexed {
			t.Fatalf("after %d answers the index holds %d entries, more than %d", i+1, c.indexed, maxIndexed)
		}
	}
	if _, ok := c.Get("q0"); ok {
		t.Error("the first answer survived the index's overflow")
	}
	last := fmt.Sprint("q", maxIndexed/len(ids))
	if _, ok := c.Get(last); !ok {
		t.Fatal("the answer put after the overflow is not kept")
	}

	c.Put("other", []byte("{}"), c.Begin(), []int64{5000}, false)
	c.Put("in-stock", []byte("{}"), c.Begin(), []int64{6000}, true)
	c.cardChanged(1)
	for key, want := range map[string]bool{last: false, "in-stock": false, "other": true} {
		if _, ok := c.Get(key); ok != want {
			t.Errorf("after product 1's card changed, %s kept: %v, want %v", key, ok, want)
		}
	}
}
