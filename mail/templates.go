package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"
)

// The names of the mails (Message.Template). Each is a pair of files in templates/: NAME.txt.tmpl
// defines "subject" and "content" (text/template), NAME.html.tmpl defines "content"
// (html/template, which escapes the data). layout.txt.tmpl and layout.html.tmpl frame the
// content with the greeting ("Hello {{.Name}},") and the footer, so every mail's data has a Name.
// Adding a mail is adding its pair of files (and, for callers, a constant here).
const (
	// VerifyEmail asks a new customer to confirm their address. Data: LinkData.
	VerifyEmail = "verify_email"
	// Welcome greets a new customer. Data: NameData.
	Welcome = "welcome"
	// PasswordReset carries the link to choose a new password. Data: LinkData.
	PasswordReset = "password_reset"
	// PasswordChanged tells a customer their password was changed. Data: NameData.
	PasswordChanged = "password_changed"
	// OrderConfirmation confirms a paid order. Data: OrderData.
	OrderConfirmation = "order_confirmation"
)

// OrderData is the data of the order confirmation. Amounts are preformatted ("1899.00 USD").
type OrderData struct {
	Name      string
	OrderID   int64
	Lines     []OrderLine
	Subtotal  string
	Discount  string // empty: no discount
	PromoCode string
	Total     string
}

// OrderLine is one line of an order mail.
type OrderLine struct {
	Name     string
	Quantity int64
	Total    string
}

// NameData is the data of mails that only greet the customer (Welcome, PasswordChanged).
type NameData struct {
	// Name is the customer's display name; empty gives a plain "Hello,".
	Name string
}

// LinkData is the data of mails that carry a link to follow (VerifyEmail, PasswordReset).
type LinkData struct {
	// Name is the customer's display name; empty gives a plain "Hello,".
	Name string
	// Link is the absolute URL to open, written unchanged in the text part.
	Link string
	// ExpiresIn is how long the link is valid, written as "24 hours", "30 minutes", ….
	ExpiresIn time.Duration
}

// Rendered is a mail rendered from its templates.
type Rendered struct {
	// Subject is on one line (runs of white space, line breaks included, become one space).
	Subject string
	// Text is the text/plain part.
	Text string
	// HTML is the text/html part.
	HTML string
}

//go:embed templates/*.tmpl
var templateFiles embed.FS

// layoutName is the reserved name of the frame files.
const layoutName = "layout"

// catalog holds the parsed templates of every mail, by name.
type catalog struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// templates is parsed from the embedded files on first use (New checks it).
var templates = sync.OnceValues(func() (*catalog, error) { return parseCatalog(templateFiles) })

// funcs are the helpers the templates may call.
var funcs = map[string]any{"human": humanDuration}

// parseCatalog parses every NAME.txt.tmpl / NAME.html.tmpl pair under templates/ of fsys.
func parseCatalog(fsys fs.FS) (*catalog, error) {
	c := &catalog{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	names, err := templateNames(fsys)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		txt, err := texttemplate.New(name).Funcs(funcs).Option("missingkey=error").
			ParseFS(fsys, "templates/"+layoutName+".txt.tmpl", "templates/"+name+".txt.tmpl")
		if err != nil {
			return nil, fmt.Errorf("mail: parsing template %s: %w", name, err)
		}
		htm, err := htmltemplate.New(name).Funcs(funcs).Option("missingkey=error").
			ParseFS(fsys, "templates/"+layoutName+".html.tmpl", "templates/"+name+".html.tmpl")
		if err != nil {
			return nil, fmt.Errorf("mail: parsing template %s: %w", name, err)
		}
		for _, def := range []string{"subject", "content", "text"} {
			if txt.Lookup(def) == nil {
				return nil, fmt.Errorf("mail: template %s.txt.tmpl defines no %q", name, def)
			}
		}
		for _, def := range []string{"content", "html"} {
			if htm.Lookup(def) == nil {
				return nil, fmt.Errorf("mail: template %s.html.tmpl defines no %q", name, def)
			}
		}
		c.text[name], c.html[name] = txt, htm
	}
	return c, nil
}

// templateNames lists the mails under templates/, checking each has both files.
func templateNames(fsys fs.FS) ([]string, error) {
	files, err := fs.Glob(fsys, "templates/*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("mail: listing templates: %w", err)
	}
	parts := map[string][]string{}
	for _, f := range files {
		base := path.Base(f)
		name, kind, ok := strings.Cut(strings.TrimSuffix(base, ".tmpl"), ".")
		if !ok || (kind != "txt" && kind != "html") {
			return nil, fmt.Errorf("mail: template file %s is neither NAME.txt.tmpl nor NAME.html.tmpl", base)
		}
		if name != layoutName {
			parts[name] = append(parts[name], kind)
		}
	}
	var names []string
	for name, kinds := range parts {
		if len(kinds) != 2 {
			return nil, fmt.Errorf("mail: template %s needs both %s.txt.tmpl and %s.html.tmpl", name, name, name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// Templates lists the names of the embedded mails, sorted.
func Templates() []string {
	c, err := templates()
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(c.text))
	for name := range c.text {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Render renders the mail named name with data. It returns an error wrapping ErrUnknownTemplate
// for a name with no templates and ErrInvalidMessage when data does not fit the templates (a
// missing field); both are permanent.
func Render(name string, data any) (Rendered, error) {
	c, err := templates()
	if err != nil {
		return Rendered{}, err
	}
	txt, ok := c.text[name]
	if !ok {
		return Rendered{}, fmt.Errorf("mail: %w %q", ErrUnknownTemplate, name)
	}
	var subject, text, html bytes.Buffer
	if err := txt.ExecuteTemplate(&subject, "subject", data); err != nil {
		return Rendered{}, renderError(name, "subject", err)
	}
	if err := txt.ExecuteTemplate(&text, "text", data); err != nil {
		return Rendered{}, renderError(name, "text", err)
	}
	if err := c.html[name].ExecuteTemplate(&html, "html", data); err != nil {
		return Rendered{}, renderError(name, "html", err)
	}
	return Rendered{
		Subject: strings.Join(strings.Fields(subject.String()), " "),
		Text:    text.String(),
		HTML:    html.String(),
	}, nil
}

// renderError reports a template that failed on its data (its error names fields, not values).
func renderError(name, part string, err error) error {
	return fmt.Errorf("mail: rendering the %s of %s: %w: %w", part, name, ErrInvalidMessage, err)
}

// humanDuration writes a duration for people: "24 hours", "1 day", "30 minutes". A string is
// written as it is.
func humanDuration(v any) (string, error) {
	switch d := v.(type) {
	case string:
		return d, nil
	case time.Duration:
		for _, u := range []struct {
			unit time.Duration
			name string
		}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}} {
			if d >= u.unit && d%u.unit == 0 && (u.unit != 24*time.Hour || d >= 72*time.Hour) {
				n := int64(d / u.unit)
				if n == 1 {
					return "1 " + u.name, nil
				}
				return strconv.FormatInt(n, 10) + " " + u.name + "s", nil
			}
		}
		if d <= 0 {
			return "", fmt.Errorf("a link's lifetime must be positive, got %s", d)
		}
		return d.String(), nil
	default:
		return "", fmt.Errorf("want a time.Duration or a string, got %T", v)
	}
}
