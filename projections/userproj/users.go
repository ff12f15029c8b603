// Package userproj is the customers' read model: the users projector (users, emails,
// phones_numbers, addresses, user_image) and the notifications projector. Personal data arrives
// sealed in the events; the statements open it with the owner's key inside Postgres
// (pii_open over user_keys), so an erased person, whose key is gone, can never reappear, not
// even in a rebuild.
package userproj

import (
	"fmt"
	"strings"
	"time"

	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// Projector names: consumer groups and checkpoint keys, fixed for ever.
const (
	UsersProjector         = "users"
	NotificationsProjector = "notifications"
)

// Projectors returns the read model's projectors.
func Projectors() []projections.Projector {
	return []projections.Projector{Users{}, Notifications{}}
}

// ProfilesChannel is the NOTIFY channel on which the users projector announces the accounts a
// batch changed (after its commit), for the in-process profile caches.
const ProfilesChannel = "techvault_profiles"

// Users projects the account tables.
type Users struct{}

// NotifyChannel implements projections.Notifier.
func (Users) NotifyChannel() string { return ProfilesChannel }

// Notifications are the ids of the accounts a batch changed.
func (Users) Notifications(batch []eventstore.Event) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range batch {
		if e.StreamType != user.StreamType {
			continue
		}
		id := strings.TrimPrefix(e.StreamID, "user-")
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func (Users) Name() string { return UsersProjector }
func (Users) Tables() []string {
	return []string{"users", "emails", "phones_numbers", "addresses", "user_image"}
}
func (Users) StreamTypes() []string { return []string{user.StreamType} }

// open is the SQL of a sealed column's plaintext (” once the key is gone).
func open(col string) string { return "coalesce(pii_open(" + col + ", b.key), '')" }

// fold is a batch's effect on the account tables, folded in log order. Every event carries the
// absolute values it sets, so the fold needs no current row.
type fold struct {
	users     map[int64]*userRow
	userOrder []int64
	emails    entities
	phones    entities
	addresses entities
	images    map[int64]*imageRow
	erased    []int64
	touched   map[int64]bool // users whose email_verified may change
}

type userRow struct {
	id                   int64
	created              bool
	first, last, pw      *user.Sealed
	role                 *user.Role
	version              int64
	createdAt, updatedAt time.Time
}

// entity is an email, phone or address row: created in the batch (insert), changed (update of
// the values set), or removed (delete).
type entity struct {
	id, userID           int64
	created, removed     bool
	values               []user.Sealed // email: [email]; phone: [number]; address: [city, post code, country]
	verified             bool
	version              int64
	createdAt, updatedAt time.Time
}

type entities struct {
	rows      map[int64]*entity
	order     []int64
	primaries map[int64]int64 // user → the entity made primary last in the batch
}

func newEntities() entities {
	return entities{rows: map[int64]*entity{}, primaries: map[int64]int64{}}
}

func (es *entities) get(id, userID int64) *entity {
	r, ok := es.rows[id]
	if !ok {
		r = &entity{id: id, userID: userID}
		es.rows[id] = r
		es.order = append(es.order, id)
	}
	return r
}

type imageRow struct {
	userID      int64
	set         bool // false: removed
	deleteFirst bool // removed earlier in the batch, then set again: a new row
	publicID    string
	url         user.Sealed
	version     int64
	createdAt   time.Time
	updatedAt   time.Time
}

func (f *fold) user(id int64) *userRow {
	r, ok := f.users[id]
	if !ok {
		r = &userRow{id: id}
		f.users[id] = r
		f.userOrder = append(f.userOrder, id)
	}
	return r
}

func (f *fold) apply(e eventstore.Event, d any) {
	at := e.RecordedAt
	touch := func(uid int64) *userRow {
		r := f.user(uid)
		r.version, r.updatedAt = e.Version, at
		return r
	}
	switch d := d.(type) {
	case user.UserRegistered:
		r := touch(d.UserID)
		r.created, r.createdAt = true, at
		r.first, r.last, r.pw, r.role = &d.FirstName, &d.LastName, &d.PasswordHash, &d.Role
	case user.ProfileUpdated:
		r := touch(d.UserID)
		r.first, r.last = &d.FirstName, &d.LastName
	case user.PasswordChanged:
		touch(d.UserID).pw = &d.PasswordHash
	case user.RoleChanged:
		touch(d.UserID).role = &d.Role
	case user.EmailAdded:
		touch(d.UserID)
		r := f.emails.get(d.EmailID, d.UserID)
		r.created, r.values, r.verified, r.version, r.createdAt, r.updatedAt = true, []user.Sealed{d.Email}, d.Verified, e.Version, at, at
		if d.Primary {
			f.emails.primaries[d.UserID] = d.EmailID
		}
		f.touched[d.UserID] = true
	case user.EmailVerified:
		touch(d.UserID)
		r := f.emails.get(d.EmailID, d.UserID)
		r.verified, r.version, r.updatedAt = true, e.Version, at
		f.touched[d.UserID] = true
	case user.EmailRemoved:
		touch(d.UserID)
		f.emails.get(d.EmailID, d.UserID).removed = true
		f.touched[d.UserID] = true
	case user.PrimaryEmailChanged:
		touch(d.UserID)
		f.emails.primaries[d.UserID] = d.EmailID
	case user.PhoneAdded:
		touch(d.UserID)
		r := f.phones.get(d.PhoneID, d.UserID)
		r.created, r.values, r.version, r.createdAt, r.updatedAt = true, []user.Sealed{d.Number}, e.Version, at, at
		if d.Primary {
			f.phones.primaries[d.UserID] = d.PhoneID
		}
	case user.PhoneRemoved:
		touch(d.UserID)
		f.phones.get(d.PhoneID, d.UserID).removed = true
	case user.PrimaryPhoneChanged:
		touch(d.UserID)
		f.phones.primaries[d.UserID] = d.PhoneID
	case user.AddressAdded:
		touch(d.UserID)
		r := f.addresses.get(d.AddressID, d.UserID)
		r.created, r.version, r.createdAt, r.updatedAt = true, e.Version, at, at
		r.values = []user.Sealed{d.City, d.PostCode, d.Country}
		if d.Primary {
			f.addresses.primaries[d.UserID] = d.AddressID
		}
	case user.AddressUpdated:
		touch(d.UserID)
		r := f.addresses.get(d.AddressID, d.UserID)
		r.values, r.version, r.updatedAt = []user.Sealed{d.City, d.PostCode, d.Country}, e.Version, at
	case user.AddressRemoved:
		touch(d.UserID)
		f.addresses.get(d.AddressID, d.UserID).removed = true
	case user.PrimaryAddressChanged:
		touch(d.UserID)
		f.addresses.primaries[d.UserID] = d.AddressID
	case user.ImageSet:
		touch(d.UserID)
		r := &imageRow{userID: d.UserID, set: true, publicID: d.PublicID, url: d.URL, version: e.Version, createdAt: at, updatedAt: at}
		if prev, ok := f.images[d.UserID]; ok {
			if prev.set {
				r.createdAt, r.deleteFirst = prev.createdAt, prev.deleteFirst
			} else {
				r.deleteFirst = true
			}
		}
		f.images[d.UserID] = r
	case user.ImageRemoved:
		touch(d.UserID)
		f.images[d.UserID] = &imageRow{userID: d.UserID}
	case user.UserErased:
		f.erased = append(f.erased, d.UserID)
	}
}

// Apply implements projections.Projector.
func (Users) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	f := &fold{users: map[int64]*userRow{}, emails: newEntities(), phones: newEntities(), addresses: newEntities(),
		images: map[int64]*imageRow{}, touched: map[int64]bool{}}
	for _, e := range batch {
		if e.StreamType != user.StreamType {
			continue
		}
		d, err := user.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", e.Position, err)
		}
		f.apply(e, d)
	}
	var out []projections.Stmt
	out = append(out, f.userStmts(t)...)
	out = append(out, f.emails.stmts(t, emailTable)...)
	out = append(out, f.phones.stmts(t, phoneTable)...)
	out = append(out, f.addresses.stmts(t, addressTable)...)
	out = append(out, f.imageStmts(t)...)
	if len(f.touched) > 0 {
		ids := make([]int64, 0, len(f.touched))
		for id := range f.touched {
			ids = append(ids, id)
		}
		out = append(out, projections.Stmt{SQL: t.Sub(`UPDATE {users} AS u SET email_verified =
				EXISTS (SELECT 1 FROM {emails} e WHERE e.user_id = u.id AND e.verified)
			WHERE u.id = ANY($1::bigint[])`), Args: []any{ids}})
	}
	if len(f.erased) > 0 {
		for _, table := range []string{"emails", "phones_numbers", "addresses", "user_image"} {
			out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {` + table + `} WHERE user_id = ANY($1::bigint[])`),
				Args: []any{f.erased}})
		}
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {users} WHERE id = ANY($1::bigint[])`), Args: []any{f.erased}})
	}
	return out, nil
}

