package commands

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/pii"
)

// RequestPasswordReset is the command to mail a reset link.
type RequestPasswordReset struct {
	Email string
}

// RequestPasswordReset records a reset request for the account holding the address; the mail
// follows from the event. For an address no account holds it does nothing and answers alike, so
// the answer tells nobody whether an account exists.
func (h *Users) RequestPasswordReset(ctx context.Context, md domain.Metadata, cmd RequestPasswordReset) error {
	email, err := user.NormaliseEmail(cmd.Email)
	if err != nil {
		return err
	}
	_, err = execute(ctx, h.store, md, "RequestPasswordReset", redecideOnConflict, withAccountPosition,
		func(ctx context.Context) (AccountResult, []Change, error) {
			r, err := h.emailReservation(ctx, h.vault.Lookup(email))
			if err != nil || r.Holder() == 0 {
				return AccountResult{}, nil, err
			}
			u, err := h.loadUser(ctx, r.Holder())
			if err != nil || !u.Exists() {
				return AccountResult{}, nil, err
			}
			if err := u.RequestPasswordReset(uuid.Must(uuid.NewV7()).String()); err != nil {
				return AccountResult{}, nil, err
			}
			return AccountResult{}, []Change{userChange(u)}, nil
		})
	return err
}

// ResetPassword is the command a reset link carries, with the new password.
type ResetPassword struct {
	UserID    int64
	RequestID string
	Password  string
}

// ResetPassword redeems a reset link: the password changes, every session ends, and the link
// and every other open link stop working.
func (h *Users) ResetPassword(ctx context.Context, md domain.Metadata, cmd ResetPassword) (AccountResult, error) {
	invalid := domain.Invalid("token", "this reset link is no longer valid")
	u, err := h.loadUser(ctx, cmd.UserID)
	if err != nil {
		return AccountResult{}, err
	}
	if !u.Exists() {
		return AccountResult{}, invalid
	}
	hash, err := h.newPasswordHash(ctx, u, cmd.Password)
	if errors.Is(err, domain.ErrNotFound) {
		return AccountResult{}, invalid
	}
	if err != nil {
		return AccountResult{}, err
	}
	res, err := h.onAccount(ctx, md, "ResetPassword", cmd.UserID, func(u *user.User) (int64, error) {
		return 0, u.ResetPassword(cmd.RequestID, hash)
	})
	if errors.Is(err, domain.ErrNotFound) {
		return AccountResult{}, invalid
	}
	return res, err
}

// newPasswordHash checks a new password against the rule and returns its sealed hash.
func (h *Users) newPasswordHash(ctx context.Context, u *user.User, pw string) (user.Sealed, error) {
	box, err := h.box(ctx, u.ID())
	if err != nil {
		return "", err
	}
	var email string
	if e, ok := u.PrimaryEmail(); ok {
		if email, err = box.Open(string(e.Email)); err != nil {
			return "", fmt.Errorf("opening the email of user %d: %w", u.ID(), err)
		}
	}
	if err := user.CheckPassword(pw, email); err != nil {
		return "", err
	}
	hash, err := h.pw.Hash(ctx, pw)
	if err != nil {
		return "", fmt.Errorf("hashing the password: %w", err)
	}
	sealed, err := sealAll(box, hash)
	if err != nil {
		return "", err
	}
	return sealed[0], nil
}

// UpdateProfile is the command to change the caller's names or password (nil: unchanged).
type UpdateProfile struct {
	UserID    int64
	FirstName *string
	LastName  *string
	// Password changes the password; CurrentPassword must then be the present one (unless the
	// account has none yet, as one opened with Google).
	Password        *string
	CurrentPassword string
}

