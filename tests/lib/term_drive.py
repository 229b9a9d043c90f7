#!/usr/bin/env python3
# term_drive.py ROWS COLS STEP... -- CMD...: runs CMD on a pseudo-terminal of ROWS x COLS and plays
# the steps: "sleep:S", "resize:R:C" (the kernel sends SIGWINCH), "kill:SIG", "mode" (records
# whether the terminal is in raw mode now), anything else is typed (\n, \x04 escapes). Prints
# the output, then "EXIT=<status>", the recorded modes and "FINAL=cooked|raw" after the exit.
import fcntl, os, pty, select, signal, struct, sys, termios, time
i = sys.argv.index('--')
rows, cols, steps, cmd = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:i], sys.argv[i + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
def setsize(r, c):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', r, c, 0, 0))
def mode():
    lflag = termios.tcgetattr(fd)[3]
    return 'cooked' if lflag & termios.ICANON and lflag & termios.ECHO else 'raw'
setsize(rows, cols)
out, modes = b'', []
def pump(t):
    global out
    end = time.time() + t
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                d = os.read(fd, 65536)
            except OSError:
                return False
            if not d:
                return False
            out += d
    return True
for s in steps:
    if s.startswith('sleep:'):
        pump(float(s[6:]))
    elif s.startswith('resize:'):
        _, r, c = s.split(':')
        setsize(int(r), int(c))
    elif s.startswith('kill:'):
        os.kill(pid, getattr(signal, s[5:]))
    elif s == 'mode':
        modes.append(mode())
    else:
        os.write(fd, s.encode().decode('unicode_escape').encode('latin-1'))
end, st = time.time() + 20, None
while time.time() < end:
    p, st = os.waitpid(pid, os.WNOHANG)
    if p:
        break
    pump(0.1)
else:
    os.kill(pid, signal.SIGKILL)
    p, st = os.waitpid(pid, 0)
final = mode()
pump(0.2)
sys.stdout.buffer.write(out.replace(b'\r', b''))
print('\nEXIT=%d' % os.waitstatus_to_exitcode(st))
for m in modes:
    print('MODE=' + m)
print('FINAL=' + final)
