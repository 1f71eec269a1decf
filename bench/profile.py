"""Where a dragoman worker spends its time under load: py-spy samples it while wrk drives
one kind of request, and the samples are summed per function.

    .venv/bin/python bench/profile.py [--path pass|translated] [--stream] [--seconds 15]

Needs py-spy in the venv (``.venv/bin/pip install py-spy``; not a project dependency).
``--stream`` posts streaming requests to the paced upstream with no delay
(``paced-50x0``: 50 chunks as fast as it writes them), so per-chunk work shows; without
it, non-stream requests to nginx. Prints the top functions by own time and by time
including callees, and keeps the raw collapsed stacks (``--keep FILE``) for a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import targets as tg  # noqa: E402
from load import wrk  # noqa: E402
from procs import raise_fd_limit  # noqa: E402

PROFILE_PACE = "paced-50x0"


def summarize(collapsed: str, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    out = [f"{total} samples", "", "own time:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    out += ["", "including callees (dragoman frames only):"]
    mine = [(f, n) for f, n in incl.most_common() if "dragoman" in f]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in mine[:top]]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--path", choices=["pass", "translated"], default="pass")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--keep", help="write the collapsed stacks here")
    ap.add_argument("--native", action="store_true", help="include C frames (py-spy --native)")
    args = ap.parse_args()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not spy:
        raise SystemExit("py-spy not found: .venv/bin/pip install py-spy")
    raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix="dragoman-profile-"))
    try:
        with tg.upstreams(tmp, "0") as ups, \
                tg.dragoman(ups, tmp, "1", 1, args.path, [PROFILE_PACE]) as target:
            model = PROFILE_PACE if args.stream else tg.STATIC_MODEL
            body = {**tg.chat_body(target.model(model)), "stream": args.stream}
            body_file = tmp / "body.json"
            body_file.write_text(json.dumps(body))
            url = f"http://127.0.0.1:{target.port}/v1/chat/completions"
            wrk(url, body_file, conns=8, seconds=2, cpus="0")  # warm-up
            raw = tmp / "stacks.txt"
            assert target.pid is not None
            load = threading.Thread(target=wrk, args=(url, body_file), daemon=True,
                                    kwargs={"conns": args.conns, "seconds": args.seconds + 2,
                                            "cpus": "0"})
            load.start()
            subprocess.run(["taskset", "-c", "0", spy, "record", "--pid", str(target.pid),
                            "--duration", str(args.seconds), "--rate", "250", "--format",
                            "raw", "--output", str(raw),
                            *([] if args.native else ["--nonblocking"]),
                            *(["--native"] if args.native else [])],
                           check=True, capture_output=True)
            load.join()
            collapsed = raw.read_text()
            if args.keep:
                Path(args.keep).write_text(collapsed)
            print(summarize(collapsed, args.top))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
