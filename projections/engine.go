package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
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
	Logger     *slog.Logger
	// PollInterval is how long a caught-up subscriber sleeps before polling again while events
	// flow (10ms).
	PollInterval time.Duration
	// IdlePollInterval is the wait after about a second without events (50ms).
	IdlePollInterval time.Duration
	// BatchSize is how many events one subscriber transaction reads (100). A batch's rows become
	// visible when it commits, so large batches raise lag once a projector falls behind.
	BatchSize int
	// AckDeadline bounds how long one event may take before its batch is rolled back (10s).
	AckDeadline time.Duration
}

func (c *EngineConfig) setDefaults() {
	if c.PollInterval <= 0 {
		c.PollInterval = 10 * time.Millisecond
	}
	if c.IdlePollInterval <= 0 {
		c.IdlePollInterval = 50 * time.Millisecond
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.AckDeadline <= 0 {
		c.AckDeadline = 10 * time.Second
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
	for _, p := range c.Projectors {
		if seen[p.Name()] {
			return fmt.Errorf("projections: projector %s given twice", p.Name())
		}
		seen[p.Name()] = true
	}
	return nil
}

// Engine runs projectors live: a Watermill router with one watermill-sql subscriber per projector
// on the events table. Each projector's writes happen in its subscriber's transaction, so rows and
// the acknowledged offset commit together.
type Engine struct {
	router *message.Router
	log    *slog.Logger
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
	for _, p := range cfg.Projectors {
		ack := cfg.AckDeadline
		sub, err := wsql.NewSubscriber(cfg.DB, wsql.SubscriberConfig{
			ConsumerGroup:  p.Name(),
			SchemaAdapter:  eventstore.NewSchemaAdapter(cfg.BatchSize),
			OffsetsAdapter: eventstore.OffsetsAdapter(),
			PollInterval:   cfg.PollInterval,
			ResendInterval: 100 * time.Millisecond,
			RetryInterval:  100 * time.Millisecond,
			BackoffManager: newAdaptivePoll(cfg.PollInterval, cfg.IdlePollInterval, 100*time.Millisecond),
			AckDeadline:    &ack,
		}, wlog)
		if err != nil {
			return nil, fmt.Errorf("subscriber for %s: %w", p.Name(), err)
		}
		router.AddConsumerHandler(p.Name(), eventstore.Topic, sub, liveHandler(p, cfg.Logger.With("projector", p.Name())))
	}
	return &Engine{router: router, log: cfg.Logger}, nil
}

// Run runs the projectors until ctx is done or Close is called.
func (e *Engine) Run(ctx context.Context) error { return e.router.Run(ctx) }

// Running is closed once every projector is subscribed.
func (e *Engine) Running() chan struct{} { return e.router.Running() }

// Close stops the projectors; an unfinished batch rolls back and is delivered again later.
func (e *Engine) Close() error { return e.router.Close() }

// liveHandler applies one event in the subscriber's transaction, inside a savepoint: a failing
// statement rolls back only this event's writes (the batch transaction stays usable) and the event
// is delivered again after the resend interval. Nothing behind it is delivered meanwhile.
func liveHandler(p Projector, log *slog.Logger) message.NoPublishHandlerFunc {
	tables := Identity(p)
	notifier, _ := p.(Notifier)
	return func(msg *message.Message) error {
		ev, err := eventstore.EventFromMessage(msg)
		if err != nil {
			return fmt.Errorf("decoding message: %w", err)
		}
		stmts, err := p.Apply(tables, ev)
		if err != nil {
			log.Error("cannot apply event", "position", ev.Position, "event_type", ev.Type, "err", err)
			return err
		}
		if notifier != nil {
			for _, n := range notifier.Notifications(ev) {
				stmts = append(stmts, Stmt{SQL: `SELECT pg_notify($1, $2)`, Args: []any{notifier.NotifyChannel(), n}})
			}
		}
		if len(stmts) == 0 {
			return nil
		}
		ctx := msg.Context()
		tx, ok := wsql.TxFromContext(ctx)
		if !ok {
			return errors.New("no subscriber transaction in the message context")
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT apply_event`); err != nil {
			return fmt.Errorf("savepoint: %w", err)
		}
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s.SQL, s.Args...); err != nil {
				log.Error("projection statement failed", "position", ev.Position, "event_type", ev.Type, "err", err)
				if _, rbErr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT apply_event`); rbErr != nil {
					return errors.Join(err, rbErr)
				}
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT apply_event`); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
		return nil
	}
}
