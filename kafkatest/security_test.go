//go:build kafka

package kafkatest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seed-f937cf20/aioproducer"
)

// The secure broker of scripts/kafka.sh up-secure: TLS and SASL against a real broker.

// envSecureConfig names secure.json, written by scripts/kafka.sh up-secure (test-kafka.sh sets it).
const envSecureConfig = "KAFKA_SECURE_CONFIG"

// secureBroker is what up-secure wrote to secure.json, and, in client, to client.json: the librdkafka
// settings of a SCRAM-SHA-512 producer over SASL_SSL.
type secureBroker struct {
	Plaintext      string `json:"plaintext.bootstrap"`
	SASLSSL        string `json:"sasl_ssl.bootstrap"`
	SSL            string `json:"ssl.bootstrap"`
	OAuth          string `json:"oauthbearer.bootstrap"`
	OAuthProtocol  string `json:"oauthbearer.security.protocol"`
	CA             string `json:"ca.location"`
	OtherCA        string `json:"other.ca.location"`
	ScramMechanism string `json:"scram.mechanism"`
	ScramUser      string `json:"scram.username"`
	ScramPassword  string `json:"scram.password"`
	PlainUser      string `json:"plain.username"`
	PlainPassword  string `json:"plain.password"`
	ClientJSON     string `json:"client.json"`

	client map[string]string
}

// secure returns the secure broker, or skips the test when it is not running.
func secure(t *testing.T) secureBroker {
	t.Helper()
	path := os.Getenv(envSecureConfig)
	if path == "" {
		t.Skipf("%s is not set (the secure broker of `scripts/kafka.sh up-secure` is not running): %s", envSecureConfig, howToRun)
	}
	var b secureBroker
	raw, err := os.ReadFile(path)
	require.NoError(t, err, "%s", envSecureConfig)
	require.NoError(t, json.Unmarshal(raw, &b), "%s: %s", envSecureConfig, path)
	raw, err = os.ReadFile(b.ClientJSON)
	require.NoError(t, err, "client.json")
	require.NoError(t, json.Unmarshal(raw, &b.client), "client.json must be a flat object of strings: %s", b.ClientJSON)
	for _, v := range []string{b.Plaintext, b.SASLSSL, b.SSL, b.OAuth, b.CA, b.OtherCA, b.ScramPassword, b.PlainPassword} {
		require.NotEmpty(t, v, "a setting missing in %s", path)
	}
	return b
}

// scram returns client.json as it is: what a user would pass.
func (b secureBroker) scram() kafka.ConfigMap {
	cm := kafka.ConfigMap{}
	for k, v := range b.client {
		cm[k] = v
	}
	return cm
}

func (b secureBroker) plain() kafka.ConfigMap {
	return kafka.ConfigMap{
		"bootstrap.servers": b.SASLSSL,
		"security.protocol": "SASL_SSL",
		"ssl.ca.location":   b.CA,
		"sasl.mechanism":    "PLAIN",
		"sasl.username":     b.PlainUser,
		"sasl.password":     b.PlainPassword,
	}
}

// tlsOnly is TLS without SASL, on the SSL listener.
func (b secureBroker) tlsOnly() kafka.ConfigMap {
	return kafka.ConfigMap{
		"bootstrap.servers": b.SSL,
		"security.protocol": "SSL",
		"ssl.ca.location":   b.CA,
	}
}

// oauthUnsecured is OAUTHBEARER with librdkafka's built-in unsecured JWT, which the broker's
// unsecured validator accepts.
func (b secureBroker) oauthUnsecured(principal string) kafka.ConfigMap {
	return kafka.ConfigMap{
		"bootstrap.servers":                    b.OAuth,
		"security.protocol":                    b.OAuthProtocol,
		"sasl.mechanism":                       "OAUTHBEARER",
		"enable.sasl.oauthbearer.unsecure.jwt": true,
		"sasl.oauthbearer.config":              "principal=" + principal,
	}
}

