"""Bugs this suite found outside formats/ (not its to fix): the reason strings of its strict xfails."""

ARRAY_PASSTHROUGH = (
    "pipeline: a Gemini client streaming without alt=sse to a Gemini upstream takes the passthrough path "
    "and gets the upstream's SSE bytes instead of a JSON array"
)
CUT_STREAM_IS_COMPLETE = (
    "pipeline: an upstream stream that ends (clean EOF) before its end marker is rendered to the client "
    "as a normal, complete answer; a truncated answer should end with the client format's error event "
    "(Codex: 'a stream that closes without response.completed is an error')"
)
PASSTHROUGH_FAIL_SEQUENCE = (
    "pipeline: on the passthrough path the in-stream error is rendered by a Responses renderer that never "
    "saw the relayed events, so its sequence_number restarts instead of continuing the stream"
)
