package userproj

import (
	"fmt"
	"time"

	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// Notifications projects the notifications table: one row per account or order event that tells
// its owner something (user.Notification, order.Notification), with the event's position as its
// id, and the owner's read marks.
type Notifications struct{}

func (Notifications) Name() string     { return NotificationsProjector }
func (Notifications) Tables() []string { return []string{"notifications"} }
func (Notifications) StreamTypes() []string {
	return []string{user.StreamType, user.NotificationsStreamType, order.StreamType}
}

// Apply implements projections.Projector. A read mark always follows the notifications it
// names in the log, so inserting first, then marking, then deleting erased users' rows is the
// batch's order.
func (Notifications) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	var (
		ids, users         []int64
		kinds, messages    []string
		at                 []time.Time
		readUsers, readIDs []int64
		allUsers, allUpTo  []int64
		erased             []int64
	)
	for _, e := range batch {
		if e.StreamType == order.StreamType {
			d, err := order.Decode(e.Type, e.SchemaVersion, e.Data)
			if err != nil {
				return nil, fmt.Errorf("event %d: %w", e.Position, err)
			}
			if uid, kind, msg, ok := order.Notification(d); ok {
				ids, users, kinds, messages, at = append(ids, e.Position), append(users, uid), append(kinds, kind), append(messages, msg), append(at, e.RecordedAt.UTC())
			}
			continue
		}
		if e.StreamType != user.StreamType && e.StreamType != user.NotificationsStreamType {
			continue
		}
		d, err := user.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", e.Position, err)
		}
		switch d := d.(type) {
		case user.NotificationsRead:
			for _, id := range d.IDs {
				readUsers, readIDs = append(readUsers, d.UserID), append(readIDs, id)
			}
			continue
		case user.AllNotificationsRead:
			allUsers, allUpTo = append(allUsers, d.UserID), append(allUpTo, d.UpTo)
			continue
		case user.UserErased:
			erased = append(erased, d.UserID)
			continue
		}
		kind, msg, ok := user.Notification(d)
		if !ok {
			continue
		}
		uid, ok := ownerOf(d)
		if !ok {
			continue
		}
		ids, users, kinds, messages, at = append(ids, e.Position), append(users, uid), append(kinds, kind), append(messages, msg), append(at, e.RecordedAt.UTC())
	}
	var out []projections.Stmt
	if len(ids) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {notifications} (id, user_id, kind, message, created_at, updated_at)
			SELECT id, user_id, kind, message, at, at
			FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::timestamp[]) AS n(id, user_id, kind, message, at)
			ON CONFLICT (id) DO NOTHING`), Args: []any{ids, users, kinds, messages, at}})
	}
	if len(readIDs) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`UPDATE {notifications} AS n SET read = true
			FROM unnest($1::bigint[], $2::bigint[]) AS r(user_id, id)
			WHERE n.id = r.id AND n.user_id = r.user_id AND NOT n.read`), Args: []any{readUsers, readIDs}})
	}
	if len(allUsers) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`UPDATE {notifications} AS n SET read = true
			FROM unnest($1::bigint[], $2::bigint[]) AS r(user_id, up_to)
			WHERE n.user_id = r.user_id AND n.id <= r.up_to AND NOT n.read`), Args: []any{allUsers, allUpTo}})
	}
	if len(erased) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {notifications} WHERE user_id = ANY($1::bigint[])`),
			Args: []any{erased}})
	}
	return out, nil
}

// ownerOf is the account an event that raises a notification belongs to.
func ownerOf(d any) (int64, bool) {
	switch d := d.(type) {
	case user.UserRegistered:
		return d.UserID, true
	case user.EmailVerified:
		return d.UserID, true
	case user.PasswordChanged:
		return d.UserID, true
	}
	return 0, false
}
