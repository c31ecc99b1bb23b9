// Command oidc-issuer is a minimal OpenID Connect issuer for the scopegate
// end-to-end tests. It stands in for Microsoft Entra ID: kube-apiserver's
// structured JWT authenticator (--authentication-config) discovers it, fetches
// its signing keys and accepts the ID tokens it writes, so the token's `groups`
// (Entra-like group object ids) and `oid` claims reach scopegate in the
// SubjectAccessReview.
//
// On start it
//   - generates a fresh RSA-2048 signing key (kept in memory only),
//   - writes one signed ID token per --user to <token-dir>/<name>.token
//     (RS256, claims iss, aud, sub, iat, nbf, exp, preferred_username, oid,
//     groups), then
//   - serves over HTTPS (the given certificate and key) on --listen:
//     /.well-known/openid-configuration and /openid/v1/jwks.
//
// Signing and the JWK encoding use go-jose (gopkg.in/go-jose/go-jose.v2, the
// release k8s.io/kubernetes itself requires); no hand-rolled crypto.
//
//	oidc-issuer --listen 127.0.0.1:PORT --issuer https://127.0.0.1:PORT \
//	  --tls-cert-file issuer.crt --tls-private-key-file issuer.key \
//	  --audience scopegate-e2e --token-dir tokens \
//	  --user 'dev@contoso.com|<oid>|<group-oid>,<group-oid>' --user ...
package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	jose "gopkg.in/go-jose/go-jose.v2"
	"gopkg.in/go-jose/go-jose.v2/jwt"
)

type user struct {
	Name   string
	OID    string
	Groups []string
}

type userList []user

func (u *userList) String() string { return fmt.Sprint(*u) }

// Set parses `name|oid|group1,group2` (groups may be empty).
func (u *userList) Set(v string) error {
	parts := strings.Split(v, "|")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("want name|oid|group1,group2, got %q", v)
	}
	usr := user{Name: parts[0], OID: parts[1], Groups: []string{}}
	if len(parts) == 3 && parts[2] != "" {
		usr.Groups = strings.Split(parts[2], ",")
	}
	*u = append(*u, usr)
	return nil
}

// idClaims are the claims of an Entra-like ID token.
type idClaims struct {
	jwt.Claims
	PreferredUsername string   `json:"preferred_username"`
	OID               string   `json:"oid"`
	Groups            []string `json:"groups"`
}

var safeName = regexp.MustCompile(`[^A-Za-z0-9._@-]`)

func main() {
	var (
		users    userList
		listen   = flag.String("listen", "", "HTTPS listen address, e.g. 127.0.0.1:8444 (required)")
		issuer   = flag.String("issuer", "", "issuer URL, the `iss` claim and discovery base (default https://<listen>)")
		certFile = flag.String("tls-cert-file", "", "serving certificate, PEM (required)")
		keyFile  = flag.String("tls-private-key-file", "", "serving key, PEM (required)")
		audience = flag.String("audience", "scopegate-e2e", "the `aud` claim")
		tokenDir = flag.String("token-dir", "", "where to write <name>.token files (required)")
		ttl      = flag.Duration("token-ttl", 2*time.Hour, "token lifetime")
	)
	flag.Var(&users, "user", "name|oid|group1,group2 (repeatable)")
	flag.Parse()
	if *listen == "" || *certFile == "" || *keyFile == "" || *tokenDir == "" || len(users) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *issuer == "" {
		*issuer = "https://" + *listen
	}
	log.SetPrefix("[oidc-issuer] ")
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatalf("generating the signing key: %v", err)
	}
	pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.RS256), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		log.Fatalf("key thumbprint: %v", err)
	}
	pub.KeyID = hex.EncodeToString(thumb[:8])

	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		log.Fatalf("signer: %v", err)
	}

	if err := os.MkdirAll(*tokenDir, 0o700); err != nil {
		log.Fatal(err)
	}
	now := time.Now()
	for _, u := range users {
		c := idClaims{
			Claims: jwt.Claims{
				Issuer:    *issuer,
				Subject:   u.OID,
				Audience:  jwt.Audience{*audience},
				IssuedAt:  jwt.NewNumericDate(now),
				NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
				Expiry:    jwt.NewNumericDate(now.Add(*ttl)),
			},
			PreferredUsername: u.Name,
			OID:               u.OID,
			Groups:            u.Groups,
		}
		raw, err := jwt.Signed(signer).Claims(c).CompactSerialize()
		if err != nil {
			log.Fatalf("signing the token of %s: %v", u.Name, err)
		}
		path := filepath.Join(*tokenDir, safeName.ReplaceAllString(u.Name, "_")+".token")
		if err := os.WriteFile(path+".tmp", []byte(raw), 0o600); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s (oid %s, %d group(s))", path, u.OID, len(u.Groups))
	}

	discovery := map[string]any{
		"issuer":                                *issuer,
		"jwks_uri":                              *issuer + "/openid/v1/jwks",
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(jose.RS256)},
		"claims_supported":                      []string{"iss", "aud", "sub", "exp", "iat", "nbf", "preferred_username", "oid", "groups"},
	}
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}}

	mux := http.NewServeMux()
	serveJSON := func(path string, v any) {
		body, err := json.Marshal(v)
		if err != nil {
			log.Fatal(err)
		}
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			log.Printf("GET %s from %s", r.URL.Path, r.RemoteAddr)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		})
	}
	serveJSON("/.well-known/openid-configuration", discovery)
	serveJSON("/openid/v1/jwks", jwks)

	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("loading the serving certificate: %v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("issuer %s serving on https://%s (kid %s)", *issuer, ln.Addr(), pub.KeyID)
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
