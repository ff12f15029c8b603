package catalogproj

import (
	"slices"
	"time"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// ProductImageTable is the products projector's table of product images. It is written in the
// products projector's transaction, so a product card refreshed after its notification sees the
// product and its images at the same point of the log.
const ProductImageTable = "product_image"

// imageFold accumulates the image events of a batch. Every image event carries the product's
// whole arrangement after it (order and cover), so the fold keeps the last arrangement of each
// product and needs no current row.
type imageFold struct {
	added    map[int64]addedImage // by image id
	removed  []int64              // image ids
	arranged map[int64]arrangement
	products []int64 // products with an arrangement, in first-seen order
	deleted  []int64 // deleted products
}

type addedImage struct {
	productID int64
	img       catalog.Image
	at        time.Time
}

// arrangement is a product's image order and cover after one of its events.
type arrangement struct {
	order   []int64
	cover   int64
	version int64
	at      time.Time
}

// fold takes the image events and product deletions of the batch. For an image event it
// returns its product and true; a deletion (recorded here too) is left to the products fold.
func (f *imageFold) fold(e eventstore.Event, d any) (productID int64, imageEvent bool) {
	switch d := d.(type) {
	case catalog.ProductImageAdded:
		if f.added == nil {
			f.added = map[int64]addedImage{}
		}
		f.added[d.ID] = addedImage{productID: d.ProductID, img: d.Image, at: e.RecordedAt}
		f.arrange(d.ProductID, d.Order, d.CoverImageID, e)
		return d.ProductID, true
	case catalog.ProductImageRemoved:
		f.removed = append(f.removed, d.ImageID)
		delete(f.added, d.ImageID)
		f.arrange(d.ProductID, d.Order, d.CoverImageID, e)
		return d.ProductID, true
	case catalog.ProductImagesArranged:
		f.arrange(d.ProductID, d.Order, d.CoverImageID, e)
		return d.ProductID, true
	case catalog.ProductDeleted:
		f.deleted = append(f.deleted, d.ProductID)
	}
	return 0, false
}

func (f *imageFold) arrange(productID int64, order []int64, cover int64, e eventstore.Event) {
	if f.arranged == nil {
		f.arranged = map[int64]arrangement{}
	}
	if _, seen := f.arranged[productID]; !seen {
		f.products = append(f.products, productID)
	}
	f.arranged[productID] = arrangement{order: order, cover: cover, version: e.Version, at: e.RecordedAt}
}

// statements writes the fold: one delete (removed images, deleted products' images), one insert
// (images added in the batch, placed as their product's last arrangement says) and one update
// (the position and cover of every image of an arranged product, guarded by version), however
// many events the batch holds.
func (f *imageFold) statements(t projections.Tables) []projections.Stmt {
	var out []projections.Stmt
	if len(f.removed) > 0 || len(f.deleted) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {product_image}
			WHERE id = ANY($1::bigint[]) OR product_id = ANY($2::bigint[])`), Args: []any{nonNil(f.removed), nonNil(f.deleted)}})
	}
	var (
		ins struct {
			ids, products, bytes, versions, positions []int64
			urls, publicIDs, thumbs, fulls, formats   []string
			widths, heights                           []int64
			covers                                    []bool
			created, at                               []time.Time
		}
		upd struct {
			ids, positions, versions []int64
			covers                   []bool
			at                       []time.Time
		}
	)
	for _, pid := range f.products {
		if slices.Contains(f.deleted, pid) {
			continue
		}
		a := f.arranged[pid]
		for i, id := range a.order {
			pos := int64(i + 1)
			upd.ids, upd.positions, upd.versions = append(upd.ids, id), append(upd.positions, pos), append(upd.versions, a.version)
			upd.covers, upd.at = append(upd.covers, id == a.cover), append(upd.at, a.at.UTC())
			add, ok := f.added[id]
			if !ok || add.productID != pid {
				continue
			}
			img := add.img
			ins.ids, ins.products, ins.positions = append(ins.ids, id), append(ins.products, pid), append(ins.positions, pos)
			ins.urls, ins.publicIDs = append(ins.urls, img.URL), append(ins.publicIDs, img.PublicID)
			ins.thumbs, ins.fulls, ins.formats = append(ins.thumbs, img.ThumbnailURL), append(ins.fulls, img.FullURL), append(ins.formats, img.Format)
			ins.widths, ins.heights, ins.bytes = append(ins.widths, int64(img.Width)), append(ins.heights, int64(img.Height)), append(ins.bytes, img.Bytes)
			ins.covers, ins.versions = append(ins.covers, id == a.cover), append(ins.versions, a.version)
			ins.created, ins.at = append(ins.created, add.at.UTC()), append(ins.at, a.at.UTC())
		}
	}
	if len(ins.ids) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {product_image} (id, product_id, position, url, image_id,
				thumbnail_url, full_url, format, width, height, bytes, cover, version, created_at, updated_at)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[],
				$8::text[], $9::int[], $10::int[], $11::bigint[], $12::bool[], $13::bigint[], $14::timestamptz[], $15::timestamptz[])
			ON CONFLICT (id) DO NOTHING`),
			Args: []any{ins.ids, ins.products, ins.positions, ins.urls, ins.publicIDs, ins.thumbs, ins.fulls, ins.formats,
				ins.widths, ins.heights, ins.bytes, ins.covers, ins.versions, ins.created, ins.at}})
	}
	if len(upd.ids) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`UPDATE {product_image} AS i SET position = u.position, cover = u.cover,
				version = u.version, updated_at = u.at
			FROM unnest($1::bigint[], $2::int[], $3::bool[], $4::bigint[], $5::timestamptz[]) AS u(id, position, cover, version, at)
			WHERE i.id = u.id AND i.version < u.version`),
			Args: []any{upd.ids, upd.positions, upd.covers, upd.versions, upd.at}})
	}
	return out
}

func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}
