package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/pkg/events"
)

// Connect dials NATS: the one way every program of this module connects
// (services, fulfillctl, the bench and the tests). It reconnects forever (a
// NATS restart must not end a service), keeps a reconnect buffer so
// publishes during a short outage are kept, logs connection events, and
// waits for the first connection until ctx ends, logging each failed
// attempt's cause (at most every 5 s) and returning the last one.
func Connect(ctx context.Context, url, creds, name string, log zerolog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	var mu sync.Mutex
	var lastErr error
	var lastLogged time.Time
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(64 << 20),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil { // our own Close or Drain: planned
				log.Debug().Msg("nats connection closed")
				return
			}
			log.Warn().Err(err).Msg("nats disconnected")
		}),
		nats.ReconnectErrHandler(func(nc *nats.Conn, err error) {
			mu.Lock()
			defer mu.Unlock()
			lastErr = err
			if time.Since(lastLogged) >= 5*time.Second {
				lastLogged = time.Now()
				log.Warn().Err(err).Str("nats", config.RedactURLs(url)).Msg("nats connect attempt failed; retrying")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("server", config.RedactURLs(nc.ConnectedUrl())).Msg("nats reconnected")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Warn().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("nats async error")
		}),
	}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", config.RedactURLs(url), err)
	}
	// RetryOnFailedConnect returns before the first connection; wait for it
	// so start-up fails clearly instead of every call timing out later. A
	// refusal of the credentials will not change by retrying: say so now.
	for !nc.IsConnected() {
		mu.Lock()
		refused := errors.Is(lastErr, nats.ErrAuthorization) || errors.Is(lastErr, nats.ErrAuthExpired) || errors.Is(lastErr, nats.ErrAuthRevoked)
		last := lastErr
		mu.Unlock()
		if refused {
			nc.Close()
			return nil, nil, fmt.Errorf("connect to NATS at %s: %w (check NATS_URL's credentials or NATS_CREDS)", config.RedactURLs(url), last)
		}
		select {
		case <-ctx.Done():
			nc.Close()
			mu.Lock()
			defer mu.Unlock()
			if lastErr != nil {
				return nil, nil, fmt.Errorf("connect to NATS at %s: %w (last attempt: %v)", config.RedactURLs(url), ctx.Err(), lastErr)
			}
			return nil, nil, fmt.Errorf("connect to NATS at %s: %w", config.RedactURLs(url), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	// A publish whose ack is lost (the server restarted mid-flight) must
	// fail and be re-sent rather than wait forever.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// EnsureStream creates the ORDERS stream when it is missing. An existing
// stream is shared by every replica of every service, so one started with
// other settings must not change it for all (a shorter max age would delete
// the shipped records the exactly-once check reads): it is updated only
// when update is true (STREAM_UPDATE, or fulfillctl stream apply). It
// returns the stream and, when they differ, how its settings differ from
// want. It retries while JetStream is not yet available (a cluster electing
// its meta leader) until ctx ends.
func EnsureStream(ctx context.Context, js jetstream.JetStream, want events.StreamLimits, update bool) (jetstream.Stream, []string, error) {
	cfg := events.StreamConfig(want)
	var s jetstream.Stream
	var diff []string
	err := Retry(ctx, func(actx context.Context) error {
		var err error
		s, diff, err = ensureOnce(actx, js, cfg, update)
		return err
	})
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeInsufficientResources {
		return nil, nil, fmt.Errorf("create stream %s with max bytes %d: the NATS server has not that much JetStream storage to give (lower STREAM_MAX_BYTES or raise the server's max_file_store): %w", events.StreamName, want.MaxBytes, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("create or update stream %s: %w", events.StreamName, err)
	}
	return s, diff, nil
}

// Retry runs fn, a JetStream setup step (a stream, a consumer, a bucket),
// until it succeeds, fails for a reason retrying will not change, or ctx
// ends. A service starting while NATS restarts or a cluster elects its
// leader must wait for it rather than exit. Each attempt has its own 5 s
// deadline: a cluster can leave a create that lost a race with another
// replica's unanswered.
func Retry(ctx context.Context, fn func(context.Context) error) error {
	b := backoff.WithContext(&backoff.ExponentialBackOff{
		InitialInterval: 200 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 1.5, MaxInterval: 2 * time.Second,
		MaxElapsedTime: 0, Stop: backoff.Stop, Clock: backoff.SystemClock,
	}, ctx)
	return backoff.Retry(func() error {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := fn(actx)
		if err != nil && !retryable(err) {
			return backoff.Permanent(err)
		}
		return err
	}, b)
}

// errCodeInsufficientResources is nats-server's JSInsufficientResourcesErr:
// the stream's reservation exceeds the server's JetStream storage.
const errCodeInsufficientResources jetstream.ErrorCode = 10047

// retryable tells passing conditions of a cluster that is starting or
// electing (timeouts, no responders, 503 "temporarily unavailable") from
// configuration errors that will not go away (replicas above the cluster
// size, overlapping subjects).
//
// "Stream not found" is passing too: a setup step only looks up a stream or
// bucket that it or a peer replica has just created, and on a cluster the
// loser of a create race can be told the winner's stream exists and then,
// for a moment, that it is not found (a shipper exited that way in
// internal/cluster's TestPipelineSurvivesLosingStreamLeader, 1 run in 8).
func retryable(err error) bool {
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503 || apiErr.ErrorCode == jetstream.JSErrCodeStreamNotFound
	}
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected)
}

// ensureOnce creates the stream if it is missing and updates it only if
// asked to and its configuration differs (services starting together would
// otherwise update the stream while one of them creates its consumer, which
// nats-server 2.15.2 does not guard: a data race the race detector
// reports).
func ensureOnce(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, update bool) (jetstream.Stream, []string, error) {
	s, err := js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err := js.CreateStream(ctx, cfg) // an identical concurrent create succeeds too
		return s, nil, err
	case err != nil:
		return nil, nil, err
	}
	diff := StreamDiff(s.CachedInfo().Config, cfg)
	if len(diff) == 0 || !update {
		return s, diff, nil
	}
	s, err = js.UpdateStream(ctx, cfg)
	return s, diff, err
}

// StreamDiff lists, as "setting: have X, want Y", the settings that
// events.StreamConfig sets and that differ between have and want.
func StreamDiff(have, want jetstream.StreamConfig) []string {
	var d []string
	add := func(name string, h, w any) {
		if fmt.Sprint(h) != fmt.Sprint(w) {
			d = append(d, fmt.Sprintf("%s: have %v, want %v", name, h, w))
		}
	}
	add("description", have.Description, want.Description)
	add("subjects", have.Subjects, want.Subjects)
	add("retention", have.Retention, want.Retention)
	add("storage", have.Storage, want.Storage)
	add("replicas", have.Replicas, want.Replicas)
	add("max_age", have.MaxAge, want.MaxAge)
	add("max_bytes", have.MaxBytes, want.MaxBytes)
	add("duplicate_window", have.Duplicates, want.Duplicates)
	add("discard", have.Discard, want.Discard)
	add("allow_direct", have.AllowDirect, want.AllowDirect)
	return d
}
