package user

import (
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/techvault/techvault/domain"
)

// Role is what an account may do.
type Role string

// The roles. An auditor reads the event log and the reports and changes nothing.
const (
	Customer Role = "customer"
	Admin    Role = "admin"
	Auditor  Role = "auditor"
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Customer, Admin, Auditor:
		return r, nil
	}
	return "", domain.Invalid("role", "role must be customer, admin or auditor")
}

// Limits on what one account holds.
const (
	MaxEmails    = 10
	MaxPhones    = 10
	MaxAddresses = 20
)

var (
	firstNameRule = domain.TextRule{Field: "first_name", Required: true, MaxLen: 50}
	lastNameRule  = domain.TextRule{Field: "last_name", Required: true, MaxLen: 50}
	cityRule      = domain.TextRule{Field: "city", Required: true, MaxLen: 100}
)

// Names checks and cleans a first and last name.
func Names(first, last string) (string, string, error) {
	f, err := domain.CleanText(first, firstNameRule)
	if err != nil {
		return "", "", err
	}
	l, err := domain.CleanText(last, lastNameRule)
	if err != nil {
		return "", "", err
	}
	return f, l, nil
}

// NormaliseEmail checks an email address and returns its normal form: trimmed, lower case. An
// address is one bare addr-spec (no display name, no comments), at most 254 characters with a
// local part of at most 64, and a domain with at least one dot.
func NormaliseEmail(s string) (string, error) {
	bad := func(why string) (string, error) { return "", domain.Invalid("email", "email %s", why) }
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return bad("is required")
	case !utf8.ValidString(s):
		return bad("is not valid UTF-8")
	case len(s) > 254:
		return bad("is longer than 254 characters")
	}
	for _, r := range s {
		if r > unicode.MaxASCII || unicode.IsSpace(r) || unicode.IsControl(r) {
			return bad("must be a plain ASCII address without spaces")
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return bad("is not a valid address")
	}
	local, host, ok := strings.Cut(s, "@")
	if !ok || local == "" || len(local) > 64 || strings.HasPrefix(local, "\"") {
		return bad("is not a valid address")
	}
	if !strings.Contains(host, ".") || strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") ||
		strings.Contains(host, "..") || strings.HasPrefix(host, "[") {
		return bad("must have a domain such as example.com")
	}
	return strings.ToLower(s), nil
}

// Password length bounds, in characters.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 128
)

// common holds passwords that meet the length rule yet are among the first tried by anyone
// guessing; a real deployment would check a breach corpus instead.
var common = []string{
	"1234567890", "12345678910", "0123456789", "1q2w3e4r5t", "qwertyuiop", "password12", "password123",
	"password1234", "iloveyou12", "qwerty1234", "1qaz2wsx3edc", "abcdefghij", "abc1234567", "letmein123",
	"welcome123", "passw0rd12", "administrator", "techvault1", "techvault123",
}

// CheckPassword applies the password rule: 10 to 128 characters, at least 4 different ones, not
// one of the commonest passwords, and not containing the local part of the account's email.
func CheckPassword(pw, email string) error {
	bad := func(why string) error { return domain.Invalid("password", "password %s", why) }
	if !utf8.ValidString(pw) {
		return bad("is not valid UTF-8")
	}
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinPasswordLen:
		return bad("must have at least 10 characters")
	case n > MaxPasswordLen:
		return bad("must have at most 128 characters")
	}
	distinct := map[rune]bool{}
	for _, r := range pw {
		if unicode.IsControl(r) {
			return bad("must not contain control characters")
		}
		distinct[r] = true
	}
	if len(distinct) < 4 {
		return bad("must use at least 4 different characters")
	}
	if slices.Contains(common, strings.ToLower(pw)) {
		return bad("is too common")
	}
	if local, _, _ := strings.Cut(email, "@"); len(local) >= 4 && strings.Contains(strings.ToLower(pw), strings.ToLower(local)) {
		return bad("must not contain your email's name")
	}
	return nil
}

// NormalisePhone checks a phone number and returns it in E.164 form: "+" and 8 to 15 digits
// (spaces, dots, dashes and brackets are dropped).
func NormalisePhone(s string) (string, error) {
	bad := func() (string, error) {
		return "", domain.Invalid("phone", "phone must be an international number such as +44 20 7946 0958")
	}
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "+") || len(s) > 25 {
		return bad()
	}
	var b strings.Builder
	b.WriteByte('+')
	for _, r := range s[1:] {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return bad()
		}
	}
	out := b.String()
	if n := len(out) - 1; n < 8 || n > 15 || out[1] == '0' {
		return bad()
	}
	return out, nil
}

// Address is a postal address as a client gives it.
type Address struct {
	City     string
	PostCode string
	Country  string
}

// CleanAddress checks an address: a city, a post code of letters, digits, spaces and dashes (at
// most 20), and an ISO 3166-1 alpha-2 country code (stored upper case).
func CleanAddress(a Address) (Address, error) {
	city, err := domain.CleanText(a.City, cityRule)
	if err != nil {
		return Address{}, err
	}
	pc := strings.ToUpper(strings.TrimSpace(a.PostCode))
	if pc == "" || len(pc) > 20 {
		return Address{}, domain.Invalid("post_code", "post_code must have 1 to 20 characters")
	}
	for _, r := range pc {
		if (r < '0' || r > '9') && (r < 'A' || r > 'Z') && r != ' ' && r != '-' {
			return Address{}, domain.Invalid("post_code", "post_code may hold only letters, digits, spaces and dashes")
		}
	}
	cc := strings.ToUpper(strings.TrimSpace(a.Country))
	if len(cc) != 2 || !strings.Contains(iso3166, " "+cc+" ") {
		return Address{}, domain.Invalid("country", "country must be an ISO 3166-1 alpha-2 code such as DE or US")
	}
	return Address{City: city, PostCode: pc, Country: cc}, nil
}

// iso3166 lists the ISO 3166-1 alpha-2 codes in use, space separated.
const iso3166 = " AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS" +
	" BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES" +
	" ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM" +
	" IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME" +
	" MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG" +
	" PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY" +
	" SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW "
