package http_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/images"
	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/internal/cloudinarytest"
	"github.com/techvault/techvault/internal/stripetest"
	"github.com/techvault/techvault/payments"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/ratelimit"
)

// The callers of the role matrix, in the order of a row's statuses.
type caller int

const (
	byNobody   caller = iota // no token
	byCustomer               // customer A, who owns the resources the paths name
	byOther                  // customer B, acting on A's ids
	byAuditor
	byAdmin
	callers
)

func (c caller) String() string {
	return [...]string{"no token", "customer", "another customer", "auditor", "admin"}[c]
}

// runOrder is the order a row's callers run in: A, whose request may use up the resource (a
// removed email), comes last, so that everyone else is refused an id that still exists.
var runOrder = []caller{byNobody, byOther, byAuditor, byAdmin, byCustomer}

// statuses is a row of the matrix: the status each caller must get.
type statuses [callers]int

// public: the same for everyone.
func public(s int) statuses { return statuses{s, s, s, s, s} }

// signedIn: any account, on its own data.
func signedIn(s int) statuses { return statuses{401, s, s, s, s} }

// ownedByA: a path naming A's resource; only A may touch it, and to everyone else it does not
// exist (404, never 403, which would tell that it does).
func ownedByA(s int) statuses { return statuses{401, s, 404, 404, 404} }

// adminOnly: admins only.
func adminOnly(s int) statuses { return statuses{401, 403, 403, 403, s} }

// authorOnly: a path naming A's public review: only A may change it; everyone else reads it,
// so its existence is no secret, and is refused (403).
func authorOnly(s int) statuses { return statuses{401, s, 403, 403, 403} }

// orderOfA: a path naming A's order. A and the admins (who see and act on every order) may use
// it; to the other accounts it does not exist (404).
func orderOfA(s int) statuses { return statuses{401, s, 404, 404, s} }

// account is a registered account and an access token of its role.
type account struct {
	id       int64
	email    string
	password string
	token    string
	// position is where its registration landed in the log.
	position int64
}

// matrixEnv is the state the matrix's requests draw on.
type matrixEnv struct {
	t     *testing.T
	h     *harness
	n     int // numbers fresh emails
	users [callers]account
	png   []byte
}

// call is one caller's request on a route.
type call struct {
	body, contentType string
	headers           []string
	// token replaces the caller's token (a throwaway account of the caller's role); "" keeps it.
	token string
	// params replace the row's params for this caller (an admin's own order to cancel, so that
	// A, who runs last, still finds theirs pending); nil keeps them.
	params params
}

// params fill a route's :name segments.
type params map[string]string

type roleCase struct {
	route string // "METHOD /path", as the router names it
	want  statuses
	// setup runs once before the callers: A's fresh resources, a fresh category.
	setup func(e *matrixEnv) params
	// request builds each caller's request; nil: no body.
	request func(e *matrixEnv, c caller, p params) call
}

const matrixPassword = "Tr0ub4dor&3-horse"

// TestRoleMatrix walks every route of the router with no token, a customer's, another
// customer's, an auditor's and an admin's, and checks the status each must get. A route with no
// entry here fails the test.
func TestRoleMatrix(t *testing.T) {
	cloud := cloudinarytest.New(t, cloudName, cloudKey, cloudSecret)
	mock := stripetest.StartMock(t)
	h := newHarness(t, harnessOpts{limits: generousLimits(), configure: func(c *app.Config) {
		c.Cloudinary = images.Config{CloudName: cloudName, APIKey: cloudKey, APISecret: cloudSecret, UploadPrefix: cloud.URL()}
		c.Stripe = stripeConfig(mock)
	}})
	e := &matrixEnv{t: t, h: h, png: pngImage(t)}
	for _, c := range []caller{byCustomer, byOther, byAuditor, byAdmin} {
		role := "customer"
		switch c {
		case byAuditor:
			role = "auditor"
		case byAdmin:
			role = "admin"
		}
		e.users[c] = e.signUp(role, true)
	}

	var covered []string
	for _, tc := range roleMatrix() {
		covered = append(covered, tc.route)
		t.Run(tc.route, func(t *testing.T) {
			method, pattern, _ := strings.Cut(tc.route, " ")
			var p params
			if tc.setup != nil {
				p = tc.setup(e)
			}
			for _, c := range runOrder {
				req := call{}
				if tc.request != nil {
					req = tc.request(e, c, p)
				}
				token := e.users[c].token
				if req.token != "" && c != byNobody {
					token = req.token
				}
				headers := slices.Clone(req.headers)
				if token != "" {
					headers = append(headers, "Authorization", "Bearer "+token)
				}
				if req.contentType != "" {
					headers = append(headers, "Content-Type", req.contentType)
				}
				rp := p
				if req.params != nil {
					rp = req.params
				}
				path := fill(t, pattern, rp)
				before := h.head()
				r := h.do(method, path, req.body, headers...)
				want := tc.want[c]
				if r.status != want {
					t.Errorf("%s: %s %s: status %d, want %d: %s", c, method, path, r.status, want, r.body)
					continue
				}
				checkErrorBody(t, c, r)
				if after := h.head(); r.status >= 400 && after != before {
					t.Errorf("%s: refused with %d, yet the log grew from %d to %d", c, r.status, before, after)
				}
			}
		})
	}

	// Every route of the router has a row, and every row is a route.
	routes := h.app.Routes()
	for _, r := range routes {
		if !slices.Contains(covered, r) {
			t.Errorf("route %s has no entry in the role matrix", r)
		}
	}
	for _, r := range covered {
		if !slices.Contains(routes, r) {
			t.Errorf("role matrix entry %s is not a route of the router", r)
		}
	}
}

