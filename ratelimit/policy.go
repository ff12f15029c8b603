package ratelimit

import (
	"errors"
	"time"
)

// Policy is the set of rules the application applies (see "Policies the application should
// use" in the package doc for the reasons).
type Policy struct {
	SignInIP       Rule // sign-in attempts per client address
	SignInAccount  Rule // sign-in attempts per account (hashed email); Reset on success
	RegisterIP     Rule // registrations per client address
	ResetIP        Rule // password reset requests per client address
	ResetAccount   Rule // password reset requests per account (hashed email)
	ResetConfirmIP Rule // new passwords set with a reset token, per client address
}

// DefaultPolicy returns the recommended rules.
func DefaultPolicy() Policy {
	return Policy{
		SignInIP:       Rule{Name: "signin_ip", Limit: 20, Window: 5 * time.Minute, OnRedisDown: LocalAllowance, LocalAllowance: 10},
		SignInAccount:  Rule{Name: "signin_account", Limit: 5, Window: 15 * time.Minute, OnRedisDown: LocalAllowance, LocalAllowance: 3},
		RegisterIP:     Rule{Name: "register_ip", Limit: 10, Window: time.Hour, OnRedisDown: LocalAllowance, LocalAllowance: 5},
		ResetIP:        Rule{Name: "reset_ip", Limit: 5, Window: time.Hour, OnRedisDown: LocalAllowance, LocalAllowance: 3},
		ResetAccount:   Rule{Name: "reset_account", Limit: 3, Window: time.Hour, OnRedisDown: LocalAllowance, LocalAllowance: 1},
		ResetConfirmIP: Rule{Name: "reset_confirm_ip", Limit: 10, Window: time.Hour, OnRedisDown: LocalAllowance, LocalAllowance: 5},
	}
}

// Validate reports whether every rule is valid and their names are distinct.
func (p Policy) Validate() error {
	rules := []Rule{p.SignInIP, p.SignInAccount, p.RegisterIP, p.ResetIP, p.ResetAccount, p.ResetConfirmIP}
	seen := make(map[string]bool, len(rules))
	var errs []error
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[r.Name] {
			errs = append(errs, errors.New("ratelimit: two rules are named "+r.Name))
		}
		seen[r.Name] = true
	}
	return errors.Join(errs...)
}
