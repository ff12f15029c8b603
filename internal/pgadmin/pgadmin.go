// Package pgadmin creates and drops scratch databases on a PostgreSQL server: one per test or
// benchmark, so that they never share state.
package pgadmin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
)

// UniqueName returns prefix followed by random hex digits: a database name no one else uses.
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// WithDatabase returns serverURL pointing at database db.
func WithDatabase(serverURL, db string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("parsing %s: %w", serverURL, err)
	}
	u.Path = "/" + db
	return u.String(), nil
}

// Exec runs sql on its own connection to serverURL (CREATE/DROP DATABASE cannot run in a pool's
// transaction, and the connection must not outlive the statement).
func Exec(ctx context.Context, serverURL, sql string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// Create creates database name (copied from template when it is not empty) and returns its URL.
func Create(ctx context.Context, serverURL, name, template string) (string, error) {
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if err := Exec(ctx, serverURL, sql); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	return WithDatabase(serverURL, name)
}

// Drop drops database name, disconnecting whoever is still on it.
func Drop(ctx context.Context, serverURL, name string) error {
	if err := Exec(ctx, serverURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	return nil
}