// checkErrorBody checks that a refusal is the API's JSON error with the code of its status.
func checkErrorBody(t *testing.T, c caller, r response) {
	t.Helper()
	code := map[int]string{401: "unauthenticated", 403: "forbidden", 404: "not_found"}[r.status]
	if code == "" {
		return
	}
	var b errorBody
	r.json(t, &b)
	if b.Error.Code != code || b.Error.Message == "" {
		t.Errorf("%s: status %d with error body %s, want code %q", c, r.status, r.body, code)
	}
	if r.status == 401 && r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("%s: 401 without WWW-Authenticate", c)
	}
}

// fill puts params into a Gin path pattern.
func fill(t *testing.T, pattern string, p params) string {
	t.Helper()
	segs := strings.Split(pattern, "/")
	for i, s := range segs {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			v, ok := p[name]
			if !ok {
				t.Fatalf("%s: no value for :%s", pattern, name)
			}
			segs[i] = v
		}
	}
	return strings.Join(segs, "/")
}

// roleMatrix is the table: one row per route, run in this order (the rebuild last, so that it
// runs in the background of nothing).
func roleMatrix() []roleCase {
	id := func(v int64) params { return params{"id": strconv.FormatInt(v, 10)} }
	jsonBody := func(b string) func(*matrixEnv, caller, params) call {
		return func(*matrixEnv, caller, params) call { return call{body: b} }
	}
	return []roleCase{
		// Outside /api/v1: public.
		{route: "GET /healthz", want: public(200)},
		{route: "GET /readyz", want: public(200)},
		{route: "GET /openapi.json", want: public(200)},
		{route: "GET /docs", want: public(200)},

		// The catalog: reads are public, writes are the admins'.
		{route: "GET /api/v1/categories", want: public(200)},
		{route: "GET /api/v1/categories/:id", want: public(200),
			setup: func(e *matrixEnv) params {
				c := e.category()
				return params{"id": strconv.FormatInt(c.ID, 10), "position": strconv.FormatInt(c.Position, 10)}
			},
			request: func(_ *matrixEnv, _ caller, p params) call {
				return call{headers: []string{"X-Min-Position", p["position"]}}
			}},
		{route: "GET /api/v1/products", want: public(200)},
		{route: "GET /api/v1/products/:id", want: public(200),
			setup: func(e *matrixEnv) params {
				p := e.product()
				return params{"id": strconv.FormatInt(p.ID, 10), "position": strconv.FormatInt(p.Position, 10)}
			},
			request: func(_ *matrixEnv, _ caller, p params) call {
				return call{headers: []string{"X-Min-Position", p["position"]}}
			}},
		{route: "POST /api/v1/categories", want: adminOnly(201), request: jsonBody(`{"name":"Monitors"}`)},
		{route: "PATCH /api/v1/categories/:id", want: adminOnly(200),
			setup:   func(e *matrixEnv) params { return id(e.category().ID) },
			request: jsonBody(`{"name":"Displays"}`)},
		{route: "DELETE /api/v1/categories/:id", want: adminOnly(200),
			setup: func(e *matrixEnv) params { return id(e.category().ID) }},
		{route: "POST /api/v1/products", want: adminOnly(201), request: jsonBody(`{"name":"SSD","price":"89.99","stock":1}`)},
		{route: "PATCH /api/v1/products/:id", want: adminOnly(200),
			setup:   func(e *matrixEnv) params { return id(e.product().ID) },
			request: jsonBody(`{"price":"79.99"}`)},
		{route: "DELETE /api/v1/products/:id", want: adminOnly(200),
			setup: func(e *matrixEnv) params { return id(e.product().ID) }},
		{route: "POST /api/v1/products/:id/stock", want: adminOnly(200),
			setup:   func(e *matrixEnv) params { return id(e.product().ID) },
			request: jsonBody(`{"delta":2}`)},
		{route: "POST /api/v1/products/:id/images", want: adminOnly(201),
			setup: func(e *matrixEnv) params { return id(e.product().ID) },
			request: func(e *matrixEnv, _ caller, _ params) call {
				body, ct := imageForm(e.t, "image", "front.png", e.png)
				return call{body: body, contentType: ct}
			}},
		{route: "PATCH /api/v1/products/:id/images/:image_id", want: adminOnly(200),
			setup: func(e *matrixEnv) params { return e.productImage() }, request: jsonBody(`{"cover":true}`)},
		{route: "DELETE /api/v1/products/:id/images/:image_id", want: adminOnly(200),
			setup: func(e *matrixEnv) params { return e.productImage() }},

		// Sign-in: public, and alike whoever asks.
		{route: "POST /api/v1/auth/register", want: public(201),
			request: func(e *matrixEnv, _ caller, _ params) call {
				return call{body: registerBody(e.freshEmail())}
			}},
		{route: "POST /api/v1/auth/verify-email", want: public(200),
			request: func(e *matrixEnv, _ caller, _ params) call {
				// A fresh account's own link each time: a link works once.
				a := e.signUp("customer", false)
				return call{body: fmt.Sprintf(`{"token":%q}`, e.verifyToken(a.id, e.emailIDs(a)[0]))}
			}},
		{route: "POST /api/v1/auth/login", want: public(200),
			request: func(e *matrixEnv, _ caller, _ params) call {
				a := e.users[byCustomer]
				return call{body: fmt.Sprintf(`{"email":%q,"password":%q}`, a.email, a.password)}
			}},
		{route: "POST /api/v1/auth/refresh", want: public(200),
			request: func(e *matrixEnv, _ caller, _ params) call {
				return call{body: fmt.Sprintf(`{"refresh_token":%q}`, e.login(e.users[byCustomer]).RefreshToken)}
			}},
		{route: "POST /api/v1/auth/password-reset/request", want: public(202),
			request: func(e *matrixEnv, _ caller, _ params) call {
				return call{body: fmt.Sprintf(`{"email":%q}`, e.users[byCustomer].email)}
			}},
		{route: "POST /api/v1/auth/password-reset/confirm", want: public(200),
			request: func(e *matrixEnv, _ caller, _ params) call {
				// A fresh account's own link each time: a reset ends its sessions.
				a := e.signUp("customer", false)
				return call{body: fmt.Sprintf(`{"token":%q,"password":"An0ther-long-pass"}`, e.resetToken(a))}
			}},
		// Google is not configured: its routes do not exist, for anyone.
		{route: "GET /api/v1/auth/google", want: public(404)},
		{route: "GET /api/v1/auth/google/callback", want: public(404)},

		// The caller's own account: any role, on its own data; the ids are A's.
		{route: "POST /api/v1/auth/logout", want: signedIn(200)},
		{route: "GET /api/v1/users/me", want: signedIn(200)},
		{route: "PATCH /api/v1/users/me", want: signedIn(200), request: jsonBody(`{"first_name":"Grace"}`)},
		{route: "POST /api/v1/users/me/emails", want: signedIn(201),
			request: func(e *matrixEnv, _ caller, _ params) call {
				return call{body: fmt.Sprintf(`{"email":%q}`, e.freshEmail())}
			}},
		{route: "DELETE /api/v1/users/me/emails/:id", want: ownedByA(200),
			setup: func(e *matrixEnv) params { return id(e.addEmail(false)) }},
		{route: "POST /api/v1/users/me/emails/:id/primary", want: ownedByA(200),
			setup: func(e *matrixEnv) params { return id(e.addEmail(true)) }},
		{route: "POST /api/v1/users/me/phones", want: signedIn(201), request: jsonBody(`{"phone":"+44 20 7946 0958"}`)},
		{route: "DELETE /api/v1/users/me/phones/:id", want: ownedByA(200),
			setup: func(e *matrixEnv) params { return id(e.addPhone()) }},
		{route: "POST /api/v1/users/me/phones/:id/primary", want: ownedByA(200),
			setup: func(e *matrixEnv) params { return id(e.addPhone()) }},
		{route: "GET /api/v1/users/me/addresses", want: signedIn(200)},
		{route: "POST /api/v1/users/me/addresses", want: signedIn(201), request: jsonBody(addressBody)},
		{route: "PATCH /api/v1/users/me/addresses/:id", want: ownedByA(200),
			setup:   func(e *matrixEnv) params { return id(e.addAddress()) },
			request: jsonBody(`{"city":"Hamburg","post_code":"20095","country":"DE"}`)},
		{route: "DELETE /api/v1/users/me/addresses/:id", want: ownedByA(200),
			setup: func(e *matrixEnv) params { return id(e.addAddress()) }},
		{route: "POST /api/v1/users/me/addresses/:id/primary", want: ownedByA(200),
			setup: func(e *matrixEnv) params { return id(e.addAddress()) }},
		{route: "PUT /api/v1/users/me/image", want: signedIn(200),
			request: func(e *matrixEnv, _ caller, _ params) call {
				body, ct := imageForm(e.t, "image", "avatar.png", e.png)
				return call{body: body, contentType: ct}
			}},
		{route: "DELETE /api/v1/users/me/image", want: signedIn(200),
			request: func(e *matrixEnv, c caller, _ params) call {
				if c != byNobody {
					e.putImage(e.users[c].token) // something to remove
				}
				return call{}
			}},
		{route: "GET /api/v1/notifications", want: signedIn(200)},
		{route: "POST /api/v1/notifications/:id/read", want: ownedByA(200),
			setup: func(e *matrixEnv) params { return id(e.notification()) }},
		{route: "POST /api/v1/notifications/read-all", want: signedIn(200)},
		// Erasing an account: each caller erases a throwaway account of its own role.
		{route: "DELETE /api/v1/users/me", want: signedIn(200),
			request: func(e *matrixEnv, c caller, _ params) call {
				role := map[caller]string{byCustomer: "customer", byOther: "customer", byAuditor: "auditor", byAdmin: "admin"}[c]
				if role == "" {
					return call{}
				}
				return call{token: e.signUp(role, false).token}
			}},

		// Wishlists: every account has its own; the path names a product.
		{route: "GET /api/v1/wishlist", want: signedIn(200)},
		{route: "POST /api/v1/wishlist/:product_id", want: signedIn(200),
			setup: func(e *matrixEnv) params { return params{"product_id": strconv.FormatInt(e.product().ID, 10)} }},
		{route: "DELETE /api/v1/wishlist/:product_id", want: signedIn(200),
			setup: func(e *matrixEnv) params { return params{"product_id": strconv.FormatInt(e.product().ID, 10)} },
			request: func(e *matrixEnv, c caller, p params) call {
				if c != byNobody {
					e.as(c, "POST", "/api/v1/wishlist/"+p["product_id"], "", 200)
				}
				return call{}
			}},

		// Carts: every account has its own; the path names a product, not someone's line.
		{route: "GET /api/v1/cart", want: signedIn(200)},
		{route: "POST /api/v1/cart/items", want: signedIn(201),
			setup: func(e *matrixEnv) params { return params{"product_id": strconv.FormatInt(e.product().ID, 10)} },
			request: func(_ *matrixEnv, _ caller, p params) call {
				return call{body: fmt.Sprintf(`{"product_id":%s,"quantity":1}`, p["product_id"])}
			}},
		{route: "PATCH /api/v1/cart/items/:product_id", want: signedIn(200),
			setup: func(e *matrixEnv) params { return params{"product_id": strconv.FormatInt(e.product().ID, 10)} },
			request: func(e *matrixEnv, c caller, p params) call {
				e.addToCart(c, p["product_id"])
				return call{body: `{"quantity":2}`}
			}},
		{route: "DELETE /api/v1/cart/items/:product_id", want: signedIn(200),
			setup: func(e *matrixEnv) params { return params{"product_id": strconv.FormatInt(e.product().ID, 10)} },
			request: func(e *matrixEnv, c caller, p params) call {
				e.addToCart(c, p["product_id"])
				return call{}
			}},
		{route: "DELETE /api/v1/cart", want: signedIn(200),
			setup: func(e *matrixEnv) params { return params{"product_id": strconv.FormatInt(e.product().ID, 10)} },
			request: func(e *matrixEnv, c caller, p params) call {
				e.addToCart(c, p["product_id"])
				return call{}
			}},
		{route: "POST /api/v1/cart/promo", want: signedIn(200),
			setup: func(e *matrixEnv) params { return params{"code": e.promo().Code} },
			request: func(e *matrixEnv, c caller, p params) call {
				e.emptyCart(c)
				return call{body: fmt.Sprintf(`{"code":%q}`, p["code"])}
			}},
		{route: "DELETE /api/v1/cart/promo", want: signedIn(200),
			setup: func(e *matrixEnv) params { return params{"code": e.promo().Code} },
			request: func(e *matrixEnv, c caller, p params) call {
				e.emptyCart(c)
				if c != byNobody {
					e.as(c, "POST", "/api/v1/cart/promo", fmt.Sprintf(`{"code":%q}`, p["code"]), 200)
				}
				return call{}
			}},

		// Orders: each account places its own; A's are 404 to other customers and auditors, and
		// the admins see and act on every order.
		{route: "POST /api/v1/orders", want: signedIn(201),
			request: func(e *matrixEnv, c caller, _ params) call {
				if c == byNobody {
					return call{body: `{"address_id":1}`}
				}
				return call{body: fmt.Sprintf(`{"address_id":%d}`, e.readyCart(c))}
			}},
		{route: "GET /api/v1/orders", want: signedIn(200)},
		{route: "GET /api/v1/orders/:id", want: orderOfA(200),
			setup: func(e *matrixEnv) params { return e.orderOfA().params() }, request: atPosition},
		{route: "GET /api/v1/orders/:id/invoice", want: orderOfA(200),
			setup: func(e *matrixEnv) params { return e.paidOrderOfA().params() }, request: atPosition},
		{route: "POST /api/v1/orders/:id/cancel", want: orderOfA(200),
			setup: func(e *matrixEnv) params {
				p := e.orderOfA().params()
				p["admins"] = strconv.FormatInt(e.orderOfA().id, 10)
				return p
			},
			request: func(_ *matrixEnv, c caller, p params) call {
				if c == byAdmin {
					return call{params: params{"id": p["admins"]}}
				}
				return call{}
			}},
		{route: "POST /api/v1/orders/:id/payment", want: orderOfA(200),
			setup: func(e *matrixEnv) params { return e.orderOfA().params() }},
		{route: "POST /api/v1/orders/:id/ship", want: adminOnly(200),
			setup: func(e *matrixEnv) params { return e.paidOrderOfA().params() }},
		{route: "POST /api/v1/orders/:id/deliver", want: adminOnly(200),
			setup: func(e *matrixEnv) params {
				o := e.paidOrderOfA()
				e.h.admin("POST", fmt.Sprintf("/api/v1/orders/%d/ship", o.id), "", 200)
				return o.params()
			}},
		{route: "POST /api/v1/orders/:id/refund", want: adminOnly(200),
			setup: func(e *matrixEnv) params { return e.paidOrderOfA().params() }},
		// Stripe's webhook: public, the signature is the credential. Every caller's delivery is a
		// new event about A's order: the first pays it, the others are recorded as ignored.
		{route: "POST /api/v1/webhooks/stripe", want: public(200),
			setup: func(e *matrixEnv) params { return e.orderOfA().params() },
			request: func(e *matrixEnv, _ caller, p params) call {
				body, sig := stripetest.Webhook(e.t, stripetest.WebhookSecret, stripetest.IntentSucceeded, p["intent"],
					mustInt(e.t, p["id"]), mustInt(e.t, p["cents"]), "usd")
				return call{body: string(body), headers: []string{payments.SignatureHeader, sig}}
			}},

		// Reviews: anyone reads them; any account writes its own; only the author changes one; the
		// admins hide and unhide.
		{route: "GET /api/v1/products/:id/reviews", want: public(200),
			setup: func(e *matrixEnv) params {
				r := e.reviewOfA()
				return params{"id": strconv.FormatInt(r.productID, 10), "position": strconv.FormatInt(r.position, 10)}
			}, request: atPosition},
		{route: "POST /api/v1/products/:id/reviews", want: signedIn(201),
			setup:   func(e *matrixEnv) params { return id(e.product().ID) },
			request: jsonBody(`{"rating":4,"title":"Good"}`)},
		{route: "PATCH /api/v1/reviews/:id", want: authorOnly(200),
			setup: func(e *matrixEnv) params { return e.reviewOfA().params() }, request: jsonBody(`{"rating":2}`)},
		{route: "DELETE /api/v1/reviews/:id", want: authorOnly(200),
			setup: func(e *matrixEnv) params { return e.reviewOfA().params() }},
		{route: "POST /api/v1/reviews/:id/helpful", want: signedIn(200),
			setup: func(e *matrixEnv) params { return e.reviewBy(e.signUp("customer", false).token).params() }},
		{route: "POST /api/v1/reviews/:id/hide", want: adminOnly(200),
			setup: func(e *matrixEnv) params { return e.reviewOfA().params() }},
		{route: "POST /api/v1/reviews/:id/unhide", want: adminOnly(200),
			setup: func(e *matrixEnv) params {
				r := e.reviewOfA()
				e.h.admin("POST", fmt.Sprintf("/api/v1/reviews/%d/hide", r.id), "", 200)
				return r.params()
			}},

		// Promo codes: the admins'.
		{route: "GET /api/v1/promo-codes", want: adminOnly(200)},
		{route: "GET /api/v1/promo-codes/:id", want: adminOnly(200),
			setup: func(e *matrixEnv) params { return e.promo().params() }, request: atPosition},
		{route: "POST /api/v1/promo-codes", want: adminOnly(201),
			request: jsonBody(`{"code":"MATRIX-NEW","kind":"percent","discount":10}`)},
		{route: "PATCH /api/v1/promo-codes/:id", want: adminOnly(200),
			setup:   func(e *matrixEnv) params { return e.promo().params() },
			request: jsonBody(`{"discount":15,"is_active":false}`)},
		{route: "DELETE /api/v1/promo-codes/:id", want: adminOnly(200),
			setup: func(e *matrixEnv) params { return e.promo().params() }},
		{route: "DELETE /api/v1/promo-codes/expired", want: adminOnly(200)},

		// The admins' routes.
		{route: "GET /api/v1/users", want: adminOnly(200)},
		{route: "GET /api/v1/admin/projections", want: adminOnly(200)},
		{route: "POST /api/v1/admin/projections/:name/rebuild", want: adminOnly(202),
			setup: func(*matrixEnv) params { return params{"name": catalogproj.CategoriesProjector} }},
	}
}

