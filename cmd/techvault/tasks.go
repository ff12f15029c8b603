package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/app"
)

// verifyCommand checks the whole log's hashes and chains and prints what it found.
func verifyCommand(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer) error {
	pool, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, _, err := app.NewStore(pool)
	if err != nil {
		return err
	}
	rep, err := store.Verify(ctx)
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(stdout, "PROBLEM stream %s version %d (position %d): %s\n", p.StreamID, p.Version, p.Position, p.Reason)
	}
	fmt.Fprintf(stdout, "verified %d events in %d streams: %d problems\n", rep.Events, rep.Streams, len(rep.Problems))
	if !rep.OK() {
		return fmt.Errorf("the event log failed verification (%d problems)", len(rep.Problems))
	}
	return nil
}

func seedCommand(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer) error {
	pool, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	_, catalog, err := app.NewStore(pool)
	if err != nil {
		return err
	}
	res, err := catalog.SeedDemoCatalog(ctx, eventstore.Metadata{ActorID: "seed", RequestID: "seed"}, commands.DemoCatalog)
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	if res.AlreadySeeded {
		fmt.Fprintln(stdout, "demo catalog already seeded; nothing changed")
		return nil
	}
	fmt.Fprintf(stdout, "seeded the demo catalog: %d categories, %d products (up to position %d)\n",
		res.Categories, res.Products, res.Position)
	return nil
}