// with returns a copy of cm with kv (key, value, key, value...) set.
func with(cm kafka.ConfigMap, kv ...any) kafka.ConfigMap {
	out := kafka.ConfigMap{}
	for k, v := range cm {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// TestSecureClientJSON checks the contract of client.json: a flat object of the six librdkafka settings
// of a SCRAM-SHA-512 producer over SASL_SSL, all strings, and a CA file in PEM.
func TestSecureClientJSON(t *testing.T) {
	b := secure(t)
	keys := make([]string, 0, len(b.client))
	for k := range b.client {
		keys = append(keys, k)
	}
	assert.ElementsMatch(t, []string{"bootstrap.servers", "security.protocol", "ssl.ca.location", "sasl.mechanism", "sasl.username", "sasl.password"}, keys)
	assert.Equal(t, b.SASLSSL, b.client["bootstrap.servers"])
	assert.Equal(t, "SASL_SSL", b.client["security.protocol"])
	assert.Equal(t, "SCRAM-SHA-512", b.client["sasl.mechanism"])
	assert.Equal(t, b.ScramMechanism, b.client["sasl.mechanism"])
	assert.Equal(t, b.ScramUser, b.client["sasl.username"])
	assert.Equal(t, b.ScramPassword, b.client["sasl.password"])
	for _, ca := range []string{b.client["ssl.ca.location"], b.CA, b.OtherCA} {
		pem, err := os.ReadFile(ca)
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(pem, []byte("-----BEGIN CERTIFICATE-----")), "%s is not a PEM certificate", ca)
	}
}

// TestSecureProduceAndReadBack produces over each secured listener with the settings a user would pass
// and reads the messages back with a consumer configured the same way.
func TestSecureProduceAndReadBack(t *testing.T) {
	b := secure(t)
	for _, c := range []struct {
		name string
		cfg  kafka.ConfigMap
	}{
		{"SASL_SSL-SCRAM-SHA-512", b.scram()},
		{"SASL_SSL-PLAIN", b.plain()},
		{"SSL", b.tlsOnly()},
		{"OAUTHBEARER-unsecured-jwt", b.oauthUnsecured("alice")},
	} {
		t.Run(c.name, func(t *testing.T) {
			const n, partitions = 50, 2
			topic := topicName(t, "")
			createTopic(t, b.Plaintext, topic, partitions, 1, nil)
			p := newProducer(t, c.cfg["bootstrap.servers"].(string), c.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			msgs := make([]*aioproducer.Message, n)
			for i := range msgs {
				msgs[i] = &aioproducer.Message{
					Topic:   topic,
					Key:     []byte("k" + strconv.Itoa(i%7)),
					Value:   []byte(fmt.Sprintf("%s message %d", c.name, i)),
					Headers: []aioproducer.Header{{Key: "id", Value: []byte(strconv.Itoa(i))}},
				}
			}
			futs, err := p.ProduceBatch(ctx, msgs[:n-1])
			require.NoError(t, err)
			last, err := p.Produce(ctx, msgs[n-1])
			require.NoError(t, err)
			futs = append(futs, last)
			for i, f := range futs {
				_, err := f.Wait(ctx)
				require.NoError(t, err, "message %d", i)
			}
			require.NoError(t, p.Close(ctx))

			got := consumeAllWith(t, c.cfg, topic, time.Minute)
			require.Len(t, got, n)
			seen := map[int]bool{}
			for _, m := range got {
				id, _ := m.Header("id")
				i, err := strconv.Atoi(string(id))
				require.NoError(t, err, "id header %q", id)
				require.False(t, seen[i], "message %d read twice", i)
				seen[i] = true
				assert.Equal(t, msgs[i].Key, m.Key, "message %d", i)
				assert.Equal(t, msgs[i].Value, m.Value, "message %d", i)
			}
		})
	}
}

// lockedBuffer collects the text a slog handler writes, from any goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// capturingLogger returns a logger that keeps every line at every level.
func capturingLogger() (*slog.Logger, *lockedBuffer) {
	buf := &lockedBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// errorCodes returns the code of every kafka.Error in err's tree, depth first.
func errorCodes(err error) []kafka.ErrorCode {
	var codes []kafka.ErrorCode
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if ke, ok := e.(kafka.Error); ok {
			codes = append(codes, ke.Code())
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return codes
}

// logLines returns the captured lines that contain every one of subs.
func logLines(logs string, subs ...string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		all := l != ""
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			out = append(out, l)
		}
	}
	return out
}

// TestSecureFailuresObserved: when the producer cannot authenticate or does not trust the broker's
// certificate, one message with message.timeout.ms=10s fails long before that timeout with
// ErrAuthentication, naming the broker's reason, purged from librdkafka's queue (never sent, not
// outcome unknown); librdkafka logs the connection error at ERROR (tag FAIL); Close returns at once,
// and every goroutine ends.
func TestSecureFailuresObserved(t *testing.T) {
	b := secure(t)
	const msgTimeout = 10 * time.Second
	cases := []struct {
		name string
		cfg  kafka.ConfigMap
		want string // in the message's error and in librdkafka's log
	}{
		{"SCRAM-wrong-password", with(b.scram(), "sasl.password", "not-"+b.ScramPassword),
			"SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"},
		{"PLAIN-wrong-password", with(b.plain(), "sasl.password", "not-"+b.PlainPassword),
			"SASL authentication error: Authentication failed: Invalid username or password"},
		{"SASL_SSL-untrusted-CA", with(b.scram(), "ssl.ca.location", b.OtherCA),
			"error:0A000086:SSL routines::certificate verify failed"},
		{"SSL-untrusted-CA", with(b.tlsOnly(), "ssl.ca.location", b.OtherCA),
			"error:0A000086:SSL routines::certificate verify failed"},
	}
	topic := topicName(t, "")
	createTopic(t, b.Plaintext, topic, 1, 1, nil)
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // after every producer's cleanup

	// All cases at once.
	type observed struct {
		produceErr, err, closeErr error
		took, closeTook           time.Duration
		logs                      *lockedBuffer
	}
	obs := make([]observed, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		logger, logs := capturingLogger()
		obs[i].logs = logs
		cfg := with(c.cfg, "message.timeout.ms", int(msgTimeout/time.Millisecond))
		p := newProducer(t, cfg["bootstrap.servers"].(string), cfg, aioproducer.WithLogger(logger))
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &obs[i]
			ctx, cancel := context.WithTimeout(context.Background(), msgTimeout+30*time.Second)
			defer cancel()
			start := time.Now()
			f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("x")})
			if o.produceErr = err; err == nil {
				_, o.err = f.Wait(ctx)
			}
			o.took = time.Since(start)
			closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancelClose()
			start = time.Now()
			o.closeErr = p.Close(closeCtx)
			o.closeTook = time.Since(start)
		}()
	}
	wg.Wait()

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := obs[i], obs[i].err
			require.NoError(t, o.produceErr, "Produce accepts the message")
			require.NotErrorIs(t, err, context.DeadlineExceeded, "no outcome %v after message.timeout.ms=%v", o.took, msgTimeout)
			require.Error(t, err)
			t.Logf("outcome after %v: %v", o.took.Round(time.Millisecond), err)
			require.NoError(t, o.closeErr, "Close")
			t.Logf("Close returned after %v", o.closeTook.Round(time.Millisecond))

			// Fail-fast: once the failure has lasted a second with no delivery, the message fails
			// with ErrAuthentication, naming the broker's reason, instead of waiting out
			// message.timeout.ms and saying "Message timed out".
			assert.Less(t, o.took, msgTimeout/2, "the outcome comes long before message.timeout.ms")
			require.ErrorIs(t, err, aioproducer.ErrAuthentication)
			assert.Contains(t, errorCodes(err), kafka.ErrPurgeQueue, "purged from librdkafka's queue, never sent: %v", err)
			assert.Contains(t, err.Error(), "authentication failed")
			assert.Contains(t, err.Error(), c.want)
			assert.False(t, aioproducer.IsOutcomeUnknown(err), "never sent: %v", err)
			assert.False(t, aioproducer.IsFatal(err), "fatal: %v", err)
			assert.False(t, aioproducer.IsRetriable(err), "retriable: %v", err)
			assert.Less(t, o.closeTook, 5*time.Second, "Close with nothing left to wait for")

			all := o.logs.String()
			failLines := logLines(all, "level=ERROR", "librdkafka: ", c.want, "tag=FAIL")
			assert.NotEmpty(t, failLines, "librdkafka logs the connection error at ERROR; the log:\n%s", all)
			if len(failLines) > 0 {
				t.Logf("first of %d librdkafka ERROR lines: %s", len(failLines), failLines[0])
			}
			for _, l := range logLines(all, "level=WARN") {
				t.Logf("warning: %s", l)
			}
		})
	}
}

