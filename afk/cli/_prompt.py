"""Reading one answer at the terminal, on the event loop, with nothing left behind.

The standard library only, by choice: an approval prompt needs a line, not an editor, and
the parts that matter here are ones a line-editing library leaves to its caller anyway
(logging handlers that hold the real stderr, what a cancelled prompt does with the next
keystroke). On a terminal the line is read in non-canonical mode, byte by byte as the
event loop sees them (``loop.add_reader``), echoed and edited here (Backspace, Ctrl-U,
Ctrl-W; arrow keys are ignored):

* Ctrl-C is read as a key (ISIG is off while the prompt shows), so it ends the prompt at
  once with :class:`PromptInterrupted`, not at the next Enter.
* Cancelling the read (the runner's deadline, a decision made elsewhere) removes the reader
  at once: no thread is left blocked on stdin to swallow the next line, and nothing typed
  after the prompt ended is consumed.
* Input typed before the prompt appeared is discarded: it cannot be an answer to a
  question not yet shown.
* While the prompt shows, ``sys.stdout``, ``sys.stderr`` and the logging handlers writing
  to them print above it: the prompt line is cleared, the text written, the prompt and what
  was typed so far drawn again.

Off a terminal (a pipe, a file) the prompt is printed and one line read, byte by byte so
nothing past its newline is taken from the next reader.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO, cast

from afk.approvals.display import escape
from afk.cli._term import display_width, tail

try:
    import termios
except ImportError:  # Windows: no terminal modes; the caller reads lines in a thread
    termios = None  # type: ignore[assignment]

_CLEAR_LINE = "\r\x1b[K"
_ERASE = ("\x7f", "\x08")
_KILL_LINE = "\x15"  # Ctrl-U
_KILL_WORD = "\x17"  # Ctrl-W


class PromptInterrupted(Exception):
    """Ctrl-C at the prompt."""


def can_prompt(fd: int | None) -> bool:
    """Whether :func:`read_line` can read ``fd`` on the event loop."""
    return fd is not None and sys.platform != "win32"


async def read_line(prompt: str, *, out: TextIO, fd: int) -> str:
    """Show ``prompt`` (one line, no colour codes) on ``out`` and return the line typed on
    ``fd``, without its newline. Raises EOFError at end of input (Ctrl-D on an empty line),
    PromptInterrupted on Ctrl-C; cancelling ends the prompt at once."""
    if termios is not None and os.isatty(fd) and _isatty(out):
        return await _TerminalLine(prompt, out, fd).read()
    out.write(prompt)
    out.flush()
    return await _stream_line(fd)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- off a terminal ------------------------------------------------------------------------
async def _stream_line(fd: int) -> str:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()
    data = bytearray()

    def readable() -> None:
        try:
            byte = os.read(fd, 1)
        except OSError as exc:
            done.set_exception(EOFError(f"no answer: cannot read standard input: {exc}"))
            return
        if not byte:
            if data:  # a last line without its newline is still an answer
                done.set_result(data.decode("utf-8", "replace"))
            else:
                done.set_exception(EOFError("no answer: standard input is closed"))
        elif byte == b"\n":
            done.set_result(data.decode("utf-8", "replace").removesuffix("\r"))
        else:
            data.extend(byte)

    try:
        loop.add_reader(fd, readable)
    except (NotImplementedError, PermissionError, ValueError):
        # A regular file (epoll refuses them) never blocks: read it here.
        while not done.done():
            readable()
        return done.result()
    try:
        return await done
    finally:
        loop.remove_reader(fd)


# -- on a terminal -------------------------------------------------------------------------
class _TerminalLine:
    """One prompt on a terminal: its echo and editing, and its redrawing under output."""

    def __init__(self, prompt: str, out: TextIO, fd: int) -> None:
        self.prompt, self.out, self.fd = prompt, out, fd
        self.typed: list[str] = []
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        self._escape = 0  # 1: after ESC, 2: inside a CSI/SS3 sequence (an arrow key...)

    async def read(self) -> str:
        assert termios is not None
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str] = loop.create_future()
        saved = termios.tcgetattr(self.fd)
        try:
            _answer_mode(self.fd, saved)
            termios.tcflush(self.fd, termios.TCIFLUSH)  # type-ahead is no answer to this
            with _above(self):
                ending = "\n"
                try:
                    self.redraw()
                    loop.add_reader(self.fd, self._readable, done)
                    try:
                        return await done
                    finally:
                        loop.remove_reader(self.fd)
                except PromptInterrupted:
                    ending = "^C\n"
                    raise
                finally:  # before _above lets held-back output through
                    self.out.write(ending)
                    self.out.flush()
        finally:
            with contextlib.suppress(termios.error):  # a terminal that went away
                termios.tcsetattr(self.fd, termios.TCSANOW, saved)

    def _readable(self, done: asyncio.Future[str]) -> None:
        if done.done():
            return
        try:
            data = os.read(self.fd, 1)
        except OSError as exc:
            done.set_exception(EOFError(f"no answer: cannot read the terminal: {exc}"))
            return
        if not data:
            done.set_exception(EOFError("no answer: the terminal closed"))
            return
        for ch in self._decode(data):
            if self._key(ch, done):
                return
        self.redraw()

    def _key(self, ch: str, done: asyncio.Future[str]) -> bool:
        """Apply one typed character; True when it ended the prompt."""
        if self._escape == 1:  # ESC [ and ESC O start a sequence (an arrow key, ...)
            self._escape = 2 if ch in "[O" else 0
            return False
        if self._escape == 2:  # ... that ends with a byte from @ to ~
            self._escape = 0 if "@" <= ch <= "~" else 2
            return False
        if ch in "\r\n":
            done.set_result("".join(self.typed))
        elif ch == "\x03":
            done.set_exception(PromptInterrupted())
        elif ch == "\x04":
            if not self.typed:
                done.set_exception(EOFError("no answer: end of input (Ctrl-D)"))
        elif ch == "\x1b":
            self._escape = 1
        elif ch in _ERASE:
            if self.typed:
                self.typed.pop()
        elif ch == _KILL_LINE:
            self.typed.clear()
        elif ch == _KILL_WORD:
            text = "".join(self.typed).rstrip()
            self.typed = list(text[: len(text) - len(text.split(" ")[-1])])
        elif ch >= " " and not "\x7f" <= ch <= "\x9f":  # no DEL, no C1 control
            self.typed.append(ch)
        return done.done()

    def redraw(self) -> None:
        """The prompt and what was typed (escaped: a pasted control is shown, not obeyed),
        its end when it is longer than the line."""
        room = max(_columns(self.fd) - display_width(self.prompt) - 1, 8)
        self.out.write(_CLEAR_LINE + self.prompt + tail(escape("".join(self.typed)), room))
        self.out.flush()

    def above(self, stream: TextIO, text: str) -> None:
        """Write ``text`` (whole lines) to ``stream`` above the prompt."""
        self.out.write(_CLEAR_LINE)
        self.out.flush()
        stream.write(text)
        stream.flush()
        self.redraw()


def _answer_mode(fd: int, saved: list[Any]) -> None:
    """Read key by key without echo; Ctrl-C and Ctrl-V arrive as keys (no ISIG, IEXTEN)."""
    assert termios is not None
    mode = termios.tcgetattr(fd)
    mode[3] = saved[3] & ~(termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN)
    mode[6] = list(saved[6])
    mode[6][termios.VMIN] = 1
    mode[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, mode)


def _columns(fd: int) -> int:
    try:
        return os.get_terminal_size(fd).columns or 80
    except OSError:
        return 80


# -- output while the prompt shows ---------------------------------------------------------
class _Above:
    """A stand-in for stdout or stderr that writes whole lines above the prompt."""

    def __init__(self, real: TextIO, line: _TerminalLine) -> None:
        self._real, self._line, self._partial = real, line, ""

    def write(self, text: str) -> int:
        self._partial += text
        if "\n" in self._partial:
            lines, _, self._partial = self._partial.rpartition("\n")
            if _isatty(self._real):
                self._line.above(self._real, lines + "\n")
            else:  # another destination (a log file): nothing to draw around
                self._real.write(lines + "\n")
        return len(text)

    def flush(self) -> None:
        self._real.flush()

    def finish(self) -> None:
        """Write what is left of an unfinished line (the prompt is gone by now)."""
        if self._partial:
            self._real.write(self._partial)
            self._partial = ""
        self._real.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, ...
        return getattr(self._real, name)


@contextlib.contextmanager
def _above(line: _TerminalLine) -> Iterator[None]:
    """Route ``sys.stdout``, ``sys.stderr`` and the logging handlers that write to them
    (handlers keep the stream they were made with) above ``line`` while it shows."""
    real = {
        id(s): s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if s is not None
    }
    proxies = {key: _Above(stream, line) for key, stream in real.items()}
    saved_out, saved_err = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, proxies[id(saved_out)])
    sys.stderr = cast(TextIO, proxies[id(saved_err)])
    swapped: list[tuple[logging.StreamHandler[Any], Any]] = []
    for handler in _stream_handlers():
        proxy = proxies.get(id(handler.stream))
        if proxy is not None:
            swapped.append((handler, handler.setStream(cast(TextIO, proxy))))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved_out, saved_err
        for handler, stream in swapped:
            handler.setStream(stream)
        for proxy in proxies.values():
            proxy.finish()


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    loggers: list[Any] = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = [h for lg in loggers for h in getattr(lg, "handlers", ())]
    # logging.lastResort looks sys.stderr up when it writes: it follows the swap by itself.
    return [
        h
        for h in dict.fromkeys(handlers)
        if isinstance(h, logging.StreamHandler) and h is not logging.lastResort
    ]
