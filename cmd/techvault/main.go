// Command techvault is the Tech Vault backend: one binary for the API, the projectors and the
// operator tasks.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lmittmann/tint"
	"github.com/mattn/go-isatty"

	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/internal/logbuf"
	"github.com/techvault/techvault/migrations"
	"github.com/techvault/techvault/projections"
)

const usage = `usage: techvault <command>

commands:
  serve                      migrate, then serve the HTTP API and run the projectors
  migrate                    apply database migrations
  seed                       append the demo catalog (once; a second run changes nothing)
  projections status         print each projector's position and lag
  projections rebuild NAME...|all
                             rebuild projections from the log, one after the other, while the
                             API keeps serving
  events seal                seal every settled event not sealed yet
  events verify              recompute every hash, hash chain and seal; exit 1 on any problem
  users promote EMAIL ROLE   give the account with this email a role (customer, admin, auditor)

configuration comes from the environment: see README.md and .env.example`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// Event and request ids are UUIDs: draw their randomness from a pool, not one crypto/rand
	// read each.
	uuid.EnableRandPool()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "techvault:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, usage)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	cfg, err := loadConfig(getenv, isatty.IsTerminal(os.Stderr.Fd()))
	if err != nil {
		return err
	}
	// Log lines are written in batches (at least every 100ms): one write per request line would
	// cost the API a good part of a core under load. Close flushes them on the way out.
	logOut := logbuf.New(os.Stderr, 0, 0)
	defer logOut.Close()
	log := newLogger(cfg, logOut)

	switch args[0] {
	case "serve":
		return serve(ctx, cfg, log)
	case "migrate":
		pool, err := openMigrated(ctx, cfg, log)
		if err != nil {
			return err
		}
		pool.Close()
		return nil
	case "seed":
		return seedCommand(ctx, cfg, log, stdout)
	case "projections":
		if len(args) < 2 {
			return errors.New("projections: give status, or rebuild NAME... or all")
		}
		return projectionsCommand(ctx, cfg, log, stdout, args[1:])
	case "users":
		if len(args) != 4 || args[1] != "promote" {
			return errors.New("users: give promote EMAIL ROLE")
		}
		return promoteCommand(ctx, cfg, log, stdout, args[2], args[3])
	case "events":
		if len(args) == 2 && args[1] == "seal" {
			return sealCommand(ctx, cfg, log, stdout)
		}
		if len(args) != 2 || args[1] != "verify" {
			return errors.New("events: give seal or verify")
		}
		return verifyCommand(ctx, cfg, log, stdout)
	}
	return fmt.Errorf("unknown command %q\n\n%s", args[0], usage)
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel)))
	if cfg.LogFormat == "text" {
		return slog.New(tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly}))
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

func openPool(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	pool, err := app.OpenPool(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL %s: %w", maskURL(cfg.DatabaseURL), err)
	}
	return pool, nil
}

// openMigrated connects to Postgres and applies the migrations.
func openMigrated(ctx context.Context, cfg Config, log *slog.Logger) (*pgxpool.Pool, error) {
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := migrations.Apply(ctx, pool, log); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

func projectionsCommand(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer, args []string) error {
	pool, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch args[0] {
	case "status":
		var names []string
		ck := projections.NewCheckpoints(pool)
		for _, p := range app.Projectors() {
			names = append(names, p.Name())
			ck.Given(p)
		}
		st, err := ck.Status(ctx, names...)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROJECTOR\tPOSITION\tLAG_EVENTS\tLAG_SECONDS\tFAILING")
		for _, s := range st {
			failing := "-"
			if f := s.Failure; f != nil {
				failing = fmt.Sprintf("event %d (%s), %d attempts since %s: %s", f.Position, f.EventType, f.Attempts,
					f.FirstFailedAt.UTC().Format(time.RFC3339), f.Error)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\t%s\n", s.Name, s.Position, s.LagEvents, s.LagSeconds, failing)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		left, err := projections.LeftoverShadows(ctx, pool, app.Projectors())
		if err != nil {
			return err
		}
		for _, t := range left {
			fmt.Fprintf(stdout, "leftover shadow table %s (a rebuild stopped mid-way; serve drops it at start)\n", t)
		}
		return nil
	case "rebuild":
		if len(args) < 2 {
			return errors.New("projections rebuild: give the projectors' names, or all")
		}
		var ps []projections.Projector
		if len(args) == 2 && args[1] == "all" {
			ps = app.Projectors()
		} else {
			for _, name := range args[1:] {
				p, err := app.ProjectorByName(name)
				if err != nil {
					return err
				}
				ps = append(ps, p)
			}
		}
		stats, err := projections.RebuildAll(ctx, pool, ps, log)
		for _, st := range stats {
			if st.Duration > 0 {
				fmt.Fprintf(stdout, "rebuilt %s: %d events in %s (%.0f events/s), now at position %d\n",
					st.Projector, st.Events, st.Duration.Round(time.Millisecond), st.EventsPerSecond(), st.Cursor.Position)
			}
		}
		return err
	}
	return fmt.Errorf("projections: unknown subcommand %q", args[0])
}
