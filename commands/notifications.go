package commands

import (
	"context"
	"slices"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/user"
)

// readMarksKind loads a user's notification read marks: only the stream's version matters
// (the marks decide nothing), so a snapshot keeps the load O(1) however often they read.
var readMarksKind = aggregateKind[*user.ReadMarks, user.ReadMarksState]{
	name: "notification read marks", streamID: user.NotificationsStreamID, streamType: user.NotificationsStreamType,
	schemaVersion: user.ReadMarksSnapshotSchemaVersion, decode: user.Decode,
	rehydrate: user.RehydrateReadMarks, rehydrateFrom: user.RehydrateReadMarksFrom,
	snapshot: (*user.ReadMarks).Snapshot, stateID: func(s user.ReadMarksState) int64 { return s.UserID },
}

// MaxNotificationsPerRead bounds the ids one read command names.
const MaxNotificationsPerRead = 100

// MarkNotificationsRead is the command to mark some of the caller's notifications read.
type MarkNotificationsRead struct {
	UserID int64
	IDs    []int64
}

// MarkNotificationsRead marks notifications read. A notification's id is the position of the
// account event it tells of, so each id is checked against the log: an id that is not a
// notification of the caller is not found, whoever's it is.
func (h *Users) MarkNotificationsRead(ctx context.Context, md domain.Metadata, cmd MarkNotificationsRead) (AccountResult, error) {
	if len(cmd.IDs) == 0 || len(cmd.IDs) > MaxNotificationsPerRead {
		return AccountResult{}, domain.Invalid("ids", "give 1 to %d notification ids", MaxNotificationsPerRead)
	}
	ids := slices.Clone(cmd.IDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		if err := h.checkNotification(ctx, cmd.UserID, id); err != nil {
			return AccountResult{}, err
		}
	}
	return h.onReadMarks(ctx, md, "MarkNotificationsRead", cmd.UserID, func(m *user.ReadMarks) { m.Read(ids) })
}

// MarkAllNotificationsRead marks every notification the caller has now read.
func (h *Users) MarkAllNotificationsRead(ctx context.Context, md domain.Metadata, userID int64) (AccountResult, error) {
	head, err := h.log.Head(ctx)
	if err != nil {
		return AccountResult{}, unavailable(err)
	}
	return h.onReadMarks(ctx, md, "MarkAllNotificationsRead", userID, func(m *user.ReadMarks) { m.ReadAll(head) })
}

func (h *Users) checkNotification(ctx context.Context, userID, id int64) error {
	notFound := domain.NotFound("notification %d not found", id)
	if id <= 0 {
		return notFound
	}
	e, ok, err := h.log.EventAt(ctx, id)
	if err != nil {
		return unavailable(err)
	}
	if !ok {
		return notFound
	}
	if e.StreamType == order.StreamType {
		d, err := order.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return notFound
		}
		if uid, _, _, ok := order.Notification(d); !ok || uid != userID {
			return notFound
		}
		return nil
	}
	if e.StreamID != user.StreamID(userID) {
		return notFound
	}
	d, err := user.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return notFound
	}
	if _, _, ok := user.Notification(d); !ok {
		return notFound
	}
	return nil
}

func (h *Users) onReadMarks(ctx context.Context, md domain.Metadata, name string, userID int64, mark func(*user.ReadMarks)) (AccountResult, error) {
	return execute(ctx, h.store, md, name, redecideOnConflict, withAccountPosition,
		func(ctx context.Context) (AccountResult, []Change, error) {
			if err := ensureAccount(ctx, h.load, userID); err != nil {
				return AccountResult{}, nil, err
			}
			m, err := loadAggregate(ctx, h.load, readMarksKind, userID)
			if err != nil {
				return AccountResult{}, nil, err
			}
			if m == nil {
				m = user.NewReadMarks(userID)
			}
			mark(m)
			return AccountResult{UserID: userID}, []Change{{StreamID: user.NotificationsStreamID(userID),
				StreamType: user.NotificationsStreamType, ExpectedVersion: m.Version(), Events: m.Changes()}}, nil
		})
}