// UpdateProfile changes names and/or the password. A password change ends every session.
func (h *Users) UpdateProfile(ctx context.Context, md domain.Metadata, cmd UpdateProfile) (AccountResult, error) {
	if cmd.FirstName == nil && cmd.LastName == nil && cmd.Password == nil {
		return AccountResult{}, domain.Invalid("", "nothing to change: give first_name, last_name or password")
	}
	u, err := h.loadAccount(ctx, cmd.UserID)
	if err != nil {
		return AccountResult{}, err
	}
	box, err := h.box(ctx, cmd.UserID)
	if err != nil {
		return AccountResult{}, err
	}
	var (
		names       []user.Sealed
		first, last string // the names asked for, as text
	)
	if cmd.FirstName != nil || cmd.LastName != nil {
		first, err = box.Open(string(u.FirstName()))
		if err != nil {
			return AccountResult{}, fmt.Errorf("opening the names of user %d: %w", u.ID(), err)
		}
		last, err = box.Open(string(u.LastName()))
		if err != nil {
			return AccountResult{}, fmt.Errorf("opening the names of user %d: %w", u.ID(), err)
		}
		if cmd.FirstName != nil {
			first = *cmd.FirstName
		}
		if cmd.LastName != nil {
			last = *cmd.LastName
		}
		if first, last, err = user.Names(first, last); err != nil {
			return AccountResult{}, err
		}
		if names, err = sealAll(box, first, last); err != nil {
			return AccountResult{}, err
		}
	}
	var hash user.Sealed
	if cmd.Password != nil {
		if u.PasswordHash() != "" {
			current, err := box.Open(string(u.PasswordHash()))
			if err != nil {
				return AccountResult{}, fmt.Errorf("opening the password hash of user %d: %w", u.ID(), err)
			}
			ok, err := h.pw.Check(ctx, cmd.CurrentPassword, current)
			if err != nil {
				return AccountResult{}, fmt.Errorf("checking the password of user %d: %w", u.ID(), err)
			}
			if !ok {
				return AccountResult{}, domain.Invalid("current_password", "current_password is incorrect")
			}
		}
		if hash, err = h.newPasswordHash(ctx, u, *cmd.Password); err != nil {
			return AccountResult{}, err
		}
	}
	return h.onAccount(ctx, md, "UpdateProfile", cmd.UserID, func(u *user.User) (int64, error) {
		if names != nil {
			// Names as they are already record nothing (compared as text: sealing is randomised).
			same, err := openedEqual(box, []user.Sealed{u.FirstName(), u.LastName()}, first, last)
			if err != nil {
				return 0, fmt.Errorf("opening the names of user %d: %w", u.ID(), err)
			}
			if !same {
				if err := u.UpdateProfile(names[0], names[1]); err != nil {
					return 0, err
				}
			}
		}
		if hash != "" {
			return 0, u.ChangePassword(hash)
		}
		return 0, nil
	})
}

// AddEmail is the command to add an address to the caller's account.
type AddEmail struct {
	UserID int64
	Email  string
}

// AddEmail adds an unverified address (a verification mail follows from the event), reserving
// it in the same append.
func (h *Users) AddEmail(ctx context.Context, md domain.Metadata, cmd AddEmail) (AccountResult, error) {
	email, err := user.NormaliseEmail(cmd.Email)
	if err != nil {
		return AccountResult{}, err
	}
	box, err := h.box(ctx, cmd.UserID)
	if err != nil {
		return AccountResult{}, err
	}
	sealed, err := sealAll(box, email)
	if err != nil {
		return AccountResult{}, err
	}
	lookup := h.vault.Lookup(email)
	id, err := h.ids.NextID(ctx, EmailIDs)
	if err != nil {
		return AccountResult{}, err
	}
	return execute(ctx, h.store, md, "AddEmail", redecideOnConflict, withAccountPosition,
		func(ctx context.Context) (AccountResult, []Change, error) {
			u, err := h.loadAccount(ctx, cmd.UserID)
			if err != nil {
				return AccountResult{}, nil, err
			}
			if err := u.AddEmail(id, sealed[0], lookup); err != nil {
				return AccountResult{}, nil, err
			}
			r, err := h.emailReservation(ctx, lookup)
			if err != nil {
				return AccountResult{}, nil, err
			}
			if err := r.Reserve(u.ID(), id); err != nil {
				return AccountResult{}, nil, err
			}
			return AccountResult{UserID: u.ID(), Role: u.Role(), ID: id}, []Change{userChange(u), r.change()}, nil
		})
}

// EmailRef names one address of the caller's account.
type EmailRef struct {
	UserID, EmailID int64
}

