package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/internal/app"

	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/projections/orderproj"
)

// What tvbench needs of the projection framework, in one place (with synthetic.go, whose
// projectors implement its interface), so that moving packages touches these two files only.

// appProjector is a projector the application's engine runs.
type appProjector = projections.Projector

// productsProjector is the products read model's projector name (its checkpoint key).
const productsProjector = catalogproj.ProductsProjector

// ordersProjector and cartsProjector are the order platform's projectors of orders and carts.
const (
	ordersProjector = orderproj.OrdersProjector
	cartsProjector  = orderproj.CartsProjector
)

// projectorNames are the names of the projectors serve runs (every read model's).
func projectorNames() []string {
	var names []string
	for _, p := range app.Projectors() {
		names = append(names, p.Name())
	}
	return names
}

// catalogProjectors are the projectors serve runs.
func catalogProjectors() []appProjector { return catalogproj.Projectors() }

// productsOnly is the products projector alone.
func productsOnly() []appProjector { return []appProjector{catalogproj.Products{}} }

// rebuildProducts rebuilds the products read model from the log; it returns the events read and
// the time the rebuild reports having taken.
func rebuildProducts(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (int64, float64, error) {
	st, err := projections.Rebuild(ctx, pool, catalogproj.Products{}, log)
	return st.Events, st.Duration.Seconds(), err
}

// projectorList names the catalog's projectors.
func projectorList() string {
	var names []string
	for _, p := range catalogproj.Projectors() {
		names = append(names, p.Name())
	}
	return strings.Join(names, ", ")
}
