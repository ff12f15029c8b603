package domain_test

import (
	"errors"
	"testing"

	"github.com/techvault/techvault/domain"
)

type pinged struct {
	N int `json:"n"`
}

func (pinged) EventType() string  { return "Pinged" }
func (pinged) SchemaVersion() int { return 2 }

func TestRegistryDecode(t *testing.T) {
	r := domain.Registry{"Pinged": func() domain.Event { return &pinged{} }}
	e, err := r.Decode("Pinged", 2, []byte(`{"n":7}`))
	if p, ok := e.(pinged); err != nil || !ok || p.N != 7 {
		t.Fatalf("Decode = %#v, %v; want pinged{7} by value", e, err)
	}
	for _, tc := range []struct {
		name, typ string
		version   int
		data      string
	}{
		{"unknown type", "Ponged", 2, `{}`},
		{"older version", "Pinged", 1, `{"n":1}`},
		{"malformed", "Pinged", 2, `{"n":"seven"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.Decode(tc.typ, tc.version, []byte(tc.data)); err == nil {
				t.Fatal("decoded")
			} else if tc.name != "malformed" && !errors.Is(err, domain.ErrUnknownEvent) {
				t.Fatalf("err = %v, want ErrUnknownEvent", err)
			}
		})
	}
}
