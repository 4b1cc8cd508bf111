package aioproducer_test

import (
	"context"
	"errors"
	"log"
	"os"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
)

// SASL_SSL with SCRAM, and the password rotated on the live producer. (No Output: it needs a broker
// with a SASL_SSL listener; the real-Kafka suite runs the same calls.)
func ExampleProducer_SetSaslCredentials() {
	user, password := os.Getenv("KAFKA_USER"), os.Getenv("KAFKA_PASSWORD")
	p, err := aioproducer.New(kafka.ConfigMap{
		"bootstrap.servers": "broker1:9093",
		"security.protocol": "SASL_SSL",
		"ssl.ca.location":   "/etc/kafka/ca.pem", // the CA that signed the brokers' certificates
		"sasl.mechanism":    "SCRAM-SHA-512",     // or SCRAM-SHA-256, PLAIN
		"sasl.username":     user,
		"sasl.password":     password,
	})
	if err != nil {
		log.Fatal(err) // a *ConfigError names the key, never its value
	}
	defer closeWithin(p, 10*time.Second)

	// When the secret rotates: new connections authenticate with the new password; connections
	// already authenticated stay as they are.
	if err := p.SetSaslCredentials(user, os.Getenv("KAFKA_NEW_PASSWORD")); err != nil {
		log.Print(err)
	}
}

// fetchToken stands for the application's identity provider: it returns a token and when it expires.
func fetchToken(ctx context.Context) (string, time.Time, error) {
	return "", time.Time{}, errors.New("no identity provider in this example")
}

// SASL/OAUTHBEARER with tokens the application supplies. (No Output: it needs a broker with an
// OAUTHBEARER listener.)
func ExampleWithOAuthBearerTokenProvider() {
	p, err := aioproducer.New(kafka.ConfigMap{
		"bootstrap.servers": "broker1:9093",
		"security.protocol": "SASL_SSL",
		"sasl.mechanism":    "OAUTHBEARER",
	}, aioproducer.WithOAuthBearerTokenProvider(func(ctx context.Context, config string) (kafka.OAuthBearerToken, error) {
		// Called at start and again before the current token expires, on a goroutine of its own:
		// it may block on an HTTP call. An error (logged: keep secrets out of it) makes librdkafka
		// ask again later.
		tok, exp, err := fetchToken(ctx)
		if err != nil {
			return kafka.OAuthBearerToken{}, err
		}
		return kafka.OAuthBearerToken{TokenValue: tok, Expiration: exp, Principal: "orders-service"}, nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer closeWithin(p, 10*time.Second)
}

// SASL/OAUTHBEARER with librdkafka's own OIDC client (client credentials grant): no code but the
// settings. (No Output: it needs a token endpoint and a broker.)
func Example_oidc() {
	p, err := aioproducer.New(kafka.ConfigMap{
		"bootstrap.servers":                   "broker1:9093",
		"security.protocol":                   "SASL_SSL",
		"sasl.mechanism":                      "OAUTHBEARER",
		"sasl.oauthbearer.method":             "oidc",
		"sasl.oauthbearer.token.endpoint.url": "https://idp.example.com/oauth2/token",
		"sasl.oauthbearer.client.id":          "orders-service",
		"sasl.oauthbearer.client.secret":      os.Getenv("OIDC_CLIENT_SECRET"),
		"sasl.oauthbearer.scope":              "kafka",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer closeWithin(p, 10*time.Second)
}