func sealedOrNil(s *user.Sealed) *string {
	if s == nil {
		return nil
	}
	v := string(*s)
	return &v
}

func (f *fold) userStmts(t projections.Tables) []projections.Stmt {
	var (
		ids, versions            []int64
		firsts, lasts, pws, role []*string
		created                  []bool
		createdAt, updatedAt     []time.Time
	)
	for _, id := range f.userOrder {
		r := f.users[id]
		ids, versions, created = append(ids, id), append(versions, r.version), append(created, r.created)
		firsts, lasts, pws = append(firsts, sealedOrNil(r.first)), append(lasts, sealedOrNil(r.last)), append(pws, sealedOrNil(r.pw))
		var rs *string
		if r.role != nil {
			v := string(*r.role)
			rs = &v
		}
		role = append(role, rs)
		ca := r.createdAt
		if ca.IsZero() {
			ca = r.updatedAt
		}
		createdAt, updatedAt = append(createdAt, ca.UTC()), append(updatedAt, r.updatedAt.UTC())
	}
	if len(ids) == 0 {
		return nil
	}
	// Rows created in the batch are inserted; the others are updated column by column (a NULL
	// leaves a column as it is). The version check keeps a replayed batch from going back.
	return []projections.Stmt{{SQL: t.Sub(`WITH b AS (
			SELECT b.*, k.key FROM unnest($1::bigint[], $2::bool[], $3::text[], $4::text[], $5::text[], $6::text[],
				$7::bigint[], $8::timestamp[], $9::timestamp[]) AS b(id, created, first, last, pw, role, version, created_at, updated_at)
			LEFT JOIN user_keys k ON k.user_id = b.id),
		ins AS (
			INSERT INTO {users} AS u (id, first_name, last_name, password, role, version, created_at, updated_at)
			SELECT b.id, left(` + open("b.first") + `, 50), left(` + open("b.last") + `, 50), nullif(pii_open(b.pw, b.key), ''),
				coalesce(b.role, 'customer'), b.version, b.created_at, b.updated_at
			FROM b WHERE b.created
			ON CONFLICT (id) DO UPDATE SET first_name = excluded.first_name, last_name = excluded.last_name,
				password = excluded.password, role = excluded.role, version = excluded.version, updated_at = excluded.updated_at
			WHERE u.version < excluded.version)
		UPDATE {users} AS u SET
			first_name = CASE WHEN b.first IS NULL THEN u.first_name ELSE left(` + open("b.first") + `, 50) END,
			last_name = CASE WHEN b.last IS NULL THEN u.last_name ELSE left(` + open("b.last") + `, 50) END,
			password = CASE WHEN b.pw IS NULL THEN u.password ELSE nullif(pii_open(b.pw, b.key), '') END,
			role = coalesce(b.role, u.role), version = b.version, updated_at = b.updated_at
		FROM b WHERE NOT b.created AND u.id = b.id AND u.version < b.version`),
		Args: []any{ids, created, firsts, lasts, pws, role, versions, createdAt, updatedAt}}}
}

