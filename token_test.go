package aioproducer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// librdkafka asks for an OAUTHBEARER token before it connects: the provider gets the request, with
// sasl.oauthbearer.config; its ctx ends when the producer closes.
func TestTokenProviderAnswersLibrdkafkasRefreshRequest(t *testing.T) {
	mc := newMockCluster(t, 1)
	asked := make(chan string, 4)
	provider := func(ctx context.Context, config string) (kafka.OAuthBearerToken, error) {
		select {
		case asked <- config:
		default:
		}
		return kafka.OAuthBearerToken{TokenValue: "header.payload.", Principal: "alice", Expiration: time.Now().Add(time.Hour)}, nil
	}
	p, err := New(kafka.ConfigMap{
		"bootstrap.servers": mc.BootstrapServers(), "security.protocol": "SASL_PLAINTEXT",
		"sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.config": "principal=alice scope=test",
	}, WithLogger(quietLogger), WithOAuthBearerTokenProvider(provider))
	require.NoError(t, err)
	select {
	case config := <-asked:
		assert.Equal(t, "principal=alice scope=test", config)
	case <-time.After(10 * time.Second):
		t.Fatal("the token provider was never asked")
	}
	require.NoError(t, p.Close(ctxTimeout(t, 10*time.Second)))
}

// A provider still running when the producer closes sees its ctx end, and Close waits for it.
func TestTokenProviderIsCancelledByClose(t *testing.T) {
	mc := newMockCluster(t, 1)
	started, returned := make(chan struct{}), make(chan error, 1)
	provider := func(ctx context.Context, _ string) (kafka.OAuthBearerToken, error) {
		close(started)
		<-ctx.Done()
		returned <- ctx.Err()
		return kafka.OAuthBearerToken{}, ctx.Err()
	}
	p, err := New(kafka.ConfigMap{"bootstrap.servers": mc.BootstrapServers(), "security.protocol": "SASL_PLAINTEXT",
		"sasl.mechanism": "OAUTHBEARER"}, WithLogger(quietLogger), WithOAuthBearerTokenProvider(provider))
	require.NoError(t, err)
	<-started
	require.NoError(t, p.Close(ctxTimeout(t, 10*time.Second)))
	select {
	case err := <-returned:
		assert.ErrorIs(t, err, context.Canceled)
	default:
		t.Fatal("Close returned before the provider did")
	}
}

func TestTokenProviderNeedsOAuthBearerAndNoOtherTokenSource(t *testing.T) {
	provider := func(context.Context, string) (kafka.OAuthBearerToken, error) {
		return kafka.OAuthBearerToken{}, errors.New("unused")
	}
	for name, cm := range map[string]kafka.ConfigMap{
		"no OAUTHBEARER":    {"sasl.mechanism": "PLAIN"},
		"librdkafka's OIDC": {"sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.method": "oidc"},
		"the unsecured JWT": {"sasl.mechanism": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": true},
	} {
		t.Run(name, func(t *testing.T) {
			cm["bootstrap.servers"] = "127.0.0.1:1"
			_, err := New(cm, WithOAuthBearerTokenProvider(provider))
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "WithOAuthBearerTokenProvider", ce.Key)
		})
	}
}

// Credentials can be replaced on a live producer.
func TestSetSaslCredentialsOnALiveProducer(t *testing.T) {
	p := newTestProducer(t, "127.0.0.1:1", kafka.ConfigMap{"security.protocol": "SASL_PLAINTEXT",
		"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "alice", "sasl.password": "old"})
	require.NoError(t, p.SetSaslCredentials("alice", "new"))
	require.NoError(t, p.Close(ctxTimeout(t, 10*time.Second)))
	assert.ErrorIs(t, p.SetSaslCredentials("alice", "newer"), ErrClosed)
}
