//go:build kafka

package kafkatest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
)

// authBroker is the secure broker of `kafka.sh up-secure`, from the secure.json that KAFKA_SECURE_CONFIG
// names, or the test is skipped.
func authBroker(t *testing.T) map[string]string {
	t.Helper()
	path := os.Getenv("KAFKA_SECURE_CONFIG")
	if path == "" {
		t.Skipf("KAFKA_SECURE_CONFIG is not set: %s", howToRun)
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]string
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// authProducer is a producer for cm whose log lines (librdkafka's debug ones included) go to out.
func authProducer(t *testing.T, cm kafka.ConfigMap, out *lockedBuffer, opts ...aioproducer.Option) *aioproducer.Producer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := aioproducer.New(cm, append([]aioproducer.Option{aioproducer.WithLogger(log)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// A wrong password fails the message promptly with ErrAuthentication, not retriable, long before
// message.timeout.ms; the broker's reason is logged; the password never appears in a log line or an
// error. New credentials on the same producer then work.
func TestWrongPasswordFailsPromptlyAndRotatedCredentialsWork(t *testing.T) {
	s := authBroker(t)
	topic := topicName(t, "")
	createTopic(t, s["plaintext.bootstrap"], topic, 1, 1, nil)
	const marker = "wrong-password-MARKER-7f3a"
	var out lockedBuffer
	p := authProducer(t, kafka.ConfigMap{
		"bootstrap.servers": s["sasl_ssl.bootstrap"], "security.protocol": "SASL_SSL", "ssl.ca.location": s["ca.location"],
		"sasl.mechanism": s["scram.mechanism"], "sasl.username": s["scram.username"], "sasl.password": marker,
		"message.timeout.ms": 60000, "debug": "security,broker,protocol,msg",
	}, &out)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	start := time.Now()
	f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("refused")})
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	took := time.Since(start)
	t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
	require.ErrorIs(t, err, aioproducer.ErrAuthentication)
	assert.False(t, aioproducer.IsRetriable(err))
	assert.Less(t, took, 30*time.Second, "bounded well below message.timeout.ms (60 s)")
	assert.Contains(t, out.String(), "aioproducer: authentication failed")

	require.NoError(t, p.SetSaslCredentials(s["scram.username"], s["scram.password"]))
	var d aioproducer.Delivery
	for {
		f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("accepted")})
		require.NoError(t, err)
		if d, err = f.Wait(ctx); err == nil {
			break
		}
		require.NoError(t, ctx.Err(), "never delivered with the rotated credentials: %v", err)
		time.Sleep(200 * time.Millisecond) // a message purged just before the new connection authenticated
	}
	t.Logf("delivered with the rotated credentials %v after the failure: %s[%d]@%d", time.Since(start).Round(time.Millisecond), d.Topic, d.Partition, d.Offset)

	require.NoError(t, p.Close(ctx))
	assert.NotContains(t, out.String(), marker, "the wrong password in a log line")
	assert.NotContains(t, out.String(), s["scram.password"], "the right password in a log line")
	assert.NotContains(t, err2str(err), marker)
}

func err2str(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A broker certificate that the configured CA did not sign fails the message promptly with
// ErrAuthentication (TLS verification), not retriable.
func TestUntrustedBrokerCertificateFailsPromptly(t *testing.T) {
	s := authBroker(t)
	topic := topicName(t, "")
	createTopic(t, s["plaintext.bootstrap"], topic, 1, 1, nil)
	var out lockedBuffer
	p := authProducer(t, kafka.ConfigMap{
		"bootstrap.servers": s["ssl.bootstrap"], "security.protocol": "SSL", "ssl.ca.location": s["other.ca.location"],
		"message.timeout.ms": 60000,
	}, &out)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("untrusted")})
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	t.Logf("failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	require.ErrorIs(t, err, aioproducer.ErrAuthentication)
	assert.False(t, aioproducer.IsRetriable(err))
	assert.Contains(t, strings.ToLower(err.Error()), "certificate")
	assert.Less(t, time.Since(start), 30*time.Second)
}

