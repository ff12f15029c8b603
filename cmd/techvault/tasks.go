package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/internal/app"
)

// verifyCommand checks the whole log's hashes and chains and prints what it found.
func verifyCommand(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer) error {
	pool, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, _, err := app.NewStore(pool, log)
	if err != nil {
		return err
	}
	rep, err := store.Verify(ctx)
	if err != nil {
		return err
	}
	for i, p := range rep.Problems {
		if i == 0 {
			fmt.Fprintf(stdout, "FIRST PROBLEM %s\n", p)
			continue
		}
		fmt.Fprintf(stdout, "PROBLEM %s\n", p)
	}
	fmt.Fprintf(stdout, "verified %d events in %d streams against %d seals (%d events sealed, %d after the last seal): %d problems\n",
		rep.Events, rep.Streams, rep.Seals, rep.SealedEvents, max(rep.Events-rep.SealedEvents, 0), len(rep.Problems))
	if !rep.OK() {
		return fmt.Errorf("the event log failed verification (%d problems)", len(rep.Problems))
	}
	return nil
}

// sealCommand seals every settled event not yet sealed and prints the newest seal.
func sealCommand(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer) error {
	pool, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, _, err := app.NewStore(pool, log)
	if err != nil {
		return err
	}
	before, err := store.LastSeal(ctx)
	if err != nil {
		return err
	}
	seal, err := store.Seal(ctx)
	if err != nil {
		return err
	}
	switch seal.Number {
	case 0:
		fmt.Fprintln(stdout, "nothing to seal: no event has settled yet")
	case before.Number:
		fmt.Fprintf(stdout, "nothing new to seal: seal %d covers %d events up to position %d\n",
			seal.Number, seal.TotalEvents, seal.Cursor.Position)
	default:
		fmt.Fprintf(stdout, "seal %d: %d events up to position %d (%d in all), digest %x\n",
			seal.Number, seal.Events, seal.Cursor.Position, seal.TotalEvents, seal.Digest)
	}
	return nil
}

func seedCommand(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer) error {
	pool, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	_, catalog, err := app.NewStore(pool, log)
	if err != nil {
		return err
	}
	res, err := catalog.SeedDemoCatalog(ctx, domain.Metadata{ActorID: "seed", RequestID: "seed"}, commands.DemoCatalog)
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

// promoteCommand gives an account a role: the way the first admin is made.
func promoteCommand(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer, email, role string) error {
	ac, err := appConfig(cfg)
	if err != nil {
		return err
	}
	pool, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	ac.Pool = pool
	a, err := app.New(ctx, ac, log)
	if err != nil {
		return err
	}
	defer func() { _ = a.Close() }()
	res, err := a.Users.ChangeRole(ctx, domain.Metadata{ActorID: "operator", CorrelationID: "cli-promote"},
		commands.ChangeRole{Email: email, Role: role})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %d is now %s (position %d); their next sign-in or token refresh carries the role\n",
		res.UserID, role, res.Position)
	return nil
}
