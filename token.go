package aioproducer

import (
	"context"
	"log/slog"
	"sync"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// tokenRefresher answers librdkafka's OAUTHBEARER token refresh requests with the application's
// TokenProvider. Each request runs the provider on a goroutine of its own (librdkafka
// asks again only after an answer, so there is one at a time), so that a slow token endpoint never
// delays the draining of delivery reports; close cancels the provider's ctx and waits for it.
type tokenRefresher struct {
	fn     TokenProvider
	set    func(kafka.OAuthBearerToken) error // the engine's rd_kafka_oauthbearer_set_token
	fail   func(reason string) error          // rd_kafka_oauthbearer_set_token_failure
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newTokenRefresher(fn TokenProvider, log *slog.Logger, set func(kafka.OAuthBearerToken) error, fail func(string) error) *tokenRefresher {
	ctx, cancel := context.WithCancel(context.Background())
	return &tokenRefresher{fn: fn, set: set, fail: fail, log: log, ctx: ctx, cancel: cancel}
}

// request answers one refresh request; config is sasl.oauthbearer.config. With no provider it logs why
// no token comes (librdkafka asks only when nothing else supplies tokens).
func (r *tokenRefresher) request(config string) {
	if r.fn == nil {
		r.log.Error("aioproducer: librdkafka asks for an OAUTHBEARER token, but none is supplied: set " +
			"WithOAuthBearerTokenProvider, sasl.oauthbearer.method=oidc, or enable.sasl.oauthbearer.unsecure.jwt=true")
		_ = r.fail("no token provider")
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		tok, err := r.fn(r.ctx, config)
		if err == nil {
			err = r.set(tok)
		}
		if err != nil {
			if r.ctx.Err() != nil {
				return // closing: librdkafka no longer needs the token
			}
			r.log.Warn("aioproducer: no OAUTHBEARER token: librdkafka asks again later", "error", err.Error())
			_ = r.fail(err.Error())
		}
	}()
}

// close cancels a provider call in progress and waits for it: after close, the engine may release
// librdkafka.
func (r *tokenRefresher) close() {
	r.cancel()
	r.wg.Wait()
}
