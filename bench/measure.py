"""Runs a command once and prints `LABEL<TAB>wall seconds<TAB>peak RSS MB`.

usage: measure.py LABEL RSS_FILE COMMAND...

Wall time: perf_counter around spawning and reaping the run (under
/usr/bin/time, whose own start is a millisecond); peak RSS: the run's
maximum resident set as /usr/bin/time reports it (the largest process it
waited for). The command's output is discarded.
"""
import os
import sys
import time

label, rss_file, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
devnull = os.open(os.devnull, os.O_WRONLY)
actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
argv = ["/usr/bin/time", "-f", "%M", "-o", rss_file] + argv
t0 = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
_, status, _ = os.wait4(pid, 0)
wall = time.perf_counter() - t0
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit(f"{' '.join(argv)} failed")
rss_kb = int(open(rss_file).read().split()[-1])
print(f"{label}\t{wall:.4f}\t{rss_kb / 1024:.0f}")
