package queries_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/queries"
)

// planProducts is how many products the plan test loads: enough that a sequential scan costs the
// planner more than an index, as it does at the storefront's 100,000.
const planProducts = 20_000

// loadPlanCatalog fills a fresh database's read tables straight with SQL (the plans depend on the
// rows and their statistics, not on how they came): 200 categories, products spread over them
// with names and descriptions from a small vocabulary, prices from 5 to 2,500, one in eleven out
// of stock, ratings and creation times spread; then ANALYZE.
func loadPlanCatalog(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	for _, sql := range []string{
		`INSERT INTO categories (id, name, description, version)
			SELECT c, 'Category ' || c, 'Products of category ' || c, 1 FROM generate_series(1, 200) c`,
		`INSERT INTO products (id, name, description, price, category_id, stock, rating, rating_count, version, created_at, updated_at, search)
			SELECT i, name, descr, round((5 + (i * 7919) % 249500 / 100.0)::numeric, 2), 1 + i % 200,
				CASE WHEN i % 11 = 3 THEN 0 ELSE 1 + i % 50 END, round(((i * 31) % 501 / 100.0)::numeric, 2), i % 40, 1,
				timestamp '2025-01-01' + i * interval '1 minute', timestamp '2025-01-01' + i * interval '1 minute',
				techvault_search_vector(name, descr)
			FROM (SELECT i,
				(ARRAY['Aurora','Kestrel','Nimbus','Vertex','Quasar','Helix','Orion','Zephyr','Crème','Ærø'])[1 + i % 10] || ' ' ||
				(ARRAY['Laptop','Monitor','Keyboard','Headset','GPU','SSD','Router','Webcam','Dock','Mouse','Tablet','Speaker'])[1 + (i / 10) % 12] || ' ' ||
				(ARRAY['Pro','Air','Max','Lite','Ultra','Mini','X','S'])[1 + (i / 120) % 8] || ' ' || (100 + i % 900) AS name,
				(ARRAY['Low-latency wireless with a 40-hour battery and USB-C charging.',
					'Factory-calibrated panel, 144 Hz refresh and a height-adjustable stand.',
					'Hot-swappable switches, PBT keycaps and per-key RGB lighting.',
					'PCIe 4.0 NVMe drive with 7,000 MB/s reads and a five-year warranty.',
					'Tri-band Wi-Fi 6E mesh with 2.5 GbE and WPA3 out of the box.'])[1 + (i / 7) % 5] AS descr
				FROM generate_series(1, ` + fmt.Sprint(planProducts) + `) i) g`,
		`ANALYZE categories`,
		`ANALYZE products`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
}

// planNode is a node of EXPLAIN (FORMAT JSON).
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	Plans        []planNode `json:"Plans"`
}

func (n planNode) walk(fn func(planNode)) {
	fn(n)
	for _, c := range n.Plans {
		c.walk(fn)
	}
}

// explain returns the plan of f's statement, as the application runs it (with its values).
func explain(t *testing.T, pool *pgxpool.Pool, f queries.ProductFilter) (planNode, string) {
	t.Helper()
	sql, args, err := queries.ProductsSQL(f)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := pool.QueryRow(context.Background(), `EXPLAIN (FORMAT JSON) `+sql, args...).Scan(&raw); err != nil {
		t.Fatalf("EXPLAIN %s: %v", sql, err)
	}
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("EXPLAIN output %s: %v", raw, err)
	}
	return plans[0].Plan, sql
}

// Every filter of GET /products (category_id, min_price, max_price, in_stock both ways, q) in
// every combination, under every sort (and the rank order of a search without one), on the first
// page and on the page after it, is planned without a sequential scan of products on a catalog of
// planProducts products in 200 categories: an index gives the order or narrows the rows.
func TestEveryListingShapeUsesAnIndex(t *testing.T) {
	db := testdb.New(t)
	loadPlanCatalog(t, db.Pool)
	ctx := context.Background()
	category := int64(12) // Kestrel products among others, so that q and category meet
	minPrice, maxPrice := domain.Money(10000), domain.Money(50000)
	yes, no := true, false
	sorts := slices.Sorted(func(yield func(string) bool) {
		for s := range queries.ProductSorts {
			if !yield(s) {
				return
			}
		}
	})
	shapes, used := 0, map[string]bool{}
	for mask := range 1 << 4 {
		for _, inStock := range []*bool{nil, &yes, &no} {
			var f queries.ProductFilter
			var name []string
			if mask&1 != 0 {
				f.CategoryID, name = &category, append(name, "category_id")
			}
			if mask&2 != 0 {
				f.MinPrice, name = &minPrice, append(name, "min_price")
			}
			if mask&4 != 0 {
				f.MaxPrice, name = &maxPrice, append(name, "max_price")
			}
			if mask&8 != 0 {
				f.Q, name = "kestrel monit", append(name, "q")
			}
			if inStock != nil {
				f.InStock, name = inStock, append(name, fmt.Sprintf("in_stock=%t", *inStock))
			}
			for _, sort := range sorts {
				f := f
				f.Sort, f.Limit = sort, 20
				label := fmt.Sprintf("%s sort=%q", strings.Join(name, "+"), sort)
				first, err := (queries.NewCatalogQueries(db.Pool, 0)).Products(ctx, f)
				if err != nil {
					t.Fatalf("%s: %v", label, err)
				}
				pages := []queries.ProductFilter{f}
				if first.NextCursor != "" {
					next := f
					next.Cursor = first.NextCursor
					pages = append(pages, next)
				}
				for i, pf := range pages {
					plan, sql := explain(t, db.Pool, pf)
					shapes++
					plan.walk(func(n planNode) {
						if n.NodeType == "Seq Scan" && n.RelationName == "products" {
							b, _ := json.MarshalIndent(plan, "", " ")
							t.Errorf("%s (page %d): sequential scan of products\n%s\n%s", label, i+1, sql, b)
						}
						if n.IndexName != "" {
							used[n.IndexName] = true
						}
					})
				}
			}
		}
	}
	t.Logf("%d plans checked; indexes used: %v", shapes, slices.Sorted(func(yield func(string) bool) {
		for k := range used {
			if !yield(k) {
				return
			}
		}
	}))
	// A category page of each sort reads its category's own index, in the sort's order (and no
	// Sort node sorts what it read).
	for sort, index := range map[string]string{"": "products_category_idx", "price": "products_category_price_idx",
		"-price": "products_category_price_idx", "name": "products_category_name_idx",
		"-created_at": "products_category_created_idx", "-rating": "products_category_rating_idx"} {
		plan, sql := explain(t, db.Pool, queries.ProductFilter{CategoryID: &category, Sort: sort, Limit: 20})
		found := false
		plan.walk(func(n planNode) {
			// Index Scan, Index Only Scan, forwards or backwards: no Sort above it is needed.
			found = found || n.IndexName == index && strings.HasPrefix(n.NodeType, "Index")
		})
		sorted := false
		plan.walk(func(n planNode) { sorted = sorted || n.NodeType == "Sort" })
		if !found || sorted {
			b, _ := json.MarshalIndent(plan, "", " ")
			t.Errorf("category page sort=%q does not scan %s in order:\n%s\n%s", sort, index, sql, b)
		}
	}
}