// unsecuredJWT is an unsigned JWT for Kafka's unsecured OAUTHBEARER validator.
func unsecuredJWT(sub string, exp time.Time) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"none"}`))
	payload := enc.EncodeToString(fmt.Appendf(nil, `{"sub":%q,"iat":%d,"exp":%d}`, sub, time.Now().Unix(), exp.Unix()))
	return header + "." + payload + "."
}

// The application's token provider supplies OAUTHBEARER tokens, and librdkafka asks it again before
// each expires; messages are delivered across the refresh.
func TestOAuthBearerTokenProviderWithRefresh(t *testing.T) {
	s := authBroker(t)
	topic := topicName(t, "")
	createTopic(t, s["plaintext.bootstrap"], topic, 1, 1, nil)
	var calls atomic.Int32
	var mu sync.Mutex
	var tokens []string
	provider := func(ctx context.Context, config string) (kafka.OAuthBearerToken, error) {
		calls.Add(1)
		exp := time.Now().Add(10 * time.Second) // librdkafka refreshes at 80% of the lifetime
		tok := unsecuredJWT("alice", exp)
		mu.Lock()
		tokens = append(tokens, tok)
		mu.Unlock()
		return kafka.OAuthBearerToken{TokenValue: tok, Expiration: exp, Principal: "alice"}, nil
	}
	var out lockedBuffer
	p := authProducer(t, kafka.ConfigMap{
		"bootstrap.servers": s["oauthbearer.bootstrap"], "security.protocol": s["oauthbearer.security.protocol"],
		"sasl.mechanism": "OAUTHBEARER", "debug": "security,broker,protocol",
	}, &out, aioproducer.WithOAuthBearerTokenProvider(provider))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	produce := func(v string) {
		f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte(v)})
		require.NoError(t, err)
		_, err = f.Wait(ctx)
		require.NoError(t, err, "%s", v)
	}
	produce("first token")
	require.Eventually(t, func() bool { return calls.Load() >= 2 }, 30*time.Second, 50*time.Millisecond, "no refresh")
	produce("refreshed token")
	t.Logf("token provider called %d times", calls.Load())
	require.NoError(t, p.Close(ctx))
	mu.Lock()
	defer mu.Unlock()
	for _, tok := range tokens {
		assert.NotContains(t, out.String(), tok, "a token in a log line (debug on)")
		assert.NotContains(t, out.String(), strings.Split(tok, ".")[1], "a token's payload in a log line")
	}
}

// An expired token fails the messages with ErrAuthentication within bounded time.
func TestExpiredTokenFailsPromptly(t *testing.T) {
	s := authBroker(t)
	topic := topicName(t, "")
	createTopic(t, s["plaintext.bootstrap"], topic, 1, 1, nil)
	provider := func(ctx context.Context, config string) (kafka.OAuthBearerToken, error) {
		exp := time.Now().Add(-time.Hour)
		return kafka.OAuthBearerToken{TokenValue: unsecuredJWT("alice", exp), Expiration: exp, Principal: "alice"}, nil
	}
	var out lockedBuffer
	p := authProducer(t, kafka.ConfigMap{
		"bootstrap.servers": s["oauthbearer.bootstrap"], "security.protocol": s["oauthbearer.security.protocol"],
		"sasl.mechanism": "OAUTHBEARER", "message.timeout.ms": 60000,
	}, &out, aioproducer.WithOAuthBearerTokenProvider(provider))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("expired")})
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	t.Logf("failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	require.Error(t, err)
	require.ErrorIs(t, err, aioproducer.ErrAuthentication)
	assert.Less(t, time.Since(start), 30*time.Second)
	assert.Contains(t, out.String(), "no OAUTHBEARER token")
}

// librdkafka's built-in OIDC client fetches the token from a token endpoint (here an HTTP server on
// 127.0.0.1 that hands out unsigned JWTs); the producer needs no code of its own for it.
func TestOAuthBearerOIDCMethod(t *testing.T) {
	s := authBroker(t)
	topic := topicName(t, "")
	createTopic(t, s["plaintext.bootstrap"], topic, 1, 1, nil)
	const secret = "oidc-client-secret-MARKER-91c2"
	var asked atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": unsecuredJWT("svc", time.Now().Add(time.Hour)), "token_type": "bearer", "expires_in": 3600,
		})
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	var out lockedBuffer
	p := authProducer(t, kafka.ConfigMap{
		"bootstrap.servers": s["oauthbearer.bootstrap"], "security.protocol": s["oauthbearer.security.protocol"],
		"sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.method": "oidc",
		"sasl.oauthbearer.client.id": "svc", "sasl.oauthbearer.client.secret": secret,
		"sasl.oauthbearer.token.endpoint.url": "http://" + ln.Addr().String() + "/token",
		"debug":                               "security",
	}, &out)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("oidc")})
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)
	assert.Positive(t, asked.Load(), "librdkafka asked the token endpoint")
	require.NoError(t, p.Close(ctx))
	assert.NotContains(t, out.String(), secret, "the client secret in a log line")
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}
