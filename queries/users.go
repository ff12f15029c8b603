package queries

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/eventstore"
)

// UserView is an account as its owner (or an admin) reads it. The password hash is never read.
type UserView struct {
	ID            int64
	FirstName     string
	LastName      string
	Role          string
	EmailVerified bool
	Emails        []EmailView
	Phones        []PhoneView
	Addresses     []AddressView
	Image         *ImageView
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// EmailView is one address of an account.
type EmailView struct {
	ID       int64
	Email    string
	Primary  bool
	Verified bool
}

// PhoneView is one phone number of an account.
type PhoneView struct {
	ID      int64
	Number  string
	Primary bool
}

// AddressView is one postal address of an account.
type AddressView struct {
	ID        int64
	City      string
	PostCode  string
	Country   string
	Primary   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ImageView is an account's picture.
type ImageView struct {
	URL string
}

// NotificationView is one notification.
type NotificationView struct {
	ID        int64
	Kind      string
	Message   string
	Read      bool
	CreatedAt time.Time
}

// UserQueries reads the account tables.
type UserQueries struct {
	pool *pgxpool.Pool
}

// NewUserQueries returns the account queries.
func NewUserQueries(pool *pgxpool.Pool) *UserQueries { return &UserQueries{pool: pool} }

// User returns one account with its emails, phones, addresses and picture.
func (q *UserQueries) User(ctx context.Context, id int64) (UserView, error) {
	v, err := q.user(ctx, id)
	return v, eventstore.Unavailable(err)
}

func (q *UserQueries) user(ctx context.Context, id int64) (UserView, error) {
	var u UserView
	var url *string
	err := q.pool.QueryRow(ctx, `SELECT u.id, u.first_name, u.last_name, u.role, u.email_verified, u.created_at, u.updated_at, i.url
		FROM users u LEFT JOIN user_image i ON i.user_id = u.id WHERE u.id = $1`, id).
		Scan(&u.ID, &u.FirstName, &u.LastName, &u.Role, &u.EmailVerified, &u.CreatedAt, &u.UpdatedAt, &url)
	if errors.Is(err, pgx.ErrNoRows) {
		return UserView{}, domain.NotFound("user %d not found", id)
	}
	if err != nil {
		return UserView{}, fmt.Errorf("reading user %d: %w", id, err)
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	if url != nil {
		u.Image = &ImageView{URL: *url}
	}
	batch := &pgx.Batch{}
	batch.Queue(`SELECT id, email, "isPrimary", verified FROM emails WHERE user_id = $1 ORDER BY id`, id).Query(func(rows pgx.Rows) error {
		var err error
		u.Emails, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (EmailView, error) {
			var e EmailView
			return e, r.Scan(&e.ID, &e.Email, &e.Primary, &e.Verified)
		})
		return err
	})
	batch.Queue(`SELECT id, coalesce("phoneNumber", ''), "isPrimary" FROM phones_numbers WHERE user_id = $1 ORDER BY id`, id).Query(func(rows pgx.Rows) error {
		var err error
		u.Phones, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PhoneView, error) {
			var p PhoneView
			return p, r.Scan(&p.ID, &p.Number, &p.Primary)
		})
		return err
	})
	batch.Queue(addressSelect+` WHERE user_id = $1 ORDER BY id`, id).Query(func(rows pgx.Rows) error {
		var err error
		u.Addresses, err = pgx.CollectRows(rows, scanAddress)
		return err
	})
	if err := q.pool.SendBatch(ctx, batch).Close(); err != nil {
		return UserView{}, fmt.Errorf("reading user %d: %w", id, err)
	}
	return u, nil
}

const addressSelect = `SELECT id, city, "postCode", country, "isPrimary", created_at, updated_at FROM addresses`

func scanAddress(r pgx.CollectableRow) (AddressView, error) {
	var a AddressView
	err := r.Scan(&a.ID, &a.City, &a.PostCode, &a.Country, &a.Primary, &a.CreatedAt, &a.UpdatedAt)
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, err
}

// Addresses returns an account's addresses.
func (q *UserQueries) Addresses(ctx context.Context, userID int64) ([]AddressView, error) {
	rows, err := q.pool.Query(ctx, addressSelect+` WHERE user_id = $1 ORDER BY id`, userID)
	if err != nil {
		return nil, eventstore.Unavailable(fmt.Errorf("listing addresses: %w", err))
	}
	out, err := pgx.CollectRows(rows, scanAddress)
	if err != nil {
		return nil, eventstore.Unavailable(fmt.Errorf("listing addresses: %w", err))
	}
	return out, nil
}

// UserSummary is an account in the admins' list.
type UserSummary struct {
	ID            int64
	FirstName     string
	LastName      string
	Email         string // the primary address
	Role          string
	EmailVerified bool
	CreatedAt     time.Time
}