// table describes one child table of an account.
type table struct {
	name    string
	columns []string // the sealed value columns, in entity.values order
	widths  []int    // their widths (values are cut to fit)
	hasFlag bool     // emails: verified
}

var (
	emailTable   = table{name: "emails", columns: []string{"email"}, widths: []int{254}, hasFlag: true}
	phoneTable   = table{name: "phones_numbers", columns: []string{`"phoneNumber"`}, widths: []int{25}}
	addressTable = table{name: "addresses", columns: []string{"city", `"postCode"`, "country"}, widths: []int{100, 20, 20}}
)

func (es *entities) stmts(t projections.Tables, tb table) []projections.Stmt {
	n := len(tb.columns)
	var (
		ids, userIDs, versions []int64
		created, flags         []bool
		vals                   = make([][]*string, n)
		createdAt, updatedAt   []time.Time
		removed                []int64
	)
	for _, id := range es.order {
		r := es.rows[id]
		if r.removed {
			removed = append(removed, id)
			continue
		}
		if !r.created && r.values == nil && !r.verified {
			continue
		}
		ids, userIDs, versions = append(ids, id), append(userIDs, r.userID), append(versions, r.version)
		created, flags = append(created, r.created), append(flags, r.verified)
		for i := range n {
			var v *string
			if r.values != nil {
				s := string(r.values[i])
				v = &s
			}
			vals[i] = append(vals[i], v)
		}
		ca := r.createdAt
		if ca.IsZero() {
			ca = r.updatedAt
		}
		createdAt, updatedAt = append(createdAt, ca.UTC()), append(updatedAt, r.updatedAt.UTC())
	}
	var out []projections.Stmt
	if len(ids) > 0 {
		args := []any{ids, userIDs, created, flags, versions, createdAt, updatedAt}
		unnest := "$1::bigint[], $2::bigint[], $3::bool[], $4::bool[], $5::bigint[], $6::timestamp[], $7::timestamp[]"
		cols := "id, user_id, created, flag, version, created_at, updated_at"
		var insCols, insVals, updSet string
		for i, c := range tb.columns {
			args = append(args, vals[i])
			unnest += fmt.Sprintf(", $%d::text[]", 8+i)
			cols += fmt.Sprintf(", v%d", i)
			insCols += ", " + c
			insVals += fmt.Sprintf(", left(%s, %d)", open(fmt.Sprintf("b.v%d", i)), tb.widths[i])
			updSet += fmt.Sprintf("%s = CASE WHEN b.v%d IS NULL THEN x.%s ELSE left(%s, %d) END, ", c, i, c,
				open(fmt.Sprintf("b.v%d", i)), tb.widths[i])
		}
		flagIns, flagUpd := "", ""
		if tb.hasFlag {
			flagIns, flagUpd = ", verified", "verified = x.verified OR b.flag, "
		}
		flagVal := ""
		if tb.hasFlag {
			flagVal = ", b.flag"
		}
		out = append(out, projections.Stmt{SQL: t.Sub(`WITH b AS (
				SELECT b.*, k.key FROM unnest(` + unnest + `) AS b(` + cols + `)
				LEFT JOIN user_keys k ON k.user_id = b.user_id),
			ins AS (
				INSERT INTO {` + tb.name + `} (id, user_id, version, created_at, updated_at` + insCols + flagIns + `)
				SELECT b.id, b.user_id, b.version, b.created_at, b.updated_at` + insVals + flagVal + ` FROM b WHERE b.created
				ON CONFLICT (id) DO NOTHING)
			UPDATE {` + tb.name + `} AS x SET ` + updSet + flagUpd + `version = b.version, updated_at = b.updated_at
			FROM b WHERE NOT b.created AND x.id = b.id AND x.version < b.version`), Args: args})
	}
	if len(es.primaries) > 0 {
		var users, prim []int64
		for u, p := range es.primaries {
			users, prim = append(users, u), append(prim, p)
		}
		out = append(out, projections.Stmt{SQL: t.Sub(`UPDATE {` + tb.name + `} AS x SET "isPrimary" = (x.id = p.id)
			FROM unnest($1::bigint[], $2::bigint[]) AS p(user_id, id)
			WHERE x.user_id = p.user_id AND x."isPrimary" IS DISTINCT FROM (x.id = p.id)`), Args: []any{users, prim}})
	}
	if len(removed) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {` + tb.name + `} WHERE id = ANY($1::bigint[])`),
			Args: []any{removed}})
	}
	return out
}

func (f *fold) imageStmts(t projections.Tables) []projections.Stmt {
	var (
		setUsers, versions []int64
		publicIDs, urls    []string
		created, at        []time.Time
		removed            []int64
	)
	for uid, r := range f.images {
		if !r.set || r.deleteFirst {
			removed = append(removed, uid)
		}
		if !r.set {
			continue
		}
		setUsers, versions = append(setUsers, uid), append(versions, r.version)
		publicIDs, urls = append(publicIDs, r.publicID), append(urls, string(r.url))
		created, at = append(created, r.createdAt.UTC()), append(at, r.updatedAt.UTC())
	}
	var out []projections.Stmt
	if len(removed) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {user_image} WHERE user_id = ANY($1::bigint[])`), Args: []any{removed}})
	}
	if len(setUsers) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {user_image} AS x (id, user_id, image_id, url, version, created_at, updated_at)
			SELECT b.user_id, b.user_id, b.public_id, left(coalesce(pii_open(b.url, k.key), ''), 255), b.version, b.created, b.at
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::timestamp[], $6::timestamp[]) AS b(user_id, public_id, url, version, created, at)
			LEFT JOIN user_keys k ON k.user_id = b.user_id
			ON CONFLICT (id) DO UPDATE SET image_id = excluded.image_id, url = excluded.url, version = excluded.version,
				updated_at = excluded.updated_at
			WHERE x.version < excluded.version`), Args: []any{setUsers, publicIDs, urls, versions, created, at}})
	}
	return out
}