const addressBody = `{"city":"Berlin","post_code":"10115","country":"DE"}`

func registerBody(email string) string {
	return fmt.Sprintf(`{"first_name":"Ada","last_name":"Lovelace","email":%q,"password":%q}`, email, matrixPassword)
}

// freshEmail is an address nobody has used.
func (e *matrixEnv) freshEmail() string {
	e.n++
	return fmt.Sprintf("person%d@example.com", e.n)
}

// signUp registers an account through the API. With login, its token is a signed-in session's
// (promoted to role: there is no promotion over HTTP, and tokens carry the role); without, a
// token of role for the account.
func (e *matrixEnv) signUp(role string, login bool) account {
	e.t.Helper()
	a := account{email: e.freshEmail(), password: matrixPassword}
	var reg struct {
		UserID   int64 `json:"user_id"`
		Position int64 `json:"position"`
	}
	r := e.h.do("POST", "/api/v1/auth/register", registerBody(a.email))
	if r.status != 201 {
		e.t.Fatalf("register: %d %s", r.status, r.body)
	}
	r.json(e.t, &reg)
	a.id, a.position = reg.UserID, reg.Position
	if !login {
		a.token = accessToken(a.id, role)
		return a
	}
	s := e.login(a)
	claims, err := testTokens.ParseAccess(s.AccessToken)
	if err != nil {
		e.t.Fatal(err)
	}
	a.token = s.AccessToken
	if claims.Role != role {
		tok, _, err := testTokens.IssueAccess(auth.AccessClaims{UserID: a.id, Role: role, Session: claims.Session})
		if err != nil {
			e.t.Fatal(err)
		}
		a.token = tok
	}
	return a
}

