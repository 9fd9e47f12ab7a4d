"""Uploads under load, and upload/download throughput (issue 21).

    .venv/bin/python bench/uploads.py [--modes eventlet gevent] [--s3 http://127.0.0.1:8333]
                                      [--load-on-s3] [--photos] [--rounds 10] [--limit-rate 10M]

For each mode: one `python wsgi.py` on a fresh PostgreSQL database (bench_uploads), a
customer whose socket asks `inbox_counts` every 20 ms (an unrelated socket's acks),
while ten other customers each upload a 10 MB ZIP at once (a real file type, stored
without re-encoding), from ten curl processes (at full loopback speed, or at
`--limit-rate` each). Each curl sends `--rounds` files in turn, at `nice 19` (the
uploaders of a real server are on other machines). Reported: that socket's ack
p50/p99 during the uploads, and the server's RSS growth (peak VmRSS sampled every
10 ms, minus before).

Throughput: one client uploads then downloads 20 files of 10 MB one after another,
on loopback, to the folder store and (with --s3) to an S3 server, side by side.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fresh_database  # noqa: E402
from tests.live import LiveServer  # noqa: E402

MB = 1024 * 1024


def ten_mb_zip(seed: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("data.bin", random.Random(seed).randbytes(10 * MB - 200))
    return out.getvalue()


def ten_mb_photo(seed: int) -> bytes:
    """A JPEG of about 10 MB (a 12-megapixel camera's size, noisy enough not to shrink):
    the server decodes, re-encodes and thumbnails each."""
    from PIL import Image

    noise = Image.effect_noise((4000, 3000), 60 + seed).convert("RGB")
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=97)
    return out.getvalue()


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def upload(url: str, token: str, data: bytes, name: str) -> requests.Response:
    return requests.post(
        url + "/api/attachments",
        files={"file": (name, data)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )


def s3_bucket(endpoint: str) -> str:
    """A new bucket on the S3 server at `endpoint` (any key pair: SeaweedFS's `weed mini`
    checks none unless configured to)."""
    import boto3

    bucket = "bench-" + uuid.uuid4().hex[:8]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return bucket


def under_load(
    mode: str,
    database_url: str,
    limit_rate: str | None = None,
    rounds: int = 5,
    s3: str | None = None,
    photos: bool = False,
) -> dict:
    folder = f"/tmp/bench-uploads-{uuid.uuid4().hex[:8]}"
    store = (
        {"ATTACHMENT_STORE": f"s3://{s3_bucket(s3)}", "ATTACHMENT_S3_ENDPOINT": s3}
        if s3
        else {"ATTACHMENT_DIR": folder}
    )
    server = LiveServer(database_url, mode, CHAT_EVENT_RATE_LIMIT="100000/10", **store).start()
    try:
        watcher = server.register_and_login(f"watch-{mode}@example.com", "Watcher")
        sio = server.client(watcher["access_token"])
        uploaders = [
            server.register_and_login(f"up{n}-{mode}@example.com", f"Up {n}")["access_token"]
            for n in range(10)
        ]
        bodies = [ten_mb_photo(n) if photos else ten_mb_zip(n) for n in range(10)]
        for _ in range(20):  # warm: the event's path and the socket
            sio.call("inbox_counts", {}, namespace="/chat")
        pid = server.process.pid
        before = rss_kb(pid)
        peak = [before]
        latencies: list[float] = []
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kb(pid))
                time.sleep(0.01)

        def ask():
            while not done.is_set():
                started = time.perf_counter()
                sio.call("inbox_counts", {}, namespace="/chat", timeout=10)
                latencies.append((time.perf_counter() - started) * 1000)
                time.sleep(0.02)

        threads = [threading.Thread(target=sample), threading.Thread(target=ask)]
        for t in threads:
            t.start()
        # The uploads come from ten curl processes: in this process their threads would
        # take Python's lock from the socket that measures (a client-side artefact).
        paths = []
        for n, body in enumerate(bodies):
            path = f"/tmp/bench-upload-{mode}-{n}.zip"
            with open(path, "wb") as f:
                f.write(body)
            paths.append(path)
        started = time.perf_counter()
        # Each of the ten sends `rounds` files one after another: ten uploads at any
        # moment, long enough for a p99 of a few hundred acks.
        curl = " ".join(
            [
                "curl -s -o /dev/null -w '%{http_code} '",
                f"--limit-rate {limit_rate}" if limit_rate else "",
                '-H "Authorization: Bearer $1" -F "file=@$2;filename=$4" $3',
            ]
        )
        loop = f"for i in $(seq {rounds}); do {curl}; done"
        curls = [
            subprocess.Popen(
                [
                    "nice",
                    "-n",
                    "19",
                    "sh",
                    "-c",
                    loop,
                    "sh",
                    uploaders[n],
                    paths[n],
                    server.url + "/api/attachments",
                    "photo.jpg" if photos else "big.zip",
                ],
                stdout=subprocess.PIPE,
            )
            for n in range(10)
        ]
        results = [int(code) for c in curls for code in c.communicate()[0].split()]
        elapsed = time.perf_counter() - started
        for path in paths:
            os.unlink(path)
        done.set()
        for t in threads:
            t.join()
        assert results == [201] * 10 * rounds, results
        latencies.sort()
        return {
            "mode": mode,
            "uploads_s": elapsed,
            "acks": len(latencies),
            "p50": statistics.median(latencies),
            "p99": latencies[int(len(latencies) * 0.99) - 1],
            "max": latencies[-1],
            "rss_growth_mb": (peak[0] - before) / 1024,
        }
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)  # a run stores gigabytes


def throughput(database_url: str, label: str, **env) -> dict:
    server = LiveServer(database_url, "eventlet", CHAT_UPLOAD_BYTES_PER_HOUR=str(10**12), **env)
    server.start()
    try:
        token = server.register_and_login(f"tp-{uuid.uuid4().hex[:6]}@example.com", "T")[
            "access_token"
        ]
        bodies = [ten_mb_zip(100 + n) for n in range(20)]
        started = time.perf_counter()
        urls = []
        for n, body in enumerate(bodies):
            answer = upload(server.url, token, body, f"f{n}.zip")
            assert answer.status_code == 201, answer.text
            urls.append(answer.json()["url"])
        up = time.perf_counter() - started
        started = time.perf_counter()
        for url in urls:
            got = requests.get(
                server.url + url, headers={"Authorization": f"Bearer {token}"}, timeout=60
            )
            assert got.status_code == 200 and len(got.content) > 9 * MB
        down = time.perf_counter() - started
        total = sum(len(b) for b in bodies) / MB
        return {"store": label, "up_mb_s": total / up, "down_mb_s": total / down}
    finally:
        server.close()
        if "ATTACHMENT_DIR" in env:
            shutil.rmtree(env["ATTACHMENT_DIR"], ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", nargs="+", default=["eventlet", "gevent"])
    parser.add_argument("--s3", default=None, help="an S3 endpoint for the throughput run")
    parser.add_argument("--rounds", type=int, default=5, help="files each uploader sends in turn")
    parser.add_argument("--limit-rate", default=None, help="each upload's speed (curl's, e.g. 2M)")
    parser.add_argument(
        "--photos", action="store_true", help="10 MB JPEGs under load (re-encoded), not ZIPs"
    )
    parser.add_argument(
        "--load-on-s3", action="store_true", help="the uploads under load go to --s3, not a folder"
    )
    args = parser.parse_args()
    url = fresh_database("bench_uploads")
    print(
        "| mode | 10 at a time × rounds × 10 MB, s | acks | ack p50 ms | ack p99 ms | max ms"
        " | RSS growth MB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for mode in args.modes:
        load_s3 = args.s3 if args.load_on_s3 else None
        r = under_load(mode, url, args.limit_rate, args.rounds, load_s3, args.photos)
        print(
            f"| {r['mode']} | {r['uploads_s']:.2f} | {r['acks']} | {r['p50']:.1f} | "
            f"{r['p99']:.1f} | {r['max']:.1f} | {r['rss_growth_mb']:.1f} |"
        )
    print()
    print("| store | upload MB/s | download MB/s |")
    print("| --- | --- | --- |")
    rows = [throughput(url, "folder", ATTACHMENT_DIR=f"/tmp/bench-tp-{uuid.uuid4().hex[:8]}")]
    if args.s3:
        bucket = s3_bucket(args.s3)
        rows.append(
            throughput(
                url,
                "S3 (SeaweedFS)",
                ATTACHMENT_STORE=f"s3://{bucket}",
                ATTACHMENT_S3_ENDPOINT=args.s3,
            )
        )
    for r in rows:
        print(f"| {r['store']} | {r['up_mb_s']:.0f} | {r['down_mb_s']:.0f} |")


if __name__ == "__main__":
    main()