// RemoveEmail removes an address (not the primary one) and releases it.
func (h *Users) RemoveEmail(ctx context.Context, md domain.Metadata, cmd EmailRef) (AccountResult, error) {
	return execute(ctx, h.store, md, "RemoveEmail", redecideOnConflict, withAccountPosition,
		func(ctx context.Context) (AccountResult, []Change, error) {
			u, err := h.loadAccount(ctx, cmd.UserID)
			if err != nil {
				return AccountResult{}, nil, err
			}
			e, err := u.RemoveEmail(cmd.EmailID)
			if err != nil {
				return AccountResult{}, nil, err
			}
			r, err := h.emailReservation(ctx, e.Lookup)
			if err != nil {
				return AccountResult{}, nil, err
			}
			r.Release(u.ID())
			return AccountResult{UserID: u.ID(), Role: u.Role(), ID: e.ID}, []Change{userChange(u), r.change()}, nil
		})
}

// MakeEmailPrimary makes a verified address the primary one.
func (h *Users) MakeEmailPrimary(ctx context.Context, md domain.Metadata, cmd EmailRef) (AccountResult, error) {
	return h.onAccount(ctx, md, "MakeEmailPrimary", cmd.UserID, func(u *user.User) (int64, error) {
		return cmd.EmailID, u.MakeEmailPrimary(cmd.EmailID)
	})
}

// AddPhone is the command to add a phone number.
type AddPhone struct {
	UserID int64
	Phone  string
}

// AddPhone adds a phone number (the first one is primary).
func (h *Users) AddPhone(ctx context.Context, md domain.Metadata, cmd AddPhone) (AccountResult, error) {
	phone, err := user.NormalisePhone(cmd.Phone)
	if err != nil {
		return AccountResult{}, err
	}
	box, err := h.box(ctx, cmd.UserID)
	if err != nil {
		return AccountResult{}, err
	}
	sealed, err := sealAll(box, phone)
	if err != nil {
		return AccountResult{}, err
	}
	id, err := h.ids.NextID(ctx, PhoneIDs)
	if err != nil {
		return AccountResult{}, err
	}
	return h.onAccount(ctx, md, "AddPhone", cmd.UserID, func(u *user.User) (int64, error) {
		return id, u.AddPhone(id, sealed[0])
	})
}

// PhoneRef names one phone number of the caller's account.
type PhoneRef struct {
	UserID, PhoneID int64
}

// RemovePhone removes a phone number.
func (h *Users) RemovePhone(ctx context.Context, md domain.Metadata, cmd PhoneRef) (AccountResult, error) {
	return h.onAccount(ctx, md, "RemovePhone", cmd.UserID, func(u *user.User) (int64, error) {
		return cmd.PhoneID, u.RemovePhone(cmd.PhoneID)
	})
}

// MakePhonePrimary makes a phone number the primary one.
func (h *Users) MakePhonePrimary(ctx context.Context, md domain.Metadata, cmd PhoneRef) (AccountResult, error) {
	return h.onAccount(ctx, md, "MakePhonePrimary", cmd.UserID, func(u *user.User) (int64, error) {
		return cmd.PhoneID, u.MakePhonePrimary(cmd.PhoneID)
	})
}

// SaveAddress is the command to add an address (AddressID 0) or replace one.
type SaveAddress struct {
	UserID    int64
	AddressID int64
	user.Address
}

// SaveAddress adds or replaces a postal address.
func (h *Users) SaveAddress(ctx context.Context, md domain.Metadata, cmd SaveAddress) (AccountResult, error) {
	a, err := user.CleanAddress(cmd.Address)
	if err != nil {
		return AccountResult{}, err
	}
	box, err := h.box(ctx, cmd.UserID)
	if err != nil {
		return AccountResult{}, err
	}
	sealed, err := sealAll(box, a.City, a.PostCode, a.Country)
	if err != nil {
		return AccountResult{}, err
	}
	sa := user.SealedAddress{City: sealed[0], PostCode: sealed[1], Country: sealed[2]}
	if cmd.AddressID != 0 {
		return h.onAccount(ctx, md, "UpdateAddress", cmd.UserID, func(u *user.User) (int64, error) {
			if cur, ok := u.Address(cmd.AddressID); ok {
				// An address as it is already records nothing.
				same, err := openedEqual(box, []user.Sealed{cur.City, cur.PostCode, cur.Country}, a.City, a.PostCode, a.Country)
				if err != nil {
					return 0, fmt.Errorf("opening address %d of user %d: %w", cmd.AddressID, u.ID(), err)
				}
				if same {
					return cmd.AddressID, nil
				}
			}
			return cmd.AddressID, u.UpdateAddress(cmd.AddressID, sa)
		})
	}
	id, err := h.ids.NextID(ctx, AddressIDs)
	if err != nil {
		return AccountResult{}, err
	}
	return h.onAccount(ctx, md, "AddAddress", cmd.UserID, func(u *user.User) (int64, error) {
		return id, u.AddAddress(id, sa)
	})
}

