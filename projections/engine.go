package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/techvault/techvault/eventstore"
)

// EngineConfig configures the live projection engine.
type EngineConfig struct {
	// DB is a database/sql handle over the application's pgx pool (stdlib.OpenDBFromPool).
	DB *sql.DB
	// Projectors to run; each consumes the log as its own consumer group.
	Projectors []Projector
	// Handlers are other consumers of the log run the same way (side effects, see package
	// effects); each is its own consumer group too.
	Handlers []BatchHandler
	Logger   *slog.Logger
	// PollInterval is how long a caught-up subscriber sleeps before polling again while events
	// flow (2ms).
	PollInterval time.Duration
	// IdlePollInterval is the wait after about a second without events (50ms).
	IdlePollInterval time.Duration
	// GatherInterval is the wait after a batch of less than a tenth of BatchSize before the next
	// poll (5ms; negative: none): under a steady load, each consumer's next batch gathers what
	// arrived meanwhile instead of polling back to back with a transaction per few events.
	GatherInterval time.Duration
	// BatchSize bounds the events of one batch, applied in one transaction (1000). Batches are
	// as large as the backlog: a few events while caught up, BatchSize while catching up.
	BatchSize int
	// AckDeadline bounds how long one batch may take before it is rolled back (30s).
	AckDeadline time.Duration
	// RetryInterval is the first wait before a batch that failed is tried again; it doubles on
	// every failure up to MaxRetryInterval (500ms, 30s).
	RetryInterval, MaxRetryInterval time.Duration
	// Checkpoints, when set, are told which events each consumer is given (Checkpoints.Given):
	// the engine wakes a consumer only for events of its stream types, so its checkpoint may
	// stay behind the others it is not given for up to a second, and its lag must not count them.
	Checkpoints *Checkpoints
}

func (c *EngineConfig) setDefaults() {
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Millisecond
	}
	if c.IdlePollInterval <= 0 {
		c.IdlePollInterval = 50 * time.Millisecond
	}
	if c.GatherInterval == 0 {
		c.GatherInterval = 5 * time.Millisecond
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.AckDeadline <= 0 {
		c.AckDeadline = 30 * time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 500 * time.Millisecond
	}
	if c.MaxRetryInterval <= 0 {
		c.MaxRetryInterval = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config the engine cannot run with.
func (c EngineConfig) Validate() error {
	if c.DB == nil {
		return errors.New("projections: DB is nil")
	}
	seen := map[string]bool{}
	for _, h := range c.handlers() {
		if seen[h.Name()] {
			return fmt.Errorf("projections: consumer %s given twice", h.Name())
		}
		seen[h.Name()] = true
	}
	return nil
}

// handlers are the projectors, as batch handlers, then the other handlers.
func (c EngineConfig) handlers() []BatchHandler {
	out := make([]BatchHandler, 0, len(c.Projectors)+len(c.Handlers))
	for _, p := range c.Projectors {
		out = append(out, projectorHandler{p: p, tables: Identity(p), db: c.DB})
	}
	return append(out, c.Handlers...)
}

// BatchHandler consumes the log a batch at a time in the engine's subscriber transactions.
type BatchHandler interface {
	// Name is the consumer group and checkpoint key, fixed for ever.
	Name() string
	// StreamTypes lists the stream types whose events the handler is given (nil: every type).
	StreamTypes() []string
	// HandleBatch handles a batch's events (in delivery order); writes made through tx commit
	// with the checkpoint. When it fails it returns an *EventError naming the event at fault, or
	// any other error for the batch as a whole; the batch is then retried, never skipped.
	HandleBatch(ctx context.Context, tx *sql.Tx, batch []eventstore.Event) error
}

// EventError is a batch's failure pinned on one of its events.
type EventError struct {
	Event eventstore.Event
	Err   error
}

func (e *EventError) Error() string {
	return fmt.Sprintf("event %d (%s): %v", e.Event.Position, e.Event.Type, e.Err)
}

func (e *EventError) Unwrap() error { return e.Err }

// projectorHandler runs a projector's statements in the subscriber's transaction.
type projectorHandler struct {
	p      Projector
	tables Tables
	db     *sql.DB // for locating the event a failed batch stumbled on
}

func (h projectorHandler) Name() string          { return h.p.Name() }
func (h projectorHandler) StreamTypes() []string { return h.p.StreamTypes() }
func (h projectorHandler) SkipTypes() []string   { return skipTypes(h.p) }

// HandleBatch applies the batch in the subscriber's transaction, with no savepoint (two round
// trips fewer per batch). When it fails, the subscriber's transaction is aborted: it is rolled back
// at once (an open transaction holds back every consumer) and the events are applied again one at
// a time, each on top of the ones before it, in a transaction of their own that is rolled back,
// to find the first that fails.
func (h projectorHandler) HandleBatch(ctx context.Context, tx *sql.Tx, batch []eventstore.Event) error {
	stmts, err := h.statements(batch)
	if err == nil {
		err = execAll(ctx, tx, stmts)
	}
	if err == nil {
		return nil
	}
	if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
		return errors.Join(err, rbErr)
	}
	if len(batch) == 1 {
		return &EventError{Event: batch[0], Err: err}
	}
	if culprit := h.locate(ctx, batch); culprit != nil {
		return culprit
	}
	return err
}

// locate finds the first event of a failed batch that fails on its own, in a transaction it rolls
// back; nil when none does (the batch failed for another reason, say a lost connection).
func (h projectorHandler) locate(ctx context.Context, batch []eventstore.Event) *EventError {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return nil
	}
	defer func() { _ = tx.Rollback() }()
	for _, e := range batch {
		stmts, err := h.statements([]eventstore.Event{e})
		if err != nil {
			return &EventError{Event: e, Err: err}
		}
		if err := execInSavepoint(ctx, tx, stmts); err != nil {
			return &EventError{Event: e, Err: err}
		}
	}
	return nil
}

