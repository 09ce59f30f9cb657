"""``kblm type``: the keyboard in a terminal. The strip updates on every keystroke.

Keys: printable characters type; Backspace deletes; Tab or F1 taps slot 1, F2 slot 2, F3
slot 3 (Alt-1/2/3 too, for terminals that eat function keys); Enter starts a new text
field; Ctrl-C or Ctrl-D quits. Works in a plain terminal and under tmux (ANSI only).
"""
import os
import sys
import termios
import tty

KEYS = {"\t": "TAP1", "\x1bOP": "TAP1", "\x1bOQ": "TAP2", "\x1bOR": "TAP3",
        "\x1b[11~": "TAP1", "\x1b[12~": "TAP2", "\x1b[13~": "TAP3",
        "\x1b1": "TAP1", "\x1b2": "TAP2", "\x1b3": "TAP3",
        "\x7f": "BACKSPACE", "\x08": "BACKSPACE", "\r": "RESET", "\n": "RESET",
        "\x03": "QUIT", "\x04": "QUIT"}


def read_key(fd):
    """One key press: a character, or a whole escape sequence."""
    data = os.read(fd, 1)
    if data == b"\x1b":
        data += os.read(fd, 1)
        if data[1:] in (b"O", b"["):
            data += os.read(fd, 1)
            while data[-1:].isdigit():
                data += os.read(fd, 1)
    while True:  # complete a multi-byte UTF-8 character
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            data += os.read(fd, 1)


def render(engine, out):
    strip = engine.strip()
    slots = "  ".join(f"[{i + 1}] {word}" for i, word in enumerate(strip)) or "(no suggestions)"
    out.write("\r\x1b[2K" + slots + "\r\n\x1b[2K> " + engine.text + "\x1b[1A\r")
    out.write(f"\x1b[1B\x1b[{len(engine.text) + 3}G")
    out.flush()


def apply(engine, key):
    action = KEYS.get(key)
    if action == "BACKSPACE":
        engine.backspace()
    elif action == "RESET":
        engine.reset()
    elif action and action.startswith("TAP"):
        slot = int(action[3:]) - 1
        if slot < len(engine.strip()):
            engine.tap(slot)
    elif key.isprintable():
        engine.type(key)
    return action != "QUIT"


def run(engine, stdin=sys.stdin, out=sys.stdout):
    fd = stdin.fileno()
    if not os.isatty(fd):
        from data_pipeline.errors import KblmError

        raise KblmError("kblm type needs a terminal (for scripted input use kblm suggest or kblm trace)")
    saved = termios.tcgetattr(fd)
    out.write("keyboard-lm: type; Tab/F1 F2 F3 take a suggestion; Enter new field; Ctrl-C quits\r\n\n")
    try:
        tty.setraw(fd)
        render(engine, out)
        while apply(engine, read_key(fd)):
            out.write("\x1b[1A")
            render(engine, out)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        out.write("\r\n\n")