// AddressRef names one address of the caller's account.
type AddressRef struct {
	UserID, AddressID int64
}

// RemoveAddress removes an address.
func (h *Users) RemoveAddress(ctx context.Context, md domain.Metadata, cmd AddressRef) (AccountResult, error) {
	return h.onAccount(ctx, md, "RemoveAddress", cmd.UserID, func(u *user.User) (int64, error) {
		return cmd.AddressID, u.RemoveAddress(cmd.AddressID)
	})
}

// MakeAddressPrimary makes an address the primary one.
func (h *Users) MakeAddressPrimary(ctx context.Context, md domain.Metadata, cmd AddressRef) (AccountResult, error) {
	return h.onAccount(ctx, md, "MakeAddressPrimary", cmd.UserID, func(u *user.User) (int64, error) {
		return cmd.AddressID, u.MakeAddressPrimary(cmd.AddressID)
	})
}

// SetImage is the command to make an upload the caller's picture.
type SetImage struct {
	UserID   int64
	PublicID string
	URL      string
}

// SetImage records the new picture; the one it replaces is destroyed after the fact.
func (h *Users) SetImage(ctx context.Context, md domain.Metadata, cmd SetImage) (AccountResult, error) {
	box, err := h.box(ctx, cmd.UserID)
	if err != nil {
		return AccountResult{}, err
	}
	sealed, err := sealAll(box, cmd.URL)
	if err != nil {
		return AccountResult{}, err
	}
	return h.onAccount(ctx, md, "SetImage", cmd.UserID, func(u *user.User) (int64, error) {
		return 0, u.SetImage(cmd.PublicID, sealed[0])
	})
}

// RemoveImage removes the caller's picture (destroyed after the fact).
func (h *Users) RemoveImage(ctx context.Context, md domain.Metadata, userID int64) (AccountResult, error) {
	return h.onAccount(ctx, md, "RemoveImage", userID, func(u *user.User) (int64, error) {
		return 0, u.RemoveImage()
	})
}

// Erase erases the caller's account: the account's events are marked erased and its
// reservations released in one append, then its key is destroyed, so every sealed value in the
// log is unreadable for good (an effect destroys it again should this process die first).
func (h *Users) Erase(ctx context.Context, md domain.Metadata, userID int64) (AccountResult, error) {
	res, err := execute(ctx, h.store, md, "Erase", redecideOnConflict, withAccountPosition,
		func(ctx context.Context) (AccountResult, []Change, error) {
			u, err := h.loadAccount(ctx, userID)
			if err != nil {
				return AccountResult{}, nil, err
			}
			emails := u.Emails()
			google := u.GoogleLookup()
			if err := u.Erase(); err != nil {
				return AccountResult{}, nil, err
			}
			changes := []Change{userChange(u)}
			for _, e := range emails {
				r, err := h.emailReservation(ctx, e.Lookup)
				if err != nil {
					return AccountResult{}, nil, err
				}
				r.Release(userID)
				changes = append(changes, r.change())
			}
			if google != "" {
				r, err := h.loadReservation(ctx, user.GoogleStreamID(google), user.GoogleStreamType)
				if err != nil {
					return AccountResult{}, nil, err
				}
				r.ReleaseGoogle(userID)
				changes = append(changes, r.change())
			}
			return AccountResult{UserID: userID}, changes, nil
		})
	if err != nil {
		return AccountResult{}, err
	}
	if err := h.vault.Shred(ctx, userID); err != nil {
		return AccountResult{}, err
	}
	return res, nil
}

// ChangeRole is the operator's command to give the account holding an address a role.
type ChangeRole struct {
	Email string
	Role  string
}

