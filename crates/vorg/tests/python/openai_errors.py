"""Every error of vorg's /v1 door raises the official openai client's own exception class,
with vorg's message; embeddings work through it.

Usage: openai_errors.py BASE_URL OK_KEY BROKE_KEY SLOW_KEY
  OK_KEY: an engineer's key; BROKE_KEY: a key whose daily budget cannot cover a call;
  SLOW_KEY: a key allowed one request a minute.
Prints one JSON line with what the client saw.
"""
import json
import sys

import openai
from openai import OpenAI

base_url, ok_key, broke_key, slow_key = sys.argv[1:5]
seen = {}


def caught(name, call):
    try:
        call()
        seen[name] = {"class": "no error"}
    except openai.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        seen[name] = {
            "class": type(e).__name__,
            "status": e.status_code,
            "code": body.get("code"),
            "param": body.get("param"),
            "message": body.get("message") or str(e),
            "retry_after": e.response.headers.get("retry-after"),
        }


hi = [{"role": "user", "content": "Hi"}]
caught("bad_key", lambda: OpenAI(base_url=base_url, api_key="vorg_not_a_key").models.list())
ok = OpenAI(base_url=base_url, api_key=ok_key)
caught("unknown_model", lambda: ok.chat.completions.create(model="openai/gpt-4.1-nano", messages=hi))
caught("bad_body", lambda: ok.chat.completions.create(model="default", messages=[]))
broke = OpenAI(base_url=base_url, api_key=broke_key)
caught("budget", lambda: broke.chat.completions.create(model="openai/gpt-4o-mini", messages=hi, max_tokens=10))
slow = OpenAI(base_url=base_url, api_key=slow_key, max_retries=0)
slow.models.list()
caught("rate", lambda: slow.models.list())

emb = ok.embeddings.create(model="simulated/sim-1", input=["the standup", "the roadmap"])
seen["embedding"] = {
    "count": len(emb.data),
    "dims": len(emb.data[0].embedding),
    "prompt_tokens": emb.usage.prompt_tokens,
    "differ": emb.data[0].embedding != emb.data[1].embedding,
}
print(json.dumps(seen))
