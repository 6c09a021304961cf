"""Split `<think>...</think>` reasoning out of model text, incrementally.

Some open models (DeepSeek-R1, Qwen, MiniMax served without a reasoning parser) write their reasoning
inline as `<think>reasoning</think>answer`. The splitter turns that into ("reasoning", ...) and
("text", ...) pieces.

Invariants:
* The result does not depend on how the text was split across `feed` calls: a tag cut anywhere
  ("<thi" + "nk>") is recognised, because a suffix that could still become a tag is held back.
* Text without a `<think>` tag passes through unchanged (same characters, nothing dropped).
* Whitespace that only separates blocks is dropped: before a leading `<think>`, right after
  `<think>`, right before `</think>` and right after `</think>` (the "\\n\\n" before the answer).
* A leading think block is the usual case; a later one in the text is extracted as well.
* Linear time: every character is scanned a bounded number of times; held back text is at most one
  tag length plus a run of whitespace.
"""

from __future__ import annotations

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

Piece = tuple[str, str]  # ("reasoning" | "text", fragment)


def _partial_tag_start(buf: str, tag: str) -> int:
    """Index where a suffix of `buf` that is a proper prefix of `tag` begins (len(buf) when none)."""
    for size in range(min(len(tag) - 1, len(buf)), 0, -1):
        if buf.endswith(tag[:size]):
            return len(buf) - size
    return len(buf)


class ThinkTagSplitter:
    """Incremental splitter: `feed` text fragments as they stream, `flush` at the end."""

    __slots__ = ("_at_start", "_buf", "_inside", "_skip_ws")

    def __init__(self) -> None:
        self._buf = ""
        self._at_start = True  # nothing but whitespace seen so far
        self._inside = False  # within <think>...</think>
        self._skip_ws = False  # drop whitespace that opens the current segment

    def feed(self, text: str) -> list[Piece]:
        self._buf += text
        out: list[Piece] = []
        self._process(out, final=False)
        return out

    def flush(self) -> list[Piece]:
        out: list[Piece] = []
        self._process(out, final=True)
        if self._buf:
            _emit(out, "reasoning" if self._inside else "text", self._buf)
            self._buf = ""
        return out

    def _process(self, out: list[Piece], *, final: bool) -> None:
        while self._buf:
            if self._at_start:
                if not self._leading(final):
                    return
                continue
            if self._skip_ws:
                stripped = self._buf.lstrip()
                if not stripped:
                    self._buf = ""
                    return
                self._buf = stripped
                self._skip_ws = False
            if not (self._step_inside(out, final) if self._inside else self._step_outside(out, final)):
                return

    def _leading(self, final: bool) -> bool:
        """Before any content: decide whether the text opens with a think block. False = wait."""
        body = self._buf.lstrip()
        if not body:  # only whitespace so far: hold it until we know what follows
            if final:
                self._at_start = False
            return final
        if body.startswith(OPEN_TAG):
            self._buf = body[len(OPEN_TAG) :]
            self._at_start = False
            self._inside = True
            self._skip_ws = True
            return True
        if OPEN_TAG.startswith(body) and not final:
            return False  # "<thi": could still become the tag
        self._at_start = False
        return True

    def _step_inside(self, out: list[Piece], final: bool) -> bool:
        buf = self._buf
        end = buf.find(CLOSE_TAG)
        if end >= 0:
            _emit(out, "reasoning", buf[:end].rstrip())
            self._buf = buf[end + len(CLOSE_TAG) :]
            self._inside = False
            self._skip_ws = True
            return True
        if final:
            return False  # flush() emits the rest as it is
        hold = _partial_tag_start(buf, CLOSE_TAG)
        keep = len(buf[:hold].rstrip())  # trailing whitespace may turn out to precede </think>
        _emit(out, "reasoning", buf[:keep])
        self._buf = buf[keep:]
        return False

    def _step_outside(self, out: list[Piece], final: bool) -> bool:
        buf = self._buf
        start = buf.find(OPEN_TAG)
        if start >= 0:
            _emit(out, "text", buf[:start])
            self._buf = buf[start + len(OPEN_TAG) :]
            self._inside = True
            self._skip_ws = True
            return True
        if final:
            return False
        hold = _partial_tag_start(buf, OPEN_TAG)
        _emit(out, "text", buf[:hold])
        self._buf = buf[hold:]
        return False


def _emit(out: list[Piece], kind: str, text: str) -> None:
    if not text:
        return
    if out and out[-1][0] == kind:
        out[-1] = (kind, out[-1][1] + text)
    else:
        out.append((kind, text))


def split_think_tags(text: str) -> tuple[str, str]:
    """Whole text -> (reasoning, visible text)."""
    splitter = ThinkTagSplitter()
    pieces = splitter.feed(text) + splitter.flush()
    reasoning = "".join(t for kind, t in pieces if kind == "reasoning")
    visible = "".join(t for kind, t in pieces if kind == "text")
    return reasoning, visible
