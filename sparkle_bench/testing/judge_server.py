"""A real OpenAI-compatible chat endpoint on loopback, scripted per sample, logging every request.

The script maps an instruction (found in the request's first text part) to the replies for its
successive requests; the last reply repeats. A reply is an answer text, ``("status", code,
headers)``, ``("slow", seconds, text)`` or ``("body", raw_json_text)``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def scores(*values: int, rubric_titles: tuple[str, ...] | None = None) -> str:
    titles = rubric_titles or (
        "Instruction Compliance",
        "Overall Visual Quality",
        "Foreground Integrity",
        "Foreground Motion Consistency",
        "Background Dynamics",
        "Background Visual Quality",
    )
    return "\n".join(f"{t}: {v}" for t, v in zip(titles, values))


class JudgeServer:
    def __init__(self, script: dict[str, list], default="good", api_key: str | None = None):
        self.script, self.default, self.api_key = script, default, api_key
        self.log: list[dict] = []
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                server.handle(self, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _instruction(self, request: dict) -> str:
        text = request["messages"][0]["content"][0]["text"]
        for line in text.splitlines():
            if line.startswith("Instruction:"):
                return line.split(":", 1)[1].strip()
        return text

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        request = json.loads(body)
        instruction = self._instruction(request)
        with self._lock:
            index = self._seen.get(instruction, 0)
            self._seen[instruction] = index + 1
        replies = self.script.get(instruction, [self.default])
        reply = replies[min(index, len(replies) - 1)]
        entry = {
            "t": time.monotonic(),
            "instruction": instruction,
            "turns": len(request["messages"]),
            "prompt": request["messages"][0]["content"][0]["text"],
            "auth": handler.headers.get("authorization"),
            "temperature": request.get("temperature"),
            "seed": request.get("seed"),
            "videos": sum(1 for p in request["messages"][0]["content"] if p["type"] == "video_url"),
            "status": None,
        }
        with self._lock:
            self.log.append(entry)  # logged on arrival: a request counts even if its reply is never read
        if self.api_key and handler.headers.get("authorization") != f"Bearer {self.api_key}":
            reply = ("status", 401, {})
        status, headers, text = 200, {}, None
        if isinstance(reply, tuple) and reply[0] == "status":
            status, headers = reply[1], reply[2]
            payload = json.dumps({"error": {"message": f"scripted {status}"}}).encode()
        elif isinstance(reply, tuple) and reply[0] == "body":
            payload = reply[1].encode()
        else:
            if isinstance(reply, tuple) and reply[0] == "slow":
                time.sleep(reply[1])
                reply = reply[2]
            text = reply if reply != "good" else scores(5, 4, 4, 4, 3, 4)
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            payload = json.dumps(
                {"id": "x", "object": "chat.completion", "model": request["model"], "choices": [choice]}
            ).encode()
        entry["status"] = status
        try:
            handler.send_response(status)
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client was killed while waiting
            pass

    def requests_for(self, instruction: str) -> list[dict]:
        return [e for e in self.log if e["instruction"] == instruction]