// TestSecureNoSecretInLogsOrErrors runs producers with librdkafka's debug logging on (debug=all) through
// a logger that keeps every line, and checks that the SASL password appears in no log line and in no
// error the producer returns: when authentication succeeds, when the password is wrong, and when New
// refuses the configuration.
func TestSecureNoSecretInLogsOrErrors(t *testing.T) {
	b := secure(t)
	marker := func(what string) string {
		return "leakcheck-" + what + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	topic := topicName(t, "")
	createTopic(t, b.Plaintext, topic, 1, 1, nil)

	// forms returns the texts that would give the password away: itself, and PLAIN's SASL message
	// ("\x00user\x00password") in base64, as a protocol dump might show it.
	forms := func(user, secret string) []string {
		return []string{secret, base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + secret))}
	}
	check := func(t *testing.T, what, text string, secrets []string) {
		t.Helper()
		for _, s := range secrets {
			if i := strings.Index(text, s); i >= 0 {
				from, to := max(0, i-300), min(len(text), i+len(s)+100)
				t.Errorf("the password is in %s: ...%s...", what, text[from:to])
			}
		}
	}

	cases := []struct {
		name, user, secret string
		base               kafka.ConfigMap
		delivered          bool
	}{
		{"SCRAM-delivered", b.ScramUser, b.ScramPassword, b.scram(), true},
		{"PLAIN-delivered", b.PlainUser, b.PlainPassword, b.plain(), true},
		{"SCRAM-wrong-password", b.ScramUser, marker("scram"), b.scram(), false},
		{"PLAIN-wrong-password", b.PlainUser, marker("plain"), b.plain(), false},
	}
	// All cases at once (a wrong password waits out message.timeout.ms), then the checks.
	type observed struct {
		newErr    error
		errs      []string
		delivered bool
		logs      *lockedBuffer
	}
	obs := make([]observed, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &obs[i]
			cfg := with(c.base, "sasl.password", c.secret, "debug", "all", "message.timeout.ms", 5000)
			logger, logs := capturingLogger()
			o.logs = logs
			p, err := aioproducer.New(cfg, aioproducer.WithLogger(logger))
			if o.newErr = err; err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("x")})
			if err != nil {
				o.errs = append(o.errs, err.Error())
			} else if _, err := f.Wait(ctx); err != nil {
				o.errs = append(o.errs, err.Error())
			} else {
				o.delivered = true
			}
			if err := p.Close(ctx); err != nil {
				o.errs = append(o.errs, err.Error())
			}
		}()
	}
	wg.Wait()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := obs[i]
			require.NoError(t, o.newErr, "New")
			assert.Equal(t, c.delivered, o.delivered, "delivered; errors: %q", o.errs)
			all := o.logs.String()
			// Not vacuous: librdkafka printed its configuration, and redacted the password in it.
			require.NotEmpty(t, logLines(all, "librdkafka: ", "sasl.password = [redacted]", "tag=CONF"), "debug=all: librdkafka's configuration dump")
			t.Logf("%d log lines, %d errors checked", strings.Count(all, "\n"), len(o.errs))
			secrets := forms(c.user, c.secret)
			check(t, "the log", all, secrets)
			check(t, "an error", strings.Join(o.errs, "\n"), secrets)
		})
	}

	// New refuses a configuration: its error names the key, never the password.
	secret := marker("new")
	for _, c := range []struct {
		name string
		cfg  kafka.ConfigMap
		skip string
	}{
		{"New-refuses-mechanism", with(b.scram(), "sasl.password", secret, "sasl.mechanism", "NO-SUCH-MECHANISM"), ""},
		{"New-refuses-property", with(b.scram(), "sasl.password", secret, "no.such.property", "x"), ""},
		{"New-refuses-CA-file", with(b.scram(), "sasl.password", secret, "ssl.ca.location", "/no/such/ca.pem"), ""},
		// It leaked before: the refused value was printed as bytes.
		{"New-refuses-[]byte-password", with(b.scram(), "sasl.password", []byte(secret)), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.skip != "" {
				t.Skip(c.skip)
			}
			logger, logs := capturingLogger()
			p, err := aioproducer.New(c.cfg, aioproducer.WithLogger(logger))
			if p != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = p.Close(ctx)
			}
			require.Error(t, err)
			t.Logf("New: %v", err)
			secrets := []string{secret, fmt.Sprint([]byte(secret))}
			check(t, "New's error", err.Error(), secrets)
			check(t, "the log", logs.String(), secrets)
		})
	}
}
