package pipeline

import (
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/pkg/events"
)

// DecodeInput reads a stage's input message: a valid envelope of stage, on
// the subject the envelope names, whose payload decodes into T and passes
// its own checks. Any other message is unusable (events.ErrMalformed or
// events.ErrUnsupportedVersion) and is set aside, never retried.
func DecodeInput[T any](msg jetstream.Msg, stage events.Stage) (*events.Envelope, *T, error) {
	env, err := events.Decode(msg.Data())
	if err != nil {
		return nil, nil, err
	}
	if env.Stage() != stage {
		return nil, nil, fmt.Errorf("%w: %s event where %s events are expected", events.ErrMalformed, env.Type, stage.Type())
	}
	if env.Subject() != msg.Subject() {
		return nil, nil, fmt.Errorf("%w: envelope says %s, message was on %s", events.ErrMalformed, env.Subject(), msg.Subject())
	}
	var data T
	if err := env.DecodeData(&data); err != nil {
		return nil, nil, err
	}
	return env, &data, nil
}