// ChangeRole gives an account a role (`techvault users promote EMAIL ROLE`).
func (h *Users) ChangeRole(ctx context.Context, md domain.Metadata, cmd ChangeRole) (AccountResult, error) {
	role, err := user.ParseRole(cmd.Role)
	if err != nil {
		return AccountResult{}, err
	}
	email, err := user.NormaliseEmail(cmd.Email)
	if err != nil {
		return AccountResult{}, err
	}
	r, err := h.emailReservation(ctx, h.vault.Lookup(email))
	if err != nil {
		return AccountResult{}, err
	}
	if r.Holder() == 0 {
		return AccountResult{}, domain.NotFound("no account has this email")
	}
	return h.onAccount(ctx, md, "ChangeRole", r.Holder(), func(u *user.User) (int64, error) {
		return 0, u.ChangeRole(role)
	})
}

// GoogleIdentity is who Google says signed in (its ID token, verified).
type GoogleIdentity struct {
	Subject       string
	Email         string
	EmailVerified bool
	GivenName     string
	FamilyName    string
}

// GoogleSignIn signs in with a verified Google identity: the account linked to it; else the
// account holding its (verified) address, which is linked; else a new account with a verified
// email.
func (h *Users) GoogleSignIn(ctx context.Context, md domain.Metadata, id GoogleIdentity) (SessionResult, error) {
	if id.Subject == "" {
		return SessionResult{}, domain.Invalid("id_token", "the identity has no subject")
	}
	if !id.EmailVerified {
		return SessionResult{}, domain.Invalid("email", "Google has not verified this account's email")
	}
	email, err := user.NormaliseEmail(id.Email)
	if err != nil {
		return SessionResult{}, err
	}
	gLookup, eLookup := h.vault.Lookup("google:"+id.Subject), h.vault.Lookup(email)
	g, err := h.loadReservation(ctx, user.GoogleStreamID(gLookup), user.GoogleStreamType)
	if err != nil {
		return SessionResult{}, err
	}
	if g.Holder() != 0 {
		u, err := h.loadAccount(ctx, g.Holder())
		if err != nil {
			return SessionResult{}, err
		}
		return h.startSession(ctx, md, u, user.MethodGoogle, false)
	}
	r, err := h.emailReservation(ctx, eLookup)
	if err != nil {
		return SessionResult{}, err
	}
	if r.Holder() != 0 {
		md.ActorID = strconv.FormatInt(r.Holder(), 10)
		res, err := execute(ctx, h.store, md, "LinkGoogle", redecideOnConflict, withAccountPosition,
			func(ctx context.Context) (AccountResult, []Change, error) {
				u, err := h.loadAccount(ctx, r.Holder())
				if err != nil {
					return AccountResult{}, nil, err
				}
				if err := u.LinkGoogle(gLookup, eLookup); err != nil {
					return AccountResult{}, nil, err
				}
				g, err := h.loadReservation(ctx, user.GoogleStreamID(gLookup), user.GoogleStreamType)
				if err != nil {
					return AccountResult{}, nil, err
				}
				if err := g.ReserveGoogle(u.ID()); err != nil {
					return AccountResult{}, nil, err
				}
				return AccountResult{UserID: u.ID()}, []Change{userChange(u), g.change()}, nil
			})
		if err != nil {
			return SessionResult{}, err
		}
		u, err := h.loadAccount(ctx, res.UserID)
		if err != nil {
			return SessionResult{}, err
		}
		return h.startSession(ctx, md, u, user.MethodGoogle, false)
	}
	return h.registerWithGoogle(ctx, md, id, email, eLookup, gLookup)
}