// statements are the batch's statements and its notifications.
func (h projectorHandler) statements(evs []eventstore.Event) ([]Stmt, error) {
	stmts, err := h.p.Apply(h.tables, evs)
	if err != nil {
		return nil, err
	}
	for _, s := range stmts {
		if s.Copy != nil {
			return nil, fmt.Errorf("projector %s: Apply returned a COPY, which only a rebuild's Load may", h.p.Name())
		}
	}
	if n, ok := h.p.(Notifier); ok {
		if s, ok := notifyStmt(n, evs); ok {
			stmts = append(stmts, s)
		}
	}
	return stmts, nil
}

func execAll(ctx context.Context, tx *sql.Tx, stmts []Stmt) error {
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s.SQL, s.Args...); err != nil {
			return err
		}
	}
	return nil
}

// Engine runs projectors live: a Watermill router with one watermill-sql subscriber per projector
// on the events table. Each message is a batch (eventstore.BatchSchemaAdapter): the handler reads
// the batch's events in the subscriber's transaction, lets the projector turn them into a few
// set-based statements, and runs them in that transaction, so rows and the acknowledged offset
// commit together and a batch costs the same few round trips however many events it holds.
type Engine struct {
	router *message.Router
	head   *settledHead
}

// NewEngine builds the router; Run starts it.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	wlog := watermill.NewSlogLoggerWithLevelMapping(cfg.Logger, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug, // watermill is chatty at info
	})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wlog)
	if err != nil {
		return nil, fmt.Errorf("creating router: %w", err)
	}
	head := newSettledHead(cfg.DB, cfg.PollInterval, cfg.IdlePollInterval)
	for _, p := range cfg.handlers() {
		if cfg.Checkpoints != nil {
			cfg.Checkpoints.Given(p)
		}
		ack := cfg.AckDeadline
		failing, count := &atomic.Bool{}, &atomic.Int64{}
		sub, err := wsql.NewSubscriber(cfg.DB, wsql.SubscriberConfig{
			ConsumerGroup:  p.Name(),
			SchemaAdapter:  eventstore.NewBatchSchemaAdapter(cfg.BatchSize),
			OffsetsAdapter: eventstore.OffsetsAdapter(),
			PollInterval:   cfg.PollInterval,
			ResendInterval: cfg.RetryInterval,
			RetryInterval:  cfg.RetryInterval,
			BackoffManager: newAdaptivePoll(cfg.PollInterval, cfg.IdlePollInterval, cfg.RetryInterval, cfg.MaxRetryInterval, failing).
				withGather(cfg.GatherInterval, int64(cfg.BatchSize/10), count).withHead(head, p.StreamTypes()),
			AckDeadline: &ack,
		}, wlog)
		if err != nil {
			return nil, fmt.Errorf("subscriber for %s: %w", p.Name(), err)
		}
		h := &batchHandler{h: p, db: cfg.DB, failing: failing, count: count, log: cfg.Logger.With("consumer", p.Name())}
		h.recorded.Store(true) // a failure row may survive from an earlier process
		router.AddConsumerHandler(p.Name(), eventstore.Topic, sub, h.handle)
	}
	return &Engine{router: router, head: head}, nil
}

// Run runs the projectors until ctx is done or Close is called.
func (e *Engine) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go e.head.run(ctx)
	go func() {
		<-ctx.Done() // the router stops with ctx: its subscribers must not sit out a wait
		e.head.stop()
	}()
	return e.router.Run(ctx)
}

