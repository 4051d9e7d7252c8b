"""``omni-rag serve``'s HTTP API against a live server: hits equal the CLI's, Range, traversal, keys,
upload limits, bad uploads, micro-batching under 200 concurrent requests.

The server is a real ``omni-rag serve`` subprocess on a tiny real-architecture checkpoint and the
example media (``tests/conftest.py``); the CLI comparisons run ``omni-rag search --json`` on a
copy of the same store.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import httpx
import pytest

from tests.serve_support import (
    API_KEY,
    COLLECTION,
    LONG_VIDEO,
    OMNI_RAG,
    QUERIES,
    SWAPPED,
    Server,
    cli_search_json,
)

KEY = API_KEY


def search(server: Server, **body: Any) -> list[dict[str, Any]]:
    response = httpx.post(f"{server.url}/api/search", json=body, timeout=120)
    assert response.status_code == 200, response.text
    return list(response.json()["hits"])


def assert_same_hits(api: list[dict[str, Any]], cli: list[dict[str, Any]]) -> None:
    """Same ids in the same order, scores within 1e-6, and every CLI field equal."""
    assert [h["id"] for h in api] == [h["id"] for h in cli]
    for mine, theirs in zip(api, cli, strict=True):
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-6)
        assert mine["stream_scores"].keys() == theirs["stream_scores"].keys()
        for stream, score in theirs["stream_scores"].items():
            assert mine["stream_scores"][stream] == pytest.approx(score, abs=1e-6)
        for key in set(theirs) - {"score", "stream_scores"}:
            assert mine[key] == theirs[key], key


def raw_get(server: Server, target: str) -> tuple[int, bytes]:
    """GET ``target`` byte for byte (no client-side normalisation of ``..`` or escapes)."""
    parsed = urlparse(server.url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def media_hits(server: Server) -> dict[str, dict[str, Any]]:
    """Every point with a servable file, by source file name (one segment per recording)."""
    hits = search(server, text="anything at all", k=50)
    return {Path(h["source"]).name: h for h in hits if h["media_url"]}


# -- health and hits -------------------------------------------------------------------------------


def test_health_names_collection_points_and_model(server: Server, native_checkpoint: Path) -> None:
    body = httpx.get(f"{server.url}/api/health").json()
    assert body["status"] == "ok"
    assert body["collection"] == COLLECTION
    assert body["points"] == 14  # 8 example files, the two videos cut in 2; 3 segments; swap_me.wav
    assert Path(body["model"]).name == native_checkpoint.name


def test_openapi_documents_both_request_bodies(server: Server) -> None:
    assert httpx.get(f"{server.url}/docs").status_code == 200
    body = httpx.get(f"{server.url}/openapi.json").json()["paths"]["/api/search"]["post"]["requestBody"]
    assert set(body["content"]) == {"application/json", "multipart/form-data"}


def test_port_in_use_is_refused_before_the_model_loads(serve_corpus: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                str(OMNI_RAG),
                "serve",
                "-c",
                COLLECTION,
                "--store",
                str(serve_corpus / "store"),
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr, result.stderr


def test_text_hits_equal_cli_json(server: Server, serve_corpus: Path, native_checkpoint: Path) -> None:
    api = search(server, text="how to bake a loaf of bread", k=7, fusion="rrf", streams=["audio", "video"])
    cli = cli_search_json(
        serve_corpus / "store",
        native_checkpoint,
        "how to bake a loaf of bread",
        "-k",
        "7",
        "--fusion",
        "rrf",
        "--streams",
        "audio,video",
    )
    assert len(api) == 7
    assert_same_hits(api, cli)
    for hit in api:
        assert hit["media_url"] == f"/media/{quote(hit['id'], safe='')}"
        assert ("poster_url" in hit) == (hit["kind"] == "video")


def test_audio_upload_hits_equal_cli_json(
    server: Server, serve_corpus: Path, native_checkpoint: Path
) -> None:
    question = QUERIES / "bread_question.wav"
    with question.open("rb") as handle:
        response = httpx.post(
            f"{server.url}/api/search",
            files={"audio": (question.name, handle, "audio/wav")},
            data={"k": "20", "fusion": "mean"},
            timeout=120,
        )
    assert response.status_code == 200, response.text
    api = response.json()["hits"]
    cli = cli_search_json(serve_corpus / "store", native_checkpoint, "--audio", str(question), "-k", "20")
    assert len(api) == 14
    assert_same_hits(api, cli)
    text_hits = [h for h in api if h["kind"] == "text"]
    assert [h["media_url"] for h in text_hits] == [None] and "Honeybees" in text_hits[0]["text"]


# -- media: Range, posters, traversal --------------------------------------------------------------


def test_media_supports_range_requests(server: Server, serve_corpus: Path) -> None:
    hit = media_hits(server)["bread_baking.mp4"]
    data = (serve_corpus / "media" / "bread_baking.mp4").read_bytes()
    url = f"{server.url}{hit['media_url']}"
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "video/mp4"
    for header, start, end in (
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, len(data) - 1),
        ("bytes=-50", len(data) - 50, len(data) - 1),
    ):
        part = httpx.get(url, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
        assert part.content == data[start : end + 1]
        assert int(part.headers["content-length"]) == end - start + 1
    beyond = httpx.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"


def test_poster_is_the_frame_at_start_s(server: Server) -> None:
    from io import BytesIO

    from PIL import Image

    hits = search(server, text="a talk", k=50, streams=["video"])
    segments = sorted((h for h in hits if Path(h["source"]).name == LONG_VIDEO), key=lambda h: h["start_s"])
    assert [h["start_s"] for h in segments] == [0.0, 4.0, 8.0]
    posters = [httpx.get(f"{server.url}{h['poster_url']}") for h in segments]
    assert all(p.status_code == 200 and p.headers["content-type"] == "image/jpeg" for p in posters)
    images = [Image.open(BytesIO(p.content)) for p in posters]
    assert images[0].size == (160, 120)
    assert len({p.content for p in posters}) == 3  # three moments, three different frames
    audio = media_hits(server)["volcano.wav"]
    assert httpx.get(f"{server.url}/poster/{quote(audio['id'], safe='')}").status_code == 404


def hostile_targets(server: Server, serve_corpus: Path) -> list[str]:
    """Paths a prober would try: plain, encoded, double-encoded, absolute, NUL, backslash, ids with tails."""
    known = quote(media_hits(server)["volcano.wav"]["id"], safe="")
    source = quote(str(serve_corpus / "media" / "volcano.wav"), safe="")
    return [
        "/media/../../../../etc/passwd",
        "/media/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/media/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/media/%252e%252e%252f%252e%252e%252fetc%252fpasswd",
        "/media//etc/passwd",
        "/media/%2Fetc%2Fpasswd",
        f"/media/{source}",
        f"/media/{known}/../../../../etc/passwd",
        f"/media/{known}%2F..%2F..%2Fetc%2Fpasswd",
        f"/media/{known}%00",
        "/media/..%5C..%5C..%5Cetc%5Cpasswd",
        "/media/%7Eroot%2F.ssh%2Fid_rsa",
        "/media/notes.md",
        "/poster/..%2F..%2Fetc%2Fpasswd",
        "/static/../../../../etc/passwd",
        "/static/..%2F..%2F..%2Fserve%2Fapp.py",
        "/static/%2e%2e/app.py",
    ]


def test_hostile_paths_are_404_and_reveal_nothing(server: Server, serve_corpus: Path) -> None:
    targets = hostile_targets(server, serve_corpus)
    assert len(targets) >= 10
    for target in targets:
        status, body = raw_get(server, target)
        assert status == 404, (target, status, body[:200])
        assert b"root:" not in body and str(serve_corpus).encode() not in body and b"import" not in body, (
            target
        )
        if target.startswith(("/media/", "/poster/")) and status == 404:
            assert body in (b'{"detail":"not found"}', b'{"detail":"Not Found"}'), (target, body)


def test_source_swapped_for_a_symlink_out_of_its_folder_is_404(server: Server, serve_corpus: Path) -> None:
    media = serve_corpus / "media"
    hit = media_hits(server)[SWAPPED]
    url = f"{server.url}{hit['media_url']}"
    original = (media / SWAPPED).read_bytes()
    assert httpx.get(url).content == original
    outside = serve_corpus / "secret.wav"
    shutil.move(media / SWAPPED, outside)
    try:
        (media / SWAPPED).symlink_to(outside)
        refused = httpx.get(url)
        assert refused.status_code == 404 and refused.content == b'{"detail":"not found"}'
        assert httpx.get(url, headers={"Range": "bytes=0-9"}).status_code == 404
        (media / SWAPPED).unlink()
        (media / SWAPPED).symlink_to(media / "volcano.wav")  # a link inside the folder is still its file
        assert httpx.get(url).status_code == 200
        (media / SWAPPED).unlink()
        assert httpx.get(url).status_code == 404  # deleted: gone, and says nothing more
    finally:
        if (media / SWAPPED).is_symlink():
            (media / SWAPPED).unlink()
        shutil.move(outside, media / SWAPPED)
    assert httpx.get(url).content == original


# -- bad queries ---------------------------------------------------------------------------------


def test_undecodable_upload_is_400_in_the_cli_words(server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"\x00not a sound\x01" * 500)
    response = httpx.post(
        f"{server.url}/api/search", files={"audio": (bad.name, bad.read_bytes())}, timeout=60
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    cli = subprocess.run(
        [str(OMNI_RAG), "search", "--audio", str(bad), "-c", COLLECTION, "--store", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 2
    reason = cli.stderr.strip().split(f"--audio {bad}: ", 1)[1]
    assert detail == f"audio noise.wav: {reason}"
    image = httpx.post(f"{server.url}/api/search", files={"image": ("x.png", b"PNG junk" * 100)}, timeout=60)
    assert image.status_code == 400 and image.json()["detail"].startswith("image x.png: ")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"text": "   "}, "the query text is empty"),
        ({}, "give a query"),
        ({"text": "x", "k": 0}, "k: "),
        ({"text": "x", "fusion": "median"}, "fusion: "),
        ({"text": "x", "streams": ["smell"]}, "streams.0: "),
        ({"text": "x", "streams": []}, "streams: give at least one"),
    ],
)
def test_bad_json_queries_are_400_naming_the_field(server: Server, body: dict[str, Any], words: str) -> None:
    response = httpx.post(f"{server.url}/api/search", json=body)
    assert response.status_code == 400 and words in response.json()["detail"], response.text


# -- keys, hosts and upload limits: a second server on every interface ------------------------------


def test_non_loopback_host_without_key_refuses_to_start(serve_corpus: Path) -> None:
    for env in ({}, {"OMNI_RAG_API_KEY": "  "}):
        result = subprocess.run(
            [
                str(OMNI_RAG),
                "serve",
                "-c",
                COLLECTION,
                "--store",
                str(serve_corpus / "store"),
                "--host",
                "0.0.0.0",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**{k: v for k, v in os.environ.items() if k != "OMNI_RAG_API_KEY"}, **env},
        )
        assert result.returncode == 2, result.stderr
        assert (
            "--host 0.0.0.0" in result.stderr
            and "--api-key" in result.stderr
            and "OMNI_RAG_API_KEY" in result.stderr
        )


def test_every_api_and_media_request_needs_the_key(keyed_server: Server) -> None:
    url = keyed_server.url
    good = {"Authorization": f"Bearer {KEY}"}
    hits = httpx.post(f"{url}/api/search", json={"text": "bread", "k": 15}, headers=good).json()["hits"]
    video = next(h for h in hits if h["kind"] == "video")
    for method, path in (
        ("GET", "/api/health"),
        ("POST", "/api/search"),
        ("GET", video["media_url"]),
        ("GET", video["poster_url"]),
    ):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"api-key": "wrong"}, {"Authorization": KEY}):
            response = httpx.request(method, f"{url}{path}", headers=headers, json={"text": "x"})
            assert response.status_code == 401, (path, headers)
        for headers in (good, {"api-key": KEY}, {"Cookie": f"omni_rag_api_key={KEY}"}):
            response = httpx.request(method, f"{url}{path}", headers=headers, json={"text": "x"})
            assert response.status_code == 200, (path, headers, response.text)
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and "omni-rag" in page.text  # the page loads, then asks for the key


def test_uploads_over_the_limit_are_413(keyed_server: Server) -> None:
    headers = {"api-key": KEY}
    big = (QUERIES / "bread_question.wav").read_bytes()  # 66 KB > 0.05 MB
    response = httpx.post(f"{keyed_server.url}/api/search", files={"audio": ("q.wav", big)}, headers=headers)
    assert response.status_code == 413 and "0.05 MB" in response.json()["detail"]

    def chunks() -> Any:  # no Content-Length: the limit is enforced while reading
        boundary = b'--xx\r\nContent-Disposition: form-data; name="audio"; filename="q.wav"\r\n\r\n'
        yield boundary
        for offset in range(0, len(big), 8192):
            yield big[offset : offset + 8192]
        yield b"\r\n--xx--\r\n"

    chunked = httpx.post(
        f"{keyed_server.url}/api/search",
        content=chunks(),
        headers={**headers, "Content-Type": "multipart/form-data; boundary=xx"},
    )
    assert chunked.status_code == 413
    small = (QUERIES / "bread_question.wav").read_bytes()[:40_000]
    ok = httpx.post(f"{keyed_server.url}/api/search", files={"audio": ("q.wav", small)}, headers=headers)
    assert ok.status_code in (200, 400), ok.text  # under the limit: searched (or refused as cut short)


# -- load --------------------------------------------------------------------------------------------


def test_200_concurrent_requests_share_forward_passes(server: Server) -> None:
    texts = [f"query number {i % 8} about bread" for i in range(200)]
    sequential = {t: search(server, text=t, k=5) for t in set(texts)}
    before = httpx.get(f"{server.url}/api/health").json()["batches"]

    def one(text: str) -> tuple[str, httpx.Response]:
        return text, httpx.post(f"{server.url}/api/search", json={"text": text, "k": 5}, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        answers = list(pool.map(one, texts))
    assert all(r.status_code == 200 for _, r in answers), {r.status_code for _, r in answers}
    for text, response in answers:
        hits = response.json()["hits"]
        assert [h["id"] for h in hits] == [h["id"] for h in sequential[text]]
        for mine, alone in zip(hits, sequential[text], strict=True):
            assert mine["score"] == pytest.approx(alone["score"], abs=1e-4)
    after = httpx.get(f"{server.url}/api/health").json()["batches"]
    assert after["queries"] - before["queries"] == 200
    assert after["passes"] - before["passes"] < 100  # requests arriving together shared forward passes
    assert server.process.poll() is None