func (h *Users) registerWithGoogle(ctx context.Context, md domain.Metadata, id GoogleIdentity, email, eLookup, gLookup string) (SessionResult, error) {
	first, last := id.GivenName, id.FamilyName
	if first == "" {
		first, _, _ = strings.Cut(email, "@")
	}
	if last == "" {
		last = "-"
	}
	first, last, err := user.Names(first, last)
	if err != nil {
		return SessionResult{}, err
	}
	userID, err := h.ids.NextID(ctx, UserIDs)
	if err != nil {
		return SessionResult{}, err
	}
	emailID, err := h.ids.NextID(ctx, EmailIDs)
	if err != nil {
		return SessionResult{}, err
	}
	box, err := h.vault.CreateKey(ctx, userID)
	if err != nil {
		return SessionResult{}, err
	}
	sealed, err := sealAll(box, first, last, email)
	if err != nil {
		return SessionResult{}, err
	}
	var u *user.User
	md.ActorID = strconv.FormatInt(userID, 10)
	_, err = execute(ctx, h.store, md, "RegisterWithGoogle", once, withAccountPosition,
		func(ctx context.Context) (AccountResult, []Change, error) {
			u, err = user.Register(user.RegisterInput{ID: userID, FirstName: sealed[0], LastName: sealed[1],
				Method: user.MethodGoogle, EmailID: emailID, Email: sealed[2], EmailLookup: eLookup,
				EmailVerified: true, GoogleLookup: gLookup})
			if err != nil {
				return AccountResult{}, nil, err
			}
			r, err := h.emailReservation(ctx, eLookup)
			if err != nil {
				return AccountResult{}, nil, err
			}
			if err := r.Reserve(userID, emailID); err != nil {
				return AccountResult{}, nil, err
			}
			g, err := h.loadReservation(ctx, user.GoogleStreamID(gLookup), user.GoogleStreamType)
			if err != nil {
				return AccountResult{}, nil, err
			}
			if err := g.ReserveGoogle(userID); err != nil {
				return AccountResult{}, nil, err
			}
			return AccountResult{UserID: userID}, []Change{userChange(u), r.change(), g.change()}, nil
		})
	if err != nil {
		if serr := h.vault.Shred(context.WithoutCancel(ctx), userID); serr != nil {
			err = errors.Join(err, serr)
		}
		if errors.Is(err, domain.ErrConcurrency) {
			return SessionResult{}, domain.Conflict("this account is being created by another sign-in; try again")
		}
		return SessionResult{}, err
	}
	u, err = h.loadAccount(ctx, userID)
	if err != nil {
		return SessionResult{}, err
	}
	return h.startSession(ctx, md, u, user.MethodGoogle, true)
}

// The ...ByID forms take the caller and a path id, as the HTTP routes give them.

// RemoveEmailByID removes the caller's address id.
func (h *Users) RemoveEmailByID(ctx context.Context, md domain.Metadata, userID, id int64) (AccountResult, error) {
	return h.RemoveEmail(ctx, md, EmailRef{UserID: userID, EmailID: id})
}

// MakeEmailPrimaryByID makes the caller's address id primary.
func (h *Users) MakeEmailPrimaryByID(ctx context.Context, md domain.Metadata, userID, id int64) (AccountResult, error) {
	return h.MakeEmailPrimary(ctx, md, EmailRef{UserID: userID, EmailID: id})
}

// RemovePhoneByID removes the caller's phone number id.
func (h *Users) RemovePhoneByID(ctx context.Context, md domain.Metadata, userID, id int64) (AccountResult, error) {
	return h.RemovePhone(ctx, md, PhoneRef{UserID: userID, PhoneID: id})
}

// MakePhonePrimaryByID makes the caller's phone number id primary.
func (h *Users) MakePhonePrimaryByID(ctx context.Context, md domain.Metadata, userID, id int64) (AccountResult, error) {
	return h.MakePhonePrimary(ctx, md, PhoneRef{UserID: userID, PhoneID: id})
}

// RemoveAddressByID removes the caller's address id.
func (h *Users) RemoveAddressByID(ctx context.Context, md domain.Metadata, userID, id int64) (AccountResult, error) {
	return h.RemoveAddress(ctx, md, AddressRef{UserID: userID, AddressID: id})
}

// MakeAddressPrimaryByID makes the caller's address id primary.
func (h *Users) MakeAddressPrimaryByID(ctx context.Context, md domain.Metadata, userID, id int64) (AccountResult, error) {
	return h.MakeAddressPrimary(ctx, md, AddressRef{UserID: userID, AddressID: id})
}

// openedEqual says whether the sealed values open to want, in order.
func openedEqual(box pii.Box, sealed []user.Sealed, want ...string) (bool, error) {
	for i, s := range sealed {
		got, err := box.Open(string(s))
		if err != nil {
			return false, err
		}
		if got != want[i] {
			return false, nil
		}
	}
	return true, nil
}