// Running is closed once every projector is subscribed.
func (e *Engine) Running() chan struct{} { return e.router.Running() }

// Close stops the projectors; an unfinished batch rolls back and is delivered again later.
func (e *Engine) Close() error {
	e.head.stop()
	return e.router.Close()
}

// batchHandler runs one consumer's batches.
type batchHandler struct {
	h       BatchHandler
	db      *sql.DB
	log     *slog.Logger
	failing *atomic.Bool  // a batch failed and has not been handled since
	count   *atomic.Int64 // log events the last batch covered (for the poll's gather wait)
	// recorded is set while a projector_failures row may exist for the consumer (after a failure,
	// and at start, since an earlier process may have left one): the next handled batch deletes it.
	recorded atomic.Bool
}

// handle handles a batch in the subscriber's transaction. When the batch fails, it records the
// event at fault in projector_failures and rolls the subscriber's transaction back before
// returning: the acknowledgement that follows then fails, so the offset does not move, the
// subscriber backs off (RetryInterval, doubling) and selects the same batch again. Rolling back at
// once matters: a transaction left open holds back the snapshot xmin, and so delivery to every
// consumer, for as long as it stays open.
func (h *batchHandler) handle(msg *message.Message) error {
	ctx := msg.Context()
	tx, ok := wsql.TxFromContext(ctx)
	if !ok {
		return errors.New("no subscriber transaction in the message context")
	}
	b, err := eventstore.BatchFromMessage(msg)
	if err != nil {
		return err
	}
	h.count.Store(int64(b.Count))
	evs, err := readRange(ctx, tx, b, h.h.StreamTypes(), skipTypes(h.h))
	if err != nil {
		return err // a read error (connection lost): nacked, the transaction ends with it
	}
	if len(evs) > 0 {
		if err := h.h.HandleBatch(ctx, tx, evs); err != nil {
			h.fail(ctx, tx, evs, err)
			return nil
		}
	}
	if h.recorded.Load() {
		if _, err := tx.ExecContext(ctx, `DELETE FROM projector_failures WHERE projector = $1`, h.h.Name()); err != nil {
			return err
		}
		h.recorded.Store(false)
	}
	if h.failing.Swap(false) {
		h.log.Info("consumer recovered", "position", b.To.Position)
	}
	return nil
}

func execInSavepoint(ctx context.Context, tx *sql.Tx, stmts []Stmt) error {
	if len(stmts) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT apply_batch`); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s.SQL, s.Args...); err != nil {
			if _, rbErr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT apply_batch`); rbErr != nil {
				return errors.Join(err, rbErr)
			}
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT apply_batch`); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// fail records the failure and rolls the subscriber's transaction back.
func (h *batchHandler) fail(ctx context.Context, tx *sql.Tx, evs []eventstore.Event, err error) {
	culprit, cause := evs[0], err
	var ee *EventError
	if errors.As(err, &ee) {
		culprit, cause = ee.Event, ee.Err
	}
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		h.log.Error("rolling back a failed batch", "err", err)
	}
	h.failing.Store(true)
	h.recorded.Store(true)
	h.log.Error("cannot handle event; retrying it, nothing behind it is handled meanwhile",
		"position", culprit.Position, "stream_id", culprit.StreamID, "event_type", culprit.Type, "err", cause)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := h.db.ExecContext(rctx, `INSERT INTO projector_failures (projector, position, event_type, error)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (projector) DO UPDATE SET attempts = CASE
				WHEN projector_failures.position = excluded.position THEN projector_failures.attempts + 1 ELSE 1 END,
			first_failed_at = CASE
				WHEN projector_failures.position = excluded.position THEN projector_failures.first_failed_at ELSE now() END,
			position = excluded.position, event_type = excluded.event_type, error = excluded.error,
			last_failed_at = now()`,
		h.h.Name(), culprit.Position, culprit.Type, cause.Error()); err != nil {
		h.log.Error("recording projector failure", "err", err)
	}
}

// readRange reads a batch's events of the given stream types in the subscriber's transaction.
func readRange(ctx context.Context, tx *sql.Tx, b eventstore.Batch, streamTypes, skip []string) ([]eventstore.Event, error) {
	rows, err := tx.QueryContext(ctx, eventstore.RangeQuery, eventstore.RangeArgs(b.From, b.To, streamTypes, skip)...)
	if err != nil {
		return nil, fmt.Errorf("reading batch: %w", err)
	}
	defer rows.Close()
	evs := make([]eventstore.Event, 0, b.Count)
	for rows.Next() {
		e, err := eventstore.ScanProjected(rows)
		if err != nil {
			return nil, fmt.Errorf("reading batch: %w", err)
		}
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading batch: %w", err)
	}
	return evs, nil
}
