"""A program on a pseudo-terminal, as a person at a terminal would run it: keys typed into
the master side, everything it prints read back, and a small screen model to check where
each line ended up."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The child makes the pty its controlling terminal (as a login shell's children have one), so
# a Ctrl-C the program does not read as a key would reach it as SIGINT, as it would for real.
_BOOT = (
    "import fcntl, runpy, sys, termios\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "target, sys.argv = sys.argv[1], sys.argv[1:]\n"
    "if target.endswith('.py'):\n"
    "    runpy.run_path(target, run_name='__main__')\n"
    "else:\n"
    "    runpy.run_module(target, run_name='__main__', alter_sys=True)\n"
)
_CSI = re.compile(r"\x1b\[([0-9;?]*)([@-~])")


class Terminal:
    """``python -m MODULE ARGS`` (or ``python SCRIPT.py ARGS``) on a fresh pty."""

    def __init__(
        self,
        target: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        columns: int = 100,
        rows: int = 40,
    ) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, target, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            cwd=REPO,
            env=dict(os.environ if env is None else env),
        )
        os.close(slave)
        self.master = master
        self.output = ""
        self._seen = 0  # where the next expect() starts looking

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the program's side is closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every process holding the slave side has exited
            return False
        if not data:
            return False
        self.output += data.decode("utf-8", "replace")
        return True

    def expect(self, text: str, timeout: float = 30) -> str:
        """Wait until ``text`` appears after what earlier calls matched; the output up to it."""
        deadline = time.monotonic() + timeout
        while text not in self.output[self._seen :]:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(min(left, 0.2)):
                if text in self.output[self._seen :]:
                    break
                raise AssertionError(f"{text!r} never appeared; output so far:\n{self.output}")
        end = self.output.index(text, self._seen) + len(text)
        self._seen = end
        return self.output[:end]

    def seen(self, text: str, timeout: float = 30) -> None:
        """Wait until ``text`` appears anywhere in the output, whatever came after it."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(min(left, 0.2)):
                if text in self.output:
                    return
                raise AssertionError(f"{text!r} never appeared; output so far:\n{self.output}")

    def quiet_for(self, seconds: float) -> str:
        """Read for ``seconds``; what arrived meanwhile."""
        start = len(self.output)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and self._read(left):
            pass
        return self.output[start:]

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait(self, timeout: float = 30) -> int:
        """The exit status, after reading everything the program printed."""
        deadline = time.monotonic() + timeout
        while self._read(0.1) and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.quiet_for(0.2)
                break
        code = self.proc.wait(timeout=max(deadline - time.monotonic(), 1))
        self._close_master()
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_master()

    def _close_master(self) -> None:
        # Once only: a second close could hit a descriptor the number was reused for.
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def screen(self) -> list[str]:
        return render_screen(self.output)


def render_screen(output: str) -> list[str]:
    """The lines a terminal would show for ``output``: enough of a VT100 for what afk writes
    (CR, LF, backspace, erase to end of line, colours ignored)."""
    lines: list[list[str]] = [[]]
    row = col = 0
    pos = 0
    while pos < len(output):
        match = _CSI.match(output, pos)
        if match:
            if match.group(2) == "K":
                del lines[row][col:]
            pos = match.end()
            continue
        ch = output[pos]
        pos += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row += 1
            if row == len(lines):
                lines.append([])
        elif ch == "\b":
            col = max(col - 1, 0)
        elif ch >= " ":
            line = lines[row]
            line.extend(" " * (col - len(line)))
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
    return ["".join(line).rstrip() for line in lines]


def env_with(**values: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(values)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def lines_with(screen: Sequence[str], text: str) -> list[str]:
    return [line for line in screen if text in line]
