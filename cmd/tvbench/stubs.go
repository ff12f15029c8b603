package main

import (
	"context"
	"io"
)

func benchRebuild(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	return result{}, nil
}
func benchHTTP(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	return result{}, nil
}