// UserFilter selects accounts: Q matches the start of a first name, last name or any address
// (case-insensitive).
type UserFilter struct {
	Q      string
	Limit  int
	Cursor string
}

// Users lists accounts by id, one keyset page at a time.
func (q *UserQueries) Users(ctx context.Context, f UserFilter) (Page[UserSummary], error) {
	v, err := q.users(ctx, f)
	return v, eventstore.Unavailable(err)
}

func (q *UserQueries) users(ctx context.Context, f UserFilter) (Page[UserSummary], error) {
	if f.Limit < 1 {
		return Page[UserSummary]{}, domain.Invalid("limit", "limit must be at least 1")
	}
	cur, err := decodeCursor(f.Cursor, "users")
	if err != nil {
		return Page[UserSummary]{}, err
	}
	var afterID int64
	if cur != nil {
		afterID = cur.ID
	}
	if len(f.Q) > 254 {
		return Page[UserSummary]{}, domain.Invalid("q", "q must have at most 254 characters")
	}
	// The pattern is a prefix: LIKE's own wildcards in q are escaped.
	var pattern *string
	if q := strings.ToLower(strings.TrimSpace(f.Q)); q != "" {
		p := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q) + "%"
		pattern = &p
	}
	rows, err := q.pool.Query(ctx, `SELECT u.id, u.first_name, u.last_name, coalesce(pe.email, ''), u.role, u.email_verified, u.created_at
		FROM users u
		LEFT JOIN emails pe ON pe.user_id = u.id AND pe."isPrimary"
		WHERE u.id > $1 AND ($2::text IS NULL
			OR lower(u.first_name) LIKE $2 OR lower(u.last_name) LIKE $2
			OR EXISTS (SELECT 1 FROM emails e WHERE e.user_id = u.id AND lower(e.email) LIKE $2))
		ORDER BY u.id LIMIT $3`, afterID, pattern, f.Limit+1)
	if err != nil {
		return Page[UserSummary]{}, fmt.Errorf("listing users: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UserSummary, error) {
		var u UserSummary
		err := r.Scan(&u.ID, &u.FirstName, &u.LastName, &u.Email, &u.Role, &u.EmailVerified, &u.CreatedAt)
		u.CreatedAt = u.CreatedAt.UTC()
		return u, err
	})
	if err != nil {
		return Page[UserSummary]{}, fmt.Errorf("listing users: %w", err)
	}
	page := Page[UserSummary]{Items: items}
	if len(items) > f.Limit {
		page.Items = items[:f.Limit]
		page.NextCursor = encodeCursor(cursor{Sort: "users", ID: items[f.Limit-1].ID})
	}
	return page, nil
}

// Notifications lists a user's notifications, unread first, newest first within each.
func (q *UserQueries) Notifications(ctx context.Context, userID int64, limit int, after string) (Page[NotificationView], error) {
	v, err := q.notifications(ctx, userID, limit, after)
	return v, eventstore.Unavailable(err)
}

func (q *UserQueries) notifications(ctx context.Context, userID int64, limit int, after string) (Page[NotificationView], error) {
	if limit < 1 {
		return Page[NotificationView]{}, domain.Invalid("limit", "limit must be at least 1")
	}
	cur, err := decodeCursor(after, "notifications")
	if err != nil {
		return Page[NotificationView]{}, err
	}
	// Keyset over (read, id DESC): unread (false) sort first.
	afterRead, afterID := false, int64(-1)
	if cur != nil {
		if cur.Value != "0" && cur.Value != "1" {
			return Page[NotificationView]{}, domain.Invalid("cursor", "cursor is malformed")
		}
		afterRead, afterID = cur.Value == "1", cur.ID
	}
	rows, err := q.pool.Query(ctx, `SELECT id, kind, message, read, created_at FROM notifications
		WHERE user_id = $1 AND ($2::bigint < 0 OR (read, -id) > ($3, -$2::bigint))
		ORDER BY read, id DESC LIMIT $4`, userID, afterID, afterRead, limit+1)
	if err != nil {
		return Page[NotificationView]{}, fmt.Errorf("listing notifications: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (NotificationView, error) {
		var n NotificationView
		err := r.Scan(&n.ID, &n.Kind, &n.Message, &n.Read, &n.CreatedAt)
		n.CreatedAt = n.CreatedAt.UTC()
		return n, err
	})
	if err != nil {
		return Page[NotificationView]{}, fmt.Errorf("listing notifications: %w", err)
	}
	page := Page[NotificationView]{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		last := items[limit-1]
		page.NextCursor = encodeCursor(cursor{Sort: "notifications", Value: strconv.Itoa(btoi(last.Read)), ID: last.ID})
	}
	return page, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