type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func (e *matrixEnv) login(a account) tokenPair {
	e.t.Helper()
	r := e.h.do("POST", "/api/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, a.email, a.password))
	if r.status != 200 {
		e.t.Fatalf("login: %d %s", r.status, r.body)
	}
	var s tokenPair
	r.json(e.t, &s)
	return s
}

// emailIDs are an account's email ids, read back through GET /users/me.
func (e *matrixEnv) emailIDs(a account) []int64 {
	e.t.Helper()
	r := e.h.do("GET", "/api/v1/users/me", "", "Authorization", "Bearer "+a.token,
		"X-Min-Position", strconv.FormatInt(a.position, 10))
	var me struct {
		Emails []struct {
			ID int64 `json:"id"`
		} `json:"emails"`
	}
	if r.status != 200 {
		e.t.Fatalf("GET /users/me: %d %s", r.status, r.body)
	}
	r.json(e.t, &me)
	ids := make([]int64, 0, len(me.Emails))
	for _, m := range me.Emails {
		ids = append(ids, m.ID)
	}
	if len(ids) == 0 {
		e.t.Fatalf("account %d has no email", a.id)
	}
	return ids
}

// verifyToken is the link token a verification mail would carry.
func (e *matrixEnv) verifyToken(userID, emailID int64) string {
	e.t.Helper()
	tok, err := testTokens.IssueAction(auth.ActionClaims{Purpose: auth.PurposeVerifyEmail, UserID: userID,
		Ref: strconv.FormatInt(emailID, 10), IssuedAt: time.Now(), TTL: time.Hour})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// resetToken asks for a reset of a's password and returns the link token the mail would carry
// (the request's id is in the log).
func (e *matrixEnv) resetToken(a account) string {
	e.t.Helper()
	if r := e.h.do("POST", "/api/v1/auth/password-reset/request", fmt.Sprintf(`{"email":%q}`, a.email)); r.status != 202 {
		e.t.Fatalf("reset request: %d %s", r.status, r.body)
	}
	return issueResetToken(e.t, e.h, a.id, time.Now())
}

// issueResetToken is the link token of a's latest reset request, issued at iat.
func issueResetToken(t *testing.T, h *harness, userID int64, iat time.Time) string {
	t.Helper()
	events, err := h.store.Load(context.Background(), user.StreamID(userID))
	if err != nil {
		t.Fatal(err)
	}
	var requestID string
	for _, ev := range events {
		d, err := user.Decode(ev.Type, ev.SchemaVersion, ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		if rr, ok := d.(user.PasswordResetRequested); ok {
			requestID = rr.RequestID
		}
	}
	if requestID == "" {
		t.Fatalf("user %d has no reset request in the log", userID)
	}
	tok, err := testTokens.IssueAction(auth.ActionClaims{Purpose: auth.PurposePasswordReset, UserID: userID,
		Ref: requestID, IssuedAt: iat, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// as runs a request as caller c and requires want.
func (e *matrixEnv) as(c caller, method, path, body string, want int) response {
	e.t.Helper()
	r := e.h.do(method, path, body, "Authorization", "Bearer "+e.users[c].token)
	if r.status != want {
		e.t.Fatalf("%s %s as %s: %d, want %d: %s", method, path, c, r.status, want, r.body)
	}
	return r
}

// asA runs a request as customer A and requires want; it returns the id of what was created.
func (e *matrixEnv) asA(method, path, body string, want int) int64 {
	e.t.Helper()
	var res struct {
		ID int64 `json:"id"`
	}
	e.as(byCustomer, method, path, body, want).json(e.t, &res)
	return res.ID
}

// addEmail gives A a fresh address (verified, when asked) and returns its id.
func (e *matrixEnv) addEmail(verified bool) int64 {
	e.t.Helper()
	id := e.asA("POST", "/api/v1/users/me/emails", fmt.Sprintf(`{"email":%q}`, e.freshEmail()), 201)
	if verified {
		r := e.h.do("POST", "/api/v1/auth/verify-email", fmt.Sprintf(`{"token":%q}`, e.verifyToken(e.users[byCustomer].id, id)))
		if r.status != 200 {
			e.t.Fatalf("verify-email: %d %s", r.status, r.body)
		}
	}
	return id
}

func (e *matrixEnv) addPhone() int64 {
	e.t.Helper()
	return e.asA("POST", "/api/v1/users/me/phones", `{"phone":"+1 202 555 0143"}`, 201)
}

func (e *matrixEnv) addAddress() int64 {
	e.t.Helper()
	return e.asA("POST", "/api/v1/users/me/addresses", addressBody, 201)
}

// notification is the id of A's welcome notification, listed through the API.
func (e *matrixEnv) notification() int64 {
	e.t.Helper()
	a := e.users[byCustomer]
	r := e.h.do("GET", "/api/v1/notifications", "", "Authorization", "Bearer "+a.token,
		"X-Min-Position", strconv.FormatInt(a.position, 10))
	var list page[struct {
		ID   int64  `json:"id"`
		Kind string `json:"kind"`
	}]
	if r.status != 200 {
		e.t.Fatalf("GET /notifications: %d %s", r.status, r.body)
	}
	r.json(e.t, &list)
	if len(list.Items) == 0 {
		e.t.Fatalf("A has no notification: %s", r.body)
	}
	return list.Items[len(list.Items)-1].ID
}

func (e *matrixEnv) putImage(token string) {
	e.t.Helper()
	body, ct := imageForm(e.t, "image", "avatar.png", e.png)
	if r := e.h.do("PUT", "/api/v1/users/me/image", body, "Authorization", "Bearer "+token, "Content-Type", ct); r.status != 200 {
		e.t.Fatalf("PUT /users/me/image: %d %s", r.status, r.body)
	}
}

func (e *matrixEnv) category() category {
	e.t.Helper()
	e.n++
	var c category
	e.h.admin("POST", "/api/v1/categories", fmt.Sprintf(`{"name":"Category %d"}`, e.n), 201).json(e.t, &c)
	return c
}

func (e *matrixEnv) product() product {
	e.t.Helper()
	e.n++
	var p product
	e.h.admin("POST", "/api/v1/products", fmt.Sprintf(`{"name":"Product %d","price":"9.99","stock":5}`, e.n), 201).json(e.t, &p)
	return p
}

// productImage is a fresh product with one image (uploaded by an admin): its id and the image's.
func (e *matrixEnv) productImage() params {
	e.t.Helper()
	p := e.product()
	a := e.h.mustUpload(p.ID, "front.png", e.png)
	return params{"id": strconv.FormatInt(p.ID, 10), "image_id": strconv.FormatInt(a.ImageID, 10)}
}

// The picture store's stand-in's credentials.
const (
	cloudName   = "techvault-test"
	cloudKey    = "123456789012345"
	cloudSecret = "cloud-secret-for-tests"
)

// newImageHarness is a harness whose picture uploads go to a cloudinarytest server.
func newImageHarness(t *testing.T, limits *ratelimit.Policy) (*harness, *cloudinarytest.Server) {
	t.Helper()
	cloud := cloudinarytest.New(t, cloudName, cloudKey, cloudSecret)
	h := newHarness(t, harnessOpts{limits: limits, configure: func(c *app.Config) {
		c.Cloudinary = images.Config{CloudName: cloudName, APIKey: cloudKey, APISecret: cloudSecret, UploadPrefix: cloud.URL()}
	}})
	return h, cloud
}

// generousLimits is the default policy with room for the many sign-ins of one test.
func generousLimits() *ratelimit.Policy {
	p := ratelimit.DefaultPolicy()
	for _, r := range []*ratelimit.Rule{&p.SignInIP, &p.SignInAccount, &p.RegisterIP, &p.ResetIP, &p.ResetAccount, &p.ResetConfirmIP} {
		r.Limit = 10_000
	}
	return &p
}

// pngImage is a small real PNG.
func pngImage(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for x := range 8 {
		for y := range 8 {
			img.Set(x, y, color.RGBA{R: uint8(x * 30), G: uint8(y * 30), B: 200, A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// imageForm is a multipart/form-data body with one file field.
func imageForm(t *testing.T, field, filename string, data []byte) (body, contentType string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	part, err := w.CreateFormFile(field, filename)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String(), w.FormDataContentType()
}

// atPosition sends the row's position as X-Min-Position, so that a query reads the setup's write.
func atPosition(_ *matrixEnv, _ caller, p params) call {
	return call{headers: []string{"X-Min-Position", p["position"]}}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// addToCart puts one of product pid into c's cart (nothing for the anonymous caller).
func (e *matrixEnv) addToCart(c caller, pid string) {
	e.t.Helper()
	if c != byNobody {
		e.as(c, "POST", "/api/v1/cart/items", fmt.Sprintf(`{"product_id":%s,"quantity":1}`, pid), 201)
	}
}

// emptyCart removes the lines and the code of c's cart (nothing for the anonymous caller).
func (e *matrixEnv) emptyCart(c caller) {
	e.t.Helper()
	if c != byNobody {
		e.as(c, "DELETE", "/api/v1/cart", "", 200)
	}
}

// readyCart gets c ready to order: a cart holding only a fresh product, and an address of c's,
// whose id it returns.
func (e *matrixEnv) readyCart(c caller) int64 {
	e.t.Helper()
	e.emptyCart(c)
	e.addToCart(c, strconv.FormatInt(e.product().ID, 10))
	var res struct {
		ID int64 `json:"id"`
	}
	e.as(c, "POST", "/api/v1/users/me/addresses", addressBody, 201).json(e.t, &res)
	return res.ID
}

// matrixOrder is an order of A's, as the matrix's rows name it.
type matrixOrder struct {
	id, position, cents int64
	intent              string
}

func (o matrixOrder) params() params {
	return params{"id": strconv.FormatInt(o.id, 10), "position": strconv.FormatInt(o.position, 10),
		"cents": strconv.FormatInt(o.cents, 10), "intent": o.intent}
}

// orderOfA places an order for A, waiting for payment (its PaymentIntent is stripe-mock's).
func (e *matrixEnv) orderOfA() matrixOrder {
	e.t.Helper()
	var res placedOrder
	e.as(byCustomer, "POST", "/api/v1/orders", fmt.Sprintf(`{"address_id":%d}`, e.readyCart(byCustomer)), 201).json(e.t, &res)
	if res.Payment == nil {
		e.t.Fatalf("order %d has no payment: %s", res.Order.ID, res.PaymentError)
	}
	return matrixOrder{id: res.Order.ID, position: res.Position, cents: res.Order.Total.Cents(), intent: res.Payment.IntentID}
}

// paidOrderOfA is an order of A's that Stripe's webhook paid.
func (e *matrixEnv) paidOrderOfA() matrixOrder {
	e.t.Helper()
	o := e.orderOfA()
	o.position = payByWebhook(e.t, e.h, o.id, o.intent, o.cents)
	return o
}

// matrixPromo is a promo code the matrix's rows name.
type matrixPromo struct {
	ID       int64  `json:"id"`
	Code     string `json:"code"`
	Position int64  `json:"position"`
}

func (p matrixPromo) params() params {
	return params{"id": strconv.FormatInt(p.ID, 10), "position": strconv.FormatInt(p.Position, 10), "code": p.Code}
}

// promo is a fresh code, 1.00 off.
func (e *matrixEnv) promo() matrixPromo {
	e.t.Helper()
	e.n++
	var p matrixPromo
	e.h.admin("POST", "/api/v1/promo-codes", fmt.Sprintf(`{"code":"MATRIX%d","kind":"amount","discount":100}`, e.n), 201).json(e.t, &p)
	return p
}

// matrixReview is a review written for a row.
type matrixReview struct {
	id, productID, position int64
}

func (r matrixReview) params() params {
	return params{"id": strconv.FormatInt(r.id, 10), "position": strconv.FormatInt(r.position, 10)}
}

// reviewOfA is A's review of a fresh product.
func (e *matrixEnv) reviewOfA() matrixReview { return e.reviewBy(e.users[byCustomer].token) }

// reviewBy is a review of a fresh product by the holder of token.
func (e *matrixEnv) reviewBy(token string) matrixReview {
	e.t.Helper()
	p := e.product()
	r := e.h.do("POST", fmt.Sprintf("/api/v1/products/%d/reviews", p.ID), `{"rating":5}`, "Authorization", "Bearer "+token)
	if r.status != 201 {
		e.t.Fatalf("POST /products/%d/reviews: %d %s", p.ID, r.status, r.body)
	}
	var res struct {
		ID       int64 `json:"id"`
		Position int64 `json:"position"`
	}
	r.json(e.t, &res)
	return matrixReview{id: res.ID, productID: p.ID, position: res.Position}
}
