package cart_test

import (
	"errors"
	"testing"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/cart"
)

// CartItemAdded is at v2 (the product's name added); a stored v1 still decodes, without a name.
func TestItemAddedVersions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version int
		data    string
		want    cart.ItemAdded
		err     error
	}{
		{"v1", 1, `{"user_id":7,"product_id":3,"quantity":2,"unit_price":"19.99"}`,
			cart.ItemAdded{UserID: 7, ProductID: 3, Quantity: 2, UnitPrice: 1999}, nil},
		{"v2", 2, `{"user_id":7,"product_id":3,"quantity":2,"unit_price":"19.99","name":"USB-C cable"}`,
			cart.ItemAdded{UserID: 7, ProductID: 3, Quantity: 2, UnitPrice: 1999, Name: "USB-C cable"}, nil},
		{"v3 is unknown", 3, `{}`, cart.ItemAdded{}, domain.ErrUnknownEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := cart.Decode("CartItemAdded", tc.version, []byte(tc.data))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || e != tc.want {
				t.Fatalf("decoded %#v, %v; want %#v", e, err, tc.want)
			}
		})
	}
	// Decoding another type at a version it does not read is still refused.
	if _, err := cart.Decode("CartItemRemoved", 2, []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("CartItemRemoved.v2: %v", err)
	}
}
