package user

import (
	"slices"

	"github.com/techvault/techvault/domain"
)

// SnapshotSchemaVersion is the version of State as snapshots store it. Bump it whenever State's
// shape or the apply logic changes: older snapshots are then ignored and rewritten.
const SnapshotSchemaVersion = 1

// State is an account's whole state (sealed values stay sealed), as a snapshot stores it.
type State struct {
	ID           int64          `json:"id"`
	FirstName    Sealed         `json:"first_name"`
	LastName     Sealed         `json:"last_name"`
	PasswordHash Sealed         `json:"password_hash,omitempty"`
	Role         Role           `json:"role"`
	Emails       []EmailState   `json:"emails"`
	Phones       []PhoneState   `json:"phones"`
	Addresses    []AddressState `json:"addresses"`
	Image        *ImageState    `json:"image,omitempty"`
	OpenResets   []string       `json:"open_resets,omitempty"`
	SessionEpoch int64          `json:"session_epoch"`
	GoogleLookup string         `json:"google_lookup,omitempty"`
	Erased       bool           `json:"erased"`
}

// EmailState is one address of an account.
type EmailState struct {
	ID       int64  `json:"id"`
	Email    Sealed `json:"email"`
	Lookup   string `json:"lookup"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// PhoneState is one phone number of an account.
type PhoneState struct {
	ID      int64  `json:"id"`
	Number  Sealed `json:"number"`
	Primary bool   `json:"primary"`
}

// AddressState is one postal address of an account.
type AddressState struct {
	ID       int64  `json:"id"`
	City     Sealed `json:"city"`
	PostCode Sealed `json:"post_code"`
	Country  Sealed `json:"country"`
	Primary  bool   `json:"primary"`
}

// ImageState is the account's picture.
type ImageState struct {
	PublicID string `json:"public_id"`
	URL      Sealed `json:"url"`
}

// User is an account. It changes only by recording events.
type User struct {
	s       State
	version int64
	changes []domain.Event
}

// RegisterInput is what opening an account needs; personal values come sealed, already
// checked by Names, NormaliseEmail and CheckPassword before sealing.
type RegisterInput struct {
	ID            int64
	FirstName     Sealed
	LastName      Sealed
	PasswordHash  Sealed // empty for Google
	Method        string
	EmailID       int64
	Email         Sealed
	EmailLookup   string
	EmailVerified bool   // proven by Google
	GoogleLookup  string // set for Google
}

// Register opens an account with its first (primary) email address.
func Register(in RegisterInput) (*User, error) {
	if in.ID <= 0 || in.EmailID <= 0 || in.FirstName == "" || in.LastName == "" || in.Email == "" || in.EmailLookup == "" {
		return nil, domain.Invalid("", "an account needs a name and an email")
	}
	switch in.Method {
	case MethodPassword:
		if in.PasswordHash == "" {
			return nil, domain.Invalid("password", "password is required")
		}
	case MethodGoogle:
		if in.GoogleLookup == "" || !in.EmailVerified {
			return nil, domain.Invalid("email", "Google did not verify this email")
		}
	default:
		return nil, domain.Invalid("method", "unknown sign-in method")
	}
	u := &User{}
	u.record(UserRegistered{UserID: in.ID, Email: in.Email, FirstName: in.FirstName, LastName: in.LastName,
		PasswordHash: in.PasswordHash, Role: Customer, Method: in.Method})
	u.record(EmailAdded{UserID: in.ID, EmailID: in.EmailID, Email: in.Email, Lookup: in.EmailLookup,
		Primary: true, Verified: in.EmailVerified})
	if in.GoogleLookup != "" {
		u.record(GoogleLinked{UserID: in.ID, Lookup: in.GoogleLookup})
	}
	return u, nil
}

// Rehydrate rebuilds an account from its stream; nil when the stream is empty.
func Rehydrate(history []domain.Event) *User {
	if len(history) == 0 {
		return nil
	}
	u := &User{}
	for _, e := range history {
		u.apply(e)
		u.version++
	}
	return u
}

// RehydrateFrom rebuilds an account from a snapshot of its state at version and the events
// after it. An impossible state is an error (the caller then loads the whole stream).
func RehydrateFrom(state State, version int64, tail []domain.Event) (*User, error) {
	if state.ID <= 0 || version <= 0 {
		return nil, domain.Invalid("snapshot", "impossible account snapshot")
	}
	u := &User{s: state.clone(), version: version}
	for _, e := range tail {
		u.apply(e)
		u.version++
	}
	return u, nil
}

// Snapshot returns the account's state (right after loading: the state at Version()).
func (u *User) Snapshot() State { return u.s.clone() }

func (s State) clone() State {
	c := s
	c.Emails = slices.Clone(s.Emails)
	c.Phones = slices.Clone(s.Phones)
	c.Addresses = slices.Clone(s.Addresses)
	c.OpenResets = slices.Clone(s.OpenResets)
	if s.Image != nil {
		img := *s.Image
		c.Image = &img
	}
	return c
}

// Exists reports whether the account is open (registered and not erased).
func (u *User) Exists() bool { return u != nil && !u.s.Erased }

func (u *User) mustExist() error {
	if !u.Exists() {
		return domain.NotFound("account not found")
	}
	return nil
}

// Accessors.
func (u *User) ID() int64               { return u.s.ID }
func (u *User) Role() Role              { return u.s.Role }
func (u *User) FirstName() Sealed       { return u.s.FirstName }
func (u *User) LastName() Sealed        { return u.s.LastName }
func (u *User) PasswordHash() Sealed    { return u.s.PasswordHash }
func (u *User) SessionEpoch() int64     { return u.s.SessionEpoch }
func (u *User) Emails() []EmailState    { return slices.Clone(u.s.Emails) }
func (u *User) Image() *ImageState      { return u.s.Image }
func (u *User) GoogleLookup() string    { return u.s.GoogleLookup }
func (u *User) Version() int64          { return u.version }
func (u *User) Changes() []domain.Event { return u.changes }

// Email returns one of the account's addresses.
func (u *User) Email(id int64) (EmailState, bool) {
	i := slices.IndexFunc(u.s.Emails, func(e EmailState) bool { return e.ID == id })
	if i < 0 {
		return EmailState{}, false
	}
	return u.s.Emails[i], true
}

// EmailByLookup returns the account's address with this lookup.
func (u *User) EmailByLookup(lookup string) (EmailState, bool) {
	i := slices.IndexFunc(u.s.Emails, func(e EmailState) bool { return e.Lookup == lookup })
	if i < 0 {
		return EmailState{}, false
	}
	return u.s.Emails[i], true
}

// PrimaryEmail returns the account's primary address.
func (u *User) PrimaryEmail() (EmailState, bool) {
	i := slices.IndexFunc(u.s.Emails, func(e EmailState) bool { return e.Primary })
	if i < 0 {
		return EmailState{}, false
	}
	return u.s.Emails[i], true
}

// primaryAddress is the sealed primary address (where account mail goes).
func (u *User) primaryAddress() Sealed {
	e, _ := u.PrimaryEmail()
	return e.Email
}

// UpdateProfile changes the names.
func (u *User) UpdateProfile(first, last Sealed) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	if first == "" || last == "" {
		return domain.Invalid("", "names are required")
	}
	u.record(ProfileUpdated{UserID: u.s.ID, FirstName: first, LastName: last})
	return nil
}

// AddEmail adds an address (unverified; a verification mail follows).
func (u *User) AddEmail(id int64, email Sealed, lookup string) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	if _, dup := u.EmailByLookup(lookup); dup {
		return domain.Conflict("this email is already on your account")
	}
	if len(u.s.Emails) >= MaxEmails {
		return domain.Conflict("an account holds at most %d emails", MaxEmails)
	}
	u.record(EmailAdded{UserID: u.s.ID, EmailID: id, Email: email, Lookup: lookup})
	return nil
}

// VerifyEmail marks an address verified (its link is then used up).
func (u *User) VerifyEmail(id int64) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	e, ok := u.Email(id)
	if !ok {
		return domain.Invalid("token", "this verification link is no longer valid")
	}
	if e.Verified {
		return domain.Invalid("token", "this verification link was already used")
	}
	u.record(EmailVerified{UserID: u.s.ID, EmailID: id})
	return nil
}

// RemoveEmail removes an address other than the primary one and returns it (its reservation
// is to be released).
func (u *User) RemoveEmail(id int64) (EmailState, error) {
	if err := u.mustExist(); err != nil {
		return EmailState{}, err
	}
	e, ok := u.Email(id)
	if !ok {
		return EmailState{}, domain.NotFound("email %d not found", id)
	}
	if e.Primary {
		return EmailState{}, domain.Conflict("the primary email cannot be removed; make another one primary first")
	}
	u.record(EmailRemoved{UserID: u.s.ID, EmailID: id, Lookup: e.Lookup})
	return e, nil
}

// MakeEmailPrimary makes a verified address the primary one.
func (u *User) MakeEmailPrimary(id int64) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	e, ok := u.Email(id)
	if !ok {
		return domain.NotFound("email %d not found", id)
	}
	if !e.Verified {
		return domain.Conflict("verify this email before making it primary")
	}
	if !e.Primary {
		u.record(PrimaryEmailChanged{UserID: u.s.ID, EmailID: id})
	}
	return nil
}

// AddPhone adds a phone number; the first one is primary.
func (u *User) AddPhone(id int64, number Sealed) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	if len(u.s.Phones) >= MaxPhones {
		return domain.Conflict("an account holds at most %d phone numbers", MaxPhones)
	}
	u.record(PhoneAdded{UserID: u.s.ID, PhoneID: id, Number: number, Primary: len(u.s.Phones) == 0})
	return nil
}

// RemovePhone removes a phone number; when it was primary, the oldest other one becomes primary.
func (u *User) RemovePhone(id int64) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	i := slices.IndexFunc(u.s.Phones, func(p PhoneState) bool { return p.ID == id })
	if i < 0 {
		return domain.NotFound("phone %d not found", id)
	}
	wasPrimary := u.s.Phones[i].Primary
	u.record(PhoneRemoved{UserID: u.s.ID, PhoneID: id})
	if wasPrimary && len(u.s.Phones) > 0 {
		u.record(PrimaryPhoneChanged{UserID: u.s.ID, PhoneID: u.s.Phones[0].ID})
	}
	return nil
}

// MakePhonePrimary makes a phone number the primary one.
func (u *User) MakePhonePrimary(id int64) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	i := slices.IndexFunc(u.s.Phones, func(p PhoneState) bool { return p.ID == id })
	if i < 0 {
		return domain.NotFound("phone %d not found", id)
	}
	if !u.s.Phones[i].Primary {
		u.record(PrimaryPhoneChanged{UserID: u.s.ID, PhoneID: id})
	}
	return nil
}

// SealedAddress is an address with each part sealed.
type SealedAddress struct {
	City, PostCode, Country Sealed
}

// Address returns one of the account's addresses (sealed).
func (u *User) Address(id int64) (AddressState, bool) {
	i := slices.IndexFunc(u.s.Addresses, func(a AddressState) bool { return a.ID == id })
	if i < 0 {
		return AddressState{}, false
	}
	return u.s.Addresses[i], true
}

// HasAddress reports whether the account has this address.
func (u *User) HasAddress(id int64) bool {
	return slices.ContainsFunc(u.s.Addresses, func(a AddressState) bool { return a.ID == id })
}

// AddAddress adds a postal address; the first one is primary.
func (u *User) AddAddress(id int64, a SealedAddress) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	if len(u.s.Addresses) >= MaxAddresses {
		return domain.Conflict("an account holds at most %d addresses", MaxAddresses)
	}
	u.record(AddressAdded{UserID: u.s.ID, AddressID: id, City: a.City, PostCode: a.PostCode, Country: a.Country,
		Primary: len(u.s.Addresses) == 0})
	return nil
}

// UpdateAddress replaces an address.
func (u *User) UpdateAddress(id int64, a SealedAddress) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	if !u.HasAddress(id) {
		return domain.NotFound("address %d not found", id)
	}
	u.record(AddressUpdated{UserID: u.s.ID, AddressID: id, City: a.City, PostCode: a.PostCode, Country: a.Country})
	return nil
}

// RemoveAddress removes an address; when it was primary, the oldest other one becomes primary.
func (u *User) RemoveAddress(id int64) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	i := slices.IndexFunc(u.s.Addresses, func(a AddressState) bool { return a.ID == id })
	if i < 0 {
		return domain.NotFound("address %d not found", id)
	}
	wasPrimary := u.s.Addresses[i].Primary
	u.record(AddressRemoved{UserID: u.s.ID, AddressID: id})
	if wasPrimary && len(u.s.Addresses) > 0 {
		u.record(PrimaryAddressChanged{UserID: u.s.ID, AddressID: u.s.Addresses[0].ID})
	}
	return nil
}

// MakeAddressPrimary makes an address the primary one.
func (u *User) MakeAddressPrimary(id int64) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	i := slices.IndexFunc(u.s.Addresses, func(a AddressState) bool { return a.ID == id })
	if i < 0 {
		return domain.NotFound("address %d not found", id)
	}
	if !u.s.Addresses[i].Primary {
		u.record(PrimaryAddressChanged{UserID: u.s.ID, AddressID: id})
	}
	return nil
}

// RequestPasswordReset opens a reset link named requestID.
func (u *User) RequestPasswordReset(requestID string) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	u.record(PasswordResetRequested{UserID: u.s.ID, RequestID: requestID, Email: u.primaryAddress()})
	return nil
}

// ResetPassword redeems an open reset link: the password changes, every session ends and every
// other open link is void.
func (u *User) ResetPassword(requestID string, hash Sealed) error {
	if !u.Exists() || !slices.Contains(u.s.OpenResets, requestID) {
		return domain.Invalid("token", "this reset link is no longer valid")
	}
	u.record(PasswordChanged{UserID: u.s.ID, Email: u.primaryAddress(), PasswordHash: hash, Reason: PasswordReset, RequestID: requestID})
	return nil
}

// ChangePassword sets a new password (the caller has checked the current one, or the account
// has none yet): every session ends.
func (u *User) ChangePassword(hash Sealed) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	reason := PasswordChange
	if u.s.PasswordHash == "" {
		reason = PasswordCreated
	}
	u.record(PasswordChanged{UserID: u.s.ID, Email: u.primaryAddress(), PasswordHash: hash, Reason: reason})
	return nil
}

// ChangeRole gives the account a role.
func (u *User) ChangeRole(r Role) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	if u.s.Role != r {
		u.record(RoleChanged{UserID: u.s.ID, Role: r})
	}
	return nil
}

// SetImage makes an upload the account's picture, replacing any other.
func (u *User) SetImage(publicID string, url Sealed) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	var replaced string
	if u.s.Image != nil {
		replaced = u.s.Image.PublicID
	}
	u.record(ImageSet{UserID: u.s.ID, PublicID: publicID, URL: url, Replaced: replaced})
	return nil
}

// RemoveImage removes the picture.
func (u *User) RemoveImage() error {
	if err := u.mustExist(); err != nil {
		return err
	}
	if u.s.Image == nil {
		return domain.NotFound("no picture to remove")
	}
	u.record(ImageRemoved{UserID: u.s.ID, PublicID: u.s.Image.PublicID})
	return nil
}

// LinkGoogle lets the account sign in with a Google account. Only an account whose address
// Google vouches for is verified here too may be linked, so nobody who registered someone
// else's address gains their Google sign-in.
func (u *User) LinkGoogle(lookup, emailLookup string) error {
	if err := u.mustExist(); err != nil {
		return err
	}
	if u.s.GoogleLookup == lookup {
		return nil
	}
	if u.s.GoogleLookup != "" {
		return domain.Conflict("this account is linked to another Google account")
	}
	if e, ok := u.EmailByLookup(emailLookup); !ok || !e.Verified {
		return domain.Conflict("an account with this email exists; sign in with your password and verify the email first")
	}
	u.record(GoogleLinked{UserID: u.s.ID, Lookup: lookup})
	return nil
}

// Erase erases the account.
func (u *User) Erase() error {
	if err := u.mustExist(); err != nil {
		return err
	}
	var img string
	if u.s.Image != nil {
		img = u.s.Image.PublicID
	}
	u.record(UserErased{UserID: u.s.ID, Image: img})
	return nil
}

func (u *User) record(e domain.Event) {
	u.apply(e)
	u.changes = append(u.changes, e)
}

func (u *User) apply(e domain.Event) {
	s := &u.s
	switch e := e.(type) {
	case UserRegistered:
		s.ID, s.FirstName, s.LastName, s.PasswordHash, s.Role = e.UserID, e.FirstName, e.LastName, e.PasswordHash, e.Role
	case ProfileUpdated:
		s.FirstName, s.LastName = e.FirstName, e.LastName
	case EmailAdded:
		if e.Primary {
			for i := range s.Emails {
				s.Emails[i].Primary = false
			}
		}
		s.Emails = append(s.Emails, EmailState{ID: e.EmailID, Email: e.Email, Lookup: e.Lookup, Primary: e.Primary, Verified: e.Verified})
	case EmailVerified:
		for i := range s.Emails {
			if s.Emails[i].ID == e.EmailID {
				s.Emails[i].Verified = true
			}
		}
	case EmailRemoved:
		s.Emails = slices.DeleteFunc(s.Emails, func(x EmailState) bool { return x.ID == e.EmailID })
	case PrimaryEmailChanged:
		for i := range s.Emails {
			s.Emails[i].Primary = s.Emails[i].ID == e.EmailID
		}
	case PhoneAdded:
		s.Phones = append(s.Phones, PhoneState{ID: e.PhoneID, Number: e.Number, Primary: e.Primary})
	case PhoneRemoved:
		s.Phones = slices.DeleteFunc(s.Phones, func(x PhoneState) bool { return x.ID == e.PhoneID })
	case PrimaryPhoneChanged:
		for i := range s.Phones {
			s.Phones[i].Primary = s.Phones[i].ID == e.PhoneID
		}
	case AddressAdded:
		s.Addresses = append(s.Addresses, AddressState{ID: e.AddressID, City: e.City, PostCode: e.PostCode, Country: e.Country, Primary: e.Primary})
	case AddressUpdated:
		for i := range s.Addresses {
			if s.Addresses[i].ID == e.AddressID {
				s.Addresses[i].City, s.Addresses[i].PostCode, s.Addresses[i].Country = e.City, e.PostCode, e.Country
			}
		}
	case AddressRemoved:
		s.Addresses = slices.DeleteFunc(s.Addresses, func(x AddressState) bool { return x.ID == e.AddressID })
	case PrimaryAddressChanged:
		for i := range s.Addresses {
			s.Addresses[i].Primary = s.Addresses[i].ID == e.AddressID
		}
	case PasswordResetRequested:
		s.OpenResets = append(s.OpenResets, e.RequestID)
		if len(s.OpenResets) > 5 { // only the five latest links stay usable
			s.OpenResets = s.OpenResets[len(s.OpenResets)-5:]
		}
	case PasswordChanged:
		s.PasswordHash = e.PasswordHash
		s.OpenResets = nil
		s.SessionEpoch++
	case RoleChanged:
		s.Role = e.Role // sessions pick it up at their next refresh
	case ImageSet:
		s.Image = &ImageState{PublicID: e.PublicID, URL: e.URL}
	case ImageRemoved:
		s.Image = nil
	case GoogleLinked:
		s.GoogleLookup = e.Lookup
	case UserErased:
		s.Erased = true
		s.SessionEpoch++
	}
}
